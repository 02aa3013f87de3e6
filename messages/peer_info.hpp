#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

namespace connmgr {

/// Why a connection exists, for budgets and for operators.
enum class peer_class : uint8_t {
  /// Dialed for a `connect` request (permanent or not).
  manual = 0,
  /// Dialed to reach the outbound target.
  automatic = 1,
  /// Accepted on a listener.
  inbound = 2,
};

/// "manual", "automatic" or "inbound".
std::string to_string(peer_class x);

/// One open connection the handler knows of, as `(peers)` reports it.
struct peer_info {
  /// The request id (outbound) or the admission slot (inbound, as in
  /// `accepted_event::slot`).
  uint64_t id = 0;
  peer_class kind = peer_class::manual;
  /// Outbound only: redialed with backoff until removed.
  bool permanent = false;
  /// Inbound only: the index of the listener that accepted it.
  uint32_t listener = 0;
  /// Where it leads: the dialed address, or where an inbound one came from.
  std::string remote_address;
  /// Our end ("127.0.0.1:41234"); empty for a connection without a socket.
  std::string local_address;
  /// How long it has been open, on the handler's clock.
  caf::timespan connected_for{0};
  /// Outbound only: from the start of the successful dial to its result.
  caf::timespan dial_time{0};
  /// Outbound only: failed attempts since the last stable connection.
  uint32_t retry_count = 0;
};

/// Field-wise equality, for tests.
bool operator==(const peer_info& x, const peer_info& y);

/// Lets CAF print and serialize peer lists (see `add_message_types`).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_info& x) {
  return f(caf::meta::type_name("peer_info"), x.id, x.kind, x.permanent,
           x.listener, x.remote_address, x.local_address, x.connected_for,
           x.dial_time, x.retry_count);
}

/// "#7 outbound manual permanent 127.0.0.1:8333 (local 127.0.0.1:41234,
/// open 12s, dial 1.2ms, retry 0)"; inbound ones "slot 3 inbound on
/// listener 0 ...".
std::string to_string(const peer_info& x);

} // namespace connmgr
