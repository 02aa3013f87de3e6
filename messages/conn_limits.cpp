#include "connmgr/messages/conn_limits.hpp"

#include <optional>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

struct limit_field {
  const char* name;
  uint64_t conn_limits::*member;
};

/// Every field by name, in declaration order: the one list that printing,
/// comparing and converting read.
constexpr limit_field limit_fields[] = {
  {"target_outbound", &conn_limits::target_outbound},
  {"max_inbound", &conn_limits::max_inbound},
  {"max_inbound_per_ip", &conn_limits::max_inbound_per_ip},
  {"max_inbound_per_netgroup", &conn_limits::max_inbound_per_netgroup},
  {"max_pending_inbound", &conn_limits::max_pending_inbound},
  {"max_manual", &conn_limits::max_manual},
  {"max_permanent", &conn_limits::max_permanent},
  {"max_pending_dials", &conn_limits::max_pending_dials},
};

static_assert(sizeof(conn_limits) == std::size(limit_fields) * sizeof(uint64_t),
              "every conn_limits field must be in the list above");

uint64_t wide(const std::optional<uint32_t>& x) {
  return x ? uint64_t{*x} : conn_limits::unlimited;
}

} // namespace

bool operator==(const conn_limits& x, const conn_limits& y) {
  for (auto& f : limit_fields)
    if (x.*f.member != y.*f.member)
      return false;
  return true;
}

conn_limits limits_of(const manager_config& cfg) {
  conn_limits x;
  x.target_outbound = cfg.target_outbound;
  x.max_inbound = wide(cfg.max_inbound);
  x.max_inbound_per_ip = wide(cfg.max_inbound_per_ip);
  x.max_inbound_per_netgroup = wide(cfg.max_inbound_per_netgroup);
  x.max_pending_inbound = wide(cfg.max_pending_inbound);
  x.max_manual = wide(cfg.max_manual);
  x.max_permanent = wide(cfg.max_permanent);
  x.max_pending_dials = cfg.max_pending_dials;
  return x;
}

caf::expected<manager_config> with_limits(manager_config cfg,
                                          const conn_limits& x) {
  constexpr uint64_t uint32_max = 0xFFFF'FFFF;
  for (auto& f : limit_fields) {
    auto v = x.*f.member;
    bool optional_cap = f.member != &conn_limits::target_outbound
      && f.member != &conn_limits::max_pending_dials;
    if (v > uint32_max && !(optional_cap && v == conn_limits::unlimited))
      return make_error(errc::invalid_config,
                        fmt::format("{} = {}, expected at most {}{}", f.name, v,
                                    uint32_max,
                                    optional_cap ? " or unlimited" : ""));
  }
  auto narrow = [](uint64_t v) -> std::optional<uint32_t> {
    if (v == conn_limits::unlimited)
      return std::nullopt;
    return static_cast<uint32_t>(v);
  };
  cfg.target_outbound = static_cast<uint32_t>(x.target_outbound);
  cfg.max_inbound = narrow(x.max_inbound);
  cfg.max_inbound_per_ip = narrow(x.max_inbound_per_ip);
  cfg.max_inbound_per_netgroup = narrow(x.max_inbound_per_netgroup);
  cfg.max_pending_inbound = narrow(x.max_pending_inbound);
  cfg.max_manual = narrow(x.max_manual);
  cfg.max_permanent = narrow(x.max_permanent);
  cfg.max_pending_dials = static_cast<uint32_t>(x.max_pending_dials);
  return cfg;
}

std::string to_string(const conn_limits& x) {
  std::string out;
  for (auto& f : limit_fields) {
    if (!out.empty())
      out += ' ';
    auto v = x.*f.member;
    out += fmt::format("{}={}", f.name,
                       v == conn_limits::unlimited ? std::string{"unlimited"}
                                                   : std::to_string(v));
  }
  return out;
}

} // namespace connmgr
