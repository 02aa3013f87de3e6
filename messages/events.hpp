#pragma once

#include <cstdint>
#include <string>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/error.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/conn_request.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/connection_ptr.hpp"

// Events reach the actor the user names, in the order the handler decided
// them. They carry connections, which are process-local, so they are never
// serialized.

namespace connmgr {

/// An outbound request connected; `conn` is the user's from now on.
struct connected_event {
  conn_request request;
  connection_ptr conn;
  /// From the start of the successful dial to its result, on the actor clock.
  caf::timespan dial_time{0};
};

/// An established outbound connection was closed by the manager;
/// `request.state` says whether it will be retried (pending) or not.
struct disconnected_event {
  conn_request request;
  caf::error reason;
};

/// An attempt failed, a request was canceled, or a `connect` was refused;
/// `request.state` tells whether the request lives on (failing, with a retry
/// event following) or ended (failing or canceled, with nothing following).
struct failed_event {
  conn_request request;
  caf::error reason;
  /// From the start of the failed dial to its result, on the actor clock;
  /// zero when no dial was running (a refusal, a missing address, a cancel
  /// while waiting).
  caf::timespan dial_time{0};
};

/// A retry of `request` is scheduled after `delay`.
struct retry_event {
  conn_request request;
  caf::timespan delay;
};

/// An inbound connection was admitted on listener `listener` (an index into
/// the configured listeners); `conn` is the user's. Its inbound slot is held
/// until `conn` is closed.
struct accepted_event {
  uint32_t listener;
  connection_ptr conn;
  /// The inbound slot, for the reports of `conn_handler_actor`
  /// (`inbound_ready`, `inbound_ping`, `inbound_useful`).
  uint64_t slot = 0;
};

/// An inbound connection was refused (and closed) on listener `listener`.
struct rejected_event {
  uint32_t listener;
  std::string remote_address;
  caf::error reason;
  /// The rule that refused it: "banned" (checked first, before any
  /// admission rule counts the connection), "gated" (a gate vetoed it,
  /// `errc::vetoed`; see `gate_setup`), "inbound_limit",
  /// "per_ip_limit", "per_netgroup_limit", "pending_limit", "rate_limit" or
  /// "stopped".
  std::string rule;
};

/// An admitted inbound connection (slot `slot`) was closed by the manager
/// by the rule `rule`: "evicted_for_newcomer" (inbound slots were full),
/// "evicted_slow_handshake" (handshake slots were full) or "banned" (its
/// address was banned; `reason` is `errc::banned`). Its slot is free.
struct evicted_event {
  uint64_t slot = 0;
  std::string remote_address;
  caf::error reason;
  std::string rule;
};

/// `subnet` was banned until `duration` from now: by the operator (`peer`
/// 0), or because peer `peer` misbehaved up to `ban_threshold`. Every open
/// connection inside it is closed (a `disconnected` or `evicted` event with
/// `errc::banned` each), and no dial or accept reaches it until the ban
/// ends or is lifted.
struct banned_event {
  std::string subnet;
  std::string reason;
  caf::timespan duration{0};
  uint64_t peer = 0;
};

/// A step of a drain: "started" (listeners closed, pending requests
/// canceled; `open` connections remain, `timeout` left), "deadline" (the
/// timeout passed: the `open` connections left were closed with
/// `errc::draining`). A `stopped_event` follows once everything is gone.
struct drain_event {
  std::string step;
  uint64_t open = 0;
  caf::timespan timeout{0};
};

/// The manager stopped; nothing follows. Carries the final counters.
struct stopped_event {
  conn_stats stats;
};

/// The receiver of a handler's events (`handler_setup::events`): it must
/// handle every event, so a forgotten one is a compile error rather than an
/// "unexpected message" at run time. Each event arrives with the handler
/// that sent it as sender (`self->current_sender()`), so one receiver can
/// serve several handlers. The handler sends events only, never requests.
using conn_events_actor = caf::typed_actor<
  caf::reacts_to<connected_event>, caf::reacts_to<disconnected_event>,
  caf::reacts_to<failed_event>, caf::reacts_to<retry_event>,
  caf::reacts_to<accepted_event>, caf::reacts_to<rejected_event>,
  caf::reacts_to<evicted_event>, caf::reacts_to<banned_event>,
  caf::reacts_to<drain_event>, caf::reacts_to<stopped_event>>;

/// The events that only inform, each of which an events actor may decline:
/// one not wanted costs no message. Connected, accepted and stopped events
/// are always sent (they hand over a connection or end the stream).
struct event_subscription {
  bool disconnected = true;
  bool failed = true;
  bool retry = true;
  bool rejected = true;
  bool evicted = true;
  bool banned = true;
};

} // namespace connmgr

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::connected_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::disconnected_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::failed_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::retry_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::accepted_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::rejected_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::evicted_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::banned_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::drain_event)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::stopped_event)
