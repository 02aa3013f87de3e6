#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace connmgr {

/// One thing that happened in a `connmgr-node`, as its log and its metrics
/// see it. A flat value so that every output format (text line, JSON object,
/// metric update) reads the same fields; a field that does not apply keeps
/// its default (0, empty or unset) and is left out of the output.
///
/// Kinds (`event`):
/// - manager: `connected`, `accepted`, `rejected`, `failed`, `retry`,
///   `disconnected`, `stopped`;
/// - peer protocol: `peer_ready` (hello exchanged), `peer_dropped` (the node
///   closed a connection: self, duplicate, protocol error, handshake or ping
///   timeout), `peer_closed` (the peer went away or the connection ended);
/// - address book: `learned` (addresses added from gossip or DNS), `seeded`
///   (a DNS lookup finished), `gossip_dropped` (gossiped addresses refused:
///   `addr` is the gossiping peer, `reason_code` why, e.g. `hostname`,
///   `loopback`, `private`, `multicast`, `port_zero`, `own_address`,
///   `rate_limited`, and `count` how many addresses);
/// - inbound policy: `rejected` (above) carries the rule in `reason_code`;
///   `evicted` (an inbound peer closed to make room for a new one, or
///   because it was banned: `addr` is that peer, `reason_code` names the
///   rule that chose it, `banned` for a ban);
/// - bans: `banned` (`addr` is the banned subnet, `id` the peer whose
///   misbehaviour caused it or 0, `reason` why, `delay_ms` how long).
struct node_event {
  /// The kind, one of the names above.
  std::string event;
  /// Connection request id; 0 when the event has none (inbound, book).
  uint64_t id = 0;
  /// The remote address (or, for `seeded`, the seed name).
  std::string addr;
  /// Whether the request is permanent; unset for inbound and book events.
  std::optional<bool> permanent;
  /// Human-readable cause for `rejected`, `failed`, `disconnected`,
  /// `peer_dropped` and `peer_closed` (the error's full description).
  std::string reason;
  /// Short machine-readable cause: the error code name (`refused`,
  /// `timed_out`, ...), the drop reason (`self`, `duplicate`, `protocol`,
  /// `handshake_timeout`, `ping_timeout`, `frame_rate`, `ping_rate`, `addr_rate`,
  /// `slow_reader`) or the rule of a refusal, an eviction or dropped
  /// gossip. Empty when there is none.
  std::string reason_code;
  /// For `retry`: the delay before the next attempt; for `banned`: how long
  /// the ban lasts. In milliseconds.
  std::optional<int64_t> delay_ms;
  /// For `connected` and `failed` after a dial: how long the dial took, in
  /// microseconds.
  std::optional<int64_t> dial_us;
  /// For `peer_ready`, `peer_dropped` and `peer_closed`: the peer's node id
  /// once known (0 before the hello).
  uint64_t peer_node = 0;
  /// For `peer_*` events: whether this node dialed the connection.
  std::optional<bool> outbound;
  /// For `learned`, `seeded` and `gossip_dropped`: how many addresses.
  std::optional<uint64_t> count;
};

/// A periodic snapshot of a node, for its status line and gauges.
struct node_status {
  /// Established outbound connections (automatic and manual).
  uint64_t outbound = 0;
  /// Configured automatic outbound target.
  uint64_t target_outbound = 0;
  /// Inbound connections held.
  uint64_t inbound = 0;
  /// Inbound limit; unset when unlimited.
  std::optional<uint64_t> max_inbound;
  /// Dials in flight plus requests queued for a dial slot.
  uint64_t pending_dials = 0;
  /// Counter: dial attempts that failed.
  uint64_t failures = 0;
  /// Counter: retries scheduled with backoff.
  uint64_t retries = 0;
  /// Consecutive failed attempts of automatic requests right now.
  uint64_t failed_attempts = 0;
  /// Peers whose hello was exchanged (both directions).
  uint64_t peers_ready = 0;
  /// Addresses in the address book.
  uint64_t known_addresses = 0;
};

} // namespace connmgr
