// What an operator does to a running handler, on simulated time with a fake
// network: protect peers with tags, class budgets, limits changed at run
// time in both directions, and a drain from its first step to the stop.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "connmgr/messages/conn_limits.hpp"
#include "connmgr/messages/error_code.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;
using namespace std::chrono_literals;

namespace {

struct operator_fixture : sim_fixture {
  caf::error protect(uint64_t id, const std::string& tag) {
    return refusal(protect_atom::value, id, tag);
  }

  caf::error unprotect(uint64_t id, const std::string& tag) {
    return refusal(unprotect_atom::value, id, tag);
  }

  conn_limits limits() {
    return ask<conn_limits>(limits_atom::value);
  }

  caf::expected<conn_limits> set_limits(const conn_limits& x) {
    return answer<conn_limits>(set_limits_atom::value, x);
  }

  /// The ids of the `disconnected` events with `errc` `code`.
  std::vector<uint64_t> disconnected_with(errc code) {
    std::vector<uint64_t> ids;
    for (auto& ev : log->disconnected)
      if (errc_of(ev.reason) == code)
        ids.push_back(ev.request.id);
    return ids;
  }
};

manager_config pending_cap(uint32_t n) {
  manager_config cfg;
  cfg.max_inbound = 100;
  cfg.max_inbound_per_ip.reset();
  cfg.inbound_rate_per_ip.reset();
  cfg.max_pending_inbound = n;
  return cfg;
}

} // namespace

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: a tagged peer is never evicted, and is again "
                  "once its last tag goes") {
  spawn_with_listener(pending_cap(2));
  auto a = inject("10.1.0.1:4000");
  auto b = inject("10.2.0.1:4000");
  REQUIRE_FALSE(protect(slot_of(a), "friend"));
  REQUIRE_FALSE(protect(slot_of(a), "operator"));
  // At the pending cap a newcomer evicts the oldest unprotected one: b.
  auto c = inject("10.3.0.1:4000");
  REQUIRE(log->evicted.size() == 1);
  CHECK(log->evicted[0].slot == slot_of(b));
  CHECK_FALSE(a->closed());
  // One tag left still protects.
  REQUIRE_FALSE(unprotect(slot_of(a), "friend"));
  inject("10.4.0.1:4000");
  REQUIRE(log->evicted.size() == 2);
  CHECK(log->evicted[1].slot == slot_of(c));
  CHECK_FALSE(a->closed());
  // Without tags the oldest pending peer is a again.
  REQUIRE_FALSE(unprotect(slot_of(a), "operator"));
  auto e = inject("10.5.0.1:4000");
  REQUIRE(log->evicted.size() == 3);
  CHECK(log->evicted[2].slot == slot_of(a));
  CHECK(a->closed());
  CHECK(errc_of(unprotect(slot_of(a), "operator")) == errc::not_found);
  CHECK(errc_of(protect(999999, "x")) == errc::unknown_request);
  CHECK(errc_of(protect(slot_of(e), "")) == errc::invalid_config);
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: each class has its own budget and a full one "
                  "refuses naming it") {
  manager_config budgets;
  budgets.max_manual = 2;
  budgets.max_permanent = 1;
  spawn_with_listener(budgets);
  auto one = connect("10.0.0.1:8333", false);
  connect("10.0.0.2:8333", false);
  auto third = answer<uint64_t>(connect_atom::value, uint64_t{0},
                                std::string{"10.0.0.3:8333"}, false);
  REQUIRE_FALSE(third);
  CHECK(errc_of(third.error()) == errc::limit_reached);
  CHECK(to_string(third.error()).find("max_manual = 2") != std::string::npos);
  // The permanent class is apart: one fits, a second does not.
  CHECK(answer<uint64_t>(connect_atom::value, uint64_t{0},
                         std::string{"10.0.0.4:8333"}, true));
  auto second = answer<uint64_t>(connect_atom::value, uint64_t{0},
                                 std::string{"10.0.0.5:8333"}, true);
  REQUIRE_FALSE(second);
  CHECK(to_string(second.error()).find("max_permanent = 1")
        != std::string::npos);
  // A request that ends gives its room back.
  remove(one);
  CHECK(answer<uint64_t>(connect_atom::value, uint64_t{0},
                         std::string{"10.0.0.3:8333"}, false));
  CHECK(net->dial_count() == 4);
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: raising target_outbound dials at once, "
                  "lowering closes the youngest unprotected") {
  spawn(automatic_setup(2));
  start();
  REQUIRE(log->connected.size() == 2);
  auto x = limits();
  CHECK(x.target_outbound == 2);
  x.target_outbound = 5;
  auto t = now();
  auto applied = set_limits(x);
  REQUIRE(applied);
  CHECK(applied->target_outbound == 5);
  REQUIRE(log->connected.size() == 5);
  CHECK(now() == t); // no time passed: the dials started with the answer
  advance(1s);
  // Lowered to 2: of the five, the three youngest go, but the youngest
  // one is protected, so the fourth youngest goes instead.
  auto youngest = log->connected[4].request.id;
  REQUIRE_FALSE(protect(youngest, "keep"));
  x.target_outbound = 2;
  REQUIRE(set_limits(x));
  auto closed = disconnected_with(errc::limit_lowered);
  REQUIRE(closed.size() == 3);
  std::vector<uint64_t> expected{log->connected[3].request.id,
                                 log->connected[2].request.id,
                                 log->connected[1].request.id};
  std::sort(closed.begin(), closed.end());
  std::sort(expected.begin(), expected.end());
  CHECK(closed == expected);
  CHECK(stats().outbound_established == 2);
  // No replacement follows: the target is met.
  advance(10s);
  CHECK(log->connected.size() == 5);
  CHECK(stats().live_requests == 2);
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: lowering max_inbound evicts the youngest "
                  "unprotected inbound peers") {
  spawn_with_listener(pending_cap(100));
  std::vector<connection_ptr> in;
  for (int i = 0; i < 4; ++i) {
    in.push_back(inject("10." + std::to_string(i + 1) + ".0.1:4000"));
    advance(1s);
  }
  REQUIRE_FALSE(protect(slot_of(in[3]), "keep"));
  auto x = limits();
  x.max_inbound = 2;
  REQUIRE(set_limits(x));
  REQUIRE(log->evicted.size() == 2);
  for (auto& ev : log->evicted) {
    CHECK(ev.rule == "limit_lowered");
    CHECK(errc_of(ev.reason) == errc::limit_lowered);
  }
  CHECK(in[2]->closed());
  CHECK(in[1]->closed());
  CHECK_FALSE(in[0]->closed());
  CHECK_FALSE(in[3]->closed());
  // The new cap holds for newcomers: the node is full, so one gets in
  // only by eviction.
  inject("10.9.0.1:4000");
  CHECK(stats().inbound_live == 2);
  CHECK_FALSE(in[3]->closed());
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: invalid limits are refused with the spawn "
                  "error and change nothing") {
  spawn_with_listener();
  auto before = limits();
  auto x = before;
  x.max_pending_dials = 0;
  auto refused = set_limits(x);
  REQUIRE_FALSE(refused);
  CHECK(errc_of(refused.error()) == errc::invalid_config);
  CHECK(to_string(refused.error()).find("max_pending_dials = 0")
        != std::string::npos);
  x = before;
  x.max_inbound = uint64_t{1} << 40;
  refused = set_limits(x);
  REQUIRE_FALSE(refused);
  CHECK(to_string(refused.error()).find("max_inbound") != std::string::npos);
  CHECK(limits() == before);
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: a drain closes listeners at once, lets "
                  "connections end, closes the rest at the deadline") {
  spawn_with_listener();
  auto kept = connect("10.0.0.1:8333", true);
  auto closed_by_user = connect("10.0.0.2:8333", false);
  REQUIRE(log->connected.size() == 2);
  auto in = inject("10.5.0.1:4000");
  net->set_policy(hold);
  auto waiting = connect("10.0.0.3:8333", false);
  REQUIRE(net->dial_count() == 3);
  bool answered = false;
  conn_stats final_stats;
  sys.spawn([&](caf::event_based_actor* self) {
    self->request(handler, caf::infinite, drain_atom::value, caf::timespan{10s})
      .then([&](conn_stats& st) {
        final_stats = st;
        answered = true;
      });
  });
  run();
  REQUIRE(log->drains.size() == 1);
  CHECK(log->drains[0].step == "started");
  CHECK(log->drains[0].open == 3);
  CHECK(log->drains[0].timeout == 10s);
  // The pending request is canceled; nothing new is dialed or accepted.
  bool canceled = false;
  for (auto& ev : log->failed)
    canceled |=
      ev.request.id == waiting && errc_of(ev.reason) == errc::draining;
  CHECK(canceled);
  auto refused = answer<uint64_t>(connect_atom::value, uint64_t{0},
                                  std::string{"10.0.0.4:8333"}, false);
  REQUIRE_FALSE(refused);
  CHECK(errc_of(refused.error()) == errc::draining);
  // The user closes one connection: it ends at once, without a retry.
  log->connected[1].conn->close();
  run();
  REQUIRE(log->disconnected.size() == 1);
  CHECK(log->disconnected[0].request.id == closed_by_user);
  CHECK_FALSE(answered);
  advance(10s);
  REQUIRE(log->drains.size() == 2);
  CHECK(log->drains[1].step == "deadline");
  CHECK(log->drains[1].open == 2);
  CHECK(disconnected_with(errc::draining) == std::vector<uint64_t>{kept});
  REQUIRE(log->evicted.size() == 1);
  CHECK(log->evicted[0].rule == "draining");
  CHECK(in->closed());
  CHECK(log->connected[0].conn->closed());
  REQUIRE(answered);
  CHECK(final_stats.outbound_established == 0);
  CHECK(log->stopped.size() == 1);
  CHECK(net->dial_count() == 3);
  handler = nullptr; // stopped already
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: a drain whose connections all end early stops "
                  "before its deadline") {
  spawn_with_listener();
  connect("10.0.0.1:8333", false);
  auto in = inject("10.5.0.1:4000");
  REQUIRE(log->connected.size() == 1);
  caf::anon_send(handler, drain_atom::value, caf::timespan{1h});
  run();
  REQUIRE(log->drains.size() == 1);
  log->connected[0].conn->close();
  in->close();
  run();
  CHECK(log->stopped.size() == 1);
  CHECK(log->drains.size() == 1); // no deadline step
  handler = nullptr;
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: peers shows class, tags, score and the "
                  "application's counts") {
  spawn_with_listener();
  auto out = connect("10.0.0.1:8333", true);
  auto in = inject("10.5.0.1:4000");
  auto slot = slot_of(in);
  REQUIRE_FALSE(protect(out, "anchor"));
  caf::anon_send(handler, misbehaving_atom::value, slot, uint32_t{30},
                 std::string{"odd frame"});
  caf::anon_send(handler, peer_stats_atom::value, out, uint64_t{5}, uint64_t{7},
                 caf::timespan{20ms});
  caf::anon_send(handler, peer_stats_atom::value, slot, uint64_t{3},
                 uint64_t{4}, caf::timespan{0});
  run();
  auto list = ask<std::vector<peer_info>>(peers_atom::value);
  REQUIRE(list.size() == 2);
  auto& o = list[0];
  CHECK(o.id == out);
  CHECK(o.kind == peer_class::manual);
  CHECK(o.permanent);
  CHECK(o.tags == std::vector<std::string>{"anchor"});
  CHECK(o.frames_in == 5);
  CHECK(o.frames_out == 7);
  CHECK(o.ping == 20ms);
  CHECK(o.ban_score == 0);
  auto& i = list[1];
  CHECK(i.id == slot);
  CHECK(i.kind == peer_class::inbound);
  CHECK(i.ban_score == 30);
  CHECK(i.frames_in == 3);
  CHECK(i.ping == caf::timespan{0});
  CHECK(i.tags.empty());
  // In-memory connections move no bytes through a reactor.
  CHECK(i.bytes_in == 0);
  CHECK(i.since_recv < caf::timespan{0});
}

TEST_CASE_FIXTURE(operator_fixture,
                  "operator: disconnect and remove close an inbound peer by "
                  "its slot") {
  spawn_with_listener();
  auto a = inject("10.5.0.1:4000");
  auto b = inject("10.6.0.1:4000");
  disconnect(slot_of(a));
  remove(slot_of(b));
  CHECK(a->closed());
  CHECK(b->closed());
  REQUIRE(log->evicted.size() == 2);
  CHECK(log->evicted[0].rule == "disconnect");
  CHECK(log->evicted[1].rule == "remove");
  CHECK(stats().inbound_live == 0);
  auto gone = refusal(remove_atom::value, slot_of(a));
  CHECK(errc_of(gone) == errc::unknown_request);
}
