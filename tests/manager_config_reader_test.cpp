// The library's config reader: manager options declared on a plain
// caf::actor_system_config under any section name, read strictly into a
// manager_config, errors naming <section>.<key>, the value and what was
// expected; keys the application adds to the section are its own business.

#include <doctest/doctest.h>

#include <chrono>
#include <sstream>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_adder.hpp>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config_reader.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// A plain actor_system_config with the manager options of `sections`,
/// parsed from `args` and config-file text `ini`.
struct parsed_config {
  caf::actor_system_config cfg;
  caf::error err;

  parsed_config(const std::vector<std::string>& sections,
                std::vector<std::string> args, const std::string& ini = "") {
    for (auto& s : sections)
      declare_manager_options(cfg, s);
    std::istringstream in{ini};
    err = cfg.parse(std::move(args), in);
  }

  caf::expected<manager_config> read(const std::string& section) const {
    return read_manager_config(caf::content(cfg), section);
  }
};

/// Reads `section` from args and ini, expecting success.
manager_config read_ok(const std::vector<std::string>& args,
                       const std::string& ini = "",
                       const std::string& section = "connmgr") {
  parsed_config p{{section}, args, ini};
  REQUIRE_MESSAGE(!p.err, caf::to_string(p.err));
  auto res = p.read(section);
  REQUIRE_MESSAGE(res, describe(res.error()));
  return *res;
}

/// Reads `section` from args and ini, expecting the reader to fail.
std::string read_error(const std::vector<std::string>& args,
                       const std::string& ini = "",
                       const std::string& section = "connmgr") {
  parsed_config p{{section}, args, ini};
  REQUIRE_MESSAGE(!p.err, caf::to_string(p.err));
  auto res = p.read(section);
  REQUIRE_FALSE(res);
  CHECK(errc_of(res.error()) == errc::invalid_config);
  return describe(res.error());
}

} // namespace

TEST_CASE("manager config reader: a plain actor_system_config takes "
          "--connmgr.target-outbound=5") {
  auto mc = read_ok({"--connmgr.target-outbound=5"});
  CHECK(mc.target_outbound == 5);
  // Everything else keeps its default.
  manager_config def;
  CHECK(mc.max_inbound == def.max_inbound);
  CHECK(mc.retry_duration == def.retry_duration);
  // No options: the defaults.
  auto none = read_ok({});
  CHECK(none.target_outbound == def.target_outbound);
}

TEST_CASE("manager config reader: two sections give two configs") {
  parsed_config p{
    {"a", "b"},
    {"--a.target-outbound=3", "--b.target-outbound=7", "--b.retry-duration=2s"},
    "[a]\nmax-inbound=10\n[b]\nmax-inbound=\"unlimited\"\n"};
  REQUIRE_MESSAGE(!p.err, caf::to_string(p.err));
  auto a = p.read("a");
  auto b = p.read("b");
  REQUIRE_MESSAGE(a, describe(a.error()));
  REQUIRE_MESSAGE(b, describe(b.error()));
  CHECK(a->target_outbound == 3);
  CHECK(a->max_inbound == std::optional<uint32_t>{10});
  CHECK(a->retry_duration == 5s);
  CHECK(b->target_outbound == 7);
  CHECK_FALSE(b->max_inbound.has_value());
  CHECK(b->retry_duration == 2s);
  // Nested section names work too.
  auto nested = read_ok({"--app.net.target-outbound=2"}, "", "app.net");
  CHECK(nested.target_outbound == 2);
}

TEST_CASE("manager config reader: keys the application declares in the same "
          "section are allowed") {
  caf::actor_system_config cfg;
  declare_manager_options(cfg);
  caf::config_option_set app_opts;
  // The application's own key, declared on its own option set and parsed
  // as CAF parses it: the reader must not refuse it.
  caf::config_option_adder{app_opts, "connmgr"}.add<std::string>("banner", "x");
  std::istringstream in{"[connmgr]\nbanner=\"hello\"\ntarget-outbound=4\n"};
  REQUIRE(!cfg.parse({}, in));
  auto res = read_manager_config(caf::content(cfg), "connmgr");
  REQUIRE_MESSAGE(res, describe(res.error()));
  CHECK(res->target_outbound == 4);
  // Also from untyped settings (a file parsed without options).
  std::istringstream in2{"[connmgr]\ncolour=\"red\"\nmax-inbound=3\n"};
  auto untyped = caf::actor_system_config::parse_config(in2);
  REQUIRE(untyped);
  auto res2 = read_manager_config(*untyped, "connmgr");
  REQUIRE_MESSAGE(res2, describe(res2.error()));
  CHECK(res2->max_inbound == std::optional<uint32_t>{3});
}

TEST_CASE("manager config reader: every field has a key and round-trips") {
  auto mc = read_ok({"--connmgr.retry-jitter=0.25", "--connmgr.jitter-seed=42",
                     "--connmgr.stable-connection-period=0s",
                     "--connmgr.reject-duplicate-addresses=false",
                     "--connmgr.evict-inbound=false"},
                    "[connmgr]\n"
                    "target-outbound=3\nmax-inbound=7\nretry-duration=2s\n"
                    "max-retry-duration=1min\ndial-timeout=3s\n"
                    "max-failed-attempts=9\nmax-pending-dials=11\n"
                    "netgroup-bits-ipv4=24\nnetgroup-bits-ipv6=48\n"
                    "max-inbound-per-ip=2\nmax-inbound-per-netgroup=5\n"
                    "max-pending-inbound=\"unlimited\"\n"
                    "inbound-rate-per-ip=30\ninbound-burst-per-ip=3\n"
                    "ban-threshold=50\nban-duration=2h\nmax-bans=1000\n"
                    "max-manual=3\nmax-permanent=\"unlimited\"\n");
  CHECK(mc.retry_jitter == 0.25);
  CHECK(mc.jitter_seed == 42);
  CHECK(mc.stable_connection_period == caf::timespan{0});
  CHECK_FALSE(mc.reject_duplicate_addresses);
  CHECK_FALSE(mc.evict_inbound);
  CHECK(mc.target_outbound == 3);
  CHECK(mc.max_inbound == std::optional<uint32_t>{7});
  CHECK(mc.retry_duration == 2s);
  CHECK(mc.max_retry_duration == 1min);
  CHECK(mc.dial_timeout == 3s);
  CHECK(mc.max_failed_attempts == 9);
  CHECK(mc.max_pending_dials == 11);
  CHECK(mc.netgroup_bits_ipv4 == 24);
  CHECK(mc.netgroup_bits_ipv6 == 48);
  CHECK(mc.max_inbound_per_ip == std::optional<uint32_t>{2});
  CHECK(mc.max_inbound_per_netgroup == std::optional<uint32_t>{5});
  CHECK_FALSE(mc.max_pending_inbound.has_value());
  CHECK(mc.inbound_rate_per_ip == std::optional<double>{0.5});
  CHECK(mc.inbound_burst_per_ip == 3.0);
  CHECK(mc.ban_threshold == 50);
  CHECK(mc.ban_duration == 2h);
  CHECK(mc.max_bans == 1000);
  CHECK(mc.max_manual == std::optional<uint32_t>{3});
  CHECK_FALSE(mc.max_permanent.has_value());
  // The same new fields from a file, with other values.
  auto file = read_ok({},
                      "[connmgr]\nretry-jitter=1\njitter-seed="
                      "9223372036854775807\nstable-connection-period="
                      "90s\nreject-duplicate-addresses=true\n"
                      "evict-inbound=true\n");
  CHECK(file.retry_jitter == 1.0);
  CHECK(file.jitter_seed == 9223372036854775807u);
  CHECK(file.stable_connection_period == 90s);
  CHECK(file.reject_duplicate_addresses);
  CHECK(file.evict_inbound);
  // Every field of manager_config is one of the keys.
  CHECK(manager_config_keys().size() == 24);
  for (auto field : {"target_outbound",
                     "max_inbound",
                     "max_inbound_per_ip",
                     "max_inbound_per_netgroup",
                     "max_pending_inbound",
                     "inbound_rate_per_ip",
                     "inbound_burst_per_ip",
                     "evict_inbound",
                     "retry_duration",
                     "max_retry_duration",
                     "retry_jitter",
                     "jitter_seed",
                     "max_failed_attempts",
                     "netgroup_bits_ipv4",
                     "netgroup_bits_ipv6",
                     "dial_timeout",
                     "max_pending_dials",
                     "stable_connection_period",
                     "reject_duplicate_addresses",
                     "ban_threshold",
                     "ban_duration",
                     "max_bans",
                     "max_manual",
                     "max_permanent"}) {
    CAPTURE(field);
    auto key = manager_key_of(field);
    CHECK(is_manager_key(key));
  }
}

TEST_CASE("manager config reader: bad values name <section>.<key>, the "
          "value and the expectation") {
  // Wrong types in the file reach the reader (CAF's own check would drop
  // them and keep the default).
  CHECK(read_error({}, "[connmgr]\ntarget-outbound=\"8\"\n")
        == "invalid_config: connmgr.target-outbound = \"8\": expected an "
           "integer in 0..4294967295");
  CHECK(read_error({"--a.target-outbound=-1"}, "", "a")
        == "invalid_config: a.target-outbound = \"-1\": expected an integer "
           "in 0..4294967295");
  CHECK(read_error({"--b.max-inbound=limitless"}, "", "b")
        == "invalid_config: b.max-inbound = \"limitless\": expected an "
           "integer in 0..4294967295 or \"unlimited\"");
  CHECK(read_error({"--connmgr.retry-duration=1.5s"})
        == "invalid_config: connmgr.retry-duration = \"1.5s\": expected a "
           "duration like 5s or 250ms");
  CHECK(read_error({"--connmgr.retry-duration=99999999h"})
        == "invalid_config: connmgr.retry-duration = \"99999999h\": expected "
           "a duration in 1ms..168h");
  CHECK(read_error({"--connmgr.dial-timeout=1ns"})
        == "invalid_config: connmgr.dial-timeout = \"1ns\": expected a "
           "duration in 1ms..168h");
  CHECK(read_error({"--connmgr.retry-jitter=1.5"})
        == "invalid_config: connmgr.retry-jitter = \"1.5\": expected a "
           "number in 0..1");
  CHECK(read_error({}, "[connmgr]\njitter-seed=-1\n")
        == "invalid_config: connmgr.jitter-seed = \"-1\": expected an "
           "integer in 0..9223372036854775807");
  CHECK(read_error({"--connmgr.stable-connection-period=169h"})
        == "invalid_config: connmgr.stable-connection-period = \"169h\": "
           "expected a duration in 0s..168h");
  CHECK(read_error({"--connmgr.reject-duplicate-addresses=yes"})
        == "invalid_config: connmgr.reject-duplicate-addresses = \"yes\": "
           "expected true or false");
  CHECK(read_error({}, "[connmgr]\nevict-inbound=\"no\"\n")
        == "invalid_config: connmgr.evict-inbound = \"no\": expected true or "
           "false");
  // A combination validate refuses names keys, not fields.
  CHECK(
    read_error({"--x.retry-duration=10s", "--x.max-retry-duration=2s"}, "", "x")
    == "invalid_config: x.max-retry-duration = \"2s\": expected >= "
       "x.retry-duration");
  CHECK(read_error({"--connmgr.netgroup-bits-ipv4=33"})
        == "invalid_config: connmgr.netgroup-bits-ipv4 = \"33\": expected "
           "1..32");
  // A section name that holds a value.
  CHECK(read_error({}, "[q]\nconnmgr=1\n", "q.connmgr")
        == "invalid_config: q.connmgr = \"1\": expected a [q.connmgr] "
           "section");
}

TEST_CASE("manager config reader: a spawn-time limit error names keys") {
  manager_config mc;
  mc.target_outbound = 1000;
  // 1000 + 114 + 1 > 1024 - 64.
  auto x = check_descriptor_limit(mc, 1, 1024, 64);
  REQUIRE(x);
  CHECK(describe(to_error(*x, "p2p"))
        == "invalid_config: p2p.target-outbound + p2p.max-inbound + "
           "listeners = 1000 + 114 + 1 = 1115: expected at most 960 to fit "
           "the open-file limit of 1024");
  // The field-named text spawn_conn_handler gives today.
  CHECK(describe(to_error(*x))
        == "invalid_config: target_outbound + max_inbound + listeners = "
           "1115, expected at most 960 to fit the open-file limit of 1024");
  mc.max_inbound.reset();
  auto unlimited = check_descriptor_limit(mc, 0, 1024, 64);
  REQUIRE(unlimited);
  CHECK(unlimited->values[1] == "unlimited (0)");
  mc.target_outbound = 8;
  CHECK_FALSE(check_descriptor_limit(mc, 0, 1024, 64));
  CHECK_FALSE(check_descriptor_limit(mc, 5000, 0, 64)); // unknown limit
}

TEST_CASE("manager config reader: validate names fields or keys from the "
          "same structured result") {
  manager_config mc;
  mc.retry_duration = 5s;
  mc.max_retry_duration = 4s;
  auto x = find_violation(mc);
  REQUIRE(x);
  CHECK(x->fields == std::vector<std::string>{"max_retry_duration"});
  CHECK(x->value == "4s");
  CHECK(x->expected_fields == std::vector<std::string>{"retry_duration"});
  CHECK(describe(validate(mc))
        == "invalid_config: max_retry_duration = 4s, expected >= "
           "retry_duration");
  CHECK(describe(validate(mc, "connmgr"))
        == "invalid_config: connmgr.max-retry-duration = \"4s\": expected >= "
           "connmgr.retry-duration");
  CHECK_FALSE(find_violation(manager_config{}));
  mc = manager_config{};
  mc.max_pending_inbound = 0;
  CHECK(describe(validate(mc, "in"))
        == "invalid_config: in.max-pending-inbound = \"0\": expected >= 1");
}

TEST_CASE("manager config reader: --help lists the keys of each section") {
  caf::config_option_set opts;
  declare_manager_options(opts, "one");
  declare_manager_options(opts, "two");
  for (auto& key : manager_config_keys()) {
    CHECK_MESSAGE(opts.qualified_name_lookup("one", key) != nullptr, key);
    CHECK_MESSAGE(opts.qualified_name_lookup("two", key) != nullptr, key);
  }
  CHECK(opts.qualified_name_lookup("one", "colour") == nullptr);
}
