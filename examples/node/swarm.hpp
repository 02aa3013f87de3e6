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
  /// Soak mode: how long to churn in all (0: not in soak mode). Dials also
  /// fail at random (nodes know ports that refuse, restarts are delayed at
  /// random), and the process's descriptors, threads and resident memory
  /// must stay flat.
  caf::timespan soak{0};
  /// Churn before the steady state is measured, and the length of every
  /// later round; unset means a fifth of `soak`.
  std::optional<caf::timespan> soak_warmup;
};

/// Takes `--swarm=N`, `--swarm-churn=DURATION`, `--swarm-target=T`,
/// `--swarm-timeout=DURATION`, `--swarm-events`, `--soak=DURATION` and
/// `--soak-warmup=DURATION` out of `args` (leaving everything else for
/// CAF). Fails with `errc::invalid_config` naming the flag, its value and
/// what was expected; a swarm flag without `--swarm` or `--soak` is an error
/// too. `--soak` alone runs 12 nodes.
caf::expected<swarm_options> take_swarm_options(std::vector<std::string>& args);

/// Runs the swarm: N nodes on 127.0.0.1, node 0 a seed that only accepts,
/// every other node holding a permanent connection to node 0 and nothing
/// else known. Prints progress until every node holds its target, then
/// kills and restarts random nodes for `churn`, waits until every target is
/// held again, and prints a summary table. Returns the exit status: 0 when
/// both phases reached every target, 1 otherwise; SIGINT/SIGTERM end it
/// early (with the summary, status 0).
///
/// In soak mode the churn runs for `soak` in rounds (the warm-up, then
/// rounds of the same length); after each round every node is up again and
/// holds its target with no dial in flight, and the process's resources are
/// read (a checkpoint). The first checkpoint is the steady state, the last
/// one the end; resources are also sampled every second for their maximum.
/// Prints a table (resource, steady, end, max, verdict) and returns 1 when
/// any resource is not flat (see `judge`).
int run_swarm(caf::actor_system& sys, const swarm_options& opts,
              stop_signals& signals);

} // namespace connmgr
