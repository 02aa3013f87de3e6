#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/timespan.hpp>

#include "connmgr/actors/state_db.hpp"

namespace connmgr {

/// The changes to the state file not written yet, and when to write them: a
/// plain value on the caller's clock, no threads, actors or disk.
///
/// Guarantees: each address and each ban appears at most once in what
/// `take` returns, with the last change made to it (a put after an erase
/// puts, an erase after a put erases), so a batch never grows beyond the
/// number of distinct keys changed; at most `max_pending` keys wait before
/// `flush_due` says to write, whatever the interval.
class state_journal {
public:
  using time_point = caf::actor_clock::time_point;

  /// Writes at most every `interval`, or sooner once `max_pending` keys
  /// wait (at least 1).
  state_journal(caf::timespan interval, size_t max_pending);

  // -- recording changes ----------------------------------------------------

  void put(stored_address x);
  void erase_address(const std::string& address);
  void put(stored_ban x);
  void erase_ban(const std::string& subnet);
  void set_anchors(std::vector<std::string> anchors);

  // -- writing them ---------------------------------------------------------

  /// Distinct addresses and bans waiting, plus one for new anchors.
  size_t pending() const noexcept;

  /// Whether the waiting changes should be written at `now`: some wait,
  /// and the interval since the last `take` has passed or `max_pending` is
  /// reached.
  bool flush_due(time_point now) const noexcept;

  /// When `flush_due` turns true by time alone; none while nothing waits.
  std::optional<time_point> next_flush() const noexcept;

  /// The waiting changes as one batch; the journal is then empty and the
  /// interval starts again at `now`.
  state_changes take(time_point now);

private:
  caf::timespan interval_;
  size_t max_pending_;
  time_point last_take_{};
  /// By key: the value to put, or none to erase.
  std::map<std::string, std::optional<stored_address>> addresses_;
  std::map<std::string, std::optional<stored_ban>> bans_;
  std::optional<std::vector<std::string>> anchors_;
};

} // namespace connmgr
