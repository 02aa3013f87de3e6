#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "connmgr/net/net_address.hpp"

namespace connmgr {

/// What a node may dial among the addresses peers tell it about.
struct dial_policy_config {
  /// Whether gossip may name loopback, private (RFC 1918, RFC 4193),
  /// shared (100.64/10), link-local and documentation addresses. Off on an
  /// open network, where such gossip turns the node into a reflector
  /// against hosts next to it; on for swarms on one machine or a LAN.
  bool allow_local_addresses = false;
  /// The node's own endpoints (listening and metrics addresses): never
  /// dialed. A wildcard host (0.0.0.0, ::) stands for every loopback and
  /// unspecified host with that port.
  std::vector<net_address> own_endpoints;
};

/// The decision which gossiped addresses a node may dial: only IP literals
/// (host names come only from its configuration and DNS seeds), never port
/// 0, never its own endpoints, never unspecified, multicast, broadcast or
/// reserved hosts, and local ranges only when allowed. Plain value; the
/// reasons it names are stable, for events and metric labels.
class dial_policy {
public:
  explicit dial_policy(dial_policy_config cfg = {});

  /// Null when `addr` may be dialed; otherwise why not: "port_zero",
  /// "hostname", "own_address", or the name of its address class
  /// ("unspecified", "loopback", "private", "shared", "link_local",
  /// "multicast", "broadcast", "reserved", "documentation").
  const char* refusal(const net_address& addr) const;

  /// Keeps the addresses of `addrs` that may be dialed, in order, and adds
  /// one to `refused[reason]` for every other one.
  std::vector<net_address> filter(std::vector<net_address> addrs,
                                  std::map<std::string, size_t>& refused) const;

  /// The configuration in effect.
  const dial_policy_config& config() const noexcept {
    return cfg_;
  }

private:
  bool is_own(const net_address& addr) const;

  dial_policy_config cfg_;
};

} // namespace connmgr
