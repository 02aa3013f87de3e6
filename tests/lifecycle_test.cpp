// Stop and wait: nothing left behind, on simulated time.

#include <doctest/doctest.h>

#include <set>

#include <caf/actor_registry.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

namespace {

struct stop_fixture : sim_fixture {
  size_t baseline_actors = 0;
  bool stop_answered = false;

  stop_fixture() {
    run();
    baseline_actors = sys.registry().running();
  }

  /// Target 1000 automatic requests whose dials all stay in flight.
  void start_1000_held_dials() {
    auto s = automatic_setup(1000);
    s.config.max_pending_dials = 1000;
    net->set_policy(hold);
    spawn(s);
    start();
    REQUIRE(net->dial_count() == 1000);
    REQUIRE(stats().dials_in_flight == 1000);
  }

  void send_stop() {
    sys.spawn([this](caf::event_based_actor* self) {
      self->request(handler, caf::infinite, stop_atom::value)
        .then([this](const conn_stats&) {
          // Everything the handler owned must be gone by now.
          CHECK(sys.registry().running() <= baseline_actors + 2);
          stop_answered = true;
        });
    });
  }

  void check_nothing_left() {
    CHECK(stop_answered);
    CHECK(log->connected.empty());
    REQUIRE(log->stopped.size() == 1);
    CHECK(log->order.back() == "stopped");
    CHECK(net->open_connections() == 0);
    for (auto& weak : net->connections())
      if (auto conn = weak.lock())
        CHECK(conn->closed());
    // Only the fixture's own actors remain: recorder and fake dialer.
    CHECK(sys.registry().running() == baseline_actors);
    handler = nullptr;
  }
};

} // namespace

TEST_CASE_FIXTURE(stop_fixture,
                  "lifecycle: stop with 1000 dials in flight cancels them all "
                  "and leaves no actor behind") {
  start_1000_held_dials();
  send_stop();
  run();
  CHECK(net->cancel_count() == 1000);
  check_nothing_left();
  // Dials the dialer completes after stop reach nobody and close.
  caf::anon_send(dialer, release_atom::value, true);
  run();
  CHECK(net->open_connections() == 0);
}

TEST_CASE_FIXTURE(stop_fixture,
                  "lifecycle: 1000 dials that succeed around a stop are each "
                  "delivered or closed, never both, never neither") {
  start_1000_held_dials();
  size_t expect_delivered = 0;
  SUBCASE("answers reach the handler just before the stop") {
    // The dialer answers the handler directly, so all 1000 answers are in
    // its mailbox ahead of the stop: each is a connection for the user.
    caf::anon_send(dialer, release_atom::value, true);
    send_stop();
    run();
    expect_delivered = 1000;
  }
  SUBCASE("answers arrive right after the handler began stopping") {
    send_stop();
    // Let the stop request reach the handler and nothing else.
    sched.try_run_once();
    sched.try_run_once();
    caf::anon_send(dialer, release_atom::value, true);
    run();
  }
  CHECK(stop_answered);
  REQUIRE(log->stopped.size() == 1);
  CHECK(log->order.back() == "stopped");
  CHECK(log->connected.size() == expect_delivered);
  std::set<const connection*> delivered;
  for (auto& ev : log->connected) {
    CHECK(delivered.insert(ev.conn.get()).second); // once only
    CHECK_FALSE(ev.conn->closed()); // and not closed by us
  }
  // Dials canceled before the release make no connection at all.
  auto made = net->connections();
  CHECK(made.size() <= 1000);
  size_t closed_by_us = 0;
  for (auto& weak : made) {
    auto conn = weak.lock();
    if (conn && delivered.count(conn.get()) > 0)
      continue;
    ++closed_by_us;
    if (conn)
      CHECK(conn->closed());
  }
  CHECK(closed_by_us + delivered.size() == made.size());
  CHECK(sys.registry().running() == baseline_actors);
  log->connected.clear(); // the user lets go of its connections
  CHECK(net->open_connections() == 0);
  handler = nullptr;
}

TEST_CASE_FIXTURE(stop_fixture,
                  "lifecycle: an exit message stops the handler as gracefully "
                  "as stop") {
  start_1000_held_dials();
  caf::anon_send_exit(handler, caf::exit_reason::user_shutdown);
  run();
  stop_answered = true; // nobody asked; the stopped event must still come
  check_nothing_left();
}

namespace {

using flush_holder_actor = connmgr::dialer_actor;

// A dialer that accepts a flush and never answers it, so the test can kill it
// mid-flush.
flush_holder_actor::behavior_type
mute_flush_dialer(flush_holder_actor::stateful_pointer<
                  std::vector<caf::typed_response_promise<bool>>>
                    self) {
  return {
    [](dial_atom, uint64_t, std::string&, caf::timespan)
      -> caf::result<connection_ptr> { return make_error(errc::refused); },
    [](cancel_atom, uint64_t) {},
    [self](flush_atom) {
      auto promise = self->make_response_promise<bool>();
      self->state.push_back(promise);
      return promise;
    },
    [](direct_atom) { return direct_dialer_ptr{}; },
  };
}

} // namespace

TEST_CASE_FIXTURE(sim_fixture,
                  "lifecycle: a dialer that dies during stop's flush does not "
                  "hold stop up") {
  auto mute = sys.spawn(mute_flush_dialer);
  auto s = setup();
  s.dialer = mute;
  spawn(s);
  start();
  bool answered = false;
  sys.spawn([&](caf::event_based_actor* self) {
    self->request(handler, caf::infinite, stop_atom::value)
      .then([&](const conn_stats&) { answered = true; });
  });
  run();
  CHECK(!answered); // waiting for the flush
  caf::anon_send_exit(mute, caf::exit_reason::user_shutdown);
  run();
  CHECK(answered); // the dialer's down ended the wait, no timeout needed
  CHECK(log->stopped.size() == 1);
  handler = nullptr;
}
