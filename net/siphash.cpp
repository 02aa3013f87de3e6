#include "connmgr/net/siphash.hpp"

namespace connmgr {

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

siphasher& siphasher::write_u64_unaligned(uint64_t x) noexcept {
  uint8_t bytes[8];
  for (unsigned i = 0; i < 8; ++i)
    bytes[i] = static_cast<uint8_t>(x >> (8 * i));
  return write(bytes, 8);
}

siphasher& siphasher::write_str(std::string_view s) noexcept {
  write_u64(s.size());
  return write(s.data(), s.size());
}

} // namespace connmgr
