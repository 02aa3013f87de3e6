#pragma once

#include <cstdint>
#include <string>

namespace connmgr {

/// The life cycle of a connection request. `pending` and `failing` are the
/// live, not-connected states; `canceled` and `disconnected` are terminal.
/// A non-retried failure ends a request in `failing`.
enum class conn_state : uint8_t {
  /// Waiting for an address, a dial slot, or the dial itself.
  pending = 0,
  /// The last attempt failed; a retry may be scheduled.
  failing = 1,
  /// Removed before it connected. Terminal.
  canceled = 2,
  /// Connected; the connection was delivered to the user.
  established = 3,
  /// Connected once, then disconnected without a retry. Terminal.
  disconnected = 4,
};

/// The name of `x`, e.g. "established".
std::string to_string(conn_state x);

} // namespace connmgr
