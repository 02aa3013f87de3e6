#include "connmgr/actors/manager.hpp"
#include "connmgr/actors/stop_signal.hpp"

#include <atomic>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/events.hpp"

namespace connmgr {

namespace {

using watch_atom = caf::atom_constant<caf::atom("watch")>;

using final_stats_signal = basic_stop_signal<conn_stats>;

// Calls the user's callbacks in event order. Its down message for the handler
// arrives after every event the handler sent, so firing the stop signal there
// means no callback runs after stop completes, and the stopped event (the
// final counters) has arrived unless the handler died without one.
caf::behavior event_bridge(caf::event_based_actor* self, manager_callbacks cb,
                           std::shared_ptr<final_stats_signal> done) {
  auto last = std::make_shared<conn_stats>();
  self->set_down_handler([self, done, last](caf::down_msg&) {
    done->fire(*last);
    self->quit();
  });
  return {
    [self](watch_atom, caf::actor& handler) { self->monitor(handler); },
    [cb](connected_event& ev) {
      if (cb.on_connection)
        cb.on_connection(ev.request, std::move(ev.conn));
    },
    [cb](disconnected_event& ev) {
      if (cb.on_disconnection)
        cb.on_disconnection(ev.request, ev.reason);
    },
    [cb](accepted_event& ev) {
      if (cb.on_inbound)
        cb.on_inbound(ev.listener, ev.slot, std::move(ev.conn));
      else if (cb.on_accept)
        cb.on_accept(ev.listener, std::move(ev.conn));
    },
    [cb](rejected_event& ev) {
      if (cb.on_reject)
        cb.on_reject(ev.listener, ev.remote_address, ev.reason);
    },
    [cb](failed_event& ev) {
      if (cb.on_failure)
        cb.on_failure(ev.request, ev.reason);
    },
    [cb](retry_event& ev) {
      if (cb.on_retry)
        cb.on_retry(ev.request, ev.delay);
    },
    [](drain_event&) {
      // The facade has no drain: only the handle's users see these.
    },
    [cb](banned_event& ev) {
      if (cb.on_ban)
        cb.on_ban(ev.subnet, ev.reason, ev.duration, ev.peer);
    },
    [last](stopped_event& ev) {
      // The down message that follows ends the bridge.
      *last = ev.stats;
    },
  };
}

} // namespace

struct manager::impl {
  caf::actor_system& sys;
  conn_handler_actor handler;
  // Held so the bridge outlives the handler: once the handler's state (the
  // only other handle) is gone, an unreferenced bridge would die before it
  // sees the handler's down message.
  caf::actor bridge;
  std::shared_ptr<final_stats_signal> done;

  impl(caf::actor_system& system, conn_handler_actor hdl, caf::actor brg,
       std::shared_ptr<final_stats_signal> signal)
    : sys(system), handler(std::move(hdl)), bridge(std::move(brg)),
      done(std::move(signal)) {
    // nop
  }
};

caf::expected<manager> manager::make(caf::actor_system& sys,
                                     handler_setup setup,
                                     manager_callbacks callbacks) {
  if (setup.events)
    return make_error(errc::invalid_config,
                      "events = an actor, expected none: the manager "
                      "receives events to call its callbacks");
  // Events without a callback are not sent at all.
  setup.subscribe.disconnected = static_cast<bool>(callbacks.on_disconnection);
  setup.subscribe.failed = static_cast<bool>(callbacks.on_failure);
  setup.subscribe.retry = static_cast<bool>(callbacks.on_retry);
  setup.subscribe.rejected = static_cast<bool>(callbacks.on_reject);
  setup.subscribe.banned = static_cast<bool>(callbacks.on_ban);
  // No callback reports evictions (the evicted connection is closed).
  setup.subscribe.evicted = false;
  auto done = std::make_shared<final_stats_signal>();
  auto bridge = sys.spawn(event_bridge, std::move(callbacks), done);
  // The bridge also takes `watch`, so it is spawned untyped; it handles
  // every event.
  setup.events = caf::actor_cast<conn_events_actor>(bridge);
  auto handler = spawn_conn_handler(sys, std::move(setup));
  if (!handler) {
    caf::anon_send_exit(bridge, caf::exit_reason::user_shutdown);
    return std::move(handler.error());
  }
  caf::anon_send(bridge, watch_atom::value,
                 caf::actor_cast<caf::actor>(*handler));
  return manager{
    std::make_unique<impl>(sys, std::move(*handler), std::move(bridge), done)};
}

manager::manager(std::unique_ptr<impl> ptr) : impl_(std::move(ptr)) {
  // nop
}

manager::manager(manager&&) noexcept = default;

manager& manager::operator=(manager&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      stop();
      wait();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

manager::~manager() {
  if (impl_) {
    stop();
    wait();
  }
}

void manager::start() {
  caf::anon_send(impl_->handler, start_atom::value);
}

std::shared_future<conn_stats> manager::stop() {
  caf::anon_send(impl_->handler, stop_atom::value);
  return impl_->done->future;
}

void manager::wait() {
  impl_->done->future.wait();
}

caf::expected<uint64_t> manager::connect(std::string address, bool permanent) {
  caf::expected<uint64_t> result = make_error(errc::stopped, "manager stopped");
  caf::scoped_actor self{impl_->sys};
  // Drawn here, so that a refusal's on_failure names it too.
  self
    ->request(impl_->handler, caf::infinite, connect_atom::value,
              next_request_id(), std::move(address), permanent)
    .receive([&](uint64_t id) { result = id; },
             [&](caf::error& err) {
               // A stopped handler answers nothing useful: say so plainly.
               if (err.category() == errc_category)
                 result = std::move(err);
             });
  return result;
}

void manager::disconnect(uint64_t id, bool trigger_reconnect) {
  caf::anon_send(impl_->handler, disconnect_atom::value, id, trigger_reconnect);
}

void manager::remove(uint64_t id) {
  caf::anon_send(impl_->handler, remove_atom::value, id);
}

void manager::inbound_ready(uint64_t slot) {
  caf::anon_send(impl_->handler, inbound_ready_atom::value, slot);
}

caf::expected<uint64_t> manager::ban(std::string subnet, caf::timespan duration,
                                     std::string reason) {
  caf::expected<uint64_t> result = make_error(errc::stopped, "manager stopped");
  caf::scoped_actor self{impl_->sys};
  self
    ->request(impl_->handler, caf::infinite, ban_atom::value, std::move(subnet),
              duration, std::move(reason))
    .receive([&](uint64_t closed) { result = closed; },
             [&](caf::error& err) {
               if (err.category() == errc_category)
                 result = std::move(err);
             });
  return result;
}

caf::error manager::unban(std::string subnet) {
  caf::error result = make_error(errc::stopped, "manager stopped");
  caf::scoped_actor self{impl_->sys};
  self
    ->request(impl_->handler, caf::infinite, unban_atom::value,
              std::move(subnet))
    .receive([&]() { result = caf::none; },
             [&](caf::error& err) {
               if (err.category() == errc_category)
                 result = std::move(err);
             });
  return result;
}

std::vector<ban_info> manager::bans() {
  std::vector<ban_info> result;
  caf::scoped_actor self{impl_->sys};
  self->request(impl_->handler, caf::infinite, bans_atom::value)
    .receive([&](std::vector<ban_info>& xs) { result = std::move(xs); },
             [](caf::error&) {
               // Stopped: no ban is in force.
             });
  return result;
}

void manager::misbehaving(uint64_t id, uint32_t points, std::string reason) {
  caf::anon_send(impl_->handler, misbehaving_atom::value, id, points,
                 std::move(reason));
}

std::vector<conn_request> manager::requests() {
  std::vector<conn_request> result;
  caf::scoped_actor self{impl_->sys};
  self->request(impl_->handler, caf::infinite, requests_atom::value)
    .receive([&](std::vector<conn_request>& xs) { result = std::move(xs); },
             [](caf::error&) {
               // Stopped: nothing is alive.
             });
  return result;
}

std::vector<peer_info> manager::peers() {
  std::vector<peer_info> result;
  caf::scoped_actor self{impl_->sys};
  self->request(impl_->handler, caf::infinite, peers_atom::value)
    .receive([&](std::vector<peer_info>& xs) { result = std::move(xs); },
             [](caf::error&) {
               // Stopped: nothing is open.
             });
  return result;
}

conn_stats manager::stats() {
  if (impl_->done->fired)
    return impl_->done->future.get();
  conn_stats result;
  bool answered = false;
  caf::scoped_actor self{impl_->sys};
  self->request(impl_->handler, caf::infinite, stats_atom::value)
    .receive(
      [&](conn_stats& x) {
        result = x;
        answered = true;
      },
      [](caf::error&) {
        // Gone: its down message is on the way to the bridge.
      });
  if (!answered)
    return impl_->done->future.get();
  return result;
}

const conn_handler_actor& manager::handle() const noexcept {
  return impl_->handler;
}

} // namespace connmgr
