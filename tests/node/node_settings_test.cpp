// The node's settings layer: the [connmgr] section of the CAF config file plus
// --connmgr.KEY=VALUE options, read strictly. Every malformed value must fail
// with one line naming the key, the value and what was expected, where CAF's
// own parser would silently keep the default.
//
// Over 500 lines because every key has its malformed values listed here.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <sys/types.h>

#include <caf/actor_system_config.hpp>

#include "examples/node/node_settings.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config_reader.hpp"
#include "tests/support/temp_dir.hpp"

using namespace connmgr;
using namespace std::chrono_literals;
using connmgr::test::temp_dir;

namespace {

/// Reads `ini` (the whole file) plus `args`, expecting failure; returns the
/// rendered error.
std::string error_of(const std::string& ini,
                     const std::vector<std::string>& args = {}) {
  temp_dir dir;
  auto file = dir.write("caf-application.ini", ini);
  auto res = read_node_settings(file, true, args);
  REQUIRE_FALSE(res);
  CHECK(errc_of(res.error()) == errc::invalid_config);
  return describe(res.error());
}

/// Reads `[connmgr]` followed by `line`, expecting failure.
std::string error_of_line(const std::string& line) {
  return error_of("[connmgr]\n" + line + "\n");
}

net_address addr(const char* text) {
  auto res = net_address::parse(text);
  REQUIRE(res);
  return *res;
}

} // namespace

TEST_CASE("node settings: a file with every key gives exactly its values") {
  temp_dir dir;
  auto file = dir.write("node.ini", R"([scheduler]
max-threads=2

; the node's own section
[connmgr]
listen=["0.0.0.0:8333", "[::1]:8334"]
connect=["10.0.0.1:8333"]
peers=["Seed.Example.ORG.:8333", "192.168.1.2:18333"] ; canonicalised
dns-seeds=["localhost:18444"]
target-outbound=3
max-inbound=0
retry-duration=250ms
max-retry-duration=1min
dial-timeout=2s
max-failed-attempts=7
max-pending-dials=16
proxy="127.0.0.1:9050"
handshake-timeout=3s
status-interval=500ms
ping-interval=2s
metrics-listen="127.0.0.1:0"
log-format="json"
)");
  auto res = read_node_settings(file, true, {});
  REQUIRE_MESSAGE(res, describe(res.error()));
  auto& s = *res;
  CHECK(s.listen
        == std::vector<net_address>{addr("0.0.0.0:8333"), addr("[::1]:8334")});
  CHECK(s.connect == std::vector<net_address>{addr("10.0.0.1:8333")});
  CHECK(
    s.peers
    == std::vector<std::string>{"seed.example.org:8333", "192.168.1.2:18333"});
  CHECK(s.manager.target_outbound == 3);
  REQUIRE(s.manager.max_inbound.has_value());
  CHECK(*s.manager.max_inbound == 0);
  CHECK(s.manager.retry_duration == 250ms);
  CHECK(s.manager.max_retry_duration == 1min);
  CHECK(s.manager.dial_timeout == 2s);
  CHECK(s.manager.max_failed_attempts == 7);
  CHECK(s.manager.max_pending_dials == 16);
  REQUIRE(s.proxy.has_value());
  CHECK(*s.proxy == addr("127.0.0.1:9050"));
  CHECK(s.handshake_timeout == 3s);
  CHECK(s.status_interval == 500ms);
  CHECK(s.ping_interval == 2s);
  CHECK(s.dns_seeds == std::vector<net_address>{addr("localhost:18444")});
  REQUIRE(s.metrics_listen.has_value());
  CHECK(s.metrics_listen->port() == 0);
  CHECK(s.format == node_settings::log_format::json);
  CHECK(to_string(s.format) == "json");
  // Keys without a setting keep the manager's defaults.
  CHECK(s.manager.stable_connection_period
        == manager_config{}.stable_connection_period);
}

TEST_CASE("node settings: absent keys and absent files give the defaults") {
  temp_dir dir;
  auto check_defaults = [](const node_settings& s) {
    manager_config def;
    CHECK(s.listen.empty());
    CHECK(s.connect.empty());
    CHECK(s.peers.empty());
    CHECK(s.manager.target_outbound == def.target_outbound);
    CHECK(s.manager.max_inbound == std::optional<uint32_t>{114});
    CHECK(s.manager.retry_duration == def.retry_duration);
    CHECK(s.manager.max_retry_duration == def.max_retry_duration);
    CHECK(s.manager.dial_timeout == def.dial_timeout);
    CHECK(s.manager.max_failed_attempts == def.max_failed_attempts);
    CHECK(s.manager.max_pending_dials == def.max_pending_dials);
    CHECK_FALSE(s.proxy.has_value());
    CHECK(s.handshake_timeout == 10s);
    CHECK(s.status_interval == 5s);
    CHECK(s.ping_interval == 30s);
    CHECK(s.dns_seeds.empty());
    CHECK_FALSE(s.metrics_listen.has_value());
    CHECK(s.format == node_settings::log_format::text);
  };
  SUBCASE("empty [connmgr] section") {
    auto res = read_node_settings(dir.write("a.ini", "[connmgr]\n"), true, {});
    REQUIRE_MESSAGE(res, describe(res.error()));
    check_defaults(*res);
  }
  SUBCASE("only other sections") {
    auto res = read_node_settings(
      dir.write("b.ini", "[scheduler]\nmax-threads=2\n"), true, {});
    REQUIRE_MESSAGE(res, describe(res.error()));
    check_defaults(*res);
  }
  SUBCASE("optional file missing") {
    auto res = read_node_settings(dir.path("missing.ini"), false, {});
    REQUIRE_MESSAGE(res, describe(res.error()));
    check_defaults(*res);
  }
  SUBCASE("required file missing") {
    auto missing = dir.path("missing.ini");
    auto res = read_node_settings(missing, true, {});
    REQUIRE_FALSE(res);
    CHECK(describe(res.error())
          == "invalid_config: cannot open config file \"" + missing
            + "\": No such file or directory");
  }
}

TEST_CASE("node settings: the command line overrides the file") {
  temp_dir dir;
  auto file = dir.write("node.ini",
                        "[connmgr]\n"
                        "target-outbound=3\n"
                        "retry-duration=1s\n"
                        "listen=[\"1.2.3.4:1\"]\n"
                        "log-format=\"json\"\n");
  auto res = read_node_settings(
    file, true,
    {"--connmgr.target-outbound=5", "--scheduler.max-threads=2",
     "--connmgr.listen=[\"[::1]:2\", \"5.6.7.8:3\"]",
     "--connmgr.retry-duration=2s", "--connmgr.log-format=text",
     "--connmgr.proxy=localhost:1080", "positional",
     "--connmgr.target-outbound=99999999999"});
  REQUIRE_MESSAGE(res, describe(res.error()));
  CHECK(res->manager.target_outbound == 5);
  CHECK(res->manager.retry_duration == 2s);
  CHECK(res->listen
        == std::vector<net_address>{addr("[::1]:2"), addr("5.6.7.8:3")});
  CHECK(res->format == node_settings::log_format::text);
  REQUIRE(res->proxy.has_value());
  CHECK(*res->proxy == addr("localhost:1080"));
  // --config-file=F picks the file like CAF does.
  auto res2 = read_node_settings(std::vector<std::string>{
    "--config-file=" + file, "--connmgr.max-inbound=4"});
  REQUIRE_MESSAGE(res2, describe(res2.error()));
  CHECK(res2->manager.target_outbound == 3);
  CHECK(res2->manager.max_inbound == std::optional<uint32_t>{4});
}

TEST_CASE("node settings: malformed values fail with one line naming them") {
  const std::string pre = "invalid_config: connmgr.";
  const std::string all_keys =
    "listen, connect, peers, dns-seeds, target-outbound, max-inbound, "
    "retry-duration, max-retry-duration, dial-timeout, max-failed-attempts, "
    "max-pending-dials, proxy, handshake-timeout, status-interval, "
    "ping-interval, metrics-listen, log-format, netgroup-bits-ipv4, "
    "netgroup-bits-ipv6, allow-local-addresses, outbound-per-netgroup, "
    "max-inbound-per-ip, max-inbound-per-netgroup, max-pending-inbound, "
    "inbound-rate-per-ip, inbound-burst-per-ip, receive-window, send-buffer, "
    "slow-reader-timeout, control-listen, control-cert, control-key, "
    "control-ca, control-insecure-loopback, evict-inbound, retry-jitter, "
    "jitter-seed, stable-connection-period, reject-duplicate-addresses, "
    "max-manual, max-permanent, ban-threshold, ban-duration, max-bans";
  SUBCASE("unknown key") {
    CHECK(error_of_line("colour=\"red\"")
          == pre + "colour: unknown key, expected one of " + all_keys);
    CHECK(error_of("[connmgr]\n", {"--connmgr.colour=red"})
          == pre + "colour: unknown key, expected one of " + all_keys);
    CHECK(error_of("[connmgr.sub]\nx=1\n")
          == pre + "sub: unknown key, expected one of " + all_keys);
  }
  SUBCASE("wrong type") {
    CHECK(error_of_line("target-outbound=\"8\"")
          == pre
            + "target-outbound = \"8\": expected an integer in "
              "0..4294967295");
    CHECK(error_of_line("listen=\"1.2.3.4:1\"")
          == pre
            + "listen = \"1.2.3.4:1\": expected a list of quoted "
              "addresses like [\"1.2.3.4:8333\"]");
    CHECK(error_of_line("proxy=9050")
          == pre
            + "proxy = \"9050\": expected a quoted address like "
              "\"127.0.0.1:9050\"");
    CHECK(error_of_line("connect=[\"1.2.3.4:1\", 5]")
          == pre
            + "connect[1] = \"5\": expected a quoted address like "
              "\"1.2.3.4:8333\"");
  }
  SUBCASE("integer overflow") {
    CHECK(error_of_line("target-outbound=99999999999")
          == pre
            + "target-outbound = \"99999999999\": expected an integer "
              "in 0..4294967295");
    CHECK(error_of_line("target-outbound=99999999999999999999999")
          == pre
            + "target-outbound = \"99999999999999999999999\": expected "
              "an integer in 0..4294967295");
    CHECK(error_of("[connmgr]\n", {"--connmgr.max-inbound=4294967296"})
          == pre
            + "max-inbound = \"4294967296\": expected an integer in "
              "0..4294967295 or \"unlimited\"");
  }
  SUBCASE("negative and zero integers") {
    CHECK(error_of_line("max-inbound=-1")
          == pre
            + "max-inbound = \"-1\": expected an integer in "
              "0..4294967295 or \"unlimited\"");
    CHECK(error_of("[connmgr]\n", {"--connmgr.target-outbound=-1"})
          == pre
            + "target-outbound = \"-1\": expected an integer in "
              "0..4294967295");
    CHECK(error_of_line("max-pending-dials=0")
          == pre
            + "max-pending-dials = \"0\": expected an integer in "
              "1..4294967295");
  }
  SUBCASE("bad durations") {
    const std::string exp = ": expected a duration like 5s or 250ms";
    CHECK(error_of_line("retry-duration=1.5s")
          == pre + "retry-duration = \"1.5s\"" + exp);
    CHECK(error_of_line("retry-duration=\"1.5s\"")
          == pre + "retry-duration = \"1.5s\"" + exp);
    CHECK(error_of("[connmgr]\n", {"--connmgr.retry-duration=1.5s"})
          == pre + "retry-duration = \"1.5s\"" + exp);
    CHECK(error_of_line("dial-timeout=5")
          == pre + "dial-timeout = \"5\"" + exp);
    CHECK(error_of("[connmgr]\n", {"--connmgr.status-interval=5"})
          == pre + "status-interval = \"5\"" + exp);
    CHECK(error_of_line("handshake-timeout=0s")
          == pre
            + "handshake-timeout = \"0s\": expected a duration in "
              "10ms..168h");
  }
  SUBCASE("bad address in a list or alone") {
    CHECK(error_of_line("listen=[\"1.2.3.4:1\", \"1.2.3.4:99999\"]")
          == pre
            + "listen[1] = \"1.2.3.4:99999\": port 99999 out of range, "
              "expected 0..65535");
    CHECK(error_of_line("listen=[\"0.0.0.0:70000\"]")
          == pre
            + "listen[0] = \"0.0.0.0:70000\": port 70000 out of range, "
              "expected 0..65535");
    CHECK(error_of_line("dns-seeds=[\"seed.example.org\"]")
            .find(pre + "dns-seeds[0] = \"seed.example.org\"")
          == 0);
    CHECK(error_of("[connmgr]\n", {"--connmgr.peers=[\"1.2.3.4:0\"]"})
          == pre
            + "peers[0] = \"1.2.3.4:0\": port 0 out of range, "
              "expected 1..65535");
    CHECK(error_of_line("proxy=127.0.0.1:9050")
          == pre
            + "proxy = \"127.0.0.1:9050\": expected a quoted address "
              "like \"127.0.0.1:9050\"");
  }
  SUBCASE("lines CAF's parser blames wrongly or not at all") {
    CHECK(error_of_line("target-outbound = 8 8")
          == pre
            + "target-outbound = \"8 8\": expected an integer in "
              "0..4294967295");
    auto unterminated = pre
      + "listen = \"[\"127.0.0.1:0\"\": unterminated "
        "list, expected a list of quoted addresses "
        "like [\"1.2.3.4:8333\"]";
    CHECK(error_of_line("listen=[\"127.0.0.1:0\"\ntarget-outbound=0")
          == unterminated);
    CHECK(error_of_line("log-format=\"json\"\nlisten=[\"127.0.0.1:0\"")
          == unterminated);
  }
  SUBCASE("bad log format") {
    CHECK(error_of_line("log-format=\"xml\"")
          == pre + "log-format = \"xml\": expected text or json");
    CHECK(error_of("[connmgr]\n", {"--connmgr.log-format=JSON"})
          == pre + "log-format = \"JSON\": expected text or json");
  }
  SUBCASE("max-retry-duration below retry-duration") {
    CHECK(error_of_line("retry-duration=10s\nmax-retry-duration=2s")
          == pre
            + "max-retry-duration = \"2s\": expected >= "
              "connmgr.retry-duration");
    // The command-line value counts, too.
    CHECK(error_of("[connmgr]\nmax-retry-duration=2s\n",
                   {"--connmgr.retry-duration=3s"})
          == pre
            + "max-retry-duration = \"2s\": expected >= "
              "connmgr.retry-duration");
  }
  SUBCASE("syntax error outside the connmgr section") {
    temp_dir dir;
    auto file = dir.write("bad.ini", "[scheduler]\n# comment\n");
    auto res = read_node_settings(file, true, {});
    REQUIRE_FALSE(res);
    CHECK(describe(res.error())
          == "invalid_config: " + file
            + ":2:2: cannot parse the config file (trailing_character)");
  }
}

TEST_CASE("node settings: options are declared for CAF's --help") {
  node_actor_system_config cfg;
  caf::config_option_set opts;
  declare_node_options(opts);
  for (auto& key : node_settings_keys())
    CHECK_MESSAGE(opts.qualified_name_lookup("connmgr", key) != nullptr, key);
  CHECK(node_settings_keys().size() == 44);
  // Every manager key is one of the node's, declared by the library.
  for (auto& key : manager_config_keys())
    CHECK_MESSAGE(
      std::find(node_settings_keys().begin(), node_settings_keys().end(), key)
        != node_settings_keys().end(),
      key);
}

TEST_CASE("node settings: the manager keys the library adds read in the "
          "node too") {
  temp_dir dir;
  auto file = dir.write("caf-application.ini",
                        "[connmgr]\nretry-jitter=0.5\njitter-seed=7\n"
                        "stable-connection-period=0s\n"
                        "reject-duplicate-addresses=false\n");
  auto res = read_node_settings(file, true, {"--connmgr.evict-inbound=false"});
  REQUIRE_MESSAGE(res, describe(res.error()));
  CHECK(res->manager.retry_jitter == 0.5);
  CHECK(res->manager.jitter_seed == 7);
  CHECK(res->manager.stable_connection_period == caf::timespan{0});
  CHECK_FALSE(res->manager.reject_duplicate_addresses);
  CHECK_FALSE(res->manager.evict_inbound);
  // Defaults where absent.
  auto def = read_node_settings(dir.write("e.ini", ""), true, {});
  REQUIRE_MESSAGE(def, describe(def.error()));
  CHECK(def->manager.retry_jitter == 0.0);
  CHECK(def->manager.stable_connection_period == std::chrono::seconds{60});
  CHECK(def->manager.reject_duplicate_addresses);
  // Refused by key, like the node's own keys.
  const std::string pre = "invalid_config: connmgr.";
  CHECK(error_of_line("retry-jitter=2")
        == pre + "retry-jitter = \"2\": expected a number in 0..1");
  CHECK(error_of("[connmgr]\n", {"--connmgr.stable-connection-period=1.5s"})
        == pre
          + "stable-connection-period = \"1.5s\": expected a duration "
            "like 5s or 250ms");
  CHECK(error_of_line("stable-connection-period=99999999h")
        == pre
          + "stable-connection-period = \"99999999h\": expected a "
            "duration in 0s..168h");
  CHECK(error_of_line("reject-duplicate-addresses=\"no\"")
        == pre
          + "reject-duplicate-addresses = \"no\": expected true or "
            "false");
  // A flag whose default is true takes a value on the command line.
  CHECK(error_of("[connmgr]\n", {"--connmgr.evict-inbound"})
        == pre
          + "evict-inbound: missing value, expected "
            "--connmgr.evict-inbound=VALUE");
}

TEST_CASE("node settings: only regular files of at most 1 MiB are read") {
  temp_dir dir;
  const std::string pre = "invalid_config: config file \"";
  SUBCASE("a directory") {
    auto sub = dir.path("sub.ini");
    REQUIRE(::mkdir(sub.c_str(), 0700) == 0);
    for (bool required : {true, false}) {
      auto res = read_node_settings(sub, required, {});
      REQUIRE_FALSE(res);
      CHECK(describe(res.error())
            == pre + sub + "\": not a regular file (a directory)");
    }
  }
  SUBCASE("a FIFO is refused without waiting for a writer") {
    auto fifo = dir.path("fifo.ini");
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    auto res = read_node_settings(fifo, true, {});
    REQUIRE_FALSE(res);
    CHECK(describe(res.error())
          == pre + fifo + "\": not a regular file (a FIFO)");
  }
  SUBCASE("an endless device") {
    auto res = read_node_settings("/dev/zero", true, {});
    REQUIRE_FALSE(res);
    CHECK(describe(res.error())
          == pre + "/dev/zero\": not a regular file (a character device)");
  }
  SUBCASE("the null device reads as an empty file") {
    auto res =
      read_node_settings("/dev/null", true, {"--connmgr.target-outbound=3"});
    REQUIRE_MESSAGE(res, describe(res.error()));
    CHECK(res->manager.target_outbound == 3);
  }
  SUBCASE("the size cap") {
    CHECK(max_config_file_size == 1024 * 1024);
    // Exactly at the cap: read (comment lines are ignored).
    std::string body = "[connmgr]\ntarget-outbound=5\n";
    std::string at_cap =
      body + std::string(max_config_file_size - body.size() - 1, ';') + "\n";
    REQUIRE(at_cap.size() == max_config_file_size);
    auto ok = read_node_settings(dir.write("cap.ini", at_cap), true, {});
    REQUIRE_MESSAGE(ok, describe(ok.error()));
    CHECK(ok->manager.target_outbound == 5);
    // One byte more: refused, naming the file and the size.
    auto big = dir.write("big.ini", at_cap + ";");
    auto res = read_node_settings(big, true, {});
    REQUIRE_FALSE(res);
    CHECK(describe(res.error())
          == pre + big + "\": 1048577 bytes, expected at most 1048576 (1 MiB)");
  }
  SUBCASE("find_config_file finds the file the way CAF does") {
    auto a = find_config_file({"--connmgr.x=1", "--config-file=a.ini"});
    CHECK(a.path == "a.ini");
    CHECK(a.required);
    auto b = find_config_file({"pos", "--config-file=a.ini"});
    CHECK(b.path == "caf-application.ini");
    CHECK_FALSE(b.required);
  }
}

TEST_CASE("node settings: durations are range- and overflow-checked") {
  const std::string pre = "invalid_config: connmgr.";
  SUBCASE("too large for 64-bit nanoseconds: named as written, not wrapped") {
    const std::string exp = ": expected a duration in 1ms..168h";
    CHECK(error_of_line("retry-duration=99999999h")
          == pre + "retry-duration = \"99999999h\"" + exp);
    CHECK(error_of_line("retry-duration=\"99999999h\" ; quoted")
          == pre + "retry-duration = \"99999999h\"" + exp);
    CHECK(error_of_line("max-retry-duration=153722867281min")
          == pre + "max-retry-duration = \"153722867281min\"" + exp);
    CHECK(error_of_line("dial-timeout=99999999999999999999ns")
          == pre + "dial-timeout = \"99999999999999999999ns\"" + exp);
    CHECK(error_of("[connmgr]\n", {"--connmgr.retry-duration=99999999h"})
          == pre + "retry-duration = \"99999999h\"" + exp);
    // 2^64 ns + 1 wraps around to 1ns in CAF's arithmetic.
    CHECK(error_of_line("ping-interval=18446744073709551617ns")
          == pre
            + "ping-interval = \"18446744073709551617ns\": expected a "
              "duration in 10ms..168h");
  }
  SUBCASE("below the minimum or above the maximum") {
    CHECK(error_of_line("retry-duration=1ns")
          == pre
            + "retry-duration = \"1ns\": expected a duration in "
              "1ms..168h");
    CHECK(error_of("[connmgr]\n", {"--connmgr.dial-timeout=999us"})
          == pre
            + "dial-timeout = \"999us\": expected a duration in "
              "1ms..168h");
    CHECK(error_of_line("status-interval=9ms")
          == pre
            + "status-interval = \"9ms\": expected a duration in "
              "10ms..168h");
    CHECK(error_of_line("ping-interval=-5s")
          == pre
            + "ping-interval = \"-5s\": expected a duration in "
              "10ms..168h");
    CHECK(error_of_line("handshake-timeout=169h")
          == pre
            + "handshake-timeout = \"169h\": expected a duration in "
              "10ms..168h");
    CHECK(error_of("[connmgr]\n", {"--connmgr.max-retry-duration=10081min"})
          == pre
            + "max-retry-duration = \"10081min\": expected a duration "
              "in 1ms..168h");
  }
  SUBCASE("the bounds themselves are accepted") {
    temp_dir dir;
    auto file = dir.write("b.ini",
                          "[connmgr]\nretry-duration=1ms\n"
                          "dial-timeout=1ms\nstatus-interval=10ms\n"
                          "handshake-timeout=10ms\n"
                          "max-retry-duration=168h\n");
    auto res = read_node_settings(file, true, {"--connmgr.ping-interval=168h"});
    REQUIRE_MESSAGE(res, describe(res.error()));
    CHECK(res->manager.retry_duration == 1ms);
    CHECK(res->manager.dial_timeout == 1ms);
    CHECK(res->status_interval == 10ms);
    CHECK(res->handshake_timeout == 10ms);
    CHECK(res->manager.max_retry_duration == 168h);
    CHECK(res->ping_interval == 168h);
  }
}

TEST_CASE("node settings: max-inbound is 114 unless set; unlimited unsets "
          "it") {
  temp_dir dir;
  CHECK(node_settings{}.manager.max_inbound == std::optional<uint32_t>{114});
  // Strings are quoted in the file (CAF's parser rejects a bare word).
  for (auto line : {"max-inbound=\"unlimited\"", "max-inbound='unlimited'"}) {
    CAPTURE(line);
    auto res = read_node_settings(
      dir.write("u.ini", std::string{"[connmgr]\n"} + line + "\n"), true, {});
    REQUIRE_MESSAGE(res, describe(res.error()));
    CHECK_FALSE(res->manager.max_inbound.has_value());
  }
  auto cli = read_node_settings(dir.write("e.ini", ""), true,
                                {"--connmgr.max-inbound=unlimited"});
  REQUIRE_MESSAGE(cli, describe(cli.error()));
  CHECK_FALSE(cli->manager.max_inbound.has_value());
  // The largest count is a count like any other (the descriptor budget
  // decides whether it fits).
  auto max = read_node_settings(dir.write("m.ini", ""), true,
                                {"--connmgr.max-inbound=4294967295"});
  REQUIRE_MESSAGE(max, describe(max.error()));
  CHECK(max->manager.max_inbound == std::optional<uint32_t>{4294967295u});
  CHECK(error_of("[connmgr]\n", {"--connmgr.max-inbound=\"8\""})
        == "invalid_config: connmgr.max-inbound = \"8\": expected an integer "
           "in 0..4294967295 or \"unlimited\"");
  CHECK(error_of_line("max-inbound=unlimited")
        == "invalid_config: connmgr.max-inbound = \"unlimited\": expected an "
           "integer in 0..4294967295 or \"unlimited\"");
  CHECK(error_of_line("max-inbound=\"limitless\"")
        == "invalid_config: connmgr.max-inbound = \"limitless\": expected an "
           "integer in 0..4294967295 or \"unlimited\"");
}

namespace {

/// A list of `n` distinct quoted loopback addresses.
std::string address_list(size_t n) {
  std::string out = "[";
  for (size_t i = 0; i < n; ++i) {
    if (i > 0)
      out += ",";
    out += "\"127.0.0.1:" + std::to_string(1 + i % 65535) + "\"";
  }
  return out + "]";
}

} // namespace

TEST_CASE("node settings: address lists are capped") {
  CHECK(max_address_list_entries == 1024);
  for (auto key : {"listen", "connect", "dns-seeds"}) {
    CAPTURE(key);
    CHECK(error_of_line(std::string{key} + "=" + address_list(1025))
          == "invalid_config: connmgr." + std::string{key}
            + " = [1025 entries]: expected at most 1024 entries");
  }
  CHECK(error_of("[connmgr]\n", {"--connmgr.connect=" + address_list(100000)})
        == "invalid_config: connmgr.connect = [100000 entries]: expected at "
           "most 1024 entries");
  temp_dir dir;
  auto res = read_node_settings(
    dir.write("ok.ini", "[connmgr]\nconnect=" + address_list(1024) + "\n"),
    true, {});
  REQUIRE_MESSAGE(res, describe(res.error()));
  CHECK(res->connect.size() == 1024);
  // On the command line: so many entries exceed the file's size cap.
  CHECK(error_of("[connmgr]\n",
                 {"--connmgr.peers=" + address_list(max_peers_entries + 1)})
        == "invalid_config: connmgr.peers = [65537 entries]: expected at "
           "most 65536 entries");
}

TEST_CASE("node settings: the descriptor budget counts connections, "
          "listeners and permanent peers") {
  node_settings s;
  // Defaults: 8 + 114 + 0 + 0 = 122 needs 122 + 64 descriptors.
  CHECK_FALSE(check_descriptor_budget(s, 186));
  auto err = check_descriptor_budget(s, 185);
  REQUIRE(err);
  CHECK(errc_of(err) == errc::invalid_config);
  CHECK(describe(err)
        == "invalid_config: connmgr.target-outbound + connmgr.max-inbound + "
           "connmgr.listen + connmgr.connect = 8 + 114 + 0 + 0 = 122, "
           "expected at most 121 to fit the open-file limit of 185 (64 kept "
           "for the node itself)");
  // Every listen and connect entry counts.
  s.manager.target_outbound = 0;
  s.manager.max_inbound = 0;
  s.listen.resize(100);
  s.connect.resize(900);
  CHECK_FALSE(check_descriptor_budget(s, 1064));
  CHECK(describe(check_descriptor_budget(s, 1063))
        == "invalid_config: connmgr.target-outbound + connmgr.max-inbound + "
           "connmgr.listen + connmgr.connect = 0 + 0 + 100 + 900 = 1000, "
           "expected at most 999 to fit the open-file limit of 1063 (64 kept "
           "for the node itself)");
  // Unlimited inbound reserves nothing; a limit below the reserve fits
  // nothing; an unknown limit (0) fits everything.
  s = node_settings{};
  s.manager.max_inbound.reset();
  CHECK_FALSE(check_descriptor_budget(s, 72));
  CHECK(check_descriptor_budget(s, 71));
  s.manager.max_inbound = 4294967295u;
  CHECK(
    describe(check_descriptor_budget(s, 1u << 20))
      .find("= 8 + 4294967295 + 0 + 0 = 4294967303, expected at most 1048512")
    != std::string::npos);
  CHECK_FALSE(check_descriptor_budget(s, 0));
}

namespace {

/// The untyped settings of config text `ini` (as CAF's parser gives them).
caf::settings settings_of(const std::string& ini) {
  std::istringstream in{ini};
  auto res = caf::actor_system_config::parse_config(in);
  REQUIRE(res);
  return std::move(*res);
}

std::string scheduler_error(const std::string& ini, size_t cores = 2) {
  auto err = check_scheduler_settings(settings_of(ini), cores);
  REQUIRE(err);
  CHECK(errc_of(err) == errc::invalid_config);
  return describe(err);
}

} // namespace

TEST_CASE("node settings: CAF's scheduler values that crash or hang it are "
          "refused") {
  const std::string pre = "invalid_config: ";
  CHECK(max_scheduler_threads(2) == 64);
  CHECK(max_scheduler_threads(32) == 128);
  CHECK(scheduler_error("[scheduler]\nmax-threads=0\n")
        == pre
          + "scheduler.max-threads = \"0\": expected an integer in "
            "1..64");
  CHECK(scheduler_error("[scheduler]\nmax-threads=100000\n")
        == pre
          + "scheduler.max-threads = \"100000\": expected an integer in "
            "1..64");
  CHECK(scheduler_error("[scheduler]\nmax-threads=-1\n")
        == pre
          + "scheduler.max-threads = \"-1\": expected an integer in "
            "1..64");
  CHECK(scheduler_error("[scheduler]\nmax-threads=\"x\"\n")
        == pre
          + "scheduler.max-threads = \"x\": expected an integer in "
            "1..64");
  CHECK(scheduler_error("[scheduler]\nmax-threads=129\n", 32)
        == pre
          + "scheduler.max-threads = \"129\": expected an integer in "
            "1..128");
  CHECK(scheduler_error("[scheduler]\nmax-throughput=0\n")
          .find("scheduler.max-throughput = \"0\": expected an integer in 1..")
        != std::string::npos);
  CHECK(scheduler_error("[scheduler]\npolicy='testing'\n")
        == pre
          + "scheduler.policy = \"testing\": expected stealing or "
            "sharing");
  for (auto key : {"aggressive-steal-interval", "moderate-steal-interval",
                   "relaxed-steal-interval"}) {
    CAPTURE(key);
    CHECK(scheduler_error("[work-stealing]\n" + std::string{key} + "=0\n")
            .find("work-stealing." + std::string{key} + " = \"0\"")
          != std::string::npos);
  }
  // Valid values, CAF's defaults (absent keys) and the bounds pass.
  CHECK_FALSE(check_scheduler_settings(caf::settings{}, 2));
  CHECK_FALSE(check_scheduler_settings(
    settings_of(
      "[scheduler]\nmax-threads=1\npolicy='sharing'\n"
      "max-throughput=1\n[work-stealing]\naggressive-poll-attempts=0\n"
      "moderate-poll-attempts=0\nrelaxed-steal-interval=1\n"),
    2));
  CHECK_FALSE(check_scheduler_settings(
    settings_of("[scheduler]\nmax-threads=64\npolicy=\"stealing\"\n"), 2));
}

TEST_CASE("node settings: the safety keys read, default and refuse bad "
          "values by key") {
  temp_dir dir;
  auto read = [&](const std::string& ini,
                  const std::vector<std::string>& args = {}) {
    auto file = dir.write("caf-application.ini", "[connmgr]\n" + ini);
    auto res = read_node_settings(file, true, args);
    REQUIRE_MESSAGE(res, describe(res.error()));
    return *res;
  };
  auto def = read("");
  CHECK_FALSE(def.allow_local_addresses);
  CHECK(def.outbound_per_netgroup == 1);
  CHECK(def.manager.netgroup_bits_ipv4 == 16);
  CHECK(def.manager.netgroup_bits_ipv6 == 32);
  CHECK(def.streams.receive_window == 256 * 1024);
  CHECK(def.streams.max_send_buffer == 1024 * 1024);
  CHECK(def.streams.slow_reader_timeout == std::chrono::seconds{30});
  CHECK(def.manager.max_inbound_per_ip == std::optional<uint32_t>{4});
  CHECK_FALSE(def.manager.max_inbound_per_netgroup.has_value());
  CHECK(def.manager.max_pending_inbound == std::optional<uint32_t>{32});
  CHECK(def.manager.inbound_rate_per_ip == std::optional<double>{1.0});
  CHECK(def.manager.inbound_burst_per_ip == 10.0);
  auto adm = read("max-inbound-per-ip=2\nmax-inbound-per-netgroup=5\n"
                  "max-pending-inbound=\"unlimited\"\n"
                  "inbound-rate-per-ip=30\ninbound-burst-per-ip=3\n");
  CHECK(adm.manager.max_inbound_per_ip == std::optional<uint32_t>{2});
  CHECK(adm.manager.max_inbound_per_netgroup == std::optional<uint32_t>{5});
  CHECK_FALSE(adm.manager.max_pending_inbound.has_value());
  CHECK(adm.manager.inbound_rate_per_ip == std::optional<double>{0.5});
  CHECK(adm.manager.inbound_burst_per_ip == 3.0);
  CHECK_FALSE(read("", {"--connmgr.inbound-rate-per-ip=unlimited"})
                .manager.inbound_rate_per_ip.has_value());
  auto s = read("allow-local-addresses=true\noutbound-per-netgroup=3\n"
                "netgroup-bits-ipv4=32\nnetgroup-bits-ipv6=64\n"
                "receive-window=65536\nsend-buffer=131072\n"
                "slow-reader-timeout=2s\n");
  CHECK(s.allow_local_addresses);
  CHECK(s.outbound_per_netgroup == 3);
  CHECK(s.manager.netgroup_bits_ipv4 == 32);
  CHECK(s.manager.netgroup_bits_ipv6 == 64);
  CHECK(s.streams.receive_window == 65536);
  CHECK(s.streams.max_send_buffer == 131072);
  CHECK(s.streams.slow_reader_timeout == std::chrono::seconds{2});
  // A bare flag on the command line, as CAF takes bools. The reader also
  // takes =false (a later option undoes an earlier one), though CAF's own
  // command-line parser, which the node runs too, refuses it.
  CHECK(read("", {"--connmgr.allow-local-addresses"}).allow_local_addresses);
  CHECK_FALSE(read("allow-local-addresses=true\n",
                   {"--connmgr.allow-local-addresses=false"})
                .allow_local_addresses);
  const std::string pre = "invalid_config: connmgr.";
  CHECK(error_of_line("allow-local-addresses=\"yes\"")
        == pre + "allow-local-addresses = \"yes\": expected true or false");
  CHECK(error_of_line("receive-window=100")
        == pre
          + "receive-window = \"100\": expected an integer in "
            "4096..4294967295");
  CHECK(error_of_line("outbound-per-netgroup=0")
        == pre
          + "outbound-per-netgroup = \"0\": expected an integer in "
            "1..4294967295");
  CHECK(error_of_line("netgroup-bits-ipv4=33")
        == pre + "netgroup-bits-ipv4 = \"33\": expected 1..32");
  CHECK(error_of_line("slow-reader-timeout=1ms")
        == pre
          + "slow-reader-timeout = \"1ms\": expected a duration in "
            "10ms..168h");
}
