#pragma once

// Shared scaffolding for tests that run actors on CAF's test coordinator:
// one thread, simulated time, every job run explicitly.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

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
  std::vector<connected_event> connected;
  std::vector<disconnected_event> disconnected;
  std::vector<failed_event> failed;
  std::vector<retry_event> retries;
  std::vector<accepted_event> accepted;
  std::vector<rejected_event> rejected;
  std::vector<evicted_event> evicted;
  std::vector<stopped_event> stopped;
  /// Event kinds in arrival order, for checks on ordering.
  std::vector<std::string> order;
};

inline caf::behavior event_recorder(caf::event_based_actor*,
                                    std::shared_ptr<event_log> log) {
  return {
    [log](connected_event& ev) {
      log->order.emplace_back("connected");
      log->connected.push_back(std::move(ev));
    },
    [log](disconnected_event& ev) {
      log->order.emplace_back("disconnected");
      log->disconnected.push_back(std::move(ev));
    },
    [log](failed_event& ev) {
      log->order.emplace_back("failed");
      log->failed.push_back(std::move(ev));
    },
    [log](retry_event& ev) {
      log->order.emplace_back("retry");
      log->retries.push_back(std::move(ev));
    },
    [log](accepted_event& ev) {
      log->order.emplace_back("accepted");
      log->accepted.push_back(std::move(ev));
    },
    [log](rejected_event& ev) {
      log->order.emplace_back("rejected");
      log->rejected.push_back(std::move(ev));
    },
    [log](evicted_event& ev) {
      log->order.emplace_back("evicted");
      log->evicted.push_back(std::move(ev));
    },
    [log](stopped_event& ev) {
      log->order.emplace_back("stopped");
      log->stopped.push_back(std::move(ev));
    },
  };
}

struct sim_config : caf::actor_system_config {
  sim_config() {
    set("scheduler.policy", caf::atom("testing"));
    set("logger.verbosity", caf::atom("quiet"));
    connmgr::add_error_category(*this);
  }
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

  ~sim_fixture() {
    // A handler left running would keep timers armed and hang shutdown.
    if (handler)
      stop();
    caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(recorder, caf::exit_reason::user_shutdown);
    run();
  }

  /// Runs every job that is ready now (no time passes).
  void run() {
    while (sched.try_run_once())
      ; // nop
  }

  /// Moves simulated time forward by `d` in steps of `step`, running every
  /// job that becomes due, so timers fire at their exact instants.
  void advance(caf::timespan d, caf::timespan step = 1ms) {
    run();
    while (d.count() > 0) {
      auto dt = std::min(d, step);
      sched.advance_time(dt);
      run();
      d -= dt;
    }
  }

  /// The current simulated time.
  caf::actor_clock::time_point now() {
    return sys.clock().now();
  }

  /// A setup with the fake dialer and the recorder filled in.
  handler_setup setup(manager_config config = {}) {
    handler_setup result;
    result.config = config;
    result.dialer = dialer;
    result.events = caf::actor_cast<conn_events_actor>(recorder);
    return result;
  }

  /// Spawns the handler from `s` (must succeed) and runs its start-up.
  void spawn(handler_setup s) {
    auto hdl = spawn_conn_handler(sys, std::move(s));
    REQUIRE_MESSAGE(hdl, (hdl ? std::string{} : describe(hdl.error())));
    handler = std::move(*hdl);
    run();
  }

  void start() {
    caf::anon_send(handler, start_atom::value);
    run();
  }

  uint64_t connect(const std::string& address, bool permanent) {
    auto id = next_request_id();
    caf::anon_send(handler, connect_atom::value, id, address, permanent);
    run();
    return id;
  }

  void disconnect(uint64_t id, bool trigger_reconnect = false) {
    caf::anon_send(handler, disconnect_atom::value, id, trigger_reconnect);
    run();
  }

  void remove(uint64_t id) {
    caf::anon_send(handler, remove_atom::value, id);
    run();
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

  std::vector<conn_request> requests() {
    return ask<std::vector<conn_request>>(requests_atom::value);
  }

  conn_stats stats() {
    return ask<conn_stats>(stats_atom::value);
  }

  /// Stops the handler and runs until it is gone; returns the final stats.
  conn_stats stop() {
    auto result = ask<conn_stats>(stop_atom::value);
    handler = nullptr;
    return result;
  }

  /// The snapshot of request `id`, or a request with id 0 if it is gone.
  conn_request request_of(uint64_t id) {
    for (auto& req : requests())
      if (req.id == id)
        return req;
    return conn_request{};
  }
};

/// An address source that counts up: "127.1.0.1:8333", "127.1.0.2:8333", ...
/// (never dialed for real: the fake network only records it).
inline address_function counting_addresses() {
  auto n = std::make_shared<int>(0);
  return [n]() -> caf::expected<std::string> {
    ++*n;
    return "127.1." + std::to_string(*n / 250) + "." + std::to_string(*n % 250)
      + ":8333";
  };
}

/// A fake plan: every dial fails with `errc::refused`.
inline fake_dial_plan refuse(const std::string&) {
  return {fake_dial_plan::fail, make_error(errc::refused)};
}

/// A fake plan: every dial stays in flight until released.
inline fake_dial_plan hold(const std::string&) {
  return {fake_dial_plan::hold, {}};
}

} // namespace connmgr::test
