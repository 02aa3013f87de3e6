#pragma once

#include <memory>
#include <utility>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

class reactor;

/// A listening TCP socket served by the reactor, as an acceptor actor.
struct tcp_listener {
  /// Hand it to the manager (`handler_setup::listeners`).
  acceptor_actor acceptor;
  /// Where it listens; with port 0 requested, the port the system chose.
  net_address bound;
};

/// Opens a listening socket on `addr` (SO_REUSEADDR; port 0 picks a free
/// port) at once, so a bad or busy address fails here. Connections queue in
/// the kernel's backlog until the manager starts the listener; then they are
/// accepted in batches by `io` and go straight to the listener's sink. When
/// the actor exits it closes the socket and only then finishes, so "gone"
/// means "closed".
caf::expected<tcp_listener> spawn_tcp_acceptor(caf::actor_system& sys,
                                               std::shared_ptr<reactor> io,
                                               const net_address& addr,
                                               int backlog = 1024);

} // namespace connmgr
