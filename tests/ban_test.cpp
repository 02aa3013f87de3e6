// Bans as the handler applies them, on simulated time with a fake network:
// a banned peer is refused before admission counts it and before any dial
// starts, a new ban closes what it covers, misbehaviour up to the
// threshold bans, bans end at their exact instant, and the list is bounded.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/actors/fake_acceptor.hpp"
#include "connmgr/messages/error_code.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;
using namespace std::chrono_literals;

namespace {

struct ban_fixture : sim_fixture {
  caf::expected<uint64_t> ban(const std::string& subnet,
                              caf::timespan duration = 1h,
                              const std::string& reason = "test") {
    return answer<uint64_t>(ban_atom::value, subnet, duration, reason);
  }

  std::vector<ban_info> bans() {
    return ask<std::vector<ban_info>>(bans_atom::value);
  }
};

} // namespace

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: a banned inbound peer is closed before admission "
                  "counts it") {
  spawn_with_listener();
  REQUIRE(ban("10.66.0.0/16") == uint64_t{0});
  // Far past the per-IP burst (10): were the banned attempts counted, the
  // same address would be rate limited once the ban is lifted.
  for (int i = 0; i < 30; ++i) {
    auto conn = inject("10.66.0.5:4000");
    CHECK(conn->closed());
  }
  REQUIRE(log->rejected.size() == 30);
  CHECK(log->rejected[0].rule == "banned");
  CHECK(errc_of(log->rejected[0].reason) == errc::banned);
  CHECK(log->rejected[0].remote_address == "10.66.0.5:4000");
  CHECK(log->accepted.empty());
  auto outside = inject("10.67.0.5:4000");
  CHECK_FALSE(outside->closed());
  CHECK(log->accepted.size() == 1);
  auto st = stats();
  CHECK(st.banned_refused == 30);
  CHECK(st.inbound_rejected == 30);
  CHECK(st.inbound_live == 1);
  CHECK_FALSE(refusal(unban_atom::value, std::string{"10.66.0.0/16"}));
  auto back = inject("10.66.0.5:4000");
  CHECK_FALSE(back->closed());
  CHECK(log->rejected.size() == 30);
}

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: a ban closes every open connection inside it, "
                  "outbound and inbound, with reason banned") {
  spawn_with_listener();
  auto permanent = connect("10.0.0.1:8333", true);
  auto manual = connect("10.0.0.2:8333", false);
  auto outside = connect("10.0.1.1:8333", false);
  REQUIRE(log->connected.size() == 3);
  auto in = inject("10.0.0.9:5000");
  auto in_outside = inject("10.9.0.9:5000");
  REQUIRE(log->accepted.size() == 2);
  auto dials_before = net->dial_count();

  REQUIRE(ban("10.0.0.0/24", 1h, "operator says so") == uint64_t{3});
  REQUIRE(log->banned.size() == 1);
  CHECK(log->banned[0].subnet == "10.0.0.0/24");
  CHECK(log->banned[0].reason == "operator says so");
  CHECK(log->banned[0].duration == 1h);
  CHECK(log->banned[0].peer == 0);
  REQUIRE(log->disconnected.size() == 2);
  for (auto& ev : log->disconnected) {
    CHECK(errc_of(ev.reason) == errc::banned);
    CHECK(ev.request.id != outside);
  }
  REQUIRE(log->evicted.size() == 1);
  CHECK(log->evicted[0].rule == "banned");
  CHECK(log->evicted[0].slot == slot_of(in));
  CHECK(errc_of(log->evicted[0].reason) == errc::banned);
  CHECK(in->closed());
  CHECK_FALSE(in_outside->closed());
  CHECK(log->connected[0].conn->closed());
  CHECK(log->connected[1].conn->closed());
  CHECK_FALSE(log->connected[2].conn->closed());
  // The one-shot request ends; the permanent one waits for its retry.
  CHECK(request_of(manual).id == 0);
  CHECK(request_of(permanent).state == conn_state::pending);
  // Its retry is refused while the ban lasts: no dial reaches the network.
  advance(10s);
  CHECK(net->dial_count() == dials_before);
  bool refused = false;
  for (auto& ev : log->failed)
    refused |= ev.request.id == permanent && errc_of(ev.reason) == errc::banned;
  CHECK(refused);
  auto st = stats();
  CHECK(st.banned_closed == 3);
  CHECK(st.bans == 1);
}

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: a connect to a banned address is refused and unban "
                  "lets it through") {
  spawn_with_listener();
  REQUIRE(ban("203.0.113.7", 1h) == uint64_t{0});
  auto refused = answer<uint64_t>(connect_atom::value, uint64_t{0},
                                  std::string{"203.0.113.7:8333"}, false);
  REQUIRE_FALSE(refused);
  CHECK(errc_of(refused.error()) == errc::banned);
  CHECK(net->dial_count() == 0);
  auto listed = bans();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].subnet == "203.0.113.7/32");
  CHECK(listed[0].remaining == 1h);
  CHECK_FALSE(refusal(unban_atom::value, std::string{"203.0.113.7"}));
  CHECK(bans().empty());
  auto again = answer<uint64_t>(connect_atom::value, uint64_t{0},
                                std::string{"203.0.113.7:8333"}, false);
  CHECK(again);
  CHECK(net->dial_count() == 1);
  auto gone = refusal(unban_atom::value, std::string{"203.0.113.7"});
  CHECK(errc_of(gone) == errc::not_found);
}

TEST_CASE_FIXTURE(ban_fixture, "bans: a ban ends at its exact instant") {
  spawn_with_listener();
  REQUIRE(ban("10.5.0.1", 10s) == uint64_t{0});
  advance(10s - 1ms);
  CHECK(inject("10.5.0.1:4000")->closed());
  CHECK(bans().size() == 1);
  CHECK(bans()[0].remaining == 1ms);
  advance(1ms);
  CHECK_FALSE(inject("10.5.0.1:4000")->closed());
  CHECK(bans().empty());
}

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: misbehaviour up to the threshold bans the peer's "
                  "address for ban_duration") {
  spawn_with_listener();
  auto bad = inject("10.7.0.9:4000");
  auto slot = slot_of(bad);
  caf::anon_send(handler, misbehaving_atom::value, slot, uint32_t{60},
                 std::string{"bad frame"});
  run();
  CHECK(log->banned.empty());
  CHECK_FALSE(bad->closed());
  caf::anon_send(handler, misbehaving_atom::value, slot, uint32_t{40},
                 std::string{"bad frame"});
  run();
  REQUIRE(log->banned.size() == 1);
  CHECK(log->banned[0].subnet == "10.7.0.9/32");
  CHECK(log->banned[0].peer == slot);
  CHECK(log->banned[0].duration == 24h);
  CHECK(log->banned[0].reason.find("bad frame") != std::string::npos);
  CHECK(bad->closed());
  REQUIRE(log->evicted.size() == 1);
  CHECK(log->evicted[0].rule == "banned");
  // The address stays out; its neighbour does not.
  CHECK(inject("10.7.0.9:4001")->closed());
  CHECK_FALSE(inject("10.7.0.10:4000")->closed());
  // An outbound peer is scored by its request id, and a peer the
  // application closed already (its close report on the way) still is.
  auto id = connect("10.8.0.1:8333", false);
  REQUIRE(log->connected.size() == 1);
  log->connected[0].conn->close();
  caf::anon_send(handler, misbehaving_atom::value, id, uint32_t{100},
                 std::string{"flood"});
  run();
  REQUIRE(log->banned.size() == 2);
  CHECK(log->banned[1].subnet == "10.8.0.1/32");
  CHECK(log->banned[1].peer == id);
  auto redial = answer<uint64_t>(connect_atom::value, uint64_t{0},
                                 std::string{"10.8.0.1:8333"}, false);
  CHECK_FALSE(redial);
}

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: max_bans bounds the list; a misbehaving peer is "
                  "then only closed") {
  manager_config two_bans;
  two_bans.max_bans = 2;
  spawn_with_listener(two_bans);
  REQUIRE(ban("10.1.0.0/16"));
  REQUIRE(ban("10.2.0.0/16"));
  auto full = ban("10.3.0.0/16");
  REQUIRE_FALSE(full);
  CHECK(errc_of(full.error()) == errc::limit_reached);
  CHECK(to_string(full.error()).find("max_bans = 2") != std::string::npos);
  // Renewing a held ban needs no room.
  CHECK(ban("10.2.0.0/16", 2h));
  auto bad = inject("10.9.0.1:4000");
  caf::anon_send(handler, misbehaving_atom::value, slot_of(bad), uint32_t{100},
                 std::string{"flood"});
  run();
  CHECK(bad->closed());
  CHECK(log->banned.size() == 3); // the operator's, one a renewal
  REQUIRE(log->evicted.size() == 1);
  CHECK(log->evicted[0].rule == "banned");
  CHECK(to_string(log->evicted[0].reason).find("not banned")
        != std::string::npos);
  CHECK(bans().size() == 2);
}

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: bad input is refused with an error naming it") {
  spawn_with_listener();
  auto bits = ban("10.1.2.3/8");
  REQUIRE_FALSE(bits);
  CHECK(errc_of(bits.error()) == errc::invalid_address);
  CHECK(to_string(bits.error()).find("10.1.2.3/8") != std::string::npos);
  auto zero = ban("10.1.0.0/16", 0s);
  REQUIRE_FALSE(zero);
  CHECK(errc_of(zero.error()) == errc::invalid_config);
  CHECK(to_string(zero.error()).find("ban duration = 0ns")
        != std::string::npos);
  CHECK_FALSE(ban("10.1.0.0/16", conn_machine::max_ban_duration + 1h));
  auto host = ban("seed.example.org");
  CHECK_FALSE(host);
  auto nobody = refusal(misbehaving_atom::value, uint64_t{999999}, uint32_t{10},
                        std::string{"x"});
  CHECK(errc_of(nobody) == errc::unknown_request);
  CHECK(bans().empty());
}

TEST_CASE_FIXTURE(ban_fixture,
                  "bans: request ids and inbound slots never collide") {
  spawn_with_listener();
  auto id = connect("10.0.0.1:8333", false);
  auto in = inject("10.0.0.9:5000");
  auto slot = slot_of(in);
  CHECK(slot != id);
  // A connect may not take the id of an inbound peer.
  auto taken = answer<uint64_t>(connect_atom::value, slot,
                                std::string{"10.0.0.2:8333"}, false);
  REQUIRE_FALSE(taken);
  CHECK(errc_of(taken.error()) == errc::duplicate_request);
}

namespace {

/// Records what a bare state machine does with a dial result.
struct dial_recorder : conn_effects {
  std::vector<caf::error> failures;
  size_t connections = 0;
  uint64_t attempt = 0;
  void start_dial(uint64_t, uint64_t a, const std::string&) override {
    attempt = a;
  }
  void cancel_dial(uint64_t, uint64_t) override {}
  void fetch_address(uint64_t) override {}
  void arm_timer(uint64_t, time_point) override {}
  void connected(const conn_request&, const connection_ptr&) override {
    ++connections;
  }
  void disconnected(const conn_request&, const caf::error&) override {}
  void failed(const conn_request&, const caf::error& reason) override {
    failures.push_back(reason);
  }
  void retry_scheduled(const conn_request&, caf::timespan) override {}
  void accepted(uint32_t, uint64_t, const connection_ptr&) override {}
  void rejected(uint32_t, const connection_ptr&, const caf::error&,
                const std::string&) override {}
};

} // namespace

TEST_CASE("bans: a host name whose dial reaches a banned address is closed") {
  dial_recorder fx;
  manager_config cfg;
  cfg.target_outbound = 0;
  conn_machine m{cfg, false, fx};
  auto t0 = conn_machine::time_point{} + 1000s;
  m.start(t0);
  REQUIRE(m.ban("192.0.2.0/24", 1h, "test", t0));
  auto id = m.connect(0, "peer.example.org:8333", false, t0);
  REQUIRE(id);
  // The dial resolved the name to an address inside the ban.
  auto conn = make_memory_connection("192.0.2.77:8333");
  REQUIRE(fx.attempt != 0);
  m.dial_succeeded(*id, fx.attempt, conn, t0);
  CHECK(conn->closed());
  CHECK(fx.connections == 0);
  REQUIRE(fx.failures.size() == 1);
  CHECK(errc_of(fx.failures[0]) == errc::banned);
  CHECK(m.requests().empty()); // a one-shot request ends there
  CHECK(m.stats().banned_refused == 1);
}
