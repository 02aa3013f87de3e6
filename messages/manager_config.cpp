#include "connmgr/messages/manager_config.hpp"

#include <cstdint>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

std::string to_string_duration(caf::timespan x) {
  auto ns = x.count();
  if (ns == 0)
    return "0ns";
  // The magnitude as unsigned: the negation of INT64_MIN is no int64_t.
  auto mag = ns < 0 ? uint64_t{0} - static_cast<uint64_t>(ns)
                    : static_cast<uint64_t>(ns);
  const char* sign = ns < 0 ? "-" : "";
  struct unit {
    uint64_t ns;
    const char* name;
    /// Decimal digits of a fraction of this unit; 0 where one nanosecond is
    /// no finite decimal fraction of it (h, min).
    int digits;
  };
  static constexpr unit units[] = {{3'600'000'000'000, "h", 0},
                                   {60'000'000'000, "min", 0},
                                   {1'000'000'000, "s", 9},
                                   {1'000'000, "ms", 6},
                                   {1'000, "us", 3}};
  for (auto& u : units) {
    if (mag % u.ns == 0)
      return fmt::format("{}{}{}", sign, mag / u.ns, u.name);
    if (u.digits > 0 && mag >= u.ns) {
      // Exact: every digit of the fraction, trailing zeros dropped.
      auto frac = fmt::format("{:0{}}", mag % u.ns, u.digits);
      frac.erase(frac.find_last_not_of('0') + 1);
      return fmt::format("{}{}.{}{}", sign, mag / u.ns, frac, u.name);
    }
  }
  return fmt::format("{}{}ns", sign, mag);
}

namespace {

caf::error invalid(const char* field, const std::string& value,
                   const char* expected) {
  return make_error(errc::invalid_config,
                    fmt::format("{} = {}, expected {}", field, value,
                                expected));
}

} // namespace

inbound_limits inbound_limits_of(const manager_config& cfg) {
  inbound_limits x;
  x.max_inbound = cfg.max_inbound;
  x.max_inbound_per_ip = cfg.max_inbound_per_ip;
  x.max_inbound_per_netgroup = cfg.max_inbound_per_netgroup;
  x.max_pending_inbound = cfg.max_pending_inbound;
  x.inbound_rate_per_ip = cfg.inbound_rate_per_ip;
  x.inbound_burst_per_ip = cfg.inbound_burst_per_ip;
  x.netgroup_bits_ipv4 = cfg.netgroup_bits_ipv4;
  x.netgroup_bits_ipv6 = cfg.netgroup_bits_ipv6;
  x.evict_when_full = cfg.evict_inbound;
  return x;
}

caf::error validate(const manager_config& cfg) {
  using caf::timespan;
  if (cfg.retry_duration <= timespan{0})
    return invalid("retry_duration", to_string_duration(cfg.retry_duration),
                   "> 0");
  if (cfg.max_retry_duration < cfg.retry_duration)
    return invalid("max_retry_duration",
                   to_string_duration(cfg.max_retry_duration),
                   ">= retry_duration");
  if (!(cfg.retry_jitter >= 0.0 && cfg.retry_jitter <= 1.0))
    return invalid("retry_jitter", fmt::format("{}", cfg.retry_jitter),
                   "a fraction in [0, 1]");
  if (cfg.max_failed_attempts == 0)
    return invalid("max_failed_attempts", "0", ">= 1");
  if (cfg.dial_timeout <= timespan{0})
    return invalid("dial_timeout", to_string_duration(cfg.dial_timeout),
                   "> 0");
  if (cfg.max_pending_dials == 0)
    return invalid("max_pending_dials", "0", ">= 1");
  if (cfg.stable_connection_period < timespan{0})
    return invalid("stable_connection_period",
                   to_string_duration(cfg.stable_connection_period), ">= 0");
  if (cfg.netgroup_bits_ipv4 < 1 || cfg.netgroup_bits_ipv4 > 32)
    return invalid("netgroup_bits_ipv4",
                   std::to_string(cfg.netgroup_bits_ipv4), "1..32");
  if (cfg.netgroup_bits_ipv6 < 1 || cfg.netgroup_bits_ipv6 > 128)
    return invalid("netgroup_bits_ipv6",
                   std::to_string(cfg.netgroup_bits_ipv6), "1..128");
  // Same field names as ours.
  return validate(inbound_limits_of(cfg));
}

} // namespace connmgr
