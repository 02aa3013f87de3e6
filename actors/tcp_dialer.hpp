#pragma once

#include <memory>
#include <optional>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "connmgr/messages/dialer_actor.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

class reactor;
class resolver;

/// How a TCP dialer reaches its peers.
struct tcp_dialer_options {
  /// Dial through this SOCKS5 proxy (e.g. Tor) instead of directly. Host
  /// names are then resolved by the proxy, never locally.
  std::optional<net_address> proxy;
  /// With a proxy: authenticate every connection with its own random
  /// user name and password, so Tor puts each on its own circuit.
  bool isolate_streams = false;
};

/// Spawns the real dialer: non-blocking TCP connects on `io` within each
/// dial's deadline, host names resolved on `names` (never blocking a
/// scheduler thread), every resolved address tried in turn. Errors are
/// `invalid_address`, `refused`, `unreachable`, `timed_out`,
/// `resolve_failed`, `canceled`, `proxy_failed` or `dial_failed`. A cancel
/// closes the attempt's socket at once; on exit every attempt is canceled.
dialer_actor spawn_tcp_dialer(caf::actor_system& sys,
                              std::shared_ptr<reactor> io,
                              std::shared_ptr<resolver> names,
                              tcp_dialer_options options = {});

} // namespace connmgr
