#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/ban_info.hpp"
#include "connmgr/messages/conn_limits.hpp"
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
///   and retry per the request's rules (or cancel it if still pending); an
///   inbound peer's id closes it (an `evicted` event with rule
///   "disconnect"); answers `errc::unknown_request` for any other id.
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
/// - `(ban, subnet, duration, reason) -> closed`: bans an address or CIDR
///   subnet ("10.0.0.0/8", "2001:db8::/32", "203.0.113.7") for `duration`
///   (1 s up to 87600 h); renewing a ban replaces its duration and reason.
///   Closes every open connection inside it and answers how many; refused
///   with `errc::invalid_address`, `errc::invalid_config` (the duration) or
///   `errc::limit_reached` (`max_bans`).
/// - `(unban, subnet)`: lifts the ban of exactly `subnet`; answers
///   `errc::not_found` if there is none.
/// - `(bans) -> list`: every ban in force, ordered by subnet.
/// - `(misbehaving, id, points, reason)`: peer `id` (a request id or an
///   inbound slot: they never collide) broke the protocol. Adds `points` to
///   its misbehaviour score; at `ban_threshold` its address is banned for
///   `ban_duration` (a `banned` event). Answers `errc::unknown_request` for
///   an id that is no open connection.
/// - `(protect, id, tag)` / `(unprotect, id, tag)`: a peer (live request or
///   inbound slot) with any tag is never evicted nor closed by a lowered
///   limit; errors as `conn_machine::protect`.
/// - `(peer_stats, id, frames_in, frames_out, ping)`: the application's
///   counts of peer `id` (cumulative frames, the last ping round trip or
///   0), shown by `peers`; a ping of an inbound peer also counts for its
///   eviction protection, as `inbound_ping` does. Unknown ids are ignored.
/// - `(limits) -> limits`, `(set_limits, limits) -> limits`: the limits in
///   force, and new ones applied at once (see `conn_machine::set_limits`);
///   an invalid value is refused with the same error as at spawn.
/// - `(drain, timeout) -> final counters`: closes every listener and
///   cancels every pending request at once, lets open connections end (the
///   user may close them) until `timeout`, then closes the rest with
///   `errc::draining` and stops; `drain_event`s tell each step, and the
///   answer comes with the stop.
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
  caf::reacts_to<inbound_useful_atom, uint64_t>,
  caf::replies_to<ban_atom, std::string, caf::timespan,
                  std::string>::with<uint64_t>,
  caf::reacts_to<unban_atom, std::string>,
  caf::replies_to<bans_atom>::with<std::vector<ban_info>>,
  caf::reacts_to<misbehaving_atom, uint64_t, uint32_t, std::string>,
  caf::reacts_to<peer_stats_atom, uint64_t, uint64_t, uint64_t, caf::timespan>,
  caf::reacts_to<protect_atom, uint64_t, std::string>,
  caf::reacts_to<unprotect_atom, uint64_t, std::string>,
  caf::replies_to<limits_atom>::with<conn_limits>,
  caf::replies_to<set_limits_atom, conn_limits>::with<conn_limits>,
  caf::replies_to<drain_atom, caf::timespan>::with<conn_stats>>;

} // namespace connmgr
