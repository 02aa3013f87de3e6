// Fuzzes node_frames::decode and node_frames::frame_reader.
//
// Properties:
// - decode: need_more asks for more than it was given; done consumes at most
//   what it was given, at least a header and at most max_frame_size; the
//   same frame decodes from exactly its consumed bytes and no shorter prefix
//   decodes; failures are errc::connection_closed ("protocol: ...") or
//   errc::invalid_address and stay failures when more bytes follow.
// - a done frame re-encodes to exactly the consumed bytes. Exception: addr
//   entries whose text is not canonical ("A.example:1", "[0::1]:1") are
//   accepted by decode but re-encoded canonically, so for those only
//   decode(encode(f)) == f is checked -- unless CONNMGR_FUZZ_STRICT_REENCODE
//   is set in the environment, which demands byte equality for every frame.
// - frame_reader, fed the input in chunk sizes derived from the input: never
//   takes more than given nor more than the current frame needs, yields the
//   frames/errors decode yields at the same offsets, and errors are sticky
//   (same error again, takes no bytes, wants nothing, holds nothing).

#include <cstdlib>
#include <string_view>

#include "fuzz_check.hpp"
#include "examples/node/node_frames.hpp"

using namespace connmgr;
namespace nf = connmgr::node_frames;

namespace {

bool strict_reencode() {
  static const bool strict =
    std::getenv("CONNMGR_FUZZ_STRICT_REENCODE") != nullptr;
  return strict;
}

bool allowed_failure(const caf::error& err) {
  auto code = errc_of(err);
  if (code == errc::invalid_address)
    return true;
  return code == errc::connection_closed
    && describe(err).find("protocol: ") != std::string::npos;
}

/// Whether every addr entry in the frame bytes is already in canonical form.
bool canonical_addr_text(const nf::addr& msg, const uint8_t* frame) {
  size_t pos = nf::header_size + 2;
  for (const auto& a : msg.addresses) {
    size_t len = frame[pos++];
    std::string_view text{reinterpret_cast<const char*>(frame + pos), len};
    pos += len;
    if (text != a.to_string())
      return false;
  }
  return true;
}

void check_reencode(const nf::frame& f, const uint8_t* bytes, size_t n) {
  FUZZ_CHECK(!nf::validate(f));
  auto enc = nf::encode(f);
  FUZZ_CHECK(!enc.empty());
  bool exact = true;
  if (auto msg = std::get_if<nf::addr>(&f); msg && !strict_reencode())
    exact = canonical_addr_text(*msg, bytes);
  if (exact) {
    FUZZ_CHECK(enc.size() == n);
    FUZZ_CHECK(std::equal(enc.begin(), enc.end(), bytes));
  } else {
    auto again = nf::decode(enc.data(), enc.size());
    FUZZ_CHECK(again.done());
    FUZZ_CHECK(again.consumed == enc.size());
    FUZZ_CHECK(again.value == f);
    auto enc2 = nf::encode(again.value);
    FUZZ_CHECK(enc2 == enc);
  }
}

void check_decode(const uint8_t* data, size_t size, fuzz::rng& rng) {
  auto r = nf::decode(size == 0 ? nullptr : data, size);
  switch (r.status) {
    case parse_status::need_more:
      FUZZ_CHECK(r.need > size);
      FUZZ_CHECK(r.need >= nf::header_size);
      FUZZ_CHECK(r.need <= nf::max_frame_size);
      FUZZ_CHECK(!r.error);
      break;
    case parse_status::done: {
      FUZZ_CHECK(r.consumed <= size);
      FUZZ_CHECK(r.need == r.consumed);
      FUZZ_CHECK(r.consumed >= nf::header_size);
      FUZZ_CHECK(r.consumed <= nf::max_frame_size);
      FUZZ_CHECK(!r.error);
      // Exactly the consumed bytes give the same frame.
      auto exact = nf::decode(data, r.consumed);
      FUZZ_CHECK(exact.done() && exact.consumed == r.consumed);
      FUZZ_CHECK(exact.value == r.value);
      // No shorter prefix is a whole frame.
      size_t cut = rng.upto(r.consumed - 1);
      auto shorter = nf::decode(cut == 0 ? nullptr : data, cut);
      FUZZ_CHECK(shorter.need_more());
      FUZZ_CHECK(shorter.need <= r.consumed);
      auto minus1 = nf::decode(data, r.consumed - 1);
      FUZZ_CHECK(minus1.need_more() && minus1.need == r.consumed);
      check_reencode(r.value, data, r.consumed);
      break;
    }
    case parse_status::failed: {
      FUZZ_CHECK(r.error);
      FUZZ_CHECK(allowed_failure(r.error));
      // A failure does not turn into success when more bytes arrive: the
      // decision was made on the first `size` bytes; extend with garbage.
      std::vector<uint8_t> longer(data, data + size);
      longer.push_back(static_cast<uint8_t>(rng.next()));
      auto again = nf::decode(longer.data(), longer.size());
      FUZZ_CHECK(again.failed());
      break;
    }
  }
}

void check_reader(const uint8_t* data, size_t size, fuzz::rng& rng) {
  nf::frame_reader reader;
  size_t pos = 0; // bytes handed over so far
  size_t frame_start = 0; // where the frame being read begins
  size_t steps = 0;
  for (;;) {
    FUZZ_CHECK(++steps < 8 * size + 1000);
    FUZZ_CHECK(reader.buffered() == pos - frame_start);
    FUZZ_CHECK(reader.buffered() <= nf::max_frame_size);
    const size_t rest = size - pos;
    size_t chunk = 0;
    switch (rng.next() % 5) {
      case 0:
        chunk = rng.upto(std::min<size_t>(rest, 1));
        break;
      case 1:
        chunk = rng.upto(std::min<size_t>(rest, 16));
        break;
      case 2:
        chunk = std::min(rest, reader.wanted());
        break;
      case 3:
        chunk = rng.upto(rest);
        break;
      default:
        chunk = rest;
        break;
    }
    const size_t want_before = reader.wanted();
    const size_t taken = reader.feed(data + pos, chunk);
    FUZZ_CHECK(taken <= chunk);
    if (want_before > 0 && chunk > 0)
      FUZZ_CHECK(taken > 0); // wanting and given bytes: takes some
    pos += taken;
    auto item = reader.next();
    if (taken < chunk)
      FUZZ_CHECK(item.has_value());
    if (!item) {
      FUZZ_CHECK(reader.wanted() > 0);
      if (pos == size) {
        auto ref =
          nf::decode(size == frame_start ? nullptr : data + frame_start,
                     size - frame_start);
        FUZZ_CHECK(ref.need_more());
        FUZZ_CHECK(ref.need == reader.buffered() + reader.wanted());
        return;
      }
      continue;
    }
    auto ref = nf::decode(data + frame_start, size - frame_start);
    if (*item) {
      FUZZ_CHECK(ref.done());
      FUZZ_CHECK(ref.consumed == pos - frame_start);
      FUZZ_CHECK(ref.value == **item);
      FUZZ_CHECK(reader.buffered() == 0);
      check_reencode(**item, data + frame_start, ref.consumed);
      frame_start = pos;
      continue;
    }
    // Error: must match decode's, and be sticky.
    auto err = item->error();
    FUZZ_CHECK(ref.failed());
    FUZZ_CHECK(fuzz::same_error(err, ref.error));
    FUZZ_CHECK(allowed_failure(err));
    for (int i = 0; i < 3; ++i) {
      FUZZ_CHECK(reader.wanted() == 0);
      FUZZ_CHECK(reader.buffered() == 0);
      static const uint8_t more[nf::header_size] = {'C', 'M', 'G', 'R', 3,
                                                    0,   0,   0,   8};
      FUZZ_CHECK(reader.feed(more, sizeof(more)) == 0);
      if (pos < size)
        FUZZ_CHECK(reader.feed(data + pos, size - pos) == 0);
      auto again = reader.next();
      FUZZ_CHECK(again.has_value() && !*again);
      FUZZ_CHECK(fuzz::same_error(again->error(), err));
    }
    return;
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto rng = fuzz::rng::from(data, size);
  check_decode(data, size, rng);
  check_reader(data, size, rng);
  return 0;
}
