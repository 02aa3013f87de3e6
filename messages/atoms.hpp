#pragma once

#include <caf/atom.hpp>

namespace connmgr {

// Message tags of the connection handler, dialers and listeners. CAF 0.17
// atoms hold at most 10 characters.

/// Start automatic outbound requests and listeners.
using start_atom = caf::atom_constant<caf::atom("start")>;
/// Stop everything; the reply comes once everything is gone.
using stop_atom = caf::atom_constant<caf::atom("stop")>;
/// Make a manual request to a given address.
using connect_atom = caf::atom_constant<caf::atom("connect")>;
/// Disconnect, retrying per the request's rules.
using disconnect_atom = caf::atom_constant<caf::atom("disconnect")>;
/// Disconnect (or cancel) without retry.
using remove_atom = caf::atom_constant<caf::atom("remove")>;
/// Make one request from the address source.
using new_request_atom = caf::atom_constant<caf::atom("new_req")>;
/// Snapshot of every live request.
using requests_atom = caf::atom_constant<caf::atom("requests")>;
/// Every open connection, inbound and outbound.
using peers_atom = caf::atom_constant<caf::atom("peers")>;
/// Counters.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
/// The peer of an established connection closed or reset it.
using peer_gone_atom = caf::atom_constant<caf::atom("peer_gone")>;
/// The handler still has queued work that completed at once.
using run_later_atom = caf::atom_constant<caf::atom("run_later")>;
/// `(drain, timeout)`: close listeners, then every connection, then stop.
using drain_atom = caf::atom_constant<caf::atom("drain")>;
/// The earliest deadline for a dialer's answer passed.
using dial_deadline_atom = caf::atom_constant<caf::atom("dial_dline")>;
/// A drain's timeout passed.
using drain_deadline_atom = caf::atom_constant<caf::atom("drain_dl")>;
/// A timer of the handler fired.
using timer_atom = caf::atom_constant<caf::atom("timer")>;
/// An inbound connection reached the handler.
using inbound_atom = caf::atom_constant<caf::atom("inbound")>;
/// An admitted inbound connection closed: its slot is free.
using slot_free_atom = caf::atom_constant<caf::atom("slot_free")>;
/// Dial an address.
using dial_atom = caf::atom_constant<caf::atom("dial")>;
/// Cancel a dial.
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
/// Ask a dialer to confirm that every earlier cancel has taken effect.
using flush_atom = caf::atom_constant<caf::atom("flush")>;
/// Ask a dialer for its direct path (see `direct_dialer`).
using direct_atom = caf::atom_constant<caf::atom("direct")>;
/// The answer to a dial started on a direct path.
using dialed_atom = caf::atom_constant<caf::atom("dialed")>;
/// Ask an address source for an address.
using get_address_atom = caf::atom_constant<caf::atom("get_addr")>;
/// Tell an acceptor where to deliver accepted connections.
using listen_atom = caf::atom_constant<caf::atom("listen")>;
/// An acceptor accepted a connection.
using accepted_atom = caf::atom_constant<caf::atom("accepted")>;
/// `(in_ready, slot)`: the inbound connection of `slot` finished the
/// application's handshake.
using inbound_ready_atom = caf::atom_constant<caf::atom("in_ready")>;
/// `(in_ping, slot, rtt)`: a ping round trip of the inbound connection of
/// `slot`.
using inbound_ping_atom = caf::atom_constant<caf::atom("in_ping")>;
/// `(in_useful, slot)`: the inbound connection of `slot` just did something
/// useful for the application.
using inbound_useful_atom = caf::atom_constant<caf::atom("in_useful")>;

/// `(ban, subnet, duration, reason)`: ban an address or subnet.
using ban_atom = caf::atom_constant<caf::atom("ban")>;
/// `(unban, subnet)`: lift a ban.
using unban_atom = caf::atom_constant<caf::atom("unban")>;
/// Every ban in force.
using bans_atom = caf::atom_constant<caf::atom("bans")>;
/// `(protect, id, tag)` and `(unprotect, id, tag)`: tagged peers are never
/// evicted nor trimmed.
using protect_atom = caf::atom_constant<caf::atom("protect")>;
using unprotect_atom = caf::atom_constant<caf::atom("unprotect")>;
/// `(peer_stats, id, frames_in, frames_out, ping)`: what the application
/// counted of a peer, for `peers`.
using peer_stats_atom = caf::atom_constant<caf::atom("peer_stats")>;
/// The limits in force.
using limits_atom = caf::atom_constant<caf::atom("limits")>;
/// `(set_limits, limits)`: change limits at run time.
using set_limits_atom = caf::atom_constant<caf::atom("set_limits")>;
/// `(misbehave, id, points, reason)`: a peer broke the protocol.
using misbehaving_atom = caf::atom_constant<caf::atom("misbehave")>;

} // namespace connmgr
