#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/atom.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/ban_info.hpp"
#include "connmgr/messages/conn_limits.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/control_event.hpp"
#include "connmgr/messages/peer_info.hpp"

namespace connmgr {

/// `(ctl_sub, subscriber, credit) -> id`: subscribe to event summaries.
using subscribe_atom = caf::atom_constant<caf::atom("ctl_sub")>;
/// `(ctl_credit, id, n)`: the subscriber took `n` more events.
using credit_atom = caf::atom_constant<caf::atom("ctl_credit")>;
/// `(ctl_unsub, id)`: end a subscription.
using unsubscribe_atom = caf::atom_constant<caf::atom("ctl_unsub")>;
/// `(ctl_event, id, seq, summary)`: one event of subscription `id`.
using control_event_atom = caf::atom_constant<caf::atom("ctl_event")>;
/// `(ctl_drop, id, why)`: subscription `id` ended on the node's side.
using control_dropped_atom = caf::atom_constant<caf::atom("ctl_drop")>;

/// What a remote event subscriber handles: each event of its subscription
/// with a sequence number counting from 1 without gaps, and at most one
/// `ctl_drop` that ends it (too slow, or the node stopped). Nothing else
/// is ever sent to it.
using control_subscriber_actor = caf::typed_actor<
  caf::reacts_to<control_event_atom, uint64_t, uint64_t, event_summary>,
  caf::reacts_to<control_dropped_atom, uint64_t, std::string>>;

/// The remote control of one connection handler: only serializable
/// messages, so it can be published through CAF's middleman (see
/// `spawn_control`, and `add_message_types` on both ends). Every request
/// but the subscription ones is the handler's own, answered by the handler
/// (same replies and errors as `conn_handler_actor`):
/// - `(peers) -> list`, `(stats) -> counters`, `(bans) -> list`;
/// - `(connect, id, address, permanent) -> id`;
/// - `(disconnect, id, trigger_reconnect)`, `(remove, id)`: an empty reply,
///   or `errc::unknown_request`;
/// - `(ban, subnet, duration, reason) -> closed`, `(unban, subnet)`;
/// - `(protect, id, tag)`, `(unprotect, id, tag)`;
/// - `(limits) -> limits`, `(set_limits, limits) -> limits`;
/// - `(drain, timeout) -> final counters` (answered once the node's
///   handler has stopped).
///
/// Events, bounded by credit: `(ctl_sub, subscriber, credit) -> id` lets
/// the node send `subscriber` up to `credit` events (capped by
/// `control_options::max_credit`); each `(ctl_credit, id, n)` from the
/// subscriber itself grants `n` more. Events beyond the credit wait in a
/// queue of at most `control_options::max_queued`; one more and the
/// subscriber is dropped (`ctl_drop` with "too slow: ..."), never buffered
/// without bound. `(ctl_unsub, id)` ends a subscription. Refused with
/// `errc::limit_reached` beyond `control_options::max_subscribers`.
using control_actor = caf::typed_actor<
  caf::replies_to<peers_atom>::with<std::vector<peer_info>>,
  caf::replies_to<stats_atom>::with<conn_stats>,
  caf::replies_to<connect_atom, uint64_t, std::string, bool>::with<uint64_t>,
  caf::reacts_to<disconnect_atom, uint64_t, bool>,
  caf::reacts_to<remove_atom, uint64_t>,
  caf::replies_to<ban_atom, std::string, caf::timespan,
                  std::string>::with<uint64_t>,
  caf::reacts_to<unban_atom, std::string>,
  caf::replies_to<bans_atom>::with<std::vector<ban_info>>,
  caf::reacts_to<protect_atom, uint64_t, std::string>,
  caf::reacts_to<unprotect_atom, uint64_t, std::string>,
  caf::replies_to<limits_atom>::with<conn_limits>,
  caf::replies_to<set_limits_atom, conn_limits>::with<conn_limits>,
  caf::replies_to<drain_atom, caf::timespan>::with<conn_stats>,
  caf::replies_to<subscribe_atom, control_subscriber_actor,
                  uint32_t>::with<uint64_t>,
  caf::reacts_to<credit_atom, uint64_t, uint32_t>,
  caf::reacts_to<unsubscribe_atom, uint64_t>>;

/// Where the embedder reports its events for remote subscribers: a local
/// handle, never published (a remote client cannot forge events).
using control_feed_actor = caf::typed_actor<caf::reacts_to<event_summary>>;

} // namespace connmgr
