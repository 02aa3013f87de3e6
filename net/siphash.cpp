#include "net/siphash.hpp"

namespace connmgr {

namespace {

constexpr uint64_t rotl(uint64_t x, unsigned b) noexcept {
  return (x << b) | (x >> (64 - b));
}

// One SipRound of the specification.
inline void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2,
                      uint64_t& v3) noexcept {
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
inline void compress(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3,
                     uint64_t m) noexcept {
  v3 ^= m;
  sip_round(v0, v1, v2, v3);
  sip_round(v0, v1, v2, v3);
  v0 ^= m;
}

} // namespace

siphasher::siphasher(uint64_t k0, uint64_t k1) noexcept
  : v0_(k0 ^ 0x736f6d6570736575ULL),
    v1_(k1 ^ 0x646f72616e646f6dULL),
    v2_(k0 ^ 0x6c7967656e657261ULL),
    v3_(k1 ^ 0x7465646279746573ULL) {
  // nop
}

siphasher& siphasher::write(const void* data, size_t n) noexcept {
  auto p = static_cast<const uint8_t*>(data);
  auto end = p + n;
  // Complete a pending partial word first.
  while (count_ % 8 != 0 && p != end) {
    tail_ |= uint64_t{*p++} << (8 * (count_ % 8));
    if (++count_ % 8 == 0) {
      compress(v0_, v1_, v2_, v3_, tail_);
      tail_ = 0;
    }
  }
  // Whole words, read little-endian whatever the host's byte order.
  while (end - p >= 8) {
    uint64_t m = 0;
    for (unsigned i = 0; i < 8; ++i)
      m |= uint64_t{p[i]} << (8 * i);
    compress(v0_, v1_, v2_, v3_, m);
    p += 8;
    count_ += 8;
  }
  // The rest waits in the tail (count_ is a multiple of 8 here).
  for (unsigned i = 0; p != end; ++i, ++count_)
    tail_ |= uint64_t{*p++} << (8 * i);
  return *this;
}

siphasher& siphasher::write_u64(uint64_t x) noexcept {
  if (count_ % 8 == 0) {
    // Aligned: the word goes in whole, as the byte loop would put it.
    compress(v0_, v1_, v2_, v3_, x);
    count_ += 8;
    return *this;
  }
  uint8_t bytes[8];
  for (unsigned i = 0; i < 8; ++i)
    bytes[i] = static_cast<uint8_t>(x >> (8 * i));
  return write(bytes, 8);
}

siphasher& siphasher::write_str(std::string_view s) noexcept {
  write_u64(s.size());
  return write(s.data(), s.size());
}

uint64_t siphasher::finish() const noexcept {
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

} // namespace connmgr
