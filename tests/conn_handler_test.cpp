// The reference's acceptance scenarios (docs/reference.md, "Scenarios"), in
// our own words, on simulated time.
//
// Over 500 lines: one test per scenario of the reference.

#include <doctest/doctest.h>

#include <map>

#include <caf/typed_event_based_actor.hpp>

#include "connmgr/messages/direct_dialer.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 1: a handler without a dialer is refused") {
  handler_setup s;
  auto refused = spawn_conn_handler(sys, s);
  REQUIRE(!refused);
  CHECK(errc_of(refused.error()) == errc::invalid_config);
  CHECK(describe(refused.error()).find("dialer") != std::string::npos);
  s.dialer = dialer;
  auto accepted = spawn_conn_handler(sys, s);
  REQUIRE(accepted);
  handler = *accepted;
}

TEST_CASE_FIXTURE(
  sim_fixture, "scenario 7: target outbound 10 gives exactly 10 connections") {
  auto s = automatic_setup(10);
  spawn(s);
  start();
  advance(1s, 100ms);
  CHECK(log->connected.size() == 10);
  CHECK(net->dial_count() == 10);
  CHECK(stats().outbound_established == 10);
}

namespace {

/// A fixture with one fake acceptor per listener, recorded.
struct listener_fixture : sim_fixture {
  std::vector<std::shared_ptr<fake_acceptor_record>> records;
  std::vector<fake_acceptor_actor> acceptors;

  handler_setup with_listeners(size_t n, std::optional<uint32_t> max_inbound) {
    auto s = setup();
    // The reference's one inbound rule; the others (per IP, rate, pending,
    // eviction) have their own scenarios.
    s.config.max_inbound = max_inbound;
    s.config.max_inbound_per_ip = std::nullopt;
    s.config.max_pending_inbound = std::nullopt;
    s.config.inbound_rate_per_ip = std::nullopt;
    s.config.evict_inbound = false;
    for (size_t i = 0; i < n; ++i) {
      records.push_back(std::make_shared<fake_acceptor_record>());
      acceptors.push_back(spawn_fake_acceptor(sys, records.back()));
      s.listeners.push_back(acceptors.back());
    }
    return s;
  }

  /// Spawns and starts the handler with one listener and inbound limit
  /// `max_inbound`.
  void start_with_one_listener(std::optional<uint32_t> max_inbound) {
    spawn(with_listeners(1, max_inbound));
    start();
  }

  connection_ptr inject(size_t listener, const std::string& from) {
    auto conn = make_memory_connection(from);
    caf::anon_send(acceptors[listener], inject_atom::value, conn);
    return conn;
  }
};

} // namespace

TEST_CASE_FIXTURE(listener_fixture,
                  "scenario 2: inbound limit 2 admits two, rejects the third, "
                  "and a double close frees one slot") {
  start_with_one_listener(2u);
  auto a = inject(0, "127.0.0.1:40001");
  auto b = inject(0, "127.0.0.1:40002");
  auto c = inject(0, "127.0.0.1:40003");
  run();
  REQUIRE(log->accepted.size() == 2);
  REQUIRE(log->rejected.size() == 1);
  CHECK(log->rejected[0].remote_address == "127.0.0.1:40003");
  CHECK(errc_of(log->rejected[0].reason) == errc::inbound_limit);
  CHECK(c->closed());
  CHECK(!a->closed());
  CHECK(stats().inbound_live == 2);
  // Closing the same connection twice must release exactly one slot.
  CHECK(a->close());
  CHECK(!a->close());
  run();
  CHECK(stats().inbound_live == 1);
  inject(0, "127.0.0.1:40004");
  inject(0, "127.0.0.1:40005");
  run();
  CHECK(log->accepted.size() == 3);
  CHECK(log->rejected.size() == 2);
  CHECK(stats().inbound_live == 2);
  CHECK(!b->closed());
}

TEST_CASE_FIXTURE(listener_fixture,
                  "scenario 3: inbound limit 0 rejects and counts every "
                  "inbound connection") {
  start_with_one_listener(0u);
  std::vector<connection_ptr> conns;
  for (int i = 0; i < 5; ++i)
    conns.push_back(inject(0, "127.0.0.1:" + std::to_string(41000 + i)));
  run();
  CHECK(log->accepted.empty());
  CHECK(log->rejected.size() == 5);
  for (auto& conn : conns)
    CHECK(conn->closed());
  auto st = stats();
  CHECK(st.inbound_rejected == 5);
  CHECK(st.inbound_accepted == 0);
  CHECK(st.inbound_live == 0);
}

TEST_CASE_FIXTURE(listener_fixture,
                  "scenario 4: inbound limit 8 holds under 100 concurrent "
                  "arrivals and ends with no slot used") {
  start_with_one_listener(8u);
  for (int i = 0; i < 100; ++i)
    inject(0, "127.0.0.1:" + std::to_string(42000 + i));
  // Run job by job to watch the gauge at every step.
  size_t max_live = 0;
  while (sched.try_run_once()) {
    size_t live = 0;
    for (auto& ev : log->accepted)
      if (!ev.conn->closed())
        ++live;
    max_live = std::max(max_live, live);
  }
  CHECK(max_live == 8);
  CHECK(log->accepted.size() == 8);
  CHECK(log->rejected.size() == 92);
  for (auto& ev : log->accepted)
    ev.conn->close();
  run();
  CHECK(stats().inbound_live == 0);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 5: start connects the target, stop twice is "
                  "harmless, and calls after stop do nothing") {
  auto s = automatic_setup(1);
  spawn(s);
  start();
  start(); // idempotent
  REQUIRE(log->connected.size() == 1);
  auto id = log->connected[0].request.id;
  CHECK(net->dial_count() == 1);
  // Two stop requests: both answered, one stopped event.
  int answers = 0;
  for (int i = 0; i < 2; ++i)
    sys.spawn([&](caf::event_based_actor* self) {
      self->request(handler, caf::infinite, stop_atom::value)
        .then([&](const conn_stats&) { ++answers; });
    });
  run();
  CHECK(answers == 2);
  CHECK(log->stopped.size() == 1);
  auto events = log->order.size();
  // After stop: connect, disconnect and remove reach nobody.
  caf::anon_send(handler, connect_atom::value, uint64_t{0},
                 std::string{"127.0.0.1:9"}, true);
  caf::anon_send(handler, disconnect_atom::value, id, false);
  caf::anon_send(handler, remove_atom::value, id);
  caf::anon_send(handler, start_atom::value);
  run();
  CHECK(log->order.size() == events);
  CHECK(net->dial_count() == 1);
  handler = nullptr;
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 6: connect mode without an address source makes "
                  "exactly the one permanent connection") {
  auto s = setup();
  s.config.target_outbound = 2;
  spawn(s);
  start();
  auto id = connect("127.0.0.1:18333", true);
  advance(1s, 100ms);
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.id == id);
  CHECK(log->connected[0].request.permanent);
  CHECK(log->connected[0].request.state == conn_state::established);
  CHECK(net->dial_count() == 1);
  auto reqs = requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].id == id);
  CHECK(reqs[0].state == conn_state::established);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 8: target 3 plus 2 permanent connects before and "
                  "after start gives 3 automatic and 2 manual connections") {
  auto s = automatic_setup(3);
  spawn(s);
  auto before = connect("127.0.0.1:18001", true);
  start();
  auto after = connect("127.0.0.1:18002", true);
  advance(1s, 100ms);
  REQUIRE(log->connected.size() == 5);
  size_t automatic = 0;
  size_t manual = 0;
  for (auto& ev : log->connected) {
    if (ev.request.automatic) {
      ++automatic;
      CHECK(!ev.request.permanent);
    } else {
      ++manual;
      CHECK(ev.request.permanent);
      CHECK((ev.request.id == before || ev.request.id == after));
    }
  }
  CHECK(automatic == 3);
  CHECK(manual == 2);
  CHECK(net->dial_count() == 5);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 9: a disconnected permanent request reconnects "
                  "with the same id; remove ends it") {
  auto id = connect_one_permanent(10ms);
  auto first = log->connected[0].conn;
  disconnect(id);
  CHECK(first->closed());
  REQUIRE(log->disconnected.size() == 1);
  CHECK(log->disconnected[0].request.id == id);
  CHECK(log->disconnected[0].request.state == conn_state::pending);
  CHECK(request_of(id).state == conn_state::pending);
  advance(10ms);
  REQUIRE(log->connected.size() == 2);
  CHECK(log->connected[1].request.id == id);
  CHECK(request_of(id).state == conn_state::established);
  remove(id);
  CHECK(log->connected[1].conn->closed());
  REQUIRE(log->disconnected.size() == 2);
  CHECK(log->disconnected[1].request.state == conn_state::disconnected);
  CHECK(request_of(id).id == 0); // forgotten
  advance(1s, 100ms);
  CHECK(net->dial_count() == 2);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 10: with the backoff capped at 2 ms, a permanent "
                  "request connects soon after the network comes back") {
  auto s = setup();
  s.config.retry_duration = 1ms;
  s.config.max_retry_duration = 2ms;
  spawn(s);
  auto start_at = now();
  auto deadline = start_at + 5ms;
  net->set_policy([this, deadline](const std::string& addr) {
    return now() < deadline ? refuse(addr) : fake_dial_plan{};
  });
  start();
  auto id = connect("127.0.0.1:18333", true);
  advance(100ms);
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.id == id);
  auto dials = net->dials();
  REQUIRE(dials.size() >= 2);
  // Every gap between attempts is at most the 2 ms cap.
  for (size_t i = 1; i < dials.size(); ++i)
    CHECK(dials[i].at - dials[i - 1].at <= 2ms);
  CHECK(dials.back().at - start_at <= 7ms);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 11: target 5 on a dead network stays within 75 "
                  "dials in 10 ms") {
  auto s = automatic_setup(5);
  s.config.retry_duration = 1ms;
  s.config.max_retry_duration = 2ms;
  one_group_per_address(s.config);
  net->set_policy(refuse);
  spawn(s);
  start();
  advance(10ms);
  stop();
  // 25 failures are allowed back to back, then each of the 5 slots waits
  // retry_duration (1 ms) per replacement: 25 + 5 × 10 = 75 at most.
  CHECK(net->dial_count() <= 75);
  CHECK(net->dial_count() >= 25);
  CHECK(log->connected.empty());
  REQUIRE(log->stopped.size() == 1);
  CHECK(log->stopped[0].stats.throttled > 0);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 12: stop while a dial is failing still completes") {
  spawn(setup());
  net->set_policy(hold);
  start();
  connect("127.0.0.1:18333", true);
  CHECK(net->dial_count() == 1);
  bool stopped = false;
  sys.spawn([&](caf::event_based_actor* self) {
    self->request(handler, caf::infinite, stop_atom::value)
      .then([&](const conn_stats&) { stopped = true; });
  });
  caf::anon_send(dialer, release_atom::value, false);
  run();
  CHECK(stopped);
  CHECK(log->failed.empty()); // the failure came after stop: not reported
  CHECK(log->stopped.size() == 1);
  handler = nullptr;
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 13: removing a request while it dials cancels it") {
  spawn(setup());
  net->set_policy(hold);
  start();
  auto id = connect("127.0.0.1:18333", true);
  CHECK(request_of(id).state == conn_state::pending);
  remove(id);
  REQUIRE(log->failed.size() == 1);
  CHECK(log->failed[0].request.id == id);
  CHECK(log->failed[0].request.state == conn_state::canceled);
  CHECK(errc_of(log->failed[0].reason) == errc::canceled);
  CHECK(net->cancel_count() == 1);
  CHECK(request_of(id).id == 0);
  CHECK(stats().dials_in_flight == 0);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 14: removing a failing request cancels it and no "
                  "connection follows") {
  auto s = setup();
  s.config.retry_duration = 10ms;
  spawn(s);
  net->set_policy(refuse);
  start();
  auto id = connect("127.0.0.1:18333", true);
  REQUIRE(log->retries.size() == 1);
  CHECK(request_of(id).state == conn_state::failing);
  net->set_policy(nullptr); // the network is back...
  remove(id); // ...but the request is gone
  advance(100ms);
  CHECK(log->connected.empty());
  CHECK(net->dial_count() == 1);
  REQUIRE(log->failed.size() == 2);
  CHECK(log->failed[1].request.state == conn_state::canceled);
}

TEST_CASE_FIXTURE(listener_fixture,
                  "scenario 15: two listeners with two arrivals each give four "
                  "accepts, and stop closes both listeners") {
  spawn(with_listeners(2, std::nullopt));
  start();
  inject(0, "127.0.0.1:43001");
  inject(0, "127.0.0.1:43002");
  inject(1, "127.0.0.1:43003");
  inject(1, "127.0.0.1:43004");
  run();
  REQUIRE(log->accepted.size() == 4);
  size_t on_first = 0;
  for (auto& ev : log->accepted)
    on_first += ev.listener == 0 ? 1 : 0;
  CHECK(on_first == 2);
  stop();
  CHECK(records[0]->closed);
  CHECK(records[1]->closed);
  CHECK(log->stopped.size() == 1);
}

TEST_CASE_FIXTURE(listener_fixture,
                  "scenario 16: with inbound limit 1 the second is rejected "
                  "and a third is accepted once the first closes") {
  start_with_one_listener(1u);
  auto first = inject(0, "127.0.0.1:44001");
  auto second = inject(0, "127.0.0.1:44002");
  run();
  CHECK(log->accepted.size() == 1);
  CHECK(log->rejected.size() == 1);
  CHECK(second->closed());
  first->close();
  run();
  auto third = inject(0, "127.0.0.1:44003");
  run();
  REQUIRE(log->accepted.size() == 2);
  CHECK(log->accepted[1].conn == third);
  CHECK(!third->closed());
}

TEST_CASE_FIXTURE(sim_fixture,
                  "two handlers sharing one dialer never mix up their dials") {
  net->set_policy(hold);
  spawn(setup());
  start();
  auto first_handler = handler;
  auto second = spawn_conn_handler(sys, setup());
  REQUIRE(second);
  caf::anon_send(*second, start_atom::value);
  connect("127.0.0.1:18001", true);
  caf::anon_send(*second, connect_atom::value, uint64_t{0},
                 std::string{"127.0.0.1:18002"}, true);
  run();
  REQUIRE(net->dial_count() == 2);
  auto dials = net->dials();
  CHECK(dials[0].dial_id != dials[1].dial_id);
  caf::anon_send(dialer, release_atom::value, true);
  run();
  CHECK(log->connected.size() == 2);
  caf::anon_send_exit(*second, caf::exit_reason::user_shutdown);
  run();
}

TEST_CASE_FIXTURE(sim_fixture,
                  "events: connected and failed events report how long the "
                  "dial took on the actor clock") {
  net->set_policy(hold);
  spawn(setup());
  connect("10.0.0.1:8333", false);
  connect("10.0.0.2:8333", false);
  advance(30ms);
  REQUIRE(net->dial_count() == 2);
  // Completes every held dial at once; answers how many.
  auto completed = [&](bool success) {
    uint64_t n = 0;
    sys.spawn([&](caf::event_based_actor* self) {
      self->request(dialer, caf::infinite, release_atom::value, success)
        .then([&](uint64_t x) { n = x; });
    });
    run();
    return n;
  };
  CHECK(completed(true) == 2);
  REQUIRE(log->connected.size() == 2);
  CHECK(log->connected[0].dial_time == 30ms);
  CHECK(log->connected[1].dial_time == 30ms);
  // A refused dial after 10 ms reports 10 ms; a refusal without a dial
  // (duplicate address) reports zero.
  auto third = connect("10.0.0.3:8333", false);
  advance(10ms);
  CHECK(completed(false) == 1);
  REQUIRE(log->failed.size() == 1);
  CHECK(log->failed[0].request.id == third);
  CHECK(log->failed[0].dial_time == 10ms);
  connect("10.0.0.1:8333", false);
  run();
  REQUIRE(log->failed.size() == 2);
  CHECK(errc_of(log->failed[1].reason) == errc::duplicate_address);
  CHECK(log->failed[1].dial_time == caf::timespan{0});
}

TEST_CASE_FIXTURE(sim_fixture,
                  "dial function: the handler dials through a plain function, "
                  "retries its failures and stops without a dialer") {
  auto calls = std::make_shared<std::vector<std::string>>();
  auto made = std::make_shared<std::vector<connection_ptr>>();
  auto fail_next = std::make_shared<bool>(true);
  auto s = setup();
  s.dialer = nullptr;
  s.config.retry_duration = 2s;
  s.dial = [=](const std::string& address,
               caf::timespan timeout) -> caf::expected<connection_ptr> {
    CHECK(timeout == 10s); // the configured dial_timeout
    calls->push_back(address);
    if (*fail_next) {
      *fail_next = false;
      return make_error(errc::refused, "connect " + address);
    }
    made->push_back(make_memory_connection(address));
    return made->back();
  };
  spawn(s);
  auto t0 = now();
  auto id = connect("10.9.0.1:8333", true);
  // The first call fails: failed event, retry after retry_duration.
  REQUIRE(calls->size() == 1);
  REQUIRE(log->failed.size() == 1);
  CHECK(errc_of(log->failed[0].reason) == errc::refused);
  REQUIRE(log->retries.size() == 1);
  CHECK(log->retries[0].delay == 2s);
  advance(2s - 1ms);
  CHECK(calls->size() == 1);
  advance(1ms);
  REQUIRE(calls->size() == 2);
  CHECK(now() - t0 == 2s);
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.id == id);
  CHECK(log->connected[0].conn == made->at(0));
  CHECK(stats().outbound_established == 1);
  // Stop needs no flush: nothing is ever in flight.
  auto final_stats = stop();
  CHECK(final_stats.dials_succeeded == 1);
  CHECK(final_stats.dials_failed == 1);
  REQUIRE(log->stopped.size() == 1);
  CHECK(log->order.back() == "stopped");
}

TEST_CASE_FIXTURE(sim_fixture,
                  "dial function: a setup with both a dialer and a dial "
                  "function is refused") {
  auto s = setup();
  s.dial = [](const std::string& address,
              caf::timespan) -> caf::expected<connection_ptr> {
    return make_memory_connection(address);
  };
  auto refused = spawn_conn_handler(sys, s);
  REQUIRE(!refused);
  CHECK(describe(refused.error())
        == "invalid_config: dialer and dial both set, expected exactly one");
}

TEST_CASE_FIXTURE(sim_fixture,
                  "mute dialer: dials started at different instants each time "
                  "out at their own dial_timeout plus 1 s; answered ones never "
                  "do") {
  net->set_policy(hold);
  auto s = setup();
  s.config.dial_timeout = 2s;
  spawn(s);
  auto a = connect("10.9.1.1:8333", false);
  advance(500ms);
  auto b = connect("10.9.1.2:8333", false);
  advance(500ms);
  auto c = connect("10.9.1.3:8333", false);
  REQUIRE(net->dial_count() == 3);
  // All three answered in time: past their deadlines nothing times out.
  caf::anon_send(dialer, release_atom::value, true);
  run();
  REQUIRE(log->connected.size() == 3);
  advance(4s, 100ms);
  CHECK(log->failed.empty());
  CHECK(net->cancel_count() == 0);
  // New held dials: d at t, e at t + 700 ms.
  net->set_policy(hold);
  auto t = now();
  auto d = connect("10.9.1.4:8333", false);
  advance(700ms);
  auto e = connect("10.9.1.5:8333", false);
  advance(3s - 700ms - 1ms);
  CHECK(log->failed.empty());
  advance(1ms);
  REQUIRE(log->failed.size() == 1);
  CHECK(log->failed[0].request.id == d);
  CHECK(now() - t == 3s);
  CHECK(log->failed[0].dial_time == 3s);
  advance(700ms - 1ms);
  CHECK(log->failed.size() == 1);
  advance(1ms);
  REQUIRE(log->failed.size() == 2);
  CHECK(log->failed[1].request.id == e);
  CHECK(errc_of(log->failed[1].reason) == errc::timed_out);
  // The dialer was told to give both up.
  CHECK(net->cancel_count() == 2);
  CHECK(request_of(a).state == conn_state::established);
  CHECK(request_of(b).state == conn_state::established);
  CHECK(request_of(c).state == conn_state::established);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "events: an events actor that declines disconnected, failed "
                  "and retry events gets only the connected ones, while the "
                  "counters still count everything") {
  auto s = setup();
  s.config.retry_duration = 1s;
  s.config.max_retry_duration = 2s;
  s.subscribe.disconnected = false;
  s.subscribe.failed = false;
  s.subscribe.retry = false;
  spawn(s);
  auto id = connect("10.9.2.1:8333", true);
  REQUIRE(log->connected.size() == 1);
  net->set_policy(refuse);
  disconnect(id, true); // a disconnect and a retry, both declined
  advance(1s); // the retry fails: a failure and another retry
  REQUIRE(net->dial_count() == 2);
  net->set_policy([](const std::string&) { return fake_dial_plan{}; });
  advance(10s);
  CHECK(net->dial_count() == 3);
  REQUIRE(log->connected.size() == 2);
  CHECK(log->connected[1].request.id == id);
  CHECK(log->order == std::vector<std::string>{"connected", "connected"});
  auto st = stats();
  CHECK(st.disconnections == 1);
  CHECK(st.dials_failed == 1);
  CHECK(st.retries_scheduled == 2);
  stop();
  CHECK(log->order.back() == "stopped");
}

TEST_CASE_FIXTURE(sim_fixture,
                  "spawning a handler makes room in the descriptor table for "
                  "every descriptor its configuration may hold") {
  auto before = descriptor_table_size();
  REQUIRE(before > 0);
  auto s = setup();
  s.config.target_outbound = static_cast<uint32_t>(before * 2);
  s.config.max_inbound = 100;
  s.config.max_pending_dials = 50;
  REQUIRE(uint64_t{s.config.target_outbound} + 100 + 50 + 64
          <= raise_fd_limit());
  spawn(s);
  CHECK(descriptor_table_size()
        >= uint64_t{s.config.target_outbound} + 100 + 50);
}

namespace {

/// A direct path that takes dials to 10.x addresses and answers only when
/// told to, recording what it was asked.
struct recording_path : direct_dialer {
  std::vector<std::pair<uint64_t, std::string>> dials;
  std::vector<uint64_t> cancels;
  std::map<uint64_t, caf::strong_actor_ptr> reply_to;

  uint64_t try_dial(uint64_t dial_id, const std::string& address, caf::timespan,
                    const caf::strong_actor_ptr& requester) override {
    if (address.rfind("10.", 0) != 0)
      return 0;
    dials.emplace_back(dial_id, address);
    reply_to[dial_id] = requester;
    return 1000 + dial_id;
  }

  void cancel(uint64_t token) override {
    cancels.push_back(token);
  }

  template <class T>
  void answer(size_t i, T result) {
    auto id = dials.at(i).first;
    reply_to[id]->enqueue(
      nullptr, caf::make_message_id(),
      caf::make_message(dialed_atom::value, id, std::move(result)), nullptr);
  }
};

/// A dialer actor that offers `path` and records the dials it gets itself.
dialer_actor::behavior_type
dialer_with_path(dialer_actor::pointer, std::shared_ptr<recording_path> path,
                 std::shared_ptr<std::vector<std::string>> actor_dials) {
  return {
    [actor_dials](dial_atom, uint64_t, std::string& address,
                  caf::timespan) -> caf::result<connection_ptr> {
      actor_dials->push_back(address);
      return make_memory_connection(address);
    },
    [](cancel_atom, uint64_t) {},
    [](flush_atom) { return true; },
    [path](direct_atom) { return direct_dialer_ptr{path}; },
  };
}

} // namespace

TEST_CASE_FIXTURE(sim_fixture,
                  "direct path: dials it takes cost no message to the dialer, "
                  "others go to the actor, and cancels go back the way their "
                  "dial went") {
  auto path = std::make_shared<recording_path>();
  auto actor_dials = std::make_shared<std::vector<std::string>>();
  auto s = setup();
  s.dialer = sys.spawn(dialer_with_path, path, actor_dials);
  spawn(s);
  connect("10.0.0.1:8333", false);
  REQUIRE(path->dials.size() == 1);
  CHECK(path->dials[0].second == "10.0.0.1:8333");
  CHECK(actor_dials->empty());
  CHECK(log->connected.empty()); // no answer yet
  path->answer(0, make_memory_connection("10.0.0.1:8333"));
  run();
  REQUIRE(log->connected.size() == 1);
  CHECK(log->connected[0].request.address == "10.0.0.1:8333");
  // Not taken by the path: through the actor.
  connect("seed.example.org:8333", false);
  CHECK(path->dials.size() == 1);
  CHECK(*actor_dials == std::vector<std::string>{"seed.example.org:8333"});
  CHECK(log->connected.size() == 2);
  // Removed while dialing: the path is told, with its own token.
  auto id = connect("10.0.0.2:8333", false);
  REQUIRE(path->dials.size() == 2);
  remove(id);
  CHECK(path->cancels == std::vector<uint64_t>{1000 + path->dials[1].first});
  // Its connection, if it comes anyway, is closed and counted.
  auto late = make_memory_connection("10.0.0.2:8333");
  path->answer(1, late);
  run();
  CHECK(late->closed());
  CHECK(stats().late_connections_closed == 1);
  CHECK(log->connected.size() == 2);
  // An error on the path fails the dial like one from the actor.
  connect("10.0.0.3:8333", false);
  REQUIRE(path->dials.size() == 3);
  path->answer(2, make_error(errc::refused, "connect: Connection refused"));
  run();
  CHECK(stats().dials_failed == 1);
}
