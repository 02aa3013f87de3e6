#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/actor_control_block.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/timespan.hpp>

namespace connmgr {

/// A dialer's way to start dials from the requester's own thread, with no
/// message to the dialer per dial: a dialer that can start dials from any
/// thread offers one (see `dialer_actor`'s `direct`).
class direct_dialer {
public:
  virtual ~direct_dialer() = default;

  /// Starts dial `dial_id` of `address` if this path can take it, and then
  /// returns a nonzero token for `cancel`; the answer reaches `reply_to` as
  /// `(dialed, dial_id, connection_ptr)` or `(dialed, dial_id, caf::error)`
  /// no later than `timeout` from now, exactly once. Returns 0 without doing
  /// anything for a dial this path does not take (say, a host name to
  /// resolve): that one goes to the dialer actor as usual.
  virtual uint64_t try_dial(uint64_t dial_id, const std::string& address,
                            caf::timespan timeout,
                            const caf::strong_actor_ptr& reply_to) = 0;

  /// Abandons the dial of `token` like the actor's `cancel`: its socket
  /// closes before anything the dialer actor does after this call (a
  /// `flush` sent afterwards covers it), and its answer, if still due, is
  /// `errc::canceled`.
  virtual void cancel(uint64_t token) = 0;
};

/// Shared: the dialer actor and every handler it gave the path to hold it.
using direct_dialer_ptr = std::shared_ptr<direct_dialer>;

} // namespace connmgr

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::direct_dialer_ptr)
