// The example node's peer protocol codec: exact frame bytes of every message,
// round trips, input arriving one byte at a time or several frames at once,
// malformed frames failing with errors that name the fault, and the
// frame_reader cutting a split stream into frames.

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "connmgr/messages/error_code.hpp"
#include "examples/node/node_frames.hpp"

using namespace connmgr;
using namespace connmgr::node_frames;

namespace {

using bytes = std::vector<uint8_t>;

/// The bytes of `s`, without a terminator.
bytes text(const std::string& s) {
  return bytes(s.begin(), s.end());
}

/// `parts` laid end to end.
bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (const auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

/// A heap copy of the first `n` bytes of `src` in a block of exactly `n`
/// bytes, so reading past it trips the address sanitizer.
std::unique_ptr<uint8_t[]> exact_copy(const bytes& src, size_t n) {
  std::unique_ptr<uint8_t[]> buf{new uint8_t[n == 0 ? 1 : n]};
  if (n > 0)
    std::memcpy(buf.get(), src.data(), n);
  return buf;
}

/// A header of `type` announcing `len` payload bytes.
bytes header(uint8_t type, uint32_t len) {
  return {'C',
          'M',
          'G',
          'R',
          type,
          static_cast<uint8_t>(len >> 24),
          static_cast<uint8_t>(len >> 16),
          static_cast<uint8_t>(len >> 8),
          static_cast<uint8_t>(len)};
}

/// `s` parsed strictly; fails the test if it does not parse.
net_address addr_of(const std::string& s) {
  auto a = net_address::parse(s);
  REQUIRE(a);
  return *a;
}

/// Decodes every proper prefix of `full` (each in a block of exactly that
/// size) and expects a request for more that stays inside the frame; then
/// decodes `full` and returns the frame.
frame decode_every_prefix(const bytes& full) {
  for (size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    auto buf = exact_copy(full, n);
    auto r = decode(n == 0 ? nullptr : buf.get(), n);
    REQUIRE(r.need_more());
    CHECK(r.need > n);
    CHECK(r.need <= full.size());
    // The header comes first, then the whole frame.
    CHECK(r.need == (n < header_size ? header_size : full.size()));
  }
  auto buf = exact_copy(full, full.size());
  auto r = decode(buf.get(), full.size());
  REQUIRE(r.done());
  CHECK(r.consumed == full.size());
  return r.value;
}

/// The error of decoding `input`, failing the test if it did not fail.
caf::error decode_failure(const bytes& input) {
  auto buf = exact_copy(input, input.size());
  auto r = decode(buf.get(), input.size());
  REQUIRE(r.failed());
  return r.error;
}

const bytes hello_bytes =
  cat({header(1, 10),
       {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x20, 0x8D}});

const bytes ping_bytes =
  cat({header(3, 8), {0xDE, 0xAD, 0xBE, 0xEF, 0, 0, 0, 0x2A}});

const bytes pong_bytes = cat({header(4, 8), {0, 0, 0, 0, 0, 0, 0, 0x07}});

/// An addr message with one address of each kind.
frame sample_addr() {
  return addr{{addr_of("1.2.3.4:8333"), addr_of("[2001:db8::1]:18444"),
               addr_of("seed.example.org:8333")}};
}

const bytes addr_bytes = cat({header(2, 2 + 13 + 20 + 22),
                              {0x00, 0x03, 12},
                              text("1.2.3.4:8333"),
                              {19},
                              text("[2001:db8::1]:18444"),
                              {21},
                              text("seed.example.org:8333")});

/// An addr frame whose payload is `payload`.
bytes addr_frame(const bytes& payload) {
  return cat({header(2, static_cast<uint32_t>(payload.size())), payload});
}

} // namespace

TEST_CASE("node frames: each message encodes to its exact bytes") {
  CHECK(encode(hello{0x0102030405060708, 8333}) == hello_bytes);
  CHECK(encode(ping{0xDEADBEEF0000002A}) == ping_bytes);
  CHECK(encode(pong{7}) == pong_bytes);
  CHECK(encode(sample_addr()) == addr_bytes);
  CHECK(encode(addr{}) == cat({header(2, 2), {0, 0}}));
  CHECK(encode(getaddr{}) == header(5, 0));
}

TEST_CASE("node frames: every message round-trips byte by byte") {
  const frame samples[] = {hello{0x0102030405060708, 8333},
                           hello{42, 0},
                           ping{0xDEADBEEF0000002A},
                           pong{7},
                           sample_addr(),
                           addr{},
                           getaddr{}};
  for (const auto& sample : samples) {
    CAPTURE(sample.index());
    auto wire = encode(sample);
    REQUIRE(!wire.empty());
    CHECK(decode_every_prefix(wire) == sample);
  }
}

TEST_CASE("node frames: several frames decode one after another from one "
          "buffer") {
  auto stream = cat({hello_bytes, addr_bytes, ping_bytes, pong_bytes});
  std::vector<frame> got;
  size_t pos = 0;
  while (pos < stream.size()) {
    auto r = decode(stream.data() + pos, stream.size() - pos);
    REQUIRE(r.done());
    got.push_back(r.value);
    pos += r.consumed;
  }
  CHECK(pos == stream.size());
  REQUIRE(got.size() == 4);
  CHECK(got[0] == frame{hello{0x0102030405060708, 8333}});
  CHECK(got[1] == sample_addr());
  CHECK(got[2] == frame{ping{0xDEADBEEF0000002A}});
  CHECK(got[3] == frame{pong{7}});
}

TEST_CASE("node frames: a bad magic fails naming the bytes") {
  auto input = cat({text("ABCD"), {3, 0, 0, 0, 8}, bytes(8, 0)});
  auto err = decode_failure(input);
  CHECK(errc_of(err) == errc::connection_closed);
  CHECK(describe(err) == "connection_closed: protocol: bad magic 0x41424344");
}

TEST_CASE("node frames: an unknown type fails without waiting for the "
          "payload") {
  auto err = decode_failure(header(9, 4));
  CHECK(errc_of(err) == errc::connection_closed);
  CHECK(describe(err) == "connection_closed: protocol: unknown type 9");
  CHECK(describe(decode_failure(header(0, 0)))
        == "connection_closed: protocol: unknown type 0");
}

TEST_CASE("node frames: an oversize length fails before the payload "
          "arrives") {
  auto err = decode_failure(header(2, 70000));
  CHECK(errc_of(err) == errc::connection_closed);
  CHECK(describe(err)
        == "connection_closed: protocol: frame of 70000 bytes, expected at "
           "most 65536");
  // The largest allowed length just asks for the whole frame.
  auto max = header(2, 65536);
  auto r = decode(max.data(), max.size());
  REQUIRE(r.need_more());
  CHECK(r.need == header_size + 65536);
}

TEST_CASE("node frames: a fixed-size message with the wrong length fails") {
  CHECK(describe(decode_failure(header(5, 1)))
        == "connection_closed: protocol: getaddr payload of 1 bytes, "
           "expected 0");
  CHECK(describe(decode_failure(header(1, 9)))
        == "connection_closed: protocol: hello payload of 9 bytes, expected "
           "10");
  CHECK(describe(decode_failure(header(3, 0)))
        == "connection_closed: protocol: ping payload of 0 bytes, expected 8");
}

TEST_CASE("node frames: a bad address text fails as invalid_address") {
  auto input = addr_frame(
    cat({{0, 2, 12}, text("1.2.3.4:8333"), {13}, text("1.2.3.4:99999")}));
  auto err = decode_failure(input);
  CHECK(errc_of(err) == errc::invalid_address);
  auto msg = describe(err);
  CAPTURE(msg);
  CHECK(msg.find("addr entry 1") != std::string::npos);
  CHECK(msg.find("\"1.2.3.4:99999\"") != std::string::npos);
  // Strict parsing: a port of 0 and an unbracketed IPv6 are refused too.
  CHECK(errc_of(decode_failure(addr_frame(cat({{0, 1, 9}, text("1.2.3.4:0")}))))
        == errc::invalid_address);
  CHECK(errc_of(decode_failure(addr_frame(cat({{0, 1, 8}, text("::1:8333")}))))
        == errc::invalid_address);
}

TEST_CASE("node frames: too many addresses fail naming the count") {
  // The count alone decides, before any entry is read.
  auto err = decode_failure(addr_frame({0x03, 0xE9}));
  CHECK(errc_of(err) == errc::connection_closed);
  CHECK(describe(err)
        == "connection_closed: protocol: addr with 1001 entries, expected at "
           "most 1000");
  addr many;
  many.addresses.assign(1001, addr_of("1.2.3.4:1"));
  CHECK(errc_of(validate(many)) == errc::connection_closed);
  CHECK(encode(many).empty());
}

TEST_CASE("node frames: the most addresses that fit round-trip") {
  addr many;
  for (uint16_t i = 1; i <= 1000; ++i)
    many.addresses.push_back(addr_of("10.0.0.1:" + std::to_string(i)));
  CHECK(!validate(many));
  auto wire = encode(many);
  REQUIRE(!wire.empty());
  auto r = decode(wire.data(), wire.size());
  REQUIRE(r.done());
  CHECK(r.value == frame{many});
}

TEST_CASE("node frames: malformed addr payloads fail naming the fault") {
  CHECK(describe(decode_failure(addr_frame({0})))
        == "connection_closed: protocol: addr payload of 1 bytes, expected at "
           "least 2");
  CHECK(describe(decode_failure(addr_frame({0, 1, 0})))
        == "connection_closed: protocol: addr entry 0 has length 0, expected "
           "1..255");
  auto overrun = addr_frame(cat({{0, 1, 20}, text("1.2.3.4:1")}));
  CHECK(describe(decode_failure(overrun))
        == "connection_closed: protocol: addr entry 0 of 20 bytes runs past "
           "the payload end");
  CHECK(describe(decode_failure(
          addr_frame({0, 2, 9, '1', '.', '2', '.', '3', '.', '4', ':', '1'})))
        == "connection_closed: protocol: addr entry 1 is missing, payload "
           "ends after 1 of 2");
  CHECK(describe(decode_failure(addr_frame({0, 0, 0xFF})))
        == "connection_closed: protocol: addr payload has 1 trailing bytes "
           "after 0 entries");
}

TEST_CASE("node frames: unencodable addr messages are refused by validate") {
  addr zero_port{{net_address{}}};
  CHECK(errc_of(validate(zero_port)) == errc::invalid_address);
  CHECK(encode(zero_port).empty());
  // A 253-byte host name plus ":8333" is too long for one entry.
  std::string label(63, 'a');
  auto host = label + "." + label + "." + label + "." + std::string(61, 'b');
  REQUIRE(host.size() == 253);
  auto long_name = net_address::parse(host + ":8333");
  REQUIRE(long_name);
  addr too_long{{*long_name}};
  CHECK(errc_of(validate(too_long)) == errc::invalid_address);
  CHECK(encode(too_long).empty());
  // 300 entries of 236 bytes each make a payload beyond 64 KiB.
  auto name = net_address::parse(
    std::string(63, 'c') + "." + std::string(63, 'd') + "."
    + std::string(63, 'e') + "." + std::string(40, 'f') + ":8333");
  REQUIRE(name);
  addr too_big;
  too_big.addresses.assign(300, *name);
  auto err = validate(too_big);
  CHECK(errc_of(err) == errc::connection_closed);
  CHECK(describe(err).find("expected at most 65536") != std::string::npos);
  CHECK(!validate(hello{1, 2}));
}

TEST_CASE("node frames: a frame_reader yields frames from reads split "
          "anywhere") {
  auto stream = cat({hello_bytes, addr_bytes, ping_bytes, pong_bytes});
  for (size_t chunk : {size_t{1}, size_t{2}, size_t{5}, size_t{9}, size_t{13},
                       stream.size()}) {
    CAPTURE(chunk);
    frame_reader reader;
    std::vector<frame> got;
    size_t pos = 0;
    while (pos < stream.size()) {
      auto n = std::min(chunk, stream.size() - pos);
      const uint8_t* p = stream.data() + pos;
      pos += n;
      while (n > 0) {
        auto taken = reader.feed(p, n);
        CHECK(reader.buffered() <= max_frame_size);
        p += taken;
        n -= taken;
        while (auto f = reader.next()) {
          REQUIRE(*f);
          got.push_back(**f);
        }
      }
    }
    CHECK(reader.buffered() == 0);
    CHECK(reader.wanted() == header_size);
    REQUIRE(got.size() == 4);
    CHECK(got[0] == frame{hello{0x0102030405060708, 8333}});
    CHECK(got[1] == sample_addr());
    CHECK(got[2] == frame{ping{0xDEADBEEF0000002A}});
    CHECK(got[3] == frame{pong{7}});
  }
}

TEST_CASE("node frames: a frame_reader takes no bytes past the current "
          "frame") {
  auto stream = cat({ping_bytes, pong_bytes});
  frame_reader reader;
  CHECK(reader.wanted() == header_size);
  CHECK(!reader.next());
  CHECK(reader.feed(stream.data(), 4) == 4);
  CHECK(reader.wanted() == header_size - 4);
  CHECK(reader.feed(stream.data() + 4, stream.size() - 4)
        == ping_bytes.size() - 4);
  CHECK(reader.wanted() == 0);
  // Nothing more is taken until the frame is collected.
  CHECK(reader.feed(stream.data() + ping_bytes.size(), 1) == 0);
  auto first = reader.next();
  REQUIRE(first);
  REQUIRE(*first);
  CHECK(**first == frame{ping{0xDEADBEEF0000002A}});
  CHECK(!reader.next());
  CHECK(reader.feed(stream.data() + ping_bytes.size(), pong_bytes.size())
        == pong_bytes.size());
  auto second = reader.next();
  REQUIRE(second);
  REQUIRE(*second);
  CHECK(**second == frame{pong{7}});
}

TEST_CASE("node frames: a frame_reader stops for good at a malformed "
          "header") {
  auto stream = cat({header(9, 4), bytes(4, 0), ping_bytes});
  frame_reader reader;
  // The bad header is rejected as soon as it is complete, its payload is
  // left alone.
  CHECK(reader.feed(stream.data(), stream.size()) == header_size);
  auto f = reader.next();
  REQUIRE(f);
  REQUIRE(!*f);
  CHECK(describe(f->error()) == "connection_closed: protocol: unknown type 9");
  CHECK(reader.feed(ping_bytes.data(), ping_bytes.size()) == 0);
  CHECK(reader.wanted() == 0);
  auto again = reader.next();
  REQUIRE(again);
  REQUIRE(!*again);
  CHECK(errc_of(again->error()) == errc::connection_closed);
}
