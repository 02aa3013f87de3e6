#include "connmgr/messages/peer_info.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

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
    && x.dial_time == y.dial_time && x.retry_count == y.retry_count
    && x.bytes_in == y.bytes_in && x.bytes_out == y.bytes_out
    && x.since_recv == y.since_recv && x.since_send == y.since_send
    && x.frames_in == y.frames_in && x.frames_out == y.frames_out
    && x.ping == y.ping && x.ban_score == y.ban_score && x.tags == y.tags;
}

std::string to_string(const peer_info& x) {
  auto local = x.local_address.empty() ? "none" : x.local_address;
  auto traffic = fmt::format(", in {} B, out {} B", x.bytes_in, x.bytes_out);
  if (x.frames_in + x.frames_out > 0)
    traffic += fmt::format(", frames {}/{}", x.frames_in, x.frames_out);
  if (x.ping.count() > 0)
    traffic += ", ping " + to_string_duration(x.ping);
  if (x.ban_score > 0)
    traffic += fmt::format(", score {}", x.ban_score);
  if (!x.tags.empty())
    traffic += fmt::format(", tags {}", fmt::join(x.tags, ","));
  if (x.kind == peer_class::inbound)
    return fmt::format("slot {} inbound on listener {} from {} (local {}, "
                       "open {}{})",
                       x.id, x.listener, x.remote_address, local,
                       to_string_duration(x.connected_for), traffic);
  return fmt::format("#{} outbound {}{} {} (local {}, open {}, dial {}, "
                     "retry {}{})",
                     x.id, to_string(x.kind), x.permanent ? " permanent" : "",
                     x.remote_address, local,
                     to_string_duration(x.connected_for),
                     to_string_duration(x.dial_time), x.retry_count, traffic);
}

} // namespace connmgr
