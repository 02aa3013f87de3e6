#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/conn_request.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/dialer_actor.hpp"
#include "connmgr/messages/peer_info.hpp"

namespace connmgr {

/// The connection handler as its users see it: these typed messages replace
/// the reference's requests channel, and nothing else can be sent through
/// this handle (the handler's internal messages are not part of it).
/// - `(start)`: idempotent; starts automatic outbound requests and listeners.
/// - `(connect, id, address, permanent) -> id`: a manual request; `id` 0 lets
///   the handler draw one. Refused with an error (stopped, invalid_address,
///   duplicate_address, duplicate_request) and a failed event.
/// - `(disconnect, id, trigger_reconnect)`: close an established connection
///   and retry per the request's rules (or cancel it if still pending);
///   answers `errc::unknown_request` for an id that is not a live request.
/// - `(remove, id)`: close or cancel without retry; same answers.
/// - `(new_req)`: one extra one-shot request from the address source.
/// - `(requests) -> snapshot`: every live request, pending ones included.
/// - `(peers) -> list`: every open connection the handler knows of, outbound
///   (established requests) by id, then inbound (admitted, not yet closed)
///   by slot; see `peer_info`.
/// - `(stats) -> counters`.
/// - `(stop) -> final counters`: answered only once every child actor is gone
///   and every connection the manager still owned is closed.
/// - `(inbound_ready, slot)`, `(inbound_ping, slot, rtt)`,
///   `(inbound_useful, slot)`: what the application knows of the inbound
///   connection of `slot` (see `accepted_event`), for admission and
///   eviction: a ready peer no longer counts as a pending handshake, and
///   the fastest and most recently useful peers are protected.
using conn_handler_actor = caf::typed_actor<
  caf::reacts_to<start_atom>,
  caf::replies_to<connect_atom, uint64_t, std::string, bool>::with<uint64_t>,
  caf::reacts_to<disconnect_atom, uint64_t, bool>,
  caf::reacts_to<remove_atom, uint64_t>, caf::reacts_to<new_request_atom>,
  caf::replies_to<requests_atom>::with<std::vector<conn_request>>,
  caf::replies_to<peers_atom>::with<std::vector<peer_info>>,
  caf::replies_to<stats_atom>::with<conn_stats>,
  caf::replies_to<stop_atom>::with<conn_stats>,
  caf::reacts_to<inbound_ready_atom, uint64_t>,
  caf::reacts_to<inbound_ping_atom, uint64_t, caf::timespan>,
  caf::reacts_to<inbound_useful_atom, uint64_t>>;

} // namespace connmgr
