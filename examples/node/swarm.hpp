#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

namespace connmgr {

class stop_signals;

/// The command-line flags of swarm mode.
struct swarm_options {
  /// How many nodes (2..500); 0 means "not in swarm mode".
  size_t nodes = 0;
  /// How long random nodes are killed and restarted after the swarm first
  /// reached its targets (0 skips that phase).
  caf::timespan churn = std::chrono::seconds{8};
  /// Automatic outbound connections per node (node 0, the seed, has none);
  /// unset means min(4, (nodes - 2) / 3).
  std::optional<uint32_t> target;
  /// How long each phase may take to reach every target before the run
  /// counts as failed.
  caf::timespan settle_timeout = std::chrono::seconds{30};
  /// Print every node's events too, prefixed with the node's index.
  bool events = false;
};

/// Takes `--swarm=N`, `--swarm-churn=DURATION`, `--swarm-target=T`,
/// `--swarm-timeout=DURATION` and `--swarm-events` out of `args` (leaving everything else for
/// CAF). Fails with `errc::invalid_config` naming the flag, its value and
/// what was expected; a swarm flag without `--swarm` is an error too.
caf::expected<swarm_options> take_swarm_options(std::vector<std::string>& args);

/// Runs the swarm: N nodes on 127.0.0.1, node 0 a seed that only accepts,
/// every other node holding a permanent connection to node 0 and nothing
/// else known. Prints progress until every node holds its target, then
/// kills and restarts random nodes for `churn`, waits until every target is
/// held again, and prints a summary table. Returns the exit status: 0 when
/// both phases reached every target, 1 otherwise; SIGINT/SIGTERM end it
/// early (with the summary, status 0).
int run_swarm(caf::actor_system& sys, const swarm_options& opts,
              stop_signals& signals);

} // namespace connmgr
