#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/dialer_actor.hpp"

#include <vector>

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::vector<connmgr::connection_ptr>)

namespace connmgr {

/// Connections accepted together travel as one message.
using connection_batch = std::vector<connection_ptr>;

/// Receives accepted connections from an acceptor: implemented by the
/// manager's per-listener actor.
using listener_sink_actor =
  caf::typed_actor<caf::reacts_to<accepted_atom, connection_batch>>;

/// The pluggable source of inbound connections (a listening socket, or a fake
/// in tests). After `(listen, sink)` it sends every accepted connection to
/// `sink` in `(accepted, batch)` messages, in accept order. The manager owns it: it is sent an exit on
/// stop and must close its listening resource when it exits.
using acceptor_actor =
  caf::typed_actor<caf::reacts_to<listen_atom, listener_sink_actor>>;

} // namespace connmgr
