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
///
/// The constructor, `write_u64` on a whole-word boundary and `finish` are
/// always inlined, so hashing a few words costs no call and no byte
/// shuffling, and independent hashes can overlap in the CPU.
class siphasher {
public:
  /// A hasher keyed with `k0` (key bytes 0..7, little-endian) and `k1`
  /// (bytes 8..15).
  siphasher(uint64_t k0, uint64_t k1) noexcept
    : v0_(k0 ^ 0x736f6d6570736575ULL), v1_(k1 ^ 0x646f72616e646f6dULL),
      v2_(k0 ^ 0x6c7967656e657261ULL), v3_(k1 ^ 0x7465646279746573ULL) {
    // nop
  }

  /// Appends `n` bytes at `data`.
  siphasher& write(const void* data, size_t n) noexcept;

  /// Appends one byte.
  siphasher& write_u8(uint8_t x) noexcept {
    return write(&x, 1);
  }

  /// Appends `x` as 8 little-endian bytes.
  [[gnu::always_inline]] siphasher& write_u64(uint64_t x) noexcept {
    if (count_ % 8 != 0)
      return write_u64_unaligned(x);
    // Aligned: the word goes in whole, as the byte loop would put it.
    compress(v0_, v1_, v2_, v3_, x);
    count_ += 8;
    return *this;
  }

  /// Appends the length of `s` (as `write_u64`) and then its bytes, so that
  /// consecutive strings cannot run into each other.
  siphasher& write_str(std::string_view s) noexcept;

  /// The hash of everything written so far; the hasher itself is unchanged,
  /// so more can be written and hashed again.
  [[gnu::always_inline]] uint64_t finish() const noexcept {
    auto v0 = v0_;
    auto v1 = v1_;
    auto v2 = v2_;
    auto v3 = v3_;
    // The last word carries the length modulo 256 in its top byte.
    uint64_t last = tail_ | (uint64_t{count_ & 0xff} << 56);
    compress(v0, v1, v2, v3, last);
    v2 ^= 0xff;
    for (int i = 0; i < 4; ++i)
      sip_round(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
  }

private:
  static constexpr uint64_t rotl(uint64_t x, unsigned b) noexcept {
    return (x << b) | (x >> (64 - b));
  }

  // One SipRound of the specification.
  [[gnu::always_inline]] static void
  sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) noexcept {
    v0 += v1;
    v1 = rotl(v1, 13);
    v1 ^= v0;
    v0 = rotl(v0, 32);
    v2 += v3;
    v3 = rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = rotl(v1, 17);
    v1 ^= v2;
    v2 = rotl(v2, 32);
  }

  // Two compression rounds per 8-byte word (the "2" of SipHash-2-4).
  [[gnu::always_inline]] static void compress(uint64_t& v0, uint64_t& v1,
                                              uint64_t& v2, uint64_t& v3,
                                              uint64_t m) noexcept {
    v3 ^= m;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= m;
  }

  siphasher& write_u64_unaligned(uint64_t x) noexcept;

  uint64_t v0_;
  uint64_t v1_;
  uint64_t v2_;
  uint64_t v3_;
  uint64_t tail_ = 0; // pending bytes, little-endian
  size_t count_ = 0; // bytes written in total
};

} // namespace connmgr
