#pragma once

#include <atomic>
#include <memory>

#include <caf/fwd.hpp>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr {

/// Hands a connection to a fake acceptor as if it had just been accepted.
using inject_atom = caf::atom_constant<caf::atom("inject")>;

/// What a test can observe of a fake acceptor.
struct fake_acceptor_record {
  /// Set when the acceptor exited, i.e. its "listening socket" closed.
  std::atomic<bool> closed{false};
  /// Connections handed to the sink so far.
  std::atomic<uint64_t> delivered{0};
};

/// The fake acceptor's interface: an acceptor plus `inject`.
using fake_acceptor_actor =
  acceptor_actor::extend<caf::reacts_to<inject_atom, connection_ptr>>;

/// Spawns an acceptor without a socket: each injected connection goes to the
/// listening sink (buffered until `listen` arrives). Marks `record->closed`
/// when it exits.
fake_acceptor_actor
spawn_fake_acceptor(caf::actor_system& sys,
                    std::shared_ptr<fake_acceptor_record> record);

} // namespace connmgr
