#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "connmgr/messages/conn_handler_actor.hpp"
#include "connmgr/messages/control_actor.hpp"
#include "connmgr/messages/control_event.hpp"
#include "connmgr/messages/events.hpp"

namespace connmgr {

/// Bounds of the remote control's event subscriptions.
struct control_options {
  /// Subscriptions at once (1..1024; default 16); one more is refused with
  /// `errc::limit_reached`.
  uint32_t max_subscribers = 16;
  /// The most credit a subscriber may hold, i.e. events sent and not yet
  /// acknowledged (1..65536; default 256): what may sit in the middleman's
  /// buffers for it.
  uint32_t max_credit = 256;
  /// Events kept per subscriber while it has no credit (0..65536; default
  /// 1024); one more drops the subscriber.
  uint32_t max_queued = 1024;
  /// Called on the control's actor thread when a subscriber is dropped
  /// (for the embedder's log): its subscription id and why. Must not block.
  std::function<void(uint64_t id, const std::string& why)> on_dropped;
};

/// The two ends of a remote control.
struct control_handles {
  /// Publish this one (`caf::openssl::publish` or the middleman's
  /// `publish`); it keeps the handler handle alive while it runs.
  control_actor control;
  /// Report events here, e.g. `caf::anon_send(feed, summarize(ev))`: keep it
  /// in the process.
  control_feed_actor feed;
};

/// Spawns a remote control of `handler` (see `control_actor`): requests go
/// to the handler, events reported to `feed` go to subscribers within their
/// credit. Stopping `control` (an exit message) stops `feed` too and tells
/// each subscriber "node stopping". Fails with `errc::invalid_config` naming
/// the option when `handler` is invalid or a bound is out of range.
caf::expected<control_handles> spawn_control(caf::actor_system& sys,
                                             conn_handler_actor handler,
                                             control_options opts = {});

// -- summaries of the handler's events ----------------------------------------
// For embedders that feed their handler's events to `spawn_control`; `ts_ms`
// is left 0 for the caller to stamp.

/// `connected`: id, address, permanent, dial_us.
event_summary summarize(const connected_event& x);
/// `disconnected`: id, address, reason, permanent, state.
event_summary summarize(const disconnected_event& x);
/// `failed`: id, address, reason, permanent, state, dial_us.
event_summary summarize(const failed_event& x);
/// `retry`: id, address, permanent, delay_ms.
event_summary summarize(const retry_event& x);
/// `accepted`: slot, listener, the remote address when there is a connection.
event_summary summarize(const accepted_event& x);
/// `rejected`: remote address, reason, rule, listener.
event_summary summarize(const rejected_event& x);
/// `evicted`: slot, remote address, reason, rule.
event_summary summarize(const evicted_event& x);
/// `banned`: subnet, reason, peer, duration_ms.
event_summary summarize(const banned_event& x);
/// `draining`: the step as reason_code, open, timeout_ms.
event_summary summarize(const drain_event& x);
/// `stopped`.
event_summary summarize(const stopped_event& x);

} // namespace connmgr
