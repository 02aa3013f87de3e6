#include "connmgr/messages/ban_info.hpp"

#include <fmt/format.h>

#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

bool operator==(const ban_info& x, const ban_info& y) {
  return x.subnet == y.subnet && x.reason == y.reason
    && x.remaining == y.remaining;
}

std::string to_string(const ban_info& x) {
  return fmt::format("{} for {} ({})", x.subnet,
                     to_string_duration(x.remaining), x.reason);
}

} // namespace connmgr
