#include "connmgr/actors/retry_policy.hpp"

#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

namespace {

uint64_t seed_of(uint64_t configured) {
  if (configured != 0)
    return configured;
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) | rd();
}

} // namespace

retry_policy::retry_policy(const manager_config& cfg)
  : base_(cfg.retry_duration), cap_(cfg.max_retry_duration),
    jitter_(cfg.retry_jitter), rng_(seed_of(cfg.jitter_seed)) {
  // nop
}

caf::timespan retry_policy::delay(uint32_t retry_count) {
  // Compare before multiplying so huge retry counts cannot overflow.
  auto result = cap_;
  if (base_.count() > 0 && retry_count <= cap_.count() / base_.count())
    result = std::min(cap_, base_ * static_cast<int64_t>(retry_count));
  if (jitter_ > 0.0 && result.count() > 0) {
    std::uniform_real_distribution<double> dist{0.0, jitter_};
    auto extra = static_cast<double>(result.count()) * dist(rng_);
    result += caf::timespan{static_cast<int64_t>(extra)};
  }
  return result;
}

} // namespace connmgr
