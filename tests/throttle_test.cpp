// The network-down throttle counts only failures that say something about
// our network: dead-address poisoning (an attacker gossips addresses that
// refuse, then leaves) must not slow the node's dials down.

#include <doctest/doctest.h>

#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;
using namespace std::chrono_literals;

namespace {

/// Hands out `good` once, then addresses of `dead_count` hosts that refuse,
/// then `good` again and again.
struct poisoned_source {
  std::string good = "10.9.0.1:8333";
  size_t dead_count = 200;
  size_t handed = 0;

  address_function fn() {
    return [this]() -> caf::expected<std::string> {
      auto n = handed++;
      if (n == 0 || n > dead_count)
        return good;
      // Spread over many /16s: a poisoner picks whatever addresses it likes.
      return "10." + std::to_string(10 + n % 200) + ".0."
        + std::to_string(1 + n / 200) + ":8333";
    };
  }
};

/// A setup for one outbound peer whose throttle trips after five failed
/// attempts in a row and then holds the next dial for 1 s; the address
/// source is the test's own.
handler_setup one_peer_throttled_after_five(sim_fixture& f) {
  auto s = f.setup();
  s.config.target_outbound = 1;
  s.config.max_failed_attempts = 5;
  s.config.retry_duration = 1s;
  return s;
}

} // namespace

TEST_CASE_FIXTURE(sim_fixture,
                  "throttle: once connected, failures of never-connected "
                  "addresses never throttle") {
  auto s = one_peer_throttled_after_five(*this);
  poisoned_source src;
  s.get_address = src.fn();
  spawn(s);
  net->set_policy([&](const std::string& address) {
    return address == src.good ? fake_dial_plan{fake_dial_plan::connect, {}}
                               : refuse(address);
  });
  start();
  REQUIRE(log->connected.size() == 1);
  // The good peer leaves; 200 dead addresses follow, all failing at once,
  // and the good one is back without waiting a single retry_duration.
  auto t = now();
  disconnect(log->connected.back().request.id);
  REQUIRE(log->connected.size() == 2);
  auto dials = net->dials();
  CHECK(dials.size() == 2 + src.dead_count);
  CHECK(dials.back().address == src.good);
  CHECK(dials.back().at == t);
  auto st = stats();
  CHECK(st.throttled == 0);
  CHECK(st.failed_attempts == 0);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "throttle: a fresh node on a dead network still throttles") {
  auto s = one_peer_throttled_after_five(*this);
  poisoned_source src;
  s.get_address = src.fn();
  spawn(s);
  net->set_policy(refuse);
  start();
  // Nothing ever connected: every failure counts, across groups.
  CHECK(net->dial_count() == 5);
  CHECK(stats().throttled == 1);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "throttle: failures within one network group never trip "
                  "it") {
  auto s = one_peer_throttled_after_five(*this);
  // 200 hosts of 127.1/16, then nothing: the source's own backoff ends it.
  auto handed = std::make_shared<size_t>(0);
  s.get_address = [handed]() -> caf::expected<std::string> {
    auto n = ++*handed;
    if (n > 200)
      return make_error(errc::no_address);
    return "127.1." + std::to_string(n / 100) + "." + std::to_string(n % 100)
      + ":8333";
  };
  spawn(s);
  net->set_policy(refuse);
  start();
  // Every host of the group was tried at once; only the empty source
  // throttled.
  CHECK(net->dial_count() == 200);
  auto st = stats();
  CHECK(st.failed_attempts == 201);
  CHECK(st.throttled == 1);
  REQUIRE(log->failed.size() == 201);
  CHECK(errc_of(log->failed[199].reason) == errc::refused);
  CHECK(errc_of(log->failed[200].reason) == errc::no_address);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "throttle: a source without addresses is throttled, not "
                  "asked again and again") {
  auto s = one_peer_throttled_after_five(*this);
  size_t asked = 0;
  s.get_address = [&asked]() -> caf::expected<std::string> {
    ++asked;
    return make_error(errc::no_address);
  };
  spawn(s);
  start();
  CHECK(asked == 5);
  CHECK(stats().throttled == 1);
  advance(1s);
  CHECK(asked == 6);
}

TEST_CASE("throttle: network group bits are validated") {
  manager_config cfg;
  cfg.netgroup_bits_ipv4 = 0;
  CHECK(describe(validate(cfg))
        == "invalid_config: netgroup_bits_ipv4 = 0, expected 1..32");
  cfg.netgroup_bits_ipv4 = 33;
  CHECK(describe(validate(cfg))
        == "invalid_config: netgroup_bits_ipv4 = 33, expected 1..32");
  cfg.netgroup_bits_ipv4 = 32;
  cfg.netgroup_bits_ipv6 = 129;
  CHECK(describe(validate(cfg))
        == "invalid_config: netgroup_bits_ipv6 = 129, expected 1..128");
}
