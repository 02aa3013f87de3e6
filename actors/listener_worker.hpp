#pragma once

#include <cstdint>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/actors/conn_handler_internal.hpp"

namespace connmgr {

/// The per-listener actor: subscribes to `acceptor` and forwards each
/// accepted connection to `handler`, tagged with the listener's `index`, so
/// the handler admits or rejects it before the user sees it.
listener_sink_actor::behavior_type
listener_worker(listener_sink_actor::pointer self,
                conn_handler_internal_actor handler, uint32_t index,
                acceptor_actor acceptor);

} // namespace connmgr
