#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/fwd.hpp>

#include "connmgr/actors/stop_signal.hpp"
#include "connmgr/net/net_address.hpp"
#include "examples/node/node.hpp"

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::node_status)

namespace connmgr {

/// `(node_init, handler, dialer)`: the node's parts, sent once after spawn.
using node_init_atom = caf::atom_constant<caf::atom("node_init")>;
/// `(node_stat) -> node_status`: the node's current status.
using node_status_atom = caf::atom_constant<caf::atom("node_stat")>;

/// What the node actor is made of, handed over at spawn.
struct node_parts {
  node_setup setup;
  uint64_t node_id = 0;
  std::vector<net_address> bound;
  /// Fired once the actor is gone and so is everything it held.
  std::shared_ptr<stop_signal> done;
};

/// Spawns the node actor of `parts` (see `node`): it takes `node_init`,
/// `start`, `(stop, why)`, `node_stat` and every event of its handler, and
/// answers `get_address` as the handler's address source. Whatever ends it,
/// it takes its handler and dialer with it and fires `parts.done` last.
caf::actor spawn_node_actor(caf::actor_system& sys, node_parts parts);

/// A node id from the operating system's random source; never 0.
uint64_t random_node_id();

} // namespace connmgr
