#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  /// Bytes in and out, as the connection's reader and writer counted them
  /// (the reactor's byte streams do; 0 for a connection used otherwise).
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  /// Since the last byte in and out (steady clock); negative: none yet.
  caf::timespan since_recv{-1};
  caf::timespan since_send{-1};
  /// Protocol frames in and out, and the last ping round trip (0: none),
  /// as the application last reported them (`peer_stats`).
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  caf::timespan ping{0};
  /// The misbehaviour score now (see `misbehaving`).
  uint32_t ban_score = 0;
  /// Protection tags (see `protect`), in the order they were added.
  std::vector<std::string> tags;
};

/// Field-wise equality, for tests.
bool operator==(const peer_info& x, const peer_info& y);

/// Lets CAF print and serialize peer lists (see `add_message_types`).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, peer_info& x) {
  return f(caf::meta::type_name("peer_info"), x.id, x.kind, x.permanent,
           x.listener, x.remote_address, x.local_address, x.connected_for,
           x.dial_time, x.retry_count, x.bytes_in, x.bytes_out, x.since_recv,
           x.since_send, x.frames_in, x.frames_out, x.ping, x.ban_score,
           x.tags);
}

/// "#7 outbound manual permanent 127.0.0.1:8333 (local 127.0.0.1:41234,
/// open 12s, dial 1.2ms, retry 0)"; inbound ones "slot 3 inbound on
/// listener 0 ...".
std::string to_string(const peer_info& x);

} // namespace connmgr
