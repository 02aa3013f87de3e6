#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "connmgr/net/socket_ops.hpp"

namespace connmgr::test {

/// The descriptors open now that were not in `before`, passing pipes aside
/// (is_passing_pipe). No waiting: what is listed is open now.
inline std::vector<open_descriptor>
new_descriptors(const std::vector<open_descriptor>& before) {
  auto fds = descriptors_left_open(before, std::chrono::milliseconds{0});
  fds.erase(std::remove_if(fds.begin(), fds.end(), is_passing_pipe), fds.end());
  return fds;
}

} // namespace connmgr::test
