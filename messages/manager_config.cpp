#include "connmgr/messages/manager_config.hpp"

#include <cmath>
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

config_violation invalid(const char* field, std::string value,
                         std::string expected,
                         std::vector<std::string> expected_fields = {}) {
  config_violation x;
  x.fields.emplace_back(field);
  x.values.push_back(value);
  x.value = std::move(value);
  x.expected = std::move(expected);
  x.expected_fields = std::move(expected_fields);
  return x;
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

std::optional<config_violation> find_violation(const manager_config& cfg) {
  using caf::timespan;
  if (cfg.retry_duration <= timespan{0})
    return invalid("retry_duration", to_string_duration(cfg.retry_duration),
                   "> 0");
  if (cfg.max_retry_duration < cfg.retry_duration)
    return invalid("max_retry_duration",
                   to_string_duration(cfg.max_retry_duration), ">= {}",
                   {"retry_duration"});
  if (!(cfg.retry_jitter >= 0.0 && cfg.retry_jitter <= 1.0))
    return invalid("retry_jitter", fmt::format("{}", cfg.retry_jitter),
                   "a fraction in [0, 1]");
  if (cfg.max_failed_attempts == 0)
    return invalid("max_failed_attempts", "0", ">= 1");
  if (cfg.dial_timeout <= timespan{0})
    return invalid("dial_timeout", to_string_duration(cfg.dial_timeout), "> 0");
  if (cfg.max_pending_dials == 0)
    return invalid("max_pending_dials", "0", ">= 1");
  if (cfg.stable_connection_period < timespan{0})
    return invalid("stable_connection_period",
                   to_string_duration(cfg.stable_connection_period), ">= 0");
  if (cfg.ban_threshold == 0)
    return invalid("ban_threshold", "0", ">= 1");
  if (cfg.ban_duration <= timespan{0})
    return invalid("ban_duration", to_string_duration(cfg.ban_duration), "> 0");
  if (cfg.max_bans == 0)
    return invalid("max_bans", "0", ">= 1");
  if (cfg.netgroup_bits_ipv4 < 1 || cfg.netgroup_bits_ipv4 > 32)
    return invalid("netgroup_bits_ipv4", std::to_string(cfg.netgroup_bits_ipv4),
                   "1..32");
  if (cfg.netgroup_bits_ipv6 < 1 || cfg.netgroup_bits_ipv6 > 128)
    return invalid("netgroup_bits_ipv6", std::to_string(cfg.netgroup_bits_ipv6),
                   "1..128");
  // The admission fields, checked as `validate(inbound_limits)` checks them
  // (same names, same texts); `validate` runs that one too, so the two
  // cannot drift apart unnoticed.
  if (cfg.max_inbound_per_ip && *cfg.max_inbound_per_ip == 0)
    return invalid("max_inbound_per_ip", "0", ">= 1");
  if (cfg.max_inbound_per_netgroup && *cfg.max_inbound_per_netgroup == 0)
    return invalid("max_inbound_per_netgroup", "0", ">= 1");
  if (cfg.max_pending_inbound && *cfg.max_pending_inbound == 0)
    return invalid("max_pending_inbound", "0", ">= 1");
  // Negated comparisons so NaN fails too.
  if (cfg.inbound_rate_per_ip
      && !(*cfg.inbound_rate_per_ip > 0.0
           && std::isfinite(*cfg.inbound_rate_per_ip)))
    return invalid("inbound_rate_per_ip",
                   fmt::format("{}", *cfg.inbound_rate_per_ip),
                   "a finite number > 0");
  if (!(cfg.inbound_burst_per_ip >= 1.0
        && std::isfinite(cfg.inbound_burst_per_ip)))
    return invalid("inbound_burst_per_ip",
                   fmt::format("{}", cfg.inbound_burst_per_ip),
                   "a finite number >= 1");
  return std::nullopt;
}

std::optional<config_violation>
check_descriptor_limit(const manager_config& cfg, uint64_t listeners,
                       uint64_t fd_limit, uint64_t reserve) {
  uint64_t inbound = cfg.max_inbound.value_or(0);
  auto wanted = uint64_t{cfg.target_outbound} + inbound + listeners;
  auto room = fd_limit > reserve ? fd_limit - reserve : uint64_t{0};
  if (fd_limit == 0 || wanted <= room)
    return std::nullopt;
  config_violation x;
  x.fields = {"target_outbound", "max_inbound", "listeners"};
  x.values = {std::to_string(cfg.target_outbound),
              cfg.max_inbound ? std::to_string(*cfg.max_inbound)
                              : std::string{"unlimited (0)"},
              std::to_string(listeners)};
  x.value = std::to_string(wanted);
  x.expected =
    fmt::format("at most {} to fit the open-file limit of {}", room, fd_limit);
  return x;
}

std::string render_expected(const config_violation& x,
                            const std::vector<std::string>& names) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < x.expected.size(); ++i) {
    if (x.expected.compare(i, 2, "{}") == 0 && next < names.size()) {
      out += names[next++];
      ++i;
    } else {
      out += x.expected[i];
    }
  }
  return out;
}

caf::error to_error(const config_violation& x) {
  std::string fields;
  for (auto& f : x.fields)
    fields += (fields.empty() ? "" : " + ") + f;
  return make_error(errc::invalid_config,
                    fmt::format("{} = {}, expected {}", fields, x.value,
                                render_expected(x, x.expected_fields)));
}

caf::error validate(const manager_config& cfg) {
  if (auto x = find_violation(cfg))
    return to_error(*x);
  // Same field names as ours.
  return validate(inbound_limits_of(cfg));
}

} // namespace connmgr
