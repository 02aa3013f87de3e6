#include "connmgr/actors/dynamic_ban_score.hpp"

#include <array>
#include <cmath>
#include <cstdio>
#include <limits>

namespace connmgr {

namespace {

constexpr uint32_t max_u32 = std::numeric_limits<uint32_t>::max();

// Scores are usually read shortly after an update, so a table for the first
// minutes avoids calling exp2 on the common path.
constexpr int64_t table_size = 256;

double compute_decay_factor(int64_t seconds) {
  // exp2 rather than exp(-ln2 * t / 60): for whole half-lives the result is
  // exact, which keeps scores at multiples of 60 seconds free of rounding.
  return std::exp2(-static_cast<double>(seconds)
                   / static_cast<double>(dynamic_ban_score::half_life));
}

const std::array<double, table_size>& decay_table() {
  static const auto table = [] {
    std::array<double, table_size> result{};
    for (int64_t i = 0; i < table_size; ++i)
      result[static_cast<size_t>(i)] = compute_decay_factor(i);
    return result;
  }();
  return table;
}

// The factor by which the transient part shrinks over `seconds` (>= 0).
double decay_factor(int64_t seconds) {
  if (seconds < table_size)
    return decay_table()[static_cast<size_t>(seconds)];
  return compute_decay_factor(seconds);
}

uint32_t saturating_add(uint32_t x, uint32_t y) {
  return y > max_u32 - x ? max_u32 : x + y;
}

// Converting a double beyond the target range is undefined behaviour, so
// clamp before the cast.
uint32_t truncate_saturating(double x) {
  if (!(x > 0.0))
    return 0;
  if (x >= static_cast<double>(max_u32))
    return max_u32;
  return static_cast<uint32_t>(x);
}

} // namespace

int64_t dynamic_ban_score::whole_seconds_since_update(time_point now) const {
  // duration_cast truncates toward zero, so partial seconds never count.
  return std::chrono::duration_cast<std::chrono::seconds>(now - last_update_)
    .count();
}

double dynamic_ban_score::decayed_transient(time_point now) const {
  if (transient_ <= 0.0)
    return 0.0;
  auto elapsed = whole_seconds_since_update(now);
  // A concurrent caller may pass a slightly older time point than the last
  // update; treating it as "no time passed" is the least surprising answer.
  if (elapsed <= 0)
    return transient_;
  if (elapsed > lifetime)
    return 0.0;
  return transient_ * decay_factor(elapsed);
}

uint32_t dynamic_ban_score::value_unlocked(time_point now) const {
  return saturating_add(persistent_,
                        truncate_saturating(decayed_transient(now)));
}

uint32_t dynamic_ban_score::value(time_point now) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return value_unlocked(now);
}

uint32_t dynamic_ban_score::increase(uint32_t persistent, uint32_t transient,
                                     time_point now) {
  std::lock_guard<std::mutex> guard{mtx_};
  persistent_ = saturating_add(persistent_, persistent);
  auto remaining = decayed_transient(now);
  auto elapsed = whole_seconds_since_update(now);
  if (remaining <= 0.0) {
    // Nothing old is left to decay, so the transient part starts at `now`.
    last_update_ = now;
  } else if (elapsed > 0) {
    // Advance only by the whole seconds just applied, keeping the leftover
    // fraction: jumping straight to `now` would drop it, and a peer updated
    // more often than once a second would then never see any decay. For an
    // earlier `now` stay put, or the next update would decay the interval
    // up to the later time point twice.
    last_update_ += std::chrono::seconds{elapsed};
  }
  transient_ = remaining + static_cast<double>(transient);
  return value_unlocked(now);
}

void dynamic_ban_score::reset() {
  std::lock_guard<std::mutex> guard{mtx_};
  persistent_ = 0;
  transient_ = 0.0;
}

std::string dynamic_ban_score::to_string(time_point now) const {
  std::lock_guard<std::mutex> guard{mtx_};
  char buf[128];
  std::snprintf(buf, sizeof(buf), "persistent %lu, transient %.2f, value %lu",
                static_cast<unsigned long>(persistent_), decayed_transient(now),
                static_cast<unsigned long>(value_unlocked(now)));
  return buf;
}

} // namespace connmgr
