// Sends one message through the public handler handle. Built as is (the
// control) it must compile; with CONNMGR_FORGE set to one of the handler's
// internal messages it must not: tests/CMakeLists.txt checks that the build
// fails with CAF's "receiver does not accept given message".

#include <cstdint>

#include <caf/error.hpp>
#include <caf/send.hpp>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/conn_handler_actor.hpp"

#define CONNMGR_FORGE_none 0
#define CONNMGR_FORGE_slot_free 1
#define CONNMGR_FORGE_inbound 2
#define CONNMGR_FORGE_peer_gone 3
#define CONNMGR_FORGE_dialed 4

void send_through_public_handle(const connmgr::conn_handler_actor& handler) {
  using namespace connmgr;
#if CONNMGR_FORGE == CONNMGR_FORGE_none
  caf::anon_send(handler, inbound_ready_atom::value, uint64_t{1});
#elif CONNMGR_FORGE == CONNMGR_FORGE_slot_free
  caf::anon_send(handler, slot_free_atom::value, uint64_t{1});
#elif CONNMGR_FORGE == CONNMGR_FORGE_inbound
  caf::anon_send(handler, inbound_atom::value, uint32_t{0},
                 connection_batch{nullptr});
#elif CONNMGR_FORGE == CONNMGR_FORGE_peer_gone
  caf::anon_send(handler, peer_gone_atom::value, uint64_t{1}, connection_ptr{},
                 caf::error{});
#elif CONNMGR_FORGE == CONNMGR_FORGE_dialed
  caf::anon_send(handler, dialed_atom::value, uint64_t{1}, connection_ptr{});
#endif
}
