#include "connmgr/actors/listener_worker.hpp"

#include <caf/actor_cast.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace connmgr {

listener_sink_actor::behavior_type
listener_worker(listener_sink_actor::pointer self,
                conn_handler_internal_actor handler, uint32_t index,
                acceptor_actor acceptor) {
  self->send(acceptor, listen_atom::value,
             caf::actor_cast<listener_sink_actor>(self));
  return {
    [=](accepted_atom, connection_batch& batch) {
      self->send(handler, inbound_atom::value, index, std::move(batch));
    },
  };
}

} // namespace connmgr
