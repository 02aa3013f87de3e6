// Gates as the handler applies them, on simulated time with a fake network
// and a fake listener: a vetoed dial never reaches the network and fails
// with the gate's reason, a permanent request retries through vetoes, a
// vetoed accept is closed before admission counts it, and a gate actor that
// is slow, mute or dead neither hangs dials nor leaks connections.

#include <doctest/doctest.h>

#include <deque>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "connmgr/actors/fake_acceptor.hpp"
#include "connmgr/actors/manager.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/gate_actor.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;
using namespace std::chrono_literals;

namespace {

/// `(verdict, allowed, reason)`: the test gate answers every question it
/// holds with this verdict.
using verdict_atom = caf::atom_constant<caf::atom("verdict")>;

using test_gate_actor =
  gate_actor::extend<caf::reacts_to<verdict_atom, bool, std::string>>;

/// What the test gate was asked and how it answers.
struct gate_record {
  /// Hold every question until a `verdict` message (or forever: mute).
  bool hold = false;
  /// Decides at once when not holding.
  std::function<gate_verdict(const std::string&)> decide =
    [](const std::string&) { return gate_verdict::allow(); };
  std::vector<std::string> dials;
  std::vector<std::pair<std::string, std::string>> accepts;
};

struct test_gate_state {
  std::deque<caf::typed_response_promise<gate_verdict>> held;
};

test_gate_actor::behavior_type
test_gate(test_gate_actor::stateful_pointer<test_gate_state> self,
          std::shared_ptr<gate_record> rec) {
  auto answer = [self, rec](const std::string& who) -> caf::result<gate_verdict> {
    if (rec->hold) {
      auto promise = self->make_response_promise<gate_verdict>();
      self->state.held.push_back(promise);
      return promise;
    }
    return rec->decide(who);
  };
  return {
    [rec, answer](gate_dial_atom,
                  std::string& address) -> caf::result<gate_verdict> {
      rec->dials.push_back(address);
      return answer(address);
    },
    [rec, answer](gate_accept_atom, std::string& remote,
                  std::string& local) -> caf::result<gate_verdict> {
      rec->accepts.emplace_back(remote, local);
      return answer(remote);
    },
    [self](verdict_atom, bool allowed, std::string& reason) {
      auto verdict = allowed ? gate_verdict::allow()
                             : gate_verdict::veto(std::move(reason));
      for (auto& promise : self->state.held)
        promise.deliver(verdict);
      self->state.held.clear();
    },
  };
}

/// The context of one of our errors ("" if it has none).
std::string context_of(const caf::error& err) {
  auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return {};
}

struct gate_fixture : sim_fixture {
  fake_acceptor_actor acceptor;
  std::shared_ptr<gate_record> gate_rec = std::make_shared<gate_record>();
  test_gate_actor gate;

  ~gate_fixture() {
    if (gate)
      caf::anon_send_exit(gate, caf::exit_reason::user_shutdown);
  }

  /// A setup with one fake listener and no automatic outbound connections;
  /// a per-IP rate of 1/s with a burst of 10 and a per-IP cap of 4.
  handler_setup node_setup(manager_config config = {}) {
    config.target_outbound = 0;
    config.max_inbound = 64;
    config.max_inbound_per_ip = 4;
    config.inbound_rate_per_ip = 1.0;
    config.inbound_burst_per_ip = 10.0;
    auto s = setup(config);
    acceptor =
      spawn_fake_acceptor(sys, std::make_shared<fake_acceptor_record>());
    s.listeners.push_back(acceptor);
    return s;
  }

  /// Spawns the test gate and names it in `s`.
  void with_gate_actor(handler_setup& s) {
    gate = sys.spawn(test_gate, gate_rec);
    s.gate.actor = gate;
  }

  void spawn_node(handler_setup s) {
    spawn(std::move(s));
    start();
  }

  connection_ptr inject(const std::string& from) {
    auto conn = make_memory_connection(from);
    caf::anon_send(acceptor, inject_atom::value, conn);
    run();
    return conn;
  }

  /// Answers every question the test gate holds.
  void answer_held(bool allowed, const std::string& reason = {}) {
    caf::anon_send(gate, verdict_atom::value, allowed, reason);
    run();
  }

  /// The failed events of request `id`.
  std::vector<failed_event> failures_of(uint64_t id) {
    std::vector<failed_event> result;
    for (auto& ev : log->failed)
      if (ev.request.id == id)
        result.push_back(ev);
    return result;
  }
};

} // namespace

// -- gate functions -----------------------------------------------------------

TEST_CASE_FIXTURE(gate_fixture,
                  "gate: a vetoed dial never reaches the network and fails "
                  "with errc::vetoed and the gate's reason") {
  auto s = node_setup();
  std::vector<std::string> asked;
  s.gate.dial = [&asked](const std::string& address) {
    asked.push_back(address);
    if (address.rfind("10.", 0) == 0)
      return gate_verdict::veto("no dials into 10/8");
    return gate_verdict::allow();
  };
  spawn_node(s);
  auto vetoed = connect("10.0.0.1:8333", false);
  REQUIRE(asked == std::vector<std::string>{"10.0.0.1:8333"});
  CHECK(net->dial_count() == 0);
  auto failures = failures_of(vetoed);
  REQUIRE(failures.size() == 1);
  CHECK(errc_of(failures[0].reason) == errc::vetoed);
  CHECK(context_of(failures[0].reason) == "no dials into 10/8");
  // A one-shot request ends with its failure, as with any other.
  CHECK(request_of(vetoed).id == 0);
  CHECK(log->connected.empty());
  auto allowed = connect("192.0.2.1:8333", false);
  CHECK(net->dial_count() == 1);
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.id == allowed);
  auto st = stats();
  CHECK(st.gate_vetoes == 1);
  CHECK(st.dials_failed == 1);
  CHECK(st.dials_succeeded == 1);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate: a permanent request retries per its backoff while "
                  "vetoed and connects once the gate allows") {
  manager_config config;
  config.retry_duration = 1s;
  auto s = node_setup(config);
  auto open = std::make_shared<bool>(false);
  size_t asked = 0;
  s.gate.dial = [open, &asked](const std::string&) {
    ++asked;
    return *open ? gate_verdict::allow()
                 : gate_verdict::veto("maintenance window");
  };
  spawn_node(s);
  auto id = connect("192.0.2.7:8333", true);
  CHECK(asked == 1);
  REQUIRE(log->retries.size() == 1);
  CHECK(log->retries[0].delay == 1s);
  // Linear backoff: retries 1 s, then 2 s, then 3 s after each failure.
  advance(1s);
  CHECK(asked == 2);
  advance(2s - 1ms);
  CHECK(asked == 2);
  advance(1ms);
  CHECK(asked == 3);
  REQUIRE(log->retries.size() == 3);
  CHECK(log->retries[1].delay == 2s);
  CHECK(log->retries[2].delay == 3s);
  CHECK(net->dial_count() == 0);
  auto failures = failures_of(id);
  REQUIRE(failures.size() == 3);
  for (auto& ev : failures) {
    CHECK(errc_of(ev.reason) == errc::vetoed);
    CHECK(context_of(ev.reason) == "maintenance window");
    CHECK(ev.request.state == conn_state::failing);
  }
  CHECK(request_of(id).state == conn_state::failing);
  *open = true;
  advance(3s);
  CHECK(asked == 4);
  CHECK(net->dial_count() == 1);
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.id == id);
  CHECK(stats().gate_vetoes == 3);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate: a vetoed accept is closed, rejected with rule gated "
                  "and costs no admission state") {
  auto s = node_setup();
  auto open = std::make_shared<bool>(false);
  std::vector<std::pair<std::string, std::string>> asked;
  s.gate.accept = [open, &asked](const std::string& remote,
                                 const std::string& local) {
    asked.emplace_back(remote, local);
    return *open ? gate_verdict::allow() : gate_verdict::veto("not today");
  };
  spawn_node(s);
  // Far past the per-IP burst (10) and cap (4): were the vetoed
  // connections counted, the same address would be refused once allowed.
  std::vector<connection_ptr> vetoed;
  for (int i = 0; i < 30; ++i)
    vetoed.push_back(inject("10.66.0.5:4000"));
  for (auto& conn : vetoed)
    CHECK(conn->closed());
  REQUIRE(asked.size() == 30);
  CHECK(asked[0].first == "10.66.0.5:4000");
  // A memory connection has no socket, so no local address.
  CHECK(asked[0].second.empty());
  REQUIRE(log->rejected.size() == 30);
  for (auto& ev : log->rejected) {
    CHECK(ev.rule == "gated");
    CHECK(errc_of(ev.reason) == errc::vetoed);
    CHECK(context_of(ev.reason) == "not today");
    CHECK(ev.remote_address == "10.66.0.5:4000");
  }
  CHECK(log->accepted.empty());
  auto st = stats();
  CHECK(st.gate_vetoes == 30);
  CHECK(st.inbound_rejected == 30);
  CHECK(st.inbound_live == 0);
  *open = true;
  std::vector<connection_ptr> admitted;
  for (int i = 0; i < 4; ++i)
    admitted.push_back(inject("10.66.0.5:4000"));
  for (auto& conn : admitted)
    CHECK_FALSE(conn->closed());
  CHECK(log->accepted.size() == 4);
  CHECK(log->rejected.size() == 30);
  CHECK(stats().inbound_live == 4);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate: a banned peer is refused as banned without asking "
                  "the gate") {
  auto s = node_setup();
  size_t asked = 0;
  s.gate.accept = [&asked](const std::string&, const std::string&) {
    ++asked;
    return gate_verdict::allow();
  };
  spawn_node(s);
  auto banned = ask<uint64_t>(ban_atom::value, std::string{"10.9.0.0/16"},
                              caf::timespan{1h}, std::string{"test"});
  CHECK(banned == 0);
  CHECK(inject("10.9.1.1:4000")->closed());
  CHECK(asked == 0);
  REQUIRE(log->rejected.size() == 1);
  CHECK(log->rejected[0].rule == "banned");
  CHECK_FALSE(inject("10.10.1.1:4000")->closed());
  CHECK(asked == 1);
  CHECK(stats().gate_vetoes == 0);
}

// -- gate actors --------------------------------------------------------------

TEST_CASE_FIXTURE(gate_fixture,
                  "gate actor: a dial waits for the verdict; a veto fails it "
                  "with the gate's reason, an allow dials") {
  manager_config config;
  config.retry_duration = 10s;
  auto s = node_setup(config);
  with_gate_actor(s);
  gate_rec->hold = true;
  spawn_node(s);
  auto first = connect("192.0.2.1:8333", false);
  REQUIRE(gate_rec->dials == std::vector<std::string>{"192.0.2.1:8333"});
  advance(500ms);
  CHECK(net->dial_count() == 0);
  CHECK(log->failed.empty());
  CHECK(request_of(first).state == conn_state::pending);
  answer_held(false, "policy says no");
  CHECK(net->dial_count() == 0);
  auto failures = failures_of(first);
  REQUIRE(failures.size() == 1);
  CHECK(errc_of(failures[0].reason) == errc::vetoed);
  CHECK(context_of(failures[0].reason) == "policy says no");
  auto second = connect("192.0.2.2:8333", false);
  advance(300ms);
  CHECK(net->dial_count() == 0);
  answer_held(true);
  REQUIRE(net->dial_count() == 1);
  CHECK(net->dials()[0].address == "192.0.2.2:8333");
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.id == second);
  // The wait for the gate is no part of the dial time.
  CHECK(log->connected[0].dial_time == 0s);
  CHECK(stats().gate_vetoes == 1);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate actor: an accept waits for the verdict; a veto "
                  "closes it with rule gated, an allow admits it") {
  auto s = node_setup();
  with_gate_actor(s);
  gate_rec->hold = true;
  spawn_node(s);
  auto a = inject("198.51.100.1:4000");
  auto b = inject("198.51.100.2:4000");
  REQUIRE(gate_rec->accepts.size() == 2);
  CHECK(gate_rec->accepts[0].first == "198.51.100.1:4000");
  CHECK(gate_rec->accepts[1].first == "198.51.100.2:4000");
  advance(500ms);
  CHECK_FALSE(a->closed());
  CHECK(log->accepted.empty());
  CHECK(log->rejected.empty());
  CHECK(stats().inbound_live == 0);
  answer_held(false, "unknown peer");
  CHECK(a->closed());
  CHECK(b->closed());
  REQUIRE(log->rejected.size() == 2);
  CHECK(log->rejected[0].rule == "gated");
  CHECK(context_of(log->rejected[0].reason) == "unknown peer");
  auto c = inject("198.51.100.3:4000");
  CHECK(log->accepted.empty());
  answer_held(true);
  CHECK_FALSE(c->closed());
  REQUIRE(log->accepted.size() == 1);
  CHECK(log->accepted[0].conn == c);
  auto st = stats();
  CHECK(st.gate_vetoes == 2);
  CHECK(st.inbound_rejected == 2);
  CHECK(st.inbound_accepted == 1);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate actor: a mute gate fails dials closed at the "
                  "deadline, and a permanent request retries") {
  manager_config config;
  config.retry_duration = 5s;
  auto s = node_setup(config);
  with_gate_actor(s);
  s.gate.timeout = 2s;
  gate_rec->hold = true; // and never answers
  spawn_node(s);
  auto id = connect("192.0.2.9:8333", true);
  advance(2s - 1ms);
  CHECK(failures_of(id).empty());
  advance(1ms);
  auto failures = failures_of(id);
  REQUIRE(failures.size() == 1);
  CHECK(errc_of(failures[0].reason) == errc::vetoed);
  CHECK(context_of(failures[0].reason) == "gate gave no answer within 2s");
  CHECK(net->dial_count() == 0);
  REQUIRE(log->retries.size() == 1);
  // The retry asks the gate again; it answers this time.
  gate_rec->hold = false;
  advance(5s);
  CHECK(gate_rec->dials.size() == 2);
  CHECK(net->dial_count() == 1);
  CHECK(log->connected.size() == 1);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate actor: with fail_open, a mute gate lets the dial "
                  "through at the deadline") {
  auto s = node_setup();
  with_gate_actor(s);
  s.gate.timeout = 2s;
  s.gate.fail_open = true;
  gate_rec->hold = true;
  spawn_node(s);
  connect("192.0.2.9:8333", false);
  advance(2s - 1ms);
  CHECK(net->dial_count() == 0);
  advance(1ms);
  CHECK(net->dial_count() == 1);
  CHECK(log->connected.size() == 1);
  CHECK(stats().gate_vetoes == 0);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate actor: a dead gate vetoes dials and accepts with "
                  "gate is down") {
  auto s = node_setup();
  with_gate_actor(s);
  spawn_node(s);
  caf::anon_send_exit(gate, caf::exit_reason::user_shutdown);
  run();
  auto id = connect("192.0.2.9:8333", false);
  auto failures = failures_of(id);
  REQUIRE(failures.size() == 1);
  CHECK(context_of(failures[0].reason) == "gate is down");
  auto conn = inject("198.51.100.1:4000");
  CHECK(conn->closed());
  REQUIRE(log->rejected.size() == 1);
  CHECK(log->rejected[0].rule == "gated");
  CHECK(context_of(log->rejected[0].reason) == "gate is down");
  CHECK(net->dial_count() == 0);
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate actor: inbound connections waiting for a mute gate "
                  "are bounded, closed at the deadline, and closed at stop") {
  auto s = node_setup();
  with_gate_actor(s);
  s.gate.timeout = 10s;
  s.gate.max_waiting_inbound = 3;
  gate_rec->hold = true; // and never answers
  spawn_node(s);
  std::vector<connection_ptr> conns;
  for (int i = 1; i <= 5; ++i)
    conns.push_back(inject("198.51.100." + std::to_string(i) + ":4000"));
  // Three wait; the two beyond the bound are closed at once.
  CHECK(gate_rec->accepts.size() == 3);
  for (int i = 0; i < 3; ++i)
    CHECK_FALSE(conns[static_cast<size_t>(i)]->closed());
  CHECK(conns[3]->closed());
  CHECK(conns[4]->closed());
  REQUIRE(log->rejected.size() == 2);
  for (auto& ev : log->rejected) {
    CHECK(ev.rule == "gated");
    CHECK(context_of(ev.reason)
          == "gate busy: 3 inbound connections wait for its answer");
  }
  // At the deadline the waiting ones are closed too (fail-closed), which
  // makes room for new ones.
  advance(10s);
  for (auto& conn : conns)
    CHECK(conn->closed());
  REQUIRE(log->rejected.size() == 5);
  CHECK(context_of(log->rejected[4].reason)
        == "gate gave no answer within 10s");
  for (int i = 6; i <= 8; ++i)
    conns.push_back(inject("198.51.100." + std::to_string(i) + ":4000"));
  CHECK(gate_rec->accepts.size() == 6);
  for (size_t i = 5; i < 8; ++i)
    CHECK_FALSE(conns[i]->closed());
  // Stop closes what still waits: nothing leaks.
  auto final_stats = stop();
  for (auto& conn : conns)
    CHECK(conn->closed());
  REQUIRE(log->rejected.size() == 8);
  for (size_t i = 5; i < 8; ++i)
    CHECK(log->rejected[i].rule == "stopped");
  CHECK(final_stats.gate_vetoes == 5);
  CHECK(final_stats.inbound_rejected == 8);
  CHECK(final_stats.inbound_accepted == 0);
  // A verdict after the stop finds nothing.
  answer_held(true);
  CHECK(log->accepted.empty());
}

TEST_CASE_FIXTURE(gate_fixture,
                  "gate: spawn refuses a zero timeout or waiting bound") {
  auto s = node_setup();
  s.gate.timeout = 0s;
  auto refused = spawn_conn_handler(sys, s);
  REQUIRE_FALSE(refused);
  CHECK(errc_of(refused.error()) == errc::invalid_config);
  CHECK(context_of(refused.error()) == "gate.timeout = 0ns, expected > 0");
  s.gate.timeout = 1s;
  s.gate.max_waiting_inbound = 0;
  refused = spawn_conn_handler(sys, s);
  REQUIRE_FALSE(refused);
  CHECK(context_of(refused.error())
        == "gate.max_waiting_inbound = 0, expected at least 1");
  caf::anon_send_exit(acceptor, caf::exit_reason::user_shutdown);
}

// -- the plain C++ facade -----------------------------------------------------

TEST_CASE("gate: the manager facade takes a gate function through its "
          "setup") {
  caf::actor_system_config cfg;
  add_error_category(cfg);
  caf::actor_system sys{cfg};
  auto net = std::make_shared<fake_network>();
  auto dialer = spawn_fake_dialer(sys, net);
  std::promise<caf::error> failure;
  auto failed = failure.get_future();
  manager_callbacks cb;
  cb.on_failure = [&failure](const conn_request&, const caf::error& err) {
    failure.set_value(err);
  };
  handler_setup setup;
  setup.dialer = dialer;
  setup.config.target_outbound = 0;
  setup.gate.dial = [](const std::string&) {
    return gate_verdict::veto("facade says no");
  };
  {
    auto mgr = manager::make(sys, setup, cb);
    REQUIRE(mgr);
    REQUIRE(mgr->connect("192.0.2.1:8333"));
    // Generous bound: a loaded 2-core machine must still pass.
    REQUIRE(failed.wait_for(30s) == std::future_status::ready);
    auto err = failed.get();
    CHECK(errc_of(err) == errc::vetoed);
    CHECK(context_of(err) == "facade says no");
    CHECK(net->dial_count() == 0);
    CHECK(mgr->stats().gate_vetoes == 1);
    mgr->stop().wait();
  }
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
}
