#pragma once

#include <cstdint>
#include <random>

#include <caf/timespan.hpp>

namespace connmgr {

struct manager_config;

/// Linear backoff with a configurable cap and optional jitter: retry n waits
/// min(n × base, cap), stretched by a random factor in [1, 1 + jitter].
/// Never overflows, whatever n.
class retry_policy {
public:
  /// Takes base, cap, jitter and seed from `cfg` (assumed valid).
  explicit retry_policy(const manager_config& cfg);

  /// The delay before retry number `retry_count` (1 for the first retry).
  caf::timespan delay(uint32_t retry_count);

private:
  caf::timespan base_;
  caf::timespan cap_;
  double jitter_;
  std::mt19937_64 rng_;
};

} // namespace connmgr
