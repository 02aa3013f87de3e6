#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <caf/error.hpp>

#include "connmgr/actors/state_db.hpp"
#include "connmgr/actors/state_journal.hpp"

namespace connmgr {

/// Writes batches of state changes to a state file on a thread of its own,
/// so that no actor ever waits on the disk.
///
/// Guarantees: `submit` never blocks on the disk (only on a short lock);
/// batches are written in the order submitted, and a batch submitted while
/// an earlier one is being written is merged with any others waiting, the
/// later change to a key winning, so the backlog is bounded by the keys
/// changed, not by the batches. Each `done` callback runs on the writer's
/// thread once its changes are committed (with no error) or failed to
/// commit (with the error), exactly once, also when the writer stops
/// first. `stop` writes what waits, then joins the thread and closes the
/// file. Thread-safe.
class state_writer {
public:
  /// Called with the outcome of a write.
  using callback = std::function<void(const caf::error&)>;

  /// Takes over `db` and starts the thread.
  explicit state_writer(state_db db);

  /// Same as `stop`.
  ~state_writer();

  state_writer(const state_writer&) = delete;
  state_writer& operator=(const state_writer&) = delete;

  /// Queues `changes` for writing; `done` (may be empty) hears the outcome.
  /// After `stop`, `done` runs at once with `errc::stopped`.
  void submit(state_changes changes, callback done = {});

  /// Writes what waits, then ends the thread and closes the file; returns
  /// the first write error seen, if any. Idempotent.
  caf::error stop();

  /// Batches committed so far (merged ones count once).
  uint64_t commits() const;

private:
  void run();

  mutable std::mutex mtx_;
  std::condition_variable cv_;
  /// Open until `stop`; only the writer's thread uses it meanwhile.
  std::optional<state_db> db_;
  /// Waiting changes, merged; `waiting_done` hear their outcome.
  state_journal waiting_;
  std::vector<callback> waiting_done_;
  bool stopping_ = false;
  uint64_t commits_ = 0;
  caf::error first_error_;
  std::thread thread_;
};

} // namespace connmgr
