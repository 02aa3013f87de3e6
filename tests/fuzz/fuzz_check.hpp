#pragma once

// Shared helpers for the connmgr fuzz targets.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include <caf/error.hpp>

#include "connmgr/messages/error_code.hpp"

/// Property check: prints what broke and aborts (libFuzzer saves the input).
#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "FUZZ PROPERTY VIOLATED %s:%d: %s\n", __FILE__,     \
                   __LINE__, #cond);                                           \
      std::abort();                                                            \
    }                                                                          \
  } while (false)

namespace fuzz {

/// Deterministic PRNG (splitmix64) seeded from the input, so chunking is a
/// pure function of the input and every crash reproduces.
struct rng {
  uint64_t state;

  static rng from(const uint8_t* data, size_t size) {
    uint64_t h = 1469598103934665603ull; // FNV-1a
    for (size_t i = 0; i < size; ++i) {
      h ^= data[i];
      h *= 1099511628211ull;
    }
    return rng{h};
  }

  uint64_t next() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }

  /// Uniform-ish in [0, n].
  size_t upto(size_t n) {
    return static_cast<size_t>(next() % (n + 1));
  }
};

/// Same errc and same rendered text.
inline bool same_error(const caf::error& x, const caf::error& y) {
  return connmgr::errc_of(x) == connmgr::errc_of(y)
    && connmgr::describe(x) == connmgr::describe(y);
}

} // namespace fuzz
