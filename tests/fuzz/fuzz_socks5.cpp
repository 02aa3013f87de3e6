// Fuzzes the SOCKS5 reply decoders and client_handshake.
//
// Input: byte 0 picks the handshake flavour (bit 0: RESOLVE instead of
// CONNECT, bit 1: with credentials); the rest are the proxy's bytes, which
// every decoder sees.
//
// Properties, for parse_method_reply (both flavours), parse_auth_reply,
// parse_connect_reply and parse_resolve_reply over every prefix:
// - need_more asks for more than given; done consumes at most what was given
//   and need == consumed; no error unless failed, failed has one of the
//   documented errc values.
// - monotone: once done at a prefix, every longer prefix is done with the
//   same length and value; once failed, every longer prefix fails the same
//   way; a need_more never asks past the end of the message that is later
//   done, and no prefix shorter than that message is done.
// - a done CONNECT/RESOLVE reply re-encodes (05 00 RSV ATYP addr port) to
//   exactly the consumed bytes; a RESOLVE answer is never a host name.
// - client_handshake fed in input-derived chunks: consumes at most what it
//   is given, less only once done/failed, then nothing more and the state
//   sticks; agrees with running the decoders back to back (state, bytes
//   used, result, error); consumed + wanted() never passes the final reply;
//   the output is greeting [+ auth] + request, in order.
//
// Tor (RESOLVE, command 0xF0):
// - on every prefix, parse_resolve_reply agrees with parse_connect_reply
//   (status, need,
//   consumed, value, errc) except where Tor's extension differs: status 0x04
//   fails as resolve_failed instead of unreachable, and a successful reply
//   carrying a host name (ATYP 0x03) fails as proxy_failed (malformed) as soon
//   as the address type is read;
// - a failure reply's error names the code in upper-case hex ("socks5
//   RESOLVE reply 0x04: host unreachable"); Tor's onion-service codes
//   0xF0..0xF7 are named and fail as proxy_failed.
// - the RESOLVE request encoder, fed the proxy bytes as a host name, accepts
//   exactly 1..255 bytes and writes 05 F0 00 03 len name 00 00; the CONNECT
//   encoder does the same for a name target; client_handshake::resolve fails
//   before sending anything for a bad name.

#include <algorithm>
#include <string>
#include <variant>

#include "fuzz_check.hpp"
#include "connmgr/net/socks5.hpp"

using namespace connmgr;
namespace s5 = connmgr::socks5;

namespace {

constexpr size_t max_prefix = 300; // longest reply is 4 + 1 + 255 + 2

template <class T>
bool same_value(const T& x, const T& y) {
  if constexpr (std::is_same_v<T, std::monostate>)
    return true;
  else
    return x == y;
}

template <class T, class Decode, class ErrOk>
void check_decoder(const uint8_t* data, size_t size, Decode decode,
                   ErrOk err_ok) {
  const size_t n = std::min(size, max_prefix);
  std::vector<s5::parse_result<T>> rs;
  rs.reserve(n + 1);
  for (size_t k = 0; k <= n; ++k) {
    rs.push_back(decode(k == 0 ? nullptr : data, k));
    const auto& r = rs.back();
    switch (r.status) {
      case parse_status::need_more:
        FUZZ_CHECK(r.need > k);
        FUZZ_CHECK(!r.error);
        break;
      case parse_status::done:
        FUZZ_CHECK(r.consumed <= k);
        FUZZ_CHECK(r.consumed > 0);
        FUZZ_CHECK(r.need == r.consumed);
        FUZZ_CHECK(!r.error);
        break;
      case parse_status::failed:
        FUZZ_CHECK(r.error);
        FUZZ_CHECK(err_ok(errc_of(r.error)));
        break;
    }
    if (k > 0) {
      const auto& prev = rs[k - 1];
      if (prev.done()) {
        FUZZ_CHECK(r.done());
        FUZZ_CHECK(r.consumed == prev.consumed);
        FUZZ_CHECK(same_value<T>(r.value, prev.value));
      } else if (prev.failed()) {
        FUZZ_CHECK(r.failed());
        FUZZ_CHECK(fuzz::same_error(r.error, prev.error));
      }
    }
  }
  // The first done prefix is exactly the message length, and no need_more
  // asked past it.
  for (size_t k = 0; k <= n; ++k) {
    if (!rs[k].done())
      continue;
    const size_t c = rs[k].consumed;
    FUZZ_CHECK(c == k);
    for (size_t j = 0; j < c; ++j)
      if (rs[j].need_more())
        FUZZ_CHECK(rs[j].need <= c);
    break;
  }
}

void check_request_reply(const uint8_t* data, size_t size, bool resolve) {
  auto decode = [resolve](const uint8_t* d, size_t s) {
    return resolve ? s5::parse_resolve_reply(d, s)
                   : s5::parse_connect_reply(d, s);
  };
  check_decoder<s5::address>(data, size, decode, [resolve](errc x) {
    return x == errc::proxy_failed || x == errc::unreachable
      || x == errc::refused || x == errc::timed_out
      || (resolve && x == errc::resolve_failed);
  });
  auto r = decode(data, size);
  if (!r.done())
    return;
  const auto& a = r.value;
  if (resolve)
    FUZZ_CHECK(a.type != s5::address_type::domain);
  // Re-encode the reply: VER REP RSV ATYP addr port.
  std::vector<uint8_t> enc{0x05, 0x00, data[2], static_cast<uint8_t>(a.type)};
  switch (a.type) {
    case s5::address_type::ipv4:
      FUZZ_CHECK(std::all_of(a.ip.begin() + 4, a.ip.end(),
                             [](uint8_t b) { return b == 0; }));
      enc.insert(enc.end(), a.ip.begin(), a.ip.begin() + 4);
      FUZZ_CHECK(a.domain.empty());
      break;
    case s5::address_type::ipv6:
      enc.insert(enc.end(), a.ip.begin(), a.ip.end());
      FUZZ_CHECK(a.domain.empty());
      break;
    case s5::address_type::domain:
      FUZZ_CHECK(!a.domain.empty() && a.domain.size() <= 255);
      enc.push_back(static_cast<uint8_t>(a.domain.size()));
      enc.insert(enc.end(), a.domain.begin(), a.domain.end());
      break;
    default:
      FUZZ_CHECK(!"unknown address type in a done reply");
  }
  enc.push_back(static_cast<uint8_t>(a.port >> 8));
  enc.push_back(static_cast<uint8_t>(a.port & 0xFF));
  FUZZ_CHECK(enc.size() == r.consumed);
  FUZZ_CHECK(std::equal(enc.begin(), enc.end(), data));
  (void)a.to_string();
}

/// Tor's RESOLVE reply decoder against the CONNECT one, prefix by prefix.
/// Stops at the first prefix where both are done or failed: check_decoder
/// already showed that longer prefixes give the same answers.
void check_resolve_vs_connect(const uint8_t* data, size_t size) {
  const size_t n = std::min(size, max_prefix);
  for (size_t k = 0; k <= n; ++k) {
    const uint8_t* d = k == 0 ? nullptr : data;
    auto c = s5::parse_connect_reply(d, k);
    auto r = s5::parse_resolve_reply(d, k);
    const bool failure_status = k >= 2 && data[0] == 0x05 && data[1] != 0x00;
    const bool name_answer =
      k >= 4 && data[0] == 0x05 && data[1] == 0x00 && data[3] == 0x03;
    if (failure_status) {
      FUZZ_CHECK(c.failed() && r.failed());
      const errc want =
        data[1] == 0x04 ? errc::resolve_failed : errc_of(c.error);
      FUZZ_CHECK(errc_of(r.error) == want);
      if (data[1] == 0x04)
        FUZZ_CHECK(errc_of(c.error) == errc::unreachable);
      static const char digits[] = "0123456789ABCDEF";
      std::string code = "0x";
      code += digits[data[1] >> 4];
      code += digits[data[1] & 0xF];
      auto rt = describe(r.error);
      auto ct = describe(c.error);
      FUZZ_CHECK(rt.find("socks5 RESOLVE reply " + code + ": ")
                 != std::string::npos);
      FUZZ_CHECK(ct.find("socks5 reply " + code + ": ") != std::string::npos);
      if (data[1] >= 0xF0 && data[1] <= 0xF7) {
        FUZZ_CHECK(errc_of(r.error) == errc::proxy_failed);
        FUZZ_CHECK(rt.find("onion service") != std::string::npos);
      }
      return;
    }
    if (name_answer) {
      FUZZ_CHECK(r.failed());
      FUZZ_CHECK(errc_of(r.error) == errc::proxy_failed);
      return;
    }
    FUZZ_CHECK(r.status == c.status);
    switch (r.status) {
      case parse_status::need_more:
        FUZZ_CHECK(r.need == c.need);
        break;
      case parse_status::done:
        FUZZ_CHECK(r.consumed == c.consumed);
        FUZZ_CHECK(r.value == c.value);
        return;
      case parse_status::failed:
        FUZZ_CHECK(errc_of(r.error) == errc_of(c.error));
        return;
    }
  }
}

/// The request encoders with the input as a host name.
void check_encoders(const uint8_t* data, size_t size) {
  const std::string host(reinterpret_cast<const char*>(data),
                         std::min<size_t>(size, 300));
  const bool valid = !host.empty() && host.size() <= 255;
  auto expect_request = [&](const caf::expected<std::vector<uint8_t>>& req,
                            uint8_t cmd, uint16_t port) {
    FUZZ_CHECK(static_cast<bool>(req) == valid);
    if (!req) {
      FUZZ_CHECK(errc_of(req.error()) == errc::invalid_address);
      return;
    }
    std::vector<uint8_t> want{0x05, cmd, 0x00, 0x03,
                              static_cast<uint8_t>(host.size())};
    want.insert(want.end(), host.begin(), host.end());
    want.push_back(static_cast<uint8_t>(port >> 8));
    want.push_back(static_cast<uint8_t>(port & 0xFF));
    FUZZ_CHECK(*req == want);
  };
  expect_request(s5::resolve_request(host), 0xF0, 0);
  const uint16_t port =
    size >= 2 ? static_cast<uint16_t>(data[0] << 8 | data[1]) : 9050;
  expect_request(s5::connect_request(s5::address::name(host, port)), 0x01,
                 port);
  auto hs = s5::client_handshake::resolve(host);
  FUZZ_CHECK(static_cast<bool>(hs) == valid);
  if (!hs)
    FUZZ_CHECK(errc_of(hs.error()) == errc::invalid_address);
}

struct expectation {
  s5::client_handshake::status state = s5::client_handshake::status::need_more;
  size_t used = 0; // bytes of the replies, when done
  s5::address result;
  caf::error error;
};

/// The handshake as the decoders would run it back to back over the input.
expectation model(const uint8_t* data, size_t size, bool resolve, bool creds) {
  using st = s5::client_handshake::status;
  expectation e;
  size_t off = 0;
  auto step = [&](auto r) {
    if (r.need_more()) {
      e.state = st::need_more;
      return false;
    }
    if (r.failed()) {
      e.state = st::failed;
      e.error = r.error;
      return false;
    }
    off += r.consumed;
    return true;
  };
  if (!step(s5::parse_method_reply(data + off, size - off, creds)))
    return e;
  if (creds && !step(s5::parse_auth_reply(data + off, size - off)))
    return e;
  auto r = resolve ? s5::parse_resolve_reply(data + off, size - off)
                   : s5::parse_connect_reply(data + off, size - off);
  if (!step(r))
    return e;
  e.state = st::done;
  e.used = off;
  e.result = r.value;
  return e;
}

void check_handshake(const uint8_t* data, size_t size, bool resolve, bool creds,
                     fuzz::rng& rng) {
  using st = s5::client_handshake::status;
  std::optional<s5::credentials> cr;
  if (creds)
    cr = s5::credentials{"user", "pass"};
  auto target = s5::address::name("example.com", 8333);
  auto hs = resolve ? s5::client_handshake::resolve("example.com", cr)
                    : s5::client_handshake::connect(target, cr);
  FUZZ_CHECK(static_cast<bool>(hs));
  auto want = model(data, size, resolve, creds);

  std::vector<uint8_t> out = hs->take_output();
  FUZZ_CHECK(out == s5::greeting(creds));
  size_t pos = 0;
  size_t steps = 0;
  while (pos < size && hs->state() == st::need_more) {
    FUZZ_CHECK(++steps < 4 * size + 100);
    if (want.state == st::done)
      FUZZ_CHECK(pos + hs->wanted() <= want.used);
    FUZZ_CHECK(hs->wanted() > 0);
    const size_t rest = size - pos;
    size_t chunk = 0;
    switch (rng.next() % 4) {
      case 0:
        chunk = rng.upto(std::min<size_t>(rest, 3));
        break;
      case 1:
        chunk = std::min(rest, hs->wanted());
        break;
      case 2:
        chunk = rng.upto(rest);
        break;
      default:
        chunk = rest;
        break;
    }
    auto p = hs->feed(data + pos, chunk);
    FUZZ_CHECK(p.consumed <= chunk);
    FUZZ_CHECK(p.state == hs->state());
    if (p.consumed < chunk)
      FUZZ_CHECK(p.state != st::need_more);
    pos += p.consumed;
    auto more = hs->take_output();
    out.insert(out.end(), more.begin(), more.end());
  }
  FUZZ_CHECK(hs->state() == want.state);
  switch (hs->state()) {
    case st::need_more:
      FUZZ_CHECK(pos == size);
      FUZZ_CHECK(hs->wanted() > 0);
      break;
    case st::done:
      FUZZ_CHECK(pos == want.used);
      FUZZ_CHECK(hs->result() == want.result);
      FUZZ_CHECK(hs->wanted() == 0);
      FUZZ_CHECK(!hs->error());
      break;
    case st::failed:
      FUZZ_CHECK(fuzz::same_error(hs->error(), want.error));
      FUZZ_CHECK(hs->wanted() == 0);
      break;
  }
  if (hs->state() != st::need_more) {
    // Sticky: nothing more is consumed, nothing more is sent.
    const uint8_t extra[4] = {0x05, 0x00, 0x00, 0x01};
    auto p = hs->feed(extra, sizeof(extra));
    FUZZ_CHECK(p.consumed == 0 && p.state == want.state);
    FUZZ_CHECK(hs->take_output().empty());
  }
  // Output so far is a prefix of greeting + [auth] + request.
  std::vector<uint8_t> full = s5::greeting(creds);
  if (creds) {
    auto a = s5::auth_request(*cr);
    full.insert(full.end(), a->begin(), a->end());
  }
  auto req =
    resolve ? s5::resolve_request("example.com") : s5::connect_request(target);
  full.insert(full.end(), req->begin(), req->end());
  FUZZ_CHECK(out.size() <= full.size());
  FUZZ_CHECK(std::equal(out.begin(), out.end(), full.begin()));
  if (hs->state() == st::done)
    FUZZ_CHECK(out == full);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0)
    return 0;
  const uint8_t mode = data[0];
  ++data;
  --size;
  auto proxy_failed = [](errc x) { return x == errc::proxy_failed; };
  for (bool with_creds : {false, true})
    check_decoder<uint8_t>(
      data, size,
      [with_creds](const uint8_t* d, size_t s) {
        return s5::parse_method_reply(d, s, with_creds);
      },
      proxy_failed);
  check_decoder<std::monostate>(data, size, s5::parse_auth_reply, proxy_failed);
  check_request_reply(data, size, false);
  check_request_reply(data, size, true);
  check_resolve_vs_connect(data, size);
  check_encoders(data, size);
  auto rng = fuzz::rng::from(data, size);
  check_handshake(data, size, (mode & 1) != 0, (mode & 2) != 0, rng);
  return 0;
}
