#pragma once

#include <cstdint>
#include <limits>
#include <string>

#include <caf/expected.hpp>
#include <caf/meta/type_name.hpp>

#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

/// The limits a running handler changes with `(set_limits, limits)`: a
/// serializable snapshot of the matching `manager_config` fields. Optional
/// caps are `unlimited` here (every value fits 64 bits, so 2^32 - 1 stays a
/// real cap).
struct conn_limits {
  /// Stands for an unset (unlimited) optional cap.
  static constexpr uint64_t unlimited = std::numeric_limits<uint64_t>::max();

  uint64_t target_outbound = 0;
  uint64_t max_inbound = unlimited;
  uint64_t max_inbound_per_ip = unlimited;
  uint64_t max_inbound_per_netgroup = unlimited;
  uint64_t max_pending_inbound = unlimited;
  uint64_t max_manual = unlimited;
  uint64_t max_permanent = unlimited;
  uint64_t max_pending_dials = 0;
};

/// Field-wise equality.
bool operator==(const conn_limits& x, const conn_limits& y);

/// Lets CAF print and serialize limits (see `add_message_types`).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, conn_limits& x) {
  return f(caf::meta::type_name("conn_limits"), x.target_outbound,
           x.max_inbound, x.max_inbound_per_ip, x.max_inbound_per_netgroup,
           x.max_pending_inbound, x.max_manual, x.max_permanent,
           x.max_pending_dials);
}

/// The limits of `cfg`.
conn_limits limits_of(const manager_config& cfg);

/// `cfg` with `x` applied, not validated. Fails with `errc::invalid_config`
/// naming the field when a value does not fit (a count above 2^32 - 1).
caf::expected<manager_config> with_limits(manager_config cfg,
                                          const conn_limits& x);

/// "target_outbound=8 max_inbound=114 ... max_permanent=unlimited".
std::string to_string(const conn_limits& x);

} // namespace connmgr
