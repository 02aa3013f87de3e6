#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

namespace connmgr {

/// Counters and gauges of one manager. Counters only grow; gauges describe
/// the moment of the snapshot.
struct conn_stats {
  /// Counter: requests ever made (automatic and manual).
  uint64_t requests_created = 0;
  /// Counter: dials started.
  uint64_t dials_started = 0;
  /// Counter: dials that produced a connection in time to be used.
  uint64_t dials_succeeded = 0;
  /// Counter: dials (and address look-ups) that failed.
  uint64_t dials_failed = 0;
  /// Counter: connections that arrived for a canceled request or after stop,
  /// and were closed by the manager instead of being delivered.
  uint64_t late_connections_closed = 0;
  /// Counter: retries scheduled with backoff.
  uint64_t retries_scheduled = 0;
  /// Counter: replacements delayed by the failed-attempts throttle.
  uint64_t throttled = 0;
  /// Counter: established outbound connections disconnected.
  uint64_t disconnections = 0;
  /// Counter: inbound connections admitted.
  uint64_t inbound_accepted = 0;
  /// Counter: inbound connections rejected (limit reached or stopping).
  uint64_t inbound_rejected = 0;
  /// Counter: admitted inbound connections closed to make room.
  uint64_t inbound_evicted = 0;
  /// Gauge: requests alive (any state but terminal).
  uint64_t live_requests = 0;
  /// Gauge: established outbound connections.
  uint64_t outbound_established = 0;
  /// Gauge: dials in flight.
  uint64_t dials_in_flight = 0;
  /// Gauge: requests waiting for a dial slot.
  uint64_t dials_queued = 0;
  /// Gauge: inbound slots held.
  uint64_t inbound_live = 0;
  /// Gauge: consecutive failed attempts of automatic requests.
  uint64_t failed_attempts = 0;
  /// Counter: connects, dials and inbound connections refused by a ban.
  uint64_t banned_refused = 0;
  /// Counter: open connections closed because their address was banned.
  uint64_t banned_closed = 0;
  /// Gauge: bans held (some may have ended and not been forgotten yet).
  uint64_t bans = 0;
  /// Counter: dials and inbound connections a gate vetoed (its own veto,
  /// or no answer in time when it fails closed); also counted in
  /// `dials_failed` or `inbound_rejected`.
  uint64_t gate_vetoes = 0;
};

/// Field-wise equality, for tests and change detection.
bool operator==(const conn_stats& x, const conn_stats& y);

/// Lets CAF serialize the counters (register them with `add_message_types`).
/// The order is part of the wire format: new fields go at the end.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conn_stats& x) {
  return f(caf::meta::type_name("conn_stats"), x.requests_created,
           x.dials_started, x.dials_succeeded, x.dials_failed,
           x.late_connections_closed, x.retries_scheduled, x.throttled,
           x.disconnections, x.inbound_accepted, x.inbound_rejected,
           x.live_requests, x.outbound_established, x.dials_in_flight,
           x.dials_queued, x.inbound_live, x.failed_attempts, x.inbound_evicted,
           x.banned_refused, x.banned_closed, x.bans, x.gate_vetoes);
}

/// Every counter by name, e.g. "conn_stats(requests_created=3,
/// dials_started=5, ...)"; CAF's `to_string` and `deep_to_string` use it.
std::string to_string(const conn_stats& x);

} // namespace connmgr
