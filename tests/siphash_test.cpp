// siphasher: the reference test vectors of SipHash-2-4, and incremental
// writes that agree with one write of the whole input.

#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "connmgr/net/siphash.hpp"

using namespace connmgr;

namespace {

// The key 00 01 .. 0f of the paper's test vectors, read little-endian.
constexpr uint64_t k0 = 0x0706050403020100ULL;
constexpr uint64_t k1 = 0x0f0e0d0c0b0a0908ULL;

std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> result(n);
  for (size_t i = 0; i < n; ++i)
    result[i] = static_cast<uint8_t>(i);
  return result;
}

uint64_t hash_of(const std::vector<uint8_t>& msg) {
  return siphasher{k0, k1}.write(msg.data(), msg.size()).finish();
}

} // namespace

TEST_CASE("siphash: the reference vectors of SipHash-2-4") {
  // Message 00 01 .. (n-1) under the key above: the paper's Appendix A
  // example (15 bytes) and entries 0, 8 and 63 of the reference vectors.
  CHECK(hash_of(counting(15)) == 0xa129ca6149be45e5ULL);
  CHECK(hash_of(counting(0)) == 0x726fdb47dd0e0e31ULL);
  CHECK(hash_of(counting(8)) == 0x93f5f5799a932462ULL);
  CHECK(hash_of(counting(63)) == 0x958a324ceb064572ULL);
}

TEST_CASE("siphash: any split of the input gives the same hash") {
  auto msg = counting(63);
  auto whole = hash_of(msg);
  for (size_t cut = 0; cut <= msg.size(); ++cut) {
    CAPTURE(cut);
    siphasher h{k0, k1};
    h.write(msg.data(), cut);
    h.write(msg.data() + cut, msg.size() - cut);
    CHECK(h.finish() == whole);
  }
  // write_u64 is 8 little-endian bytes, aligned or not.
  for (size_t lead = 0; lead < 8; ++lead) {
    CAPTURE(lead);
    siphasher a{k0, k1};
    siphasher b{k0, k1};
    a.write(msg.data(), lead);
    b.write(msg.data(), lead);
    a.write_u64(0x1716151413121110ULL);
    uint8_t bytes[8] = {0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17};
    b.write(bytes, 8);
    CHECK(a.finish() == b.finish());
  }
  // finish leaves the state alone: hashing goes on from where it was.
  siphasher h{k0, k1};
  h.write(msg.data(), 10);
  (void)h.finish();
  h.write(msg.data() + 10, 5);
  CHECK(h.finish() == 0xa129ca6149be45e5ULL);
}

TEST_CASE("siphash: another key gives another hash") {
  auto msg = counting(15);
  CHECK(siphasher{k0 ^ 1, k1}.write(msg.data(), 15).finish() != hash_of(msg));
  CHECK(siphasher{k0, k1 ^ 1}.write(msg.data(), 15).finish() != hash_of(msg));
}
