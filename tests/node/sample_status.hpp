#pragma once

// One node status for the log and metrics tests, every figure distinct.
//
// So a figure printed in another's place shows.

#include <cstdint>
#include <optional>

#include "examples/node/node_event.hpp"

namespace connmgr::test {

/// Outbound 3 of a target of 8, inbound 2 without a limit, 1 pending dial,
/// 4 failures, 2 retries, `failed_attempts` failed attempts, 5 peers ready
/// and 12 known addresses.
inline node_status sample_status(uint64_t failed_attempts) {
  // In the order of the fields: outbound, target_outbound, inbound,
  // max_inbound, pending_dials, failures, retries, failed_attempts,
  // peers_ready, known_addresses.
  return node_status{3, 8, 2, std::nullopt, 1, 4, 2, failed_attempts, 5, 12};
}

} // namespace connmgr::test
