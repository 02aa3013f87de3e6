#pragma once

#include <cstdint>
#include <string>

#include <caf/meta/type_name.hpp>

#include "connmgr/messages/conn_state.hpp"

namespace connmgr {

/// A value snapshot of one connection request, as events and queries carry it.
/// Ids come from one process-wide counter and are never reused.
struct conn_request {
  /// Unique, never reused; 0 means "not assigned yet".
  uint64_t id = 0;
  /// Where the request dials; empty while waiting for the address source.
  std::string address;
  /// Permanent requests are redialed with backoff until removed.
  bool permanent = false;
  /// True for requests the manager made to reach its outbound target; false
  /// for requests made by `connect`.
  bool automatic = false;
  /// Where the request is in its life cycle.
  conn_state state = conn_state::pending;
  /// Failed attempts since the last stable connection.
  uint32_t retry_count = 0;
};

/// Field-wise equality, for tests and change detection.
inline bool operator==(const conn_request& x, const conn_request& y) {
  return x.id == y.id && x.address == y.address && x.permanent == y.permanent
    && x.automatic == y.automatic && x.state == y.state
    && x.retry_count == y.retry_count;
}

/// Lets CAF print (and later serialize) snapshots.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conn_request& x) {
  return f(caf::meta::type_name("conn_request"), x.id, x.address, x.permanent,
           x.automatic, x.state, x.retry_count);
}

/// "#7 127.0.0.1:8333 (permanent, established, retry 0)".
std::string to_string(const conn_request& x);

/// Draws a request id from the one process-wide counter: unique, never
/// reused, never 0. Thread-safe. Pass it to `connect` to know a request's id
/// before its first event (an id of 0 lets the handler draw one).
uint64_t next_request_id();

/// The latest id `next_request_id` returned (0 before the first): any id
/// above it was never drawn.
uint64_t last_drawn_request_id() noexcept;

} // namespace connmgr
