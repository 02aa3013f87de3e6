#pragma once

#include <cstdint>
#include <string>

#include <caf/behavior.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/timespan.hpp>

#include "messages/conn_handler_actor.hpp"
#include "messages/dialer_actor.hpp"

namespace connmgr {

/// One dial attempt as a small actor: asks `dialer` to dial `address`, sends
/// `connected` or `failed` for (`id`, `attempt`) to `handler`, and quits.
/// Killed before the answer, it tells the dialer to cancel the attempt; an
/// answer that still arrives is dropped, and its connection closes with its
/// last handle. A dialer that does not answer within `timeout` plus a grace
/// period counts as `errc::timed_out`.
caf::behavior dial_worker(caf::event_based_actor* self,
                          conn_handler_actor handler, dialer_actor dialer,
                          uint64_t id, uint64_t attempt, std::string address,
                          caf::timespan timeout);

} // namespace connmgr
