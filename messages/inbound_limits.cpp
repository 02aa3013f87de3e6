#include "connmgr/messages/inbound_limits.hpp"

#include <cmath>
#include <string>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

caf::error invalid(const char* field, const std::string& value,
                   const char* expected) {
  return make_error(
    errc::invalid_config,
    fmt::format("{} = {}, expected {}", field, value, expected));
}

} // namespace

caf::error validate(const inbound_limits& x) {
  if (x.max_inbound_per_ip && *x.max_inbound_per_ip == 0)
    return invalid("max_inbound_per_ip", "0", ">= 1");
  if (x.max_inbound_per_netgroup && *x.max_inbound_per_netgroup == 0)
    return invalid("max_inbound_per_netgroup", "0", ">= 1");
  if (x.max_pending_inbound && *x.max_pending_inbound == 0)
    return invalid("max_pending_inbound", "0", ">= 1");
  // Negated comparisons so NaN fails too.
  if (x.inbound_rate_per_ip
      && !(*x.inbound_rate_per_ip > 0.0
           && std::isfinite(*x.inbound_rate_per_ip)))
    return invalid("inbound_rate_per_ip",
                   fmt::format("{}", *x.inbound_rate_per_ip),
                   "a finite number > 0");
  // A bucket that cannot hold one token would refuse every arrival.
  if (!(x.inbound_burst_per_ip >= 1.0 && std::isfinite(x.inbound_burst_per_ip)))
    return invalid("inbound_burst_per_ip",
                   fmt::format("{}", x.inbound_burst_per_ip),
                   "a finite number >= 1");
  if (x.max_rate_tracked_ips == 0)
    return invalid("max_rate_tracked_ips", "0", ">= 1");
  if (x.netgroup_bits_ipv4 < 1 || x.netgroup_bits_ipv4 > 32)
    return invalid("netgroup_bits_ipv4", std::to_string(x.netgroup_bits_ipv4),
                   "1..32");
  if (x.netgroup_bits_ipv6 < 1 || x.netgroup_bits_ipv6 > 128)
    return invalid("netgroup_bits_ipv6", std::to_string(x.netgroup_bits_ipv6),
                   "1..128");
  return caf::none;
}

} // namespace connmgr
