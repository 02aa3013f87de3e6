#pragma once

#include <cstdint>

#include <caf/error.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/conn_handler_actor.hpp"
#include "connmgr/messages/connection_ptr.hpp"

namespace connmgr {

/// The handler's full interface: the user's messages plus those only the
/// library sends (not installed; users hold a `conn_handler_actor`, through
/// which none of these compiles):
/// - `(run_later)` from itself: work that completed at once is still queued;
/// - `(dial_deadline)` from itself: dials past their deadline;
/// - `(inbound, listener, batch)` from a listener worker;
/// - `(slot_free, slot)` from a close hook: an inbound connection closed;
/// - `(peer_gone, id, conn, reason)` from the reactor's watch;
/// - `(timer, key)` from itself: a retry or throttle timer is due;
/// - `(drain_deadline)` from itself: a drain's timeout passed;
/// - `(dialed, attempt, conn | error)`: a direct dial's answer.
using conn_handler_internal_actor = conn_handler_actor::extend<
  caf::reacts_to<run_later_atom>, caf::reacts_to<dial_deadline_atom>,
  caf::reacts_to<inbound_atom, uint32_t, connection_batch>,
  caf::reacts_to<slot_free_atom, uint64_t>,
  caf::reacts_to<peer_gone_atom, uint64_t, connection_ptr, caf::error>,
  caf::reacts_to<timer_atom, uint64_t>, caf::reacts_to<drain_deadline_atom>,
  caf::reacts_to<dialed_atom, uint64_t, connection_ptr>,
  caf::reacts_to<dialed_atom, uint64_t, caf::error>>;

} // namespace connmgr
