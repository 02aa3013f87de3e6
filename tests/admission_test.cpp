// Inbound admission through the handler (the rules themselves are tested on
// plain code in inbound_admission_test.cpp): slot squatting, slowloris,
// per-source caps, each refusal and eviction reported with its rule.

#include <doctest/doctest.h>

#include "connmgr/actors/fake_acceptor.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;
using namespace std::chrono_literals;

namespace {

struct admission_fixture : sim_fixture {
  fake_acceptor_actor acceptor;

  handler_setup with_listener(manager_config config) {
    auto s = setup();
    s.config = config;
    acceptor =
      spawn_fake_acceptor(sys, std::make_shared<fake_acceptor_record>());
    s.listeners.push_back(acceptor);
    return s;
  }

  connection_ptr inject(const std::string& from) {
    auto conn = make_memory_connection(from);
    caf::anon_send(acceptor, inject_atom::value, conn);
    run();
    return conn;
  }

  /// The slot of the accepted connection `conn`.
  uint64_t slot_of(const connection_ptr& conn) {
    for (auto& ev : log->accepted)
      if (ev.conn == conn)
        return ev.slot;
    FAIL("not accepted");
    return 0;
  }

  void report_ready(const connection_ptr& conn) {
    caf::anon_send(handler, inbound_ready_atom::value, slot_of(conn));
    run();
  }
};

manager_config small_node() {
  manager_config limits;
  limits.target_outbound = 0;
  limits.max_inbound = 8;
  limits.max_inbound_per_ip = std::nullopt;
  limits.inbound_rate_per_ip = std::nullopt;
  return limits;
}

} // namespace

TEST_CASE_FIXTURE(admission_fixture,
                  "admission: squatters holding every slot lose one to a "
                  "newcomer from another network") {
  spawn(with_listener(small_node()));
  start();
  // Eight handshaked squatters from one /16 take every slot.
  std::vector<connection_ptr> squatters;
  for (int i = 0; i < 8; ++i) {
    squatters.push_back(inject("10.66.0." + std::to_string(i + 1) + ":4000"));
    report_ready(squatters.back());
  }
  REQUIRE(log->accepted.size() == 8);
  // A legitimate peer from another network gets in at its first try.
  auto honest = inject("10.1.0.1:5000");
  REQUIRE(log->accepted.size() == 9);
  CHECK(log->accepted.back().conn == honest);
  REQUIRE(log->evicted.size() == 1);
  CHECK(log->evicted[0].rule == "evicted_for_newcomer");
  CHECK(log->evicted[0].remote_address.rfind("10.66.0.", 0) == 0);
  size_t closed = 0;
  for (auto& c : squatters)
    closed += c->closed() ? 1 : 0;
  CHECK(closed == 1);
  CHECK_FALSE(honest->closed());
  auto st = stats();
  CHECK(st.inbound_evicted == 1);
  CHECK(st.inbound_live == 8);
  // A squatter reconnecting cannot push the honest peer out: its network
  // holds more connections than the newcomer's own would gain.
  auto again = inject("10.66.0.99:4000");
  CHECK(again->closed());
  REQUIRE(log->rejected.size() == 1);
  CHECK(log->rejected[0].rule == "inbound_limit");
  CHECK_FALSE(honest->closed());
}

TEST_CASE_FIXTURE(admission_fixture,
                  "admission: connections that never finish the handshake "
                  "hold at most max_pending_inbound slots") {
  auto limits = small_node();
  limits.max_inbound = 100;
  limits.max_pending_inbound = 4;
  spawn(with_listener(limits));
  start();
  // A slowloris opens silent connections from many networks.
  std::vector<connection_ptr> silent;
  for (int i = 0; i < 20; ++i)
    silent.push_back(inject("10." + std::to_string(100 + i) + ".0.1:4000"));
  size_t open = 0;
  for (auto& c : silent)
    open += c->closed() ? 0 : 1;
  CHECK(open == 4);
  CHECK(log->evicted.size() == 16);
  for (auto& ev : log->evicted)
    CHECK(ev.rule == "evicted_slow_handshake");
  // A peer that finishes its handshake no longer counts as pending, and is
  // never evicted for a slow one.
  auto honest = inject("10.1.0.1:5000");
  report_ready(honest);
  for (int i = 0; i < 10; ++i)
    inject("10." + std::to_string(200 + i) + ".0.1:4000");
  CHECK_FALSE(honest->closed());
  CHECK(stats().inbound_live == 5);
}

TEST_CASE_FIXTURE(admission_fixture,
                  "admission: per-IP caps and rates refuse with their rule") {
  auto limits = small_node();
  limits.max_inbound = 100;
  limits.max_inbound_per_ip = 2;
  limits.inbound_rate_per_ip = 1.0;
  limits.inbound_burst_per_ip = 3;
  spawn(with_listener(limits));
  start();
  auto a = inject("10.5.0.1:1");
  auto b = inject("10.5.0.1:2");
  auto c = inject("10.5.0.1:3");
  CHECK_FALSE(a->closed());
  CHECK_FALSE(b->closed());
  CHECK(c->closed());
  REQUIRE(log->rejected.size() == 1);
  CHECK(log->rejected[0].rule == "per_ip_limit");
  CHECK(errc_of(log->rejected[0].reason) == errc::inbound_limit);
  // The burst of 3 is spent (rejected arrivals cost a token too).
  a->close();
  run();
  auto d = inject("10.5.0.1:4");
  CHECK(d->closed());
  REQUIRE(log->rejected.size() == 2);
  CHECK(log->rejected[1].rule == "rate_limit");
  // A second later one more token.
  advance(1s);
  auto e = inject("10.5.0.1:5");
  CHECK_FALSE(e->closed());
  CHECK(stats().inbound_rejected == 2);
}
