#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

#include <caf/actor_clock.hpp>

namespace connmgr {

/// A rate limit: holds at most `burst` tokens, refills at `rate` tokens per
/// second, and hands out whole tokens. Plain value, reads no clock: every
/// call says what time it is, so it runs on simulated time.
class token_bucket {
public:
  using time_point = caf::actor_clock::time_point;

  /// A bucket that never holds a token.
  token_bucket() noexcept : token_bucket(0.0, 0.0, time_point{}) {
    // nop
  }

  /// A full bucket at `now`. `rate` < 0 counts as 0 (no refill); `burst`
  /// < 0 as 0 (nothing ever passes unless it refills).
  token_bucket(double rate, double burst, time_point now) noexcept
    : rate_(std::max(rate, 0.0)), burst_(std::max(burst, 0.0)), tokens_(burst_),
      last_(now) {
    // nop
  }

  /// Takes `n` tokens if that many are there at `now`; all or nothing.
  bool take(uint64_t n, time_point now) noexcept {
    refill(now);
    auto want = static_cast<double>(n);
    if (tokens_ < want)
      return false;
    tokens_ -= want;
    return true;
  }

  /// Takes as many of `n` tokens as are there at `now`; returns how many.
  uint64_t take_up_to(uint64_t n, time_point now) noexcept {
    refill(now);
    auto whole = static_cast<uint64_t>(tokens_);
    auto got = std::min(n, whole);
    tokens_ -= static_cast<double>(got);
    return got;
  }

  /// Tokens there at the last call.
  double tokens() const noexcept {
    return tokens_;
  }

private:
  void refill(time_point now) noexcept {
    if (now <= last_)
      return;
    auto elapsed = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
    last_ = now;
  }

  double rate_;
  double burst_;
  double tokens_;
  time_point last_;
};

} // namespace connmgr
