// The remote control: a published actor that hands the operator's requests
// to the handler (delegated, so the handler answers the remote client
// directly), and a local hub that streams event summaries to subscribers
// within the credit each one grants.
#include "connmgr/actors/control.hpp"

#include <deque>
#include <map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

/// The hub takes the feed's events and the subscription requests the
/// control delegates to it.
using control_hub_actor = control_feed_actor::extend<
  caf::replies_to<subscribe_atom, control_subscriber_actor,
                  uint32_t>::with<uint64_t>,
  caf::reacts_to<credit_atom, uint64_t, uint32_t>,
  caf::reacts_to<unsubscribe_atom, uint64_t>>;

struct subscriber {
  control_subscriber_actor handle;
  /// Events it may still be sent.
  uint32_t credit = 0;
  /// Sequence number of the last event sent.
  uint64_t seq = 0;
  /// Events waiting for credit, at most `max_queued`.
  std::deque<event_summary> queue;
};

struct hub_state {
  control_options opts;
  uint64_t next_id = 1;
  std::map<uint64_t, subscriber> subs;
  static inline const char* name = "connmgr.control_hub";
};

using hub_pointer = control_hub_actor::stateful_pointer<hub_state>;

void drop(hub_pointer self, uint64_t id, const std::string& why) {
  auto i = self->state.subs.find(id);
  if (i == self->state.subs.end())
    return;
  auto handle = i->second.handle;
  self->state.subs.erase(i);
  self->demonitor(handle.address());
  self->send(handle, control_dropped_atom::value, id, why);
  if (self->state.opts.on_dropped)
    self->state.opts.on_dropped(id, why);
}

void send_one(hub_pointer self, uint64_t id, subscriber& sub,
              event_summary ev) {
  --sub.credit;
  self->send(sub.handle, control_event_atom::value, id, ++sub.seq,
             std::move(ev));
}

uint32_t capped_add(uint32_t credit, uint32_t more, uint32_t cap) {
  auto sum = uint64_t{credit} + more;
  return static_cast<uint32_t>(sum < cap ? sum : cap);
}

control_hub_actor::behavior_type control_hub(hub_pointer self,
                                             control_options opts) {
  self->state.opts = std::move(opts);
  self->set_down_handler([self](caf::down_msg& msg) {
    // The subscriber went away (its connection too): forget it quietly.
    for (auto i = self->state.subs.begin(); i != self->state.subs.end();) {
      if (i->second.handle.address() == msg.source)
        i = self->state.subs.erase(i);
      else
        ++i;
    }
  });
  self->set_exit_handler([self](caf::exit_msg& msg) {
    std::vector<uint64_t> ids;
    for (auto& [id, sub] : self->state.subs)
      ids.push_back(id);
    for (auto id : ids)
      drop(self, id, "node stopping");
    self->quit(msg.reason);
  });
  return {
    [self](event_summary& ev) {
      auto& st = self->state;
      std::vector<uint64_t> too_slow;
      for (auto& [id, sub] : st.subs) {
        if (sub.credit > 0 && sub.queue.empty())
          send_one(self, id, sub, ev);
        else if (sub.queue.size() < st.opts.max_queued)
          sub.queue.push_back(ev);
        else
          too_slow.push_back(id);
      }
      for (auto id : too_slow)
        drop(self, id,
             fmt::format("too slow: {} events waiting for credit, at most "
                         "{} kept",
                         st.opts.max_queued + 1, st.opts.max_queued));
    },
    [self](subscribe_atom, control_subscriber_actor& who,
           uint32_t credit) -> caf::result<uint64_t> {
      auto& st = self->state;
      if (!who)
        return make_error(errc::invalid_config,
                          "subscriber = none, expected an actor");
      if (st.subs.size() >= st.opts.max_subscribers)
        return make_error(errc::limit_reached,
                          fmt::format("event subscribers: {} already, at most "
                                      "{}",
                                      st.subs.size(), st.opts.max_subscribers));
      auto id = st.next_id++;
      subscriber sub;
      sub.handle = who;
      sub.credit = capped_add(0, credit, st.opts.max_credit);
      st.subs.emplace(id, std::move(sub));
      self->monitor(who);
      return id;
    },
    [self](credit_atom, uint64_t id, uint32_t more) {
      auto i = self->state.subs.find(id);
      if (i == self->state.subs.end())
        return;
      auto& sub = i->second;
      // Only the subscriber itself grants credit for its own stream.
      if (self->current_sender() != sub.handle.address())
        return;
      sub.credit = capped_add(sub.credit, more, self->state.opts.max_credit);
      while (sub.credit > 0 && !sub.queue.empty()) {
        auto ev = std::move(sub.queue.front());
        sub.queue.pop_front();
        send_one(self, id, sub, std::move(ev));
      }
    },
    [self](unsubscribe_atom, uint64_t id) {
      auto i = self->state.subs.find(id);
      if (i == self->state.subs.end())
        return;
      if (self->current_sender() != i->second.handle.address())
        return;
      self->demonitor(i->second.handle.address());
      self->state.subs.erase(i);
    },
  };
}

struct control_state {
  conn_handler_actor handler;
  control_hub_actor hub;
  static inline const char* name = "connmgr.control";
};

control_actor::behavior_type
control_main(control_actor::stateful_pointer<control_state> self,
             conn_handler_actor handler, control_hub_actor hub) {
  self->state.handler = std::move(handler);
  self->state.hub = std::move(hub);
  self->link_to(self->state.hub);
  auto h = [self] { return self->state.handler; };
  return {
    [self, h](peers_atom x) { return self->delegate(h(), x); },
    [self, h](stats_atom x) { return self->delegate(h(), x); },
    [self, h](connect_atom x, uint64_t id, std::string& addr, bool perm) {
      return self->delegate(h(), x, id, std::move(addr), perm);
    },
    [self, h](disconnect_atom x, uint64_t id, bool reconnect) {
      return self->delegate(h(), x, id, reconnect);
    },
    [self, h](remove_atom x, uint64_t id) {
      return self->delegate(h(), x, id);
    },
    [self, h](ban_atom x, std::string& subnet, caf::timespan duration,
              std::string& reason) {
      return self->delegate(h(), x, std::move(subnet), duration,
                            std::move(reason));
    },
    [self, h](unban_atom x, std::string& subnet) {
      return self->delegate(h(), x, std::move(subnet));
    },
    [self, h](bans_atom x) { return self->delegate(h(), x); },
    [self, h](protect_atom x, uint64_t id, std::string& tag) {
      return self->delegate(h(), x, id, std::move(tag));
    },
    [self, h](unprotect_atom x, uint64_t id, std::string& tag) {
      return self->delegate(h(), x, id, std::move(tag));
    },
    [self, h](limits_atom x) { return self->delegate(h(), x); },
    [self, h](set_limits_atom x, conn_limits& limits) {
      return self->delegate(h(), x, std::move(limits));
    },
    [self, h](drain_atom x, caf::timespan timeout) {
      return self->delegate(h(), x, timeout);
    },
    [self](subscribe_atom x, control_subscriber_actor& who, uint32_t credit) {
      return self->delegate(self->state.hub, x, std::move(who), credit);
    },
    [self](credit_atom x, uint64_t id, uint32_t more) {
      return self->delegate(self->state.hub, x, id, more);
    },
    [self](unsubscribe_atom x, uint64_t id) {
      return self->delegate(self->state.hub, x, id);
    },
  };
}

caf::error check_bound(const char* key, uint32_t value, uint32_t lo,
                       uint32_t hi) {
  if (value >= lo && value <= hi)
    return caf::none;
  return make_error(errc::invalid_config,
                    fmt::format("control_options.{} = {}: expected {}..{}", key,
                                value, lo, hi));
}

} // namespace

caf::expected<control_handles> spawn_control(caf::actor_system& sys,
                                             conn_handler_actor handler,
                                             control_options opts) {
  if (!handler)
    return make_error(errc::invalid_config,
                      "handler = none, expected a running handler");
  if (auto err = check_bound("max_subscribers", opts.max_subscribers, 1, 1024))
    return err;
  if (auto err = check_bound("max_credit", opts.max_credit, 1, 65536))
    return err;
  if (auto err = check_bound("max_queued", opts.max_queued, 0, 65536))
    return err;
  auto hub = sys.spawn(control_hub, std::move(opts));
  auto control = sys.spawn(control_main, std::move(handler), hub);
  return control_handles{control, caf::actor_cast<control_feed_actor>(hub)};
}

} // namespace connmgr
