// The node's settings layer: the [connmgr] section of the CAF config file plus
// --connmgr.KEY=VALUE options, read strictly. Every malformed value must fail
// with one line naming the key, the value and what was expected, where CAF's
// own parser would silently keep the default.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "actors/node_settings.hpp"
#include "messages/error_code.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// A fresh directory under the system's temp directory, removed on
/// destruction with everything in it.
class temp_dir {
public:
  temp_dir() {
    auto pattern = (std::filesystem::temp_directory_path()
                    / "connmgr-node-settings-XXXXXX")
                     .string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    REQUIRE(mkdtemp(buf.data()) != nullptr);
    path_ = buf.data();
  }

  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// Writes `content` to the file `name` in this directory; returns its path.
  std::string write(const std::string& name, const std::string& content) {
    auto file = (path_ / name).string();
    std::ofstream out{file};
    out << content;
    return file;
  }

  /// The path of `name` in this directory (not created).
  std::string path(const std::string& name) const {
    return (path_ / name).string();
  }

private:
  std::filesystem::path path_;
};

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
  CHECK(s.peers
        == std::vector<std::string>{"seed.example.org:8333",
                                    "192.168.1.2:18333"});
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
  CHECK(s.manager.stable_connection_period == manager_config{}.stable_connection_period);
}

TEST_CASE("node settings: absent keys and absent files give the defaults") {
  temp_dir dir;
  auto check_defaults = [](const node_settings& s) {
    manager_config def;
    CHECK(s.listen.empty());
    CHECK(s.connect.empty());
    CHECK(s.peers.empty());
    CHECK(s.manager.target_outbound == def.target_outbound);
    CHECK_FALSE(s.manager.max_inbound.has_value());
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
          == "invalid_config: cannot open config file \"" + missing + "\"");
  }
}

TEST_CASE("node settings: the command line overrides the file") {
  temp_dir dir;
  auto file = dir.write("node.ini", "[connmgr]\n"
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
  auto res2 = read_node_settings(
    std::vector<std::string>{"--config-file=" + file, "--connmgr.max-inbound=4"});
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
    "ping-interval, metrics-listen, log-format";
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
          == pre + "target-outbound = \"8\": expected an integer in "
                   "0..4294967295");
    CHECK(error_of_line("listen=\"1.2.3.4:1\"")
          == pre + "listen = \"1.2.3.4:1\": expected a list of quoted "
                   "addresses like [\"1.2.3.4:8333\"]");
    CHECK(error_of_line("proxy=9050")
          == pre + "proxy = \"9050\": expected a quoted address like "
                   "\"127.0.0.1:9050\"");
    CHECK(error_of_line("connect=[\"1.2.3.4:1\", 5]")
          == pre + "connect[1] = \"5\": expected a quoted address like "
                   "\"1.2.3.4:8333\"");
  }
  SUBCASE("integer overflow") {
    CHECK(error_of_line("target-outbound=99999999999")
          == pre + "target-outbound = \"99999999999\": expected an integer "
                   "in 0..4294967295");
    CHECK(error_of_line("target-outbound=99999999999999999999999")
          == pre + "target-outbound = \"99999999999999999999999\": expected "
                   "an integer in 0..4294967295");
    CHECK(error_of("[connmgr]\n", {"--connmgr.max-inbound=4294967296"})
          == pre + "max-inbound = \"4294967296\": expected an integer in "
                   "0..4294967295");
  }
  SUBCASE("negative and zero integers") {
    CHECK(error_of_line("max-inbound=-1")
          == pre + "max-inbound = \"-1\": expected an integer in "
                   "0..4294967295");
    CHECK(error_of("[connmgr]\n", {"--connmgr.target-outbound=-1"})
          == pre + "target-outbound = \"-1\": expected an integer in "
                   "0..4294967295");
    CHECK(error_of_line("max-pending-dials=0")
          == pre + "max-pending-dials = \"0\": expected an integer in "
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
          == pre + "handshake-timeout = \"0s\": expected a duration > 0 "
                   "like 5s or 250ms");
  }
  SUBCASE("bad address in a list or alone") {
    CHECK(error_of_line("listen=[\"1.2.3.4:1\", \"1.2.3.4:99999\"]")
          == pre + "listen[1] = \"1.2.3.4:99999\": port 99999 out of range, "
                   "expected 0..65535");
    CHECK(error_of_line("listen=[\"0.0.0.0:70000\"]")
          == pre + "listen[0] = \"0.0.0.0:70000\": port 70000 out of range, "
                   "expected 0..65535");
    CHECK(error_of_line("dns-seeds=[\"seed.example.org\"]").find(
            pre + "dns-seeds[0] = \"seed.example.org\"")
          == 0);
    CHECK(error_of("[connmgr]\n", {"--connmgr.peers=[\"1.2.3.4:0\"]"})
          == pre + "peers[0] = \"1.2.3.4:0\": port 0 out of range, "
                   "expected 1..65535");
    CHECK(error_of_line("proxy=127.0.0.1:9050")
          == pre + "proxy = \"127.0.0.1:9050\": expected a quoted address "
                   "like \"127.0.0.1:9050\"");
  }
  SUBCASE("lines CAF's parser blames wrongly or not at all") {
    CHECK(error_of_line("target-outbound = 8 8")
          == pre + "target-outbound = \"8 8\": expected an integer in "
                   "0..4294967295");
    auto unterminated = pre + "listen = \"[\"127.0.0.1:0\"\": unterminated "
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
          == pre + "max-retry-duration = \"2s\": expected >= "
                   "connmgr.retry-duration");
    // The command-line value counts, too.
    CHECK(error_of("[connmgr]\nmax-retry-duration=2s\n",
                   {"--connmgr.retry-duration=3s"})
          == pre + "max-retry-duration = \"2s\": expected >= "
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
  CHECK(node_settings_keys().size() == 17);
}
