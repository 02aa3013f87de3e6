#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace connmgr {

/// A misbehaviour score for one peer: a persistent part that only grows and
/// a transient part that fades, so that occasional noise is forgiven while
/// sustained abuse adds up. The transient part halves every `half_life`
/// seconds and is dropped once `lifetime` seconds pass without an update.
/// Every result saturates at UINT32_MAX instead of wrapping. All member
/// functions may be called concurrently from any thread. The class never
/// reads a clock: callers pass `now`, which keeps it testable on simulated
/// time.
class dynamic_ban_score {
public:
  /// The clock whose time points callers pass in.
  using clock = std::chrono::steady_clock;

  /// A point on `clock`.
  using time_point = clock::time_point;

  /// Seconds after which the transient part has decayed to one half.
  static constexpr int64_t half_life = 60;

  /// Seconds after the last update beyond which the transient part counts
  /// as zero.
  static constexpr int64_t lifetime = 1800;

  /// Starts at zero.
  dynamic_ban_score() = default;

  /// The score at `now`: persistent part plus the transient part decayed
  /// over the whole seconds since the last update, truncated, and capped at
  /// UINT32_MAX. A `now` before the last update means no decay.
  uint32_t value(time_point now) const;

  /// Adds `persistent` to the persistent part (saturating), decays the
  /// current transient part to `now`, adds `transient` to it and makes
  /// `now` the last update. While an old transient part remains, the last
  /// update never moves backwards and a partial second already elapsed is
  /// kept for the next decay rather than lost, so frequent updates cannot
  /// stall the decay.
  /// Returns the score at `now` after the increase, as `value(now)` would.
  uint32_t increase(uint32_t persistent, uint32_t transient, time_point now);

  /// Sets both parts to zero.
  void reset();

  /// A human-readable form, e.g. "persistent 100, transient 25.00, value
  /// 125", with the transient part decayed to `now`.
  std::string to_string(time_point now) const;

private:
  // The helpers below expect the caller to hold `mtx_`: public functions
  // lock exactly once and then only use these, so none can deadlock on
  // its own mutex.

  /// Whole seconds from the last update to `now`, negative if `now` is
  /// earlier.
  int64_t whole_seconds_since_update(time_point now) const;

  /// The transient part as seen at `now`.
  double decayed_transient(time_point now) const;

  /// The score at `now`, as `value` returns it.
  uint32_t value_unlocked(time_point now) const;

  mutable std::mutex mtx_;

  uint32_t persistent_ = 0;

  // A double so that decay keeps fractions: truncating on every update
  // would make frequent small increases vanish faster than they should.
  double transient_ = 0.0;

  time_point last_update_{};
};

} // namespace connmgr
