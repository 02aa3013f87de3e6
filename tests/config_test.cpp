// Bad input: every out-of-range configuration value, a broken handler setup
// and a malformed connect are refused with an error that says what is wrong.
// Also the printing helpers the error texts rely on.

#include <doctest/doctest.h>

#include <chrono>
#include <limits>
#include <optional>
#include <string>

#include <caf/typed_event_based_actor.hpp>

#include "connmgr/actors/function_address_source.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

namespace {

/// One invalid configuration and the exact text its rejection must carry.
struct bad_value {
  const char* label;
  manager_config config;
  std::string text;
};

/// Every invalid value of every field, each on top of the default config.
std::vector<bad_value> bad_values() {
  using namespace std::chrono_literals;
  std::vector<bad_value> result;
  auto add = [&](const char* label, auto change, std::string text) {
    manager_config mc;
    change(mc);
    result.push_back(bad_value{label, mc, std::move(text)});
  };
  add(
    "retry_duration 0",
    [](manager_config& mc) { mc.retry_duration = caf::timespan{0}; },
    "invalid_config: retry_duration = 0ns, expected > 0");
  add(
    "retry_duration negative",
    [](manager_config& mc) { mc.retry_duration = -1s; },
    "invalid_config: retry_duration = -1s, expected > 0");
  add(
    "max_retry_duration below retry_duration",
    [](manager_config& mc) {
      mc.retry_duration = 5s;
      mc.max_retry_duration = 4s;
    },
    "invalid_config: max_retry_duration = 4s, expected >= retry_duration");
  add(
    "retry_jitter -0.1", [](manager_config& mc) { mc.retry_jitter = -0.1; },
    "invalid_config: retry_jitter = -0.1, expected a fraction in [0, 1]");
  add(
    "retry_jitter 1.5", [](manager_config& mc) { mc.retry_jitter = 1.5; },
    "invalid_config: retry_jitter = 1.5, expected a fraction in [0, 1]");
  add(
    "retry_jitter NaN",
    [](manager_config& mc) {
      mc.retry_jitter = std::numeric_limits<double>::quiet_NaN();
    },
    "invalid_config: retry_jitter = nan, expected a fraction in [0, 1]");
  add(
    "max_failed_attempts 0",
    [](manager_config& mc) { mc.max_failed_attempts = 0; },
    "invalid_config: max_failed_attempts = 0, expected >= 1");
  add(
    "dial_timeout 0",
    [](manager_config& mc) { mc.dial_timeout = caf::timespan{0}; },
    "invalid_config: dial_timeout = 0ns, expected > 0");
  add(
    "max_pending_dials 0", [](manager_config& mc) { mc.max_pending_dials = 0; },
    "invalid_config: max_pending_dials = 0, expected >= 1");
  add(
    "stable_connection_period negative",
    [](manager_config& mc) { mc.stable_connection_period = -250ms; },
    "invalid_config: stable_connection_period = -250ms, expected >= 0");
  return result;
}

/// The error text of `x`, or "" when it holds a value (doctest evaluates a
/// message even for passing checks when run with -s).
template <class T>
std::string error_text(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

/// Sends `(connect, 0, address, permanent)`; returns the error of the reply
/// (none if it was accepted). Fails the test if no reply came.
caf::error connect_error(sim_fixture& f, const std::string& address,
                         bool permanent) {
  bool answered = false;
  caf::error result;
  f.sys.spawn([&](caf::event_based_actor* self) {
    self
      ->request(f.handler, caf::infinite, connect_atom::value, uint64_t{0},
                address, permanent)
      .then([&](uint64_t) { answered = true; },
            [&](caf::error& e) {
              answered = true;
              result = std::move(e);
            });
  });
  f.run();
  REQUIRE(answered);
  return result;
}

/// Spawning a handler from `s` must fail with invalid_config; returns the
/// error's text.
std::string invalid_config_text(sim_fixture& f, const handler_setup& s) {
  auto hdl = spawn_conn_handler(f.sys, s);
  REQUIRE(!hdl);
  CHECK(errc_of(hdl.error()) == errc::invalid_config);
  return describe(hdl.error());
}

} // namespace

TEST_CASE("config: the default manager_config is valid") {
  CHECK(!validate(manager_config{}));
}

TEST_CASE("config: validate rejects every invalid value naming field, value "
          "and expectation") {
  for (auto& bad : bad_values()) {
    std::string label = bad.label;
    CAPTURE(label);
    auto err = validate(bad.config);
    REQUIRE(err);
    CHECK(errc_of(err) == errc::invalid_config);
    CHECK(describe(err) == bad.text);
  }
}

TEST_CASE_FIXTURE(sim_fixture,
                  "config: spawn_conn_handler rejects every invalid value "
                  "the same way") {
  for (auto& bad : bad_values()) {
    std::string label = bad.label;
    CAPTURE(label);
    auto hdl = spawn_conn_handler(sys, setup(bad.config));
    REQUIRE(!hdl);
    CHECK(errc_of(hdl.error()) == errc::invalid_config);
    CHECK(describe(hdl.error()) == bad.text);
  }
  // The default configuration spawns.
  auto ok = spawn_conn_handler(sys, setup());
  REQUIRE_MESSAGE(ok, error_text(ok));
  handler = *ok;
}

TEST_CASE_FIXTURE(sim_fixture, "config: a setup without a dialer is refused") {
  auto s = setup();
  s.dialer = nullptr;
  CHECK(invalid_config_text(*this, s)
        == "invalid_config: dialer = none, expected a dialer actor");
}

TEST_CASE_FIXTURE(sim_fixture,
                  "config: a setup with both address_source and get_address "
                  "is refused") {
  auto source = sys.spawn(function_address_source, counting_addresses());
  auto s = setup();
  s.address_source = source;
  s.get_address = counting_addresses();
  auto text = invalid_config_text(*this, s);
  CHECK(text.find("address_source") != std::string::npos);
  CHECK(text.find("get_address") != std::string::npos);
  CHECK(text.find("expected at most one") != std::string::npos);
  // Either one alone is fine.
  s.get_address = nullptr;
  auto with_actor = spawn_conn_handler(sys, s);
  REQUIRE_MESSAGE(with_actor, error_text(with_actor));
  handler = *with_actor;
  stop();
  caf::anon_send_exit(source, caf::exit_reason::user_shutdown);
  run();
}

TEST_CASE_FIXTURE(sim_fixture, "config: a null listener is refused") {
  auto s = setup();
  s.listeners.push_back(acceptor_actor{});
  CHECK(invalid_config_text(*this, s)
        == "invalid_config: listeners[0] = none, expected an acceptor actor");
}

TEST_CASE_FIXTURE(sim_fixture,
                  "config: a connect with an empty address is refused with "
                  "invalid_address") {
  spawn(setup());
  auto err = connect_error(*this, "", true);
  CHECK(errc_of(err) == errc::invalid_address);
  REQUIRE(log->failed.size() == 1);
  CHECK(errc_of(log->failed[0].reason) == errc::invalid_address);
  CHECK(log->failed[0].request.address.empty());
  CHECK(net->dial_count() == 0);
  CHECK(requests().empty());
  // A well-formed address is then accepted.
  CHECK(!connect_error(*this, "10.0.0.1:8333", false));
  CHECK(net->dial_count() == 1);
}

TEST_CASE("config: to_string_duration prints compact durations") {
  using namespace std::chrono_literals;
  CHECK(to_string_duration(5s) == "5s");
  CHECK(to_string_duration(250ms) == "250ms");
  CHECK(to_string_duration(1min) == "1min");
  CHECK(to_string_duration(caf::timespan{0}) == "0ns");
  CHECK(to_string_duration(1500ms) == "1.5s");
}

TEST_CASE("config: to_string_duration is exact for every value") {
  using namespace std::chrono_literals;
  CHECK(to_string_duration(1h) == "1h");
  CHECK(to_string_duration(90min) == "90min");
  CHECK(to_string_duration(168h) == "168h");
  CHECK(to_string_duration(-5s) == "-5s");
  CHECK(to_string_duration(1500us) == "1.5ms");
  CHECK(to_string_duration(999ns) == "999ns");
  CHECK(to_string_duration(-1ns) == "-1ns");
  // No digit lost to rounding.
  CHECK(to_string_duration(1'000'000'001ns) == "1.000000001s");
  CHECK(to_string_duration(3601s) == "3601s");
  CHECK(to_string_duration(1h + 1ns) == "3600.000000001s");
  // The extremes of 64-bit nanoseconds (negating the minimum overflows).
  auto max = caf::timespan{std::numeric_limits<int64_t>::max()};
  auto min = caf::timespan{std::numeric_limits<int64_t>::min()};
  CHECK(to_string_duration(max) == "9223372036.854775807s");
  CHECK(to_string_duration(min) == "-9223372036.854775808s");
}

TEST_CASE("config: enum and error names print as documented") {
  CHECK(to_string(errc::refused) == "refused");
  CHECK(to_string(conn_state::established) == "established");
  CHECK(describe(make_error(errc::invalid_config, "x = 1, expected 2"))
        == "invalid_config: x = 1, expected 2");
}
