#pragma once

// Handler scenarios on simulated time, each step run and timed by the test.
//
// One actor system on CAF's test coordinator (one thread, every job run
// explicitly, time moved by the test), a fake network, a recorder of every
// event and the steps a scenario takes with a handler.
//
// conn_handler_test, flaws_test, peer_gone_test, throttle_test and the
// other suites on simulated time share these, so a scenario reads as its
// steps: set up, spawn, start, act, advance, check the log and the stats.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/actors/fake_acceptor.hpp"
#include "connmgr/actors/fake_dialer.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/events.hpp"

namespace connmgr::test {

using namespace std::chrono_literals;

/// Every event a handler emitted, in order.
struct event_log {
  /// The events of one kind, in arrival order.
  template <class Event>
  using list = std::vector<Event>;

  list<connected_event> connected;
  list<disconnected_event> disconnected;
  list<failed_event> failed;
  list<retry_event> retries;
  list<accepted_event> accepted;
  list<rejected_event> rejected;
  list<evicted_event> evicted;
  list<banned_event> banned;
  list<drain_event> drains;
  list<stopped_event> stopped;
  /// Event kinds in arrival order, for checks on ordering.
  std::vector<std::string> order;
};

/// An actor that appends every event it receives to `log`.
caf::behavior event_recorder(caf::event_based_actor*,
                             std::shared_ptr<event_log> log);

struct sim_config : caf::actor_system_config {
  sim_config();
};

/// An actor system on simulated time with a fake network, a recorder for
/// events and helpers to drive a handler.
struct sim_fixture {
  sim_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched =
    dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  std::shared_ptr<fake_network> net = std::make_shared<fake_network>();
  std::shared_ptr<event_log> log = std::make_shared<event_log>();
  caf::actor recorder = sys.spawn(event_recorder, log);
  fake_dialer_actor dialer = spawn_fake_dialer(sys, net);
  conn_handler_actor handler;

  ~sim_fixture();

  /// Runs every job that is ready now (no time passes).
  void run();

  /// Moves simulated time forward by `d` in steps of `step`, running every
  /// job that becomes due, so timers fire at their exact instants.
  void advance(caf::timespan d, caf::timespan step = 1ms);

  /// The current simulated time.
  caf::actor_clock::time_point now();

  /// A setup with the fake dialer and the recorder filled in.
  handler_setup setup(manager_config config = {});

  /// A setup that keeps `target` automatic connections, to addresses from
  /// counting_addresses().
  handler_setup automatic_setup(uint32_t target);

  /// Spawns the handler from `s` (must succeed) and runs its start-up.
  void spawn(handler_setup s);

  void start();

  uint64_t connect(const std::string& address, bool permanent);

  void disconnect(uint64_t id, bool trigger_reconnect = false);

  void remove(uint64_t id);

  /// Spawns and starts a handler that retries after `retry_duration`,
  /// connects one permanent peer at 127.0.0.1:18333 and requires it
  /// connected. Returns the request's id.
  uint64_t connect_one_permanent(caf::timespan retry_duration);

  /// Completes every dial the fake network holds (plan `hold`), then runs.
  void release_all(bool succeed);

  /// `config` with one fake listener (`fake_listener`) and no automatic
  /// outbound connections: spawns and starts the handler.
  void spawn_with_listener(manager_config config = {});

  /// Injects a connection from `from` at the fake listener and runs.
  connection_ptr inject(const std::string& from);

  /// The slot of the accepted connection `conn` (fails the test if none).
  uint64_t slot_of(const connection_ptr& conn);

  /// The listener of `spawn_with_listener`.
  fake_acceptor_actor fake_listener;

  /// The answer to a request: its value, or the error it was refused with.
  template <class T, class... Ts>
  caf::expected<T> answer(Ts... xs) {
    caf::expected<T> result{caf::error{}};
    bool answered = false;
    sys.spawn([&](caf::event_based_actor* self) {
      self->request(handler, caf::infinite, xs...)
        .then(
          [&](T& x) {
            result = std::move(x);
            answered = true;
          },
          [&](caf::error& err) {
            result = std::move(err);
            answered = true;
          });
    });
    run();
    REQUIRE(answered);
    return result;
  }

  /// The error a request with an empty answer was refused with, or none.
  template <class... Ts>
  caf::error refusal(Ts... xs) {
    caf::error result;
    bool answered = false;
    sys.spawn([&](caf::event_based_actor* self) {
      self->request(handler, caf::infinite, xs...)
        .then([&]() { answered = true; },
              [&](caf::error& err) {
                result = std::move(err);
                answered = true;
              });
    });
    run();
    REQUIRE(answered);
    return result;
  }

  /// Sends a request and runs until the answer arrived.
  template <class T, class... Ts>
  T ask(Ts... xs) {
    T result{};
    bool answered = false;
    auto asker = sys.spawn([&](caf::event_based_actor* self) {
      self->request(handler, caf::infinite, xs...).then([&](T& x) {
        result = std::move(x);
        answered = true;
      });
    });
    run();
    REQUIRE(answered);
    return result;
  }

  std::vector<conn_request> requests();

  conn_stats stats();

  /// Stops the handler and runs until it is gone; returns the final stats.
  conn_stats stop();

  /// The snapshot of request `id`, or a request with id 0 if it is gone.
  conn_request request_of(uint64_t id);

  /// The ids of every established request in the handler's snapshot.
  std::vector<uint64_t> established_ids();
};

/// Gives every IPv4 address a network group of its own, so the failures of
/// a dead network spread over many groups (as they do on the internet)
/// instead of all counting against one.
void one_group_per_address(manager_config& config);

/// An address source that counts up: "127.1.0.1:8333", "127.1.0.2:8333", ...
/// (never dialed for real: the fake network only records it).
address_function counting_addresses();

/// A fake plan: every dial fails with `errc::refused`.
fake_dial_plan refuse(const std::string&);

/// A fake plan: every dial stays in flight until released.
fake_dial_plan hold(const std::string&);

} // namespace connmgr::test
