#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <caf/meta/type_name.hpp>


namespace connmgr {

/// A serializable summary of one thing that happened in a node, as the
/// control interface streams it to remote subscribers (see
/// `control_actor`): the handler's events carry connections and stay in
/// their process, their summaries travel.
struct event_summary {
  /// The kind: `connected`, `disconnected`, `failed`, `retry`, `accepted`,
  /// `rejected`, `evicted`, `banned`, `stopped`, or whatever the embedder
  /// reports besides (a node reports its peer-protocol events too).
  std::string event;
  /// When it happened: milliseconds since the Unix epoch on the node's wall
  /// clock (for humans, never for decisions); 0 when unknown.
  int64_t ts_ms = 0;
  /// The request id or inbound slot; 0 when the event has none.
  uint64_t id = 0;
  /// The remote address, subnet or name the event is about; may be empty.
  std::string addr;
  /// Human-readable cause; may be empty.
  std::string reason;
  /// Short machine-readable cause (an error code name or a rule); may be
  /// empty.
  std::string reason_code;
  /// Every other fact, in a stable order, as (name, value) text:
  /// ("permanent", "true"), ("delay_ms", "2000"), ...
  std::vector<std::pair<std::string, std::string>> details;
};

/// Field-wise equality, for tests.
bool operator==(const event_summary& x, const event_summary& y);

/// Lets CAF print and serialize summaries (see `add_message_types`). The
/// order is part of the wire format: new fields go at the end.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event_summary& x) {
  return f(caf::meta::type_name("event_summary"), x.event, x.ts_ms, x.id,
           x.addr, x.reason, x.reason_code, x.details);
}

/// "connected #7 127.0.0.1:8333 permanent=true dial_us=1200".
std::string to_string(const event_summary& x);

/// The value of detail `name`, empty when there is none.
std::string detail_of(const event_summary& x, const std::string& name);

} // namespace connmgr
