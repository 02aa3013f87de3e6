#include "messages/manager_config.hpp"

#include <fmt/format.h>

#include "messages/error_code.hpp"

namespace connmgr {

std::string to_string_duration(caf::timespan x) {
  using namespace std::chrono;
  auto ns = x.count();
  struct unit {
    int64_t ns;
    const char* name;
  };
  static constexpr unit units[] = {{3'600'000'000'000, "h"},
                                   {60'000'000'000, "min"},
                                   {1'000'000'000, "s"},
                                   {1'000'000, "ms"},
                                   {1'000, "us"}};
  for (auto& u : units) {
    if (ns != 0 && ns % u.ns == 0)
      return fmt::format("{}{}", ns / u.ns, u.name);
    if (ns >= u.ns || -ns >= u.ns)
      return fmt::format("{:g}{}", static_cast<double>(ns)
                                     / static_cast<double>(u.ns),
                         u.name);
  }
  return fmt::format("{}ns", ns);
}

namespace {

caf::error invalid(const char* field, const std::string& value,
                   const char* expected) {
  return make_error(errc::invalid_config,
                    fmt::format("{} = {}, expected {}", field, value,
                                expected));
}

} // namespace

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
  return caf::none;
}

} // namespace connmgr
