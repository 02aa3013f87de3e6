#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace connmgr {

/// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
/// 2012) with a 128-bit key, fed incrementally.
///
/// Guarantees: the result equals the specification's SipHash-2-4 of the
/// concatenation of everything written, whatever the split into `write`
/// calls (the paper's test vectors hold). Without the key, outputs cannot be
/// predicted or steered, which is what keeps an attacker from choosing
/// inputs that collide in a table.
class siphasher {
public:
  /// A hasher keyed with `k0` (key bytes 0..7, little-endian) and `k1`
  /// (bytes 8..15).
  siphasher(uint64_t k0, uint64_t k1) noexcept;

  /// Appends `n` bytes at `data`.
  siphasher& write(const void* data, size_t n) noexcept;

  /// Appends one byte.
  siphasher& write_u8(uint8_t x) noexcept {
    return write(&x, 1);
  }

  /// Appends `x` as 8 little-endian bytes.
  siphasher& write_u64(uint64_t x) noexcept;

  /// Appends the length of `s` (as `write_u64`) and then its bytes, so that
  /// consecutive strings cannot run into each other.
  siphasher& write_str(std::string_view s) noexcept;

  /// The hash of everything written so far; the hasher itself is unchanged,
  /// so more can be written and hashed again.
  uint64_t finish() const noexcept;

private:
  uint64_t v0_;
  uint64_t v1_;
  uint64_t v2_;
  uint64_t v3_;
  uint64_t tail_ = 0; // pending bytes, little-endian
  size_t count_ = 0;  // bytes written in total
};

} // namespace connmgr
