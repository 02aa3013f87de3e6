#pragma once

#include <string>

#include <caf/meta/type_name.hpp>
#include <caf/timespan.hpp>

namespace connmgr {

/// One ban in force, as `(bans)` reports it: serializable, so a remote
/// operator can list bans.
struct ban_info {
  /// The banned prefix, "10.0.0.0/8" or "2001:db8::1/128" (a single host is
  /// a /32 or /128).
  std::string subnet;
  /// Why: the operator's text, or "misbehaving: <reasons>" for a score
  /// that reached the threshold.
  std::string reason;
  /// How long the ban still lasts, on the handler's clock.
  caf::timespan remaining{0};
};

/// Field-wise equality, for tests.
bool operator==(const ban_info& x, const ban_info& y);

/// Lets CAF print and serialize ban lists (see `add_message_types`).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ban_info& x) {
  return f(caf::meta::type_name("ban_info"), x.subnet, x.reason, x.remaining);
}

/// "10.0.0.0/8 for 23h (spam)".
std::string to_string(const ban_info& x);

} // namespace connmgr
