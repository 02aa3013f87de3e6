#include "connmgr/messages/peer_info.hpp"

#include <fmt/format.h>

#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

std::string to_string(peer_class x) {
  switch (x) {
    case peer_class::manual:
      return "manual";
    case peer_class::automatic:
      return "automatic";
    case peer_class::inbound:
      return "inbound";
  }
  return "peer_class(" + std::to_string(static_cast<int>(x)) + ")";
}

bool operator==(const peer_info& x, const peer_info& y) {
  return x.id == y.id && x.kind == y.kind && x.permanent == y.permanent
    && x.listener == y.listener && x.remote_address == y.remote_address
    && x.local_address == y.local_address && x.connected_for == y.connected_for
    && x.dial_time == y.dial_time && x.retry_count == y.retry_count;
}

std::string to_string(const peer_info& x) {
  auto local = x.local_address.empty() ? "none" : x.local_address;
  if (x.kind == peer_class::inbound)
    return fmt::format("slot {} inbound on listener {} from {} (local {}, "
                       "open {})",
                       x.id, x.listener, x.remote_address, local,
                       to_string_duration(x.connected_for));
  return fmt::format("#{} outbound {}{} {} (local {}, open {}, dial {}, "
                     "retry {})",
                     x.id, to_string(x.kind), x.permanent ? " permanent" : "",
                     x.remote_address, local,
                     to_string_duration(x.connected_for),
                     to_string_duration(x.dial_time), x.retry_count);
}

} // namespace connmgr
