#pragma once

#include <cstdint>
#include <optional>

#include <caf/error.hpp>

namespace connmgr {

/// Every tunable of inbound admission (`inbound_admission`): how many inbound
/// connections are held at once, how many one source may hold or open, and
/// which peers eviction keeps. A plain value; `validate` accepts or rejects a
/// whole configuration. Defaults aim at a public node: each limit is one an
/// honest peer does not reach, while a single host or network cannot hold
/// the node's inbound slots.
///
/// "Per IP" means per IPv4 address and per IPv6 /64 (one subscriber usually
/// holds a whole /64); IPv4-mapped IPv6 addresses count as the IPv4 address
/// they carry. A netgroup is the first `netgroup_bits_ipv4` or
/// `netgroup_bits_ipv6` bits of the address.
struct inbound_limits {
  // -- slot limits -----------------------------------------------------------

  /// Inbound connections held at once: unset = unlimited, 0 = refuse all.
  /// 114 as in Bitcoin Core (125 connections minus 11 outbound).
  std::optional<uint32_t> max_inbound = 114;

  /// Inbound connections one IPv4 address or IPv6 /64 may hold; unset =
  /// unlimited, else >= 1. Default 4: one host gets at most 4 of the 114
  /// default slots (3.5 %), and more than 4 nodes behind one NAT address
  /// connecting to the same peer is rare (they can still connect out).
  std::optional<uint32_t> max_inbound_per_ip = 4;

  /// Inbound connections one netgroup may hold; unset (default) =
  /// unlimited, else >= 1. Off by default because eviction already takes
  /// from the biggest netgroup first, and a hard cap would lock out every
  /// further user of a large provider's /16.
  std::optional<uint32_t> max_inbound_per_netgroup;

  /// Inbound connections that have not finished the protocol handshake
  /// (the embedder reports readiness); unset = unlimited, else >= 1.
  /// Default 32: an honest handshake takes a few round trips, so even a burst
  /// of arrivals after a restart stays well below it, while connections that
  /// never finish (slowloris) hold at most 32 of the 114 slots. At the limit
  /// a newcomer evicts the oldest unprotected pending connection when
  /// `evict_when_full` is set, else it is rejected.
  std::optional<uint32_t> max_pending_inbound = 32;

  // -- rate limit ------------------------------------------------------------

  /// New connections per second one IPv4 address or IPv6 /64 may open
  /// (a token bucket per source, one token per arrival, rejected arrivals
  /// included); unset = unlimited, else > 0. Default 1/s: an honest peer
  /// connects once and stays, and reconnects after backoff.
  std::optional<double> inbound_rate_per_ip = 1.0;

  /// Size of each source's bucket: arrivals one source may make at once
  /// before `inbound_rate_per_ip` applies. >= 1. Default 10.
  double inbound_burst_per_ip = 10.0;

  /// Sources whose buckets are remembered at once; >= 1. Buckets that
  /// refilled completely are forgotten (losing nothing); when the table is
  /// full of buckets still refilling, the least recently used one is
  /// forgotten, so that source starts again with a full burst. Default
  /// 10 000 (measured: 1.5 MB when full of IPv4 sources, 1.8 MB of IPv6).
  uint32_t max_rate_tracked_ips = 10'000;

  // -- netgroups -------------------------------------------------------------

  /// Prefix length of an IPv4 netgroup, 1..32. Default 16 as in Bitcoin
  /// Core.
  uint32_t netgroup_bits_ipv4 = 16;

  /// Prefix length of an IPv6 netgroup, 1..128. Default 32 as in Bitcoin
  /// Core (a typical allocation to one provider).
  uint32_t netgroup_bits_ipv6 = 32;

  // -- eviction --------------------------------------------------------------

  /// When every inbound slot is taken, evict one unprotected peer for a
  /// newcomer from another netgroup (Bitcoin Core's
  /// AttemptToEvictConnection); when the pending limit is reached, evict the
  /// oldest pending connection. Off: reject the newcomer instead.
  bool evict_when_full = true;

  /// Peers kept from eviction one per netgroup, for this many netgroups
  /// chosen by a keyed hash an attacker cannot predict. Default 4 as in
  /// Bitcoin Core.
  uint32_t protect_netgroups = 4;

  /// Peers with the lowest reported ping kept from eviction. Default 8 as in
  /// Bitcoin Core.
  uint32_t protect_lowest_ping = 8;

  /// Peers most recently reported useful kept from eviction. Default 4 as in
  /// Bitcoin Core (its recent transaction relayers).
  uint32_t protect_recently_useful = 4;
};

/// Checks every field of `x`. Returns `errc::invalid_config` whose context
/// names the first bad field, its value and what was expected, e.g.
/// "max_inbound_per_ip = 0, expected >= 1".
caf::error validate(const inbound_limits& x);

} // namespace connmgr
