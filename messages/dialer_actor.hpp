#pragma once

#include <cstdint>
#include <string>

#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/atoms.hpp"
#include "connmgr/messages/direct_dialer.hpp"
#include "connmgr/messages/connection_ptr.hpp"

namespace connmgr {

/// The pluggable dial function, as an actor.
///
/// `(dial, dial_id, address, timeout)` answers with a connection, or with an
/// error (our `errc` category: refused, timed_out, unreachable, ...) no later
/// than `timeout` after it arrived. `dial_id` is unique per attempt across
/// the process, so several managers may share one dialer.
///
/// `(cancel, dial_id)` abandons that attempt: the dialer closes whatever it
/// opened for it at once; an answer may still come, and its connection will
/// be closed by the receiver (or by its last handle going away).
///
/// `(flush)` answers `true` once every cancel that reached the dialer before
/// it has taken effect (its sockets are closed), so a stopping manager can
/// promise that nothing it canceled is still open.
///
/// `(direct)` answers the dialer's `direct_dialer`, or null if it has none:
/// requesters then start the dials it takes without a message per dial.
using dialer_actor =
  caf::typed_actor<caf::replies_to<dial_atom, uint64_t, std::string,
                                   caf::timespan>::with<connection_ptr>,
                   caf::reacts_to<cancel_atom, uint64_t>,
                   caf::replies_to<flush_atom>::with<bool>,
                   caf::replies_to<direct_atom>::with<direct_dialer_ptr>>;

} // namespace connmgr
