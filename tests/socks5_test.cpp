// The SOCKS5 / RFC 1929 / Tor RESOLVE codec: exact request bytes, every reply
// status, malformed and truncated replies, and whole exchanges fed one byte at
// a time the way a slow proxy would deliver them.
//
// Over 500 lines because every reply status and malformation is a case.

#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/socks5.hpp"

using namespace connmgr;
using namespace connmgr::socks5;

namespace {

using bytes = std::vector<uint8_t>;

/// `parts` concatenated; each is a byte list or, via `text`, a string.
bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

bytes text(const std::string& s) {
  return bytes(s.begin(), s.end());
}

/// A heap copy holding exactly `n` bytes of `src`, so the address sanitizer
/// flags any read past the prefix a decoder was given. Null for `n == 0`
/// (as an empty vector's data() may be): a zero-size allocation is not
/// reliably poisoned, a null pointer crashes on any read.
std::unique_ptr<uint8_t[]> exact_copy(const bytes& src, size_t n) {
  if (n == 0)
    return nullptr;
  std::unique_ptr<uint8_t[]> buf{new uint8_t[n]};
  std::memcpy(buf.get(), src.data(), n);
  return buf;
}

/// Runs `parse` over every proper prefix of `full` (each in a buffer of
/// exactly that size), then over `full` itself.
template <class Parse>
void check_every_prefix(const bytes& full, Parse parse) {
  for (size_t n = 0; n < full.size(); ++n) {
    CAPTURE(n);
    auto buf = exact_copy(full, n);
    auto r = parse(buf.get(), n);
    REQUIRE(r.need_more());
    CHECK(r.need > n);
    // Never more than the message holds: an exact read stays inside it.
    CHECK(r.need <= full.size());
  }
  auto buf = exact_copy(full, full.size());
  auto r = parse(buf.get(), full.size());
  REQUIRE(r.done());
  CHECK(r.consumed == full.size());
  CHECK(r.need == full.size());
}

/// The failure of `r`, or a test failure if it did not fail.
template <class T>
caf::error failure(const parse_result<T>& r) {
  REQUIRE(r.failed());
  return r.error;
}

const bytes ipv4_reply = {0x05, 0x00, 0x00, 0x01, 10, 0, 0, 1, 0x1F, 0x90};

const bytes ipv6_reply = {0x05, 0x00, 0x00, 0x04, 0x20, 0x01, 0x0d, 0xb8,
                          0,    0,    0,    0,    0,    0,    0,    0,
                          0,    0,    0,    0x01, 0x20, 0x8D};

const bytes name_reply =
  cat({{0x05, 0x00, 0x00, 0x03, 0x0B}, text("example.com"), {0x01, 0xBB}});

const std::array<uint8_t, 16> v6_bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                          0,    0,    0,    0,    0, 0, 0, 1};

/// Feeds `reply` to `hs` one byte at a time, each byte in its own one-byte
/// allocation; the handshake must keep waiting until the last byte, asking
/// for at least one more each time and sending nothing meanwhile.
void feed_byte_by_byte(client_handshake& hs, const bytes& reply) {
  for (size_t i = 0; i < reply.size(); ++i) {
    CAPTURE(i);
    REQUIRE(hs.state() == client_handshake::status::need_more);
    CHECK(hs.wanted() >= 1);
    CHECK(hs.wanted() <= reply.size() - i);
    std::unique_ptr<uint8_t[]> one{new uint8_t[1]{reply[i]}};
    auto p = hs.feed(one.get(), 1);
    if (i + 1 < reply.size()) {
      CHECK(p.state == client_handshake::status::need_more);
      CHECK(hs.take_output().empty());
    }
  }
}

} // namespace

// --- greeting and method selection -------------------------------------------

TEST_CASE("socks5: the greeting offers no-auth alone, or username/password "
          "alone when credentials are given") {
  CHECK(greeting(false) == bytes{0x05, 0x01, 0x00});
  CHECK(greeting(true) == bytes{0x05, 0x01, 0x02});
}

TEST_CASE("socks5: a method reply choosing the offered method is accepted") {
  const bytes no_auth = {0x05, 0x00};
  auto r = parse_method_reply(no_auth.data(), no_auth.size(), false);
  REQUIRE(r.done());
  CHECK(r.value == method::no_auth);
  CHECK(r.consumed == 2);
  const bytes user_pass = {0x05, 0x02};
  auto r2 = parse_method_reply(user_pass.data(), user_pass.size(), true);
  REQUIRE(r2.done());
  CHECK(r2.value == method::user_password);
}

TEST_CASE("socks5: a method reply of 0xFF (no acceptable method) is "
          "rejected") {
  const bytes reply = {0x05, 0xFF};
  auto err = failure(parse_method_reply(reply.data(), reply.size(), true));
  CHECK(errc_of(err) == errc::proxy_failed);
  CHECK(describe(err)
        == "proxy_failed: socks5 method reply: no acceptable method (0xFF) "
           "for username/password");
}

TEST_CASE("socks5: a proxy that picks no-auth after we offered only "
          "username/password is rejected, keeping Tor stream isolation") {
  const bytes reply = {0x05, 0x00};
  auto err = failure(parse_method_reply(reply.data(), reply.size(), true));
  CHECK(errc_of(err) == errc::proxy_failed);
  CHECK(describe(err)
        == "proxy_failed: socks5 method reply: method 0x00 chosen, only 0x02 "
           "offered");
  const bytes gssapi = {0x05, 0x01};
  auto err2 = failure(parse_method_reply(gssapi.data(), gssapi.size(), false));
  CHECK(describe(err2)
        == "proxy_failed: socks5 method reply: method 0x01 chosen, only 0x00 "
           "offered");
}

TEST_CASE("socks5: a method reply with a version byte other than 5 is "
          "rejected at its first byte") {
  const bytes socks4 = {0x04};
  auto err = failure(parse_method_reply(socks4.data(), socks4.size(), false));
  CHECK(errc_of(err) == errc::proxy_failed);
  CHECK(describe(err)
        == "proxy_failed: socks5 method reply: version byte 0x04, expected "
           "0x05");
}

TEST_CASE("socks5: a truncated method reply asks for more") {
  check_every_prefix(bytes{0x05, 0x00}, [](const uint8_t* d, size_t n) {
    return parse_method_reply(d, n, false);
  });
}

// --- username/password -------------------------------------------------------

TEST_CASE("socks5: the username/password request has the exact RFC 1929 "
          "bytes") {
  auto req = auth_request({"alice", "s3cret"});
  REQUIRE(req);
  CHECK(*req == cat({{0x01, 0x05}, text("alice"), {0x06}, text("s3cret")}));
}

TEST_CASE("socks5: credentials of 255 bytes are accepted, empty or 256-byte "
          "ones are rejected before sending") {
  const std::string max(255, 'u');
  auto ok = auth_request({max, max});
  REQUIRE(ok);
  CHECK(ok->size() == 1 + 1 + 255 + 1 + 255);
  CHECK((*ok)[1] == 0xFF);
  CHECK((*ok)[257] == 0xFF);

  auto long_user = auth_request({std::string(256, 'u'), "p"});
  REQUIRE(!long_user);
  CHECK(errc_of(long_user.error()) == errc::invalid_config);
  CHECK(describe(long_user.error())
        == "invalid_config: socks5 user name is 256 bytes, expected 1..255");

  auto long_pass = auth_request({"u", std::string(256, 'p')});
  REQUIRE(!long_pass);
  CHECK(describe(long_pass.error())
        == "invalid_config: socks5 password is 256 bytes, expected 1..255");

  auto empty_user = auth_request({"", "p"});
  REQUIRE(!empty_user);
  CHECK(describe(empty_user.error())
        == "invalid_config: socks5 user name is 0 bytes, expected 1..255");

  auto empty_pass = auth_request({"u", ""});
  REQUIRE(!empty_pass);
  CHECK(describe(empty_pass.error())
        == "invalid_config: socks5 password is 0 bytes, expected 1..255");
}

TEST_CASE("socks5: an auth reply with status 0 is accepted, with version "
          "byte 1 or the tolerated 5") {
  const bytes v1 = {0x01, 0x00};
  auto r = parse_auth_reply(v1.data(), v1.size());
  REQUIRE(r.done());
  CHECK(r.consumed == 2);
  const bytes v5 = {0x05, 0x00};
  CHECK(parse_auth_reply(v5.data(), v5.size()).done());
}

TEST_CASE("socks5: an auth reply with a nonzero status is an authentication "
          "failure") {
  for (uint8_t status : bytes{0x01, 0x02, 0xFF}) {
    CAPTURE(static_cast<int>(status));
    const bytes reply = {0x01, status};
    auto err = failure(parse_auth_reply(reply.data(), reply.size()));
    CHECK(errc_of(err) == errc::proxy_failed);
    CHECK(describe(err).find("authentication failed") != std::string::npos);
  }
  const bytes reply = {0x01, 0x01};
  CHECK(describe(failure(parse_auth_reply(reply.data(), reply.size())))
        == "proxy_failed: socks5 auth reply: status 0x01: authentication "
           "failed");
}

TEST_CASE("socks5: an auth reply with a bad version byte is rejected") {
  const bytes reply = {0x02, 0x00};
  auto err = failure(parse_auth_reply(reply.data(), reply.size()));
  CHECK(describe(err)
        == "proxy_failed: socks5 auth reply: version byte 0x02, expected "
           "0x01");
}

TEST_CASE("socks5: a truncated auth reply asks for more") {
  check_every_prefix(bytes{0x01, 0x00}, [](const uint8_t* d, size_t n) {
    return parse_auth_reply(d, n);
  });
}

// --- requests ----------------------------------------------------------------

TEST_CASE("socks5: a CONNECT to an IPv4 target has the exact bytes") {
  auto req = connect_request(address::ipv4({192, 168, 1, 2}, 8333));
  REQUIRE(req);
  CHECK(*req == bytes{0x05, 0x01, 0x00, 0x01, 192, 168, 1, 2, 0x20, 0x8D});
}

TEST_CASE("socks5: a CONNECT to an IPv6 target has the exact bytes") {
  auto req = connect_request(address::ipv6(v6_bytes, 8333));
  REQUIRE(req);
  CHECK(*req
        == cat({{0x05, 0x01, 0x00, 0x04},
                bytes(v6_bytes.begin(), v6_bytes.end()),
                {0x20, 0x8D}}));
}

TEST_CASE("socks5: a CONNECT to a host name has the exact bytes") {
  auto req = connect_request(address::name("example.com", 443));
  REQUIRE(req);
  CHECK(*req
        == bytes{0x05, 0x01, 0x00, 0x03, 0x0B, 'e', 'x', 'a', 'm', 'p', 'l',
                 'e', '.', 'c', 'o', 'm', 0x01, 0xBB});
}

TEST_CASE("socks5: a CONNECT to a 255-byte host name is accepted, 256 bytes "
          "or an empty name is rejected") {
  const std::string max(255, 'a');
  auto ok = connect_request(address::name(max, 1));
  REQUIRE(ok);
  CHECK(ok->size() == 4 + 1 + 255 + 2);
  CHECK((*ok)[4] == 0xFF);

  auto too_long = connect_request(address::name(std::string(256, 'a'), 1));
  REQUIRE(!too_long);
  CHECK(errc_of(too_long.error()) == errc::invalid_address);
  CHECK(describe(too_long.error())
        == "invalid_address: socks5 host name is 256 bytes, expected 1..255");

  auto empty = connect_request(address::name("", 1));
  REQUIRE(!empty);
  CHECK(describe(empty.error())
        == "invalid_address: socks5 host name is 0 bytes, expected 1..255");
}

TEST_CASE("socks5: the RESOLVE request for example.com has the exact bytes") {
  auto req = resolve_request("example.com");
  REQUIRE(req);
  CHECK(*req
        == bytes{0x05, 0xF0, 0x00, 0x03, 0x0B, 0x65, 0x78, 0x61, 0x6D, 0x70,
                 0x6C, 0x65, 0x2E, 0x63, 0x6F, 0x6D, 0x00, 0x00});
}

TEST_CASE("socks5: a RESOLVE of a 255-byte name is accepted, 256 bytes or an "
          "empty name is rejected") {
  const std::string max(255, 'a');
  auto ok = resolve_request(max);
  REQUIRE(ok);
  CHECK(*ok == cat({{0x05, 0xF0, 0x00, 0x03, 0xFF}, text(max), {0x00, 0x00}}));

  auto too_long = resolve_request(std::string(256, 'a'));
  REQUIRE(!too_long);
  CHECK(describe(too_long.error())
        == "invalid_address: socks5 host name is 256 bytes, expected 1..255");

  auto empty = resolve_request("");
  REQUIRE(!empty);
  CHECK(errc_of(empty.error()) == errc::invalid_address);
}

// --- request replies ---------------------------------------------------------

TEST_CASE("socks5: successful CONNECT replies with an IPv4, IPv6 or host "
          "name bound address are decoded") {
  SUBCASE("IPv4") {
    auto r = parse_connect_reply(ipv4_reply.data(), ipv4_reply.size());
    REQUIRE(r.done());
    CHECK(r.consumed == 10);
    CHECK(r.value == address::ipv4({10, 0, 0, 1}, 8080));
    CHECK(r.value.to_string() == "10.0.0.1:8080");
  }
  SUBCASE("IPv6") {
    auto r = parse_connect_reply(ipv6_reply.data(), ipv6_reply.size());
    REQUIRE(r.done());
    CHECK(r.consumed == 22);
    CHECK(r.value == address::ipv6(v6_bytes, 8333));
    CHECK(r.value.to_string() == "[2001:db8::1]:8333");
  }
  SUBCASE("host name") {
    auto r = parse_connect_reply(name_reply.data(), name_reply.size());
    REQUIRE(r.done());
    CHECK(r.consumed == 7 + 11);
    CHECK(r.value == address::name("example.com", 443));
    CHECK(r.value.to_string() == "example.com:443");
  }
}

TEST_CASE("socks5: every CONNECT reply status maps to its error and "
          "message") {
  struct row {
    uint8_t code;
    errc expected;
    const char* text;
  };
  const row rows[] = {
    {0x01, errc::proxy_failed,
     "proxy_failed: socks5 reply 0x01: general SOCKS server failure"},
    {0x02, errc::proxy_failed,
     "proxy_failed: socks5 reply 0x02: connection not allowed by ruleset"},
    {0x03, errc::unreachable,
     "unreachable: socks5 reply 0x03: network unreachable"},
    {0x04, errc::unreachable,
     "unreachable: socks5 reply 0x04: host unreachable"},
    {0x05, errc::refused, "refused: socks5 reply 0x05: connection refused"},
    {0x06, errc::timed_out, "timed_out: socks5 reply 0x06: TTL expired"},
    {0x07, errc::proxy_failed,
     "proxy_failed: socks5 reply 0x07: command not supported"},
    {0x08, errc::proxy_failed,
     "proxy_failed: socks5 reply 0x08: address type not supported"},
    {0x09, errc::proxy_failed,
     "proxy_failed: socks5 reply 0x09: unknown reply code"},
    {0xF6, errc::proxy_failed,
     "proxy_failed: socks5 reply 0xF6: onion service address is invalid"},
    {0xFF, errc::proxy_failed,
     "proxy_failed: socks5 reply 0xFF: unknown reply code"},
  };
  for (const auto& x : rows) {
    CAPTURE(static_cast<int>(x.code));
    bytes reply = ipv4_reply;
    reply[1] = x.code;
    auto err = failure(parse_connect_reply(reply.data(), reply.size()));
    CHECK(errc_of(err) == x.expected);
    CHECK(describe(err) == x.text);
  }
}

TEST_CASE("socks5: a failure reply is reported as soon as its status byte "
          "arrives") {
  const bytes head = {0x05, 0x05};
  auto err = failure(parse_connect_reply(head.data(), head.size()));
  CHECK(errc_of(err) == errc::refused);
}

TEST_CASE("socks5: a RESOLVE reply with an IPv4 answer is accepted") {
  const bytes reply = {0x05, 0x00, 0x00, 0x01, 93, 184, 216, 34, 0x00, 0x00};
  auto r = parse_resolve_reply(reply.data(), reply.size());
  REQUIRE(r.done());
  CHECK(r.consumed == 10);
  CHECK(r.value == address::ipv4({93, 184, 216, 34}, 0));
  CHECK(r.value.to_string() == "93.184.216.34:0");
}

TEST_CASE("socks5: a RESOLVE reply with an IPv6 answer is accepted") {
  const bytes reply = cat({{0x05, 0x00, 0x00, 0x04},
                           bytes(v6_bytes.begin(), v6_bytes.end()),
                           {0x00, 0x00}});
  auto r = parse_resolve_reply(reply.data(), reply.size());
  REQUIRE(r.done());
  CHECK(r.consumed == 22);
  CHECK(r.value == address::ipv6(v6_bytes, 0));
  CHECK(r.value.to_string() == "[2001:db8::1]:0");
}

TEST_CASE("socks5: a RESOLVE reply with status 4 means the name did not "
          "resolve") {
  const bytes reply = {0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
  auto err = failure(parse_resolve_reply(reply.data(), reply.size()));
  CHECK(errc_of(err) == errc::resolve_failed);
  CHECK(describe(err)
        == "resolve_failed: socks5 RESOLVE reply 0x04: host unreachable");
  // Other statuses keep their CONNECT meaning.
  const bytes ttl = {0x05, 0x06};
  CHECK(describe(failure(parse_resolve_reply(ttl.data(), ttl.size())))
        == "timed_out: socks5 RESOLVE reply 0x06: TTL expired");
  const bytes general = {0x05, 0x01};
  CHECK(errc_of(failure(parse_resolve_reply(general.data(), general.size())))
        == errc::proxy_failed);
}

TEST_CASE("socks5: a RESOLVE reply with a host name answer is rejected") {
  auto err = failure(parse_resolve_reply(name_reply.data(), name_reply.size()));
  CHECK(errc_of(err) == errc::proxy_failed);
  CHECK(describe(err)
        == "proxy_failed: socks5 RESOLVE reply: address type 0x03 (host "
           "name), expected an IPv4 or IPv6 answer");
}

TEST_CASE("socks5: a reply with a version byte other than 5 is rejected") {
  bytes reply = ipv4_reply;
  reply[0] = 0x04;
  auto err = failure(parse_connect_reply(reply.data(), reply.size()));
  CHECK(errc_of(err) == errc::proxy_failed);
  CHECK(describe(err)
        == "proxy_failed: socks5 reply: version byte 0x04, expected 0x05");
  auto err2 = failure(parse_resolve_reply(reply.data(), 1));
  CHECK(describe(err2)
        == "proxy_failed: socks5 RESOLVE reply: version byte 0x04, expected "
           "0x05");
}

TEST_CASE("socks5: a reply with an unknown address type is rejected") {
  for (uint8_t atyp : bytes{0x00, 0x02, 0x05, 0xFF}) {
    CAPTURE(static_cast<int>(atyp));
    bytes reply = ipv4_reply;
    reply[3] = atyp;
    auto err = failure(parse_connect_reply(reply.data(), reply.size()));
    CHECK(errc_of(err) == errc::proxy_failed);
    CHECK(errc_of(failure(parse_resolve_reply(reply.data(), reply.size())))
          == errc::proxy_failed);
  }
  const bytes reply = {0x05, 0x00, 0x00, 0x02};
  CHECK(describe(failure(parse_connect_reply(reply.data(), reply.size())))
        == "proxy_failed: socks5 reply: unknown address type 0x02");
}

TEST_CASE("socks5: a CONNECT reply with an empty host name is rejected") {
  const bytes reply = {0x05, 0x00, 0x00, 0x03, 0x00, 0x00, 0x50};
  auto err = failure(parse_connect_reply(reply.data(), reply.size()));
  CHECK(describe(err) == "proxy_failed: socks5 reply: host name of length 0");
}

TEST_CASE("socks5: a nonzero reserved byte in a reply is tolerated") {
  bytes reply = ipv4_reply;
  reply[2] = 0x7F;
  auto r = parse_connect_reply(reply.data(), reply.size());
  REQUIRE(r.done());
  CHECK(r.value == address::ipv4({10, 0, 0, 1}, 8080));
}

TEST_CASE("socks5: every truncated reply asks for more without reading past "
          "its end") {
  auto connect = [](const uint8_t* d, size_t n) {
    return parse_connect_reply(d, n);
  };
  auto resolve = [](const uint8_t* d, size_t n) {
    return parse_resolve_reply(d, n);
  };
  SUBCASE("CONNECT, IPv4") {
    check_every_prefix(ipv4_reply, connect);
  }
  SUBCASE("CONNECT, IPv6") {
    check_every_prefix(ipv6_reply, connect);
  }
  SUBCASE("CONNECT, host name") {
    check_every_prefix(name_reply, connect);
  }
  SUBCASE("CONNECT, 255-byte host name") {
    check_every_prefix(cat({{0x05, 0x00, 0x00, 0x03, 0xFF},
                            text(std::string(255, 'h')),
                            {0x00, 0x50}}),
                       connect);
  }
  SUBCASE("RESOLVE, IPv4") {
    check_every_prefix(ipv4_reply, resolve);
  }
  SUBCASE("RESOLVE, IPv6") {
    check_every_prefix(ipv6_reply, resolve);
  }
}

TEST_CASE("socks5: bytes after a reply are not part of it") {
  const bytes input = cat({ipv4_reply, text("peer data")});
  auto r = parse_connect_reply(input.data(), input.size());
  REQUIRE(r.done());
  CHECK(r.consumed == ipv4_reply.size());
}

// --- addresses ---------------------------------------------------------------

TEST_CASE("socks5: addresses are built from text and printed back") {
  auto v4 = address::from_text(address_type::ipv4, "127.0.0.1", 9050);
  REQUIRE(v4);
  CHECK(*v4 == address::ipv4({127, 0, 0, 1}, 9050));
  CHECK(v4->to_string() == "127.0.0.1:9050");

  auto v6 = address::from_text(address_type::ipv6, "2001:db8::1", 8333);
  REQUIRE(v6);
  CHECK(*v6 == address::ipv6(v6_bytes, 8333));

  auto onion = address::from_text(
    address_type::domain,
    "expyuzz4wqqyqhjn76b7cxmkzdhsvr7kh4ngrwzkcyzbjzd3xp3tqjyd.onion", 8333);
  REQUIRE(onion);
  CHECK(onion->domain.size() == 62);

  auto bad_v4 = address::from_text(address_type::ipv4, "1.2.3", 1);
  REQUIRE(!bad_v4);
  CHECK(describe(bad_v4.error())
        == "invalid_address: socks5 host \"1.2.3\" is not an IPv4 address");
  auto bracketed = address::from_text(address_type::ipv6, "[::1]", 1);
  REQUIRE(!bracketed);
  CHECK(errc_of(bracketed.error()) == errc::invalid_address);
  auto too_long =
    address::from_text(address_type::domain, std::string(256, 'x'), 1);
  REQUIRE(!too_long);
  CHECK(errc_of(too_long.error()) == errc::invalid_address);
}

// --- client_handshake --------------------------------------------------------

TEST_CASE("socks5: a no-auth CONNECT handshake fed byte by byte reaches the "
          "bound address") {
  auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 8333));
  REQUIRE(hs);
  CHECK(hs->wanted() == 2);
  CHECK(hs->take_output() == bytes{0x05, 0x01, 0x00});
  CHECK(hs->take_output().empty());

  feed_byte_by_byte(*hs, {0x05, 0x00});
  CHECK(hs->take_output()
        == bytes{0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x20, 0x8D});

  feed_byte_by_byte(*hs, ipv4_reply);
  REQUIRE(hs->state() == client_handshake::status::done);
  CHECK(hs->result() == address::ipv4({10, 0, 0, 1}, 8080));
  CHECK(hs->wanted() == 0);
  CHECK(hs->take_output().empty());
}

TEST_CASE("socks5: a username/password CONNECT handshake to a host name fed "
          "byte by byte") {
  auto hs = client_handshake::connect(address::name("example.com", 443),
                                      credentials{"u1", "pw"});
  REQUIRE(hs);
  CHECK(hs->take_output() == bytes{0x05, 0x01, 0x02});

  feed_byte_by_byte(*hs, {0x05, 0x02});
  CHECK(hs->take_output() == bytes{0x01, 0x02, 'u', '1', 0x02, 'p', 'w'});

  feed_byte_by_byte(*hs, {0x01, 0x00});
  CHECK(hs->take_output()
        == cat(
          {{0x05, 0x01, 0x00, 0x03, 0x0B}, text("example.com"), {0x01, 0xBB}}));

  feed_byte_by_byte(*hs, name_reply);
  REQUIRE(hs->state() == client_handshake::status::done);
  CHECK(hs->result() == address::name("example.com", 443));
}

TEST_CASE("socks5: a username/password RESOLVE handshake fed byte by byte "
          "yields the IPv6 answer") {
  auto hs =
    client_handshake::resolve("example.com", credentials{"isolation-7", "x"});
  REQUIRE(hs);
  CHECK(hs->take_output() == bytes{0x05, 0x01, 0x02});
  feed_byte_by_byte(*hs, {0x05, 0x02});
  CHECK(hs->take_output()
        == cat({{0x01, 0x0B}, text("isolation-7"), {0x01}, text("x")}));
  feed_byte_by_byte(*hs, {0x01, 0x00});
  CHECK(hs->take_output()
        == cat(
          {{0x05, 0xF0, 0x00, 0x03, 0x0B}, text("example.com"), {0x00, 0x00}}));
  feed_byte_by_byte(*hs, ipv6_reply);
  REQUIRE(hs->state() == client_handshake::status::done);
  CHECK(hs->result() == address::ipv6(v6_bytes, 8333));
}

TEST_CASE("socks5: a handshake read exactly wanted() bytes at a time never "
          "reads past the final reply") {
  auto hs = client_handshake::connect(address::name("example.com", 443));
  REQUIRE(hs);
  // Everything the proxy will ever send, followed by tunneled data.
  const bytes wire = cat({{0x05, 0x00}, name_reply, text("hello")});
  size_t pos = 0;
  while (hs->state() == client_handshake::status::need_more) {
    const size_t n = hs->wanted();
    REQUIRE(n >= 1);
    REQUIRE(pos + n <= wire.size() - 5);
    auto p = hs->feed(wire.data() + pos, n);
    CHECK(p.consumed == n);
    pos += n;
  }
  REQUIRE(hs->state() == client_handshake::status::done);
  CHECK(pos == wire.size() - 5);
}

TEST_CASE("socks5: a handshake leaves bytes after the final reply to the "
          "caller") {
  auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 80));
  REQUIRE(hs);
  hs->take_output();
  const bytes method_reply = {0x05, 0x00};
  CHECK(hs->feed(method_reply.data(), method_reply.size()).consumed == 2);
  hs->take_output();
  const bytes input = cat({ipv4_reply, text("HTTP/1.1")});
  auto p = hs->feed(input.data(), input.size());
  CHECK(p.state == client_handshake::status::done);
  CHECK(p.consumed == ipv4_reply.size());
  // Done means done: later bytes are not consumed.
  CHECK(hs->feed(input.data(), input.size()).consumed == 0);
}

TEST_CASE("socks5: a handshake whose replies arrive in one read queues each "
          "request in order") {
  auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 80),
                                      credentials{"u", "p"});
  REQUIRE(hs);
  CHECK(hs->take_output() == greeting(true));
  const bytes all = cat({{0x05, 0x02}, {0x01, 0x00}, ipv4_reply});
  auto p = hs->feed(all.data(), all.size());
  CHECK(p.state == client_handshake::status::done);
  CHECK(p.consumed == all.size());
  CHECK(hs->take_output()
        == cat({{0x01, 0x01, 'u', 0x01, 'p'},
                {0x05, 0x01, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x50}}));
}

TEST_CASE("socks5: a handshake reports the proxy's failures") {
  SUBCASE("authentication failure") {
    auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 80),
                                        credentials{"u", "wrong"});
    REQUIRE(hs);
    hs->take_output();
    feed_byte_by_byte(*hs, {0x05, 0x02});
    hs->take_output();
    const bytes reply = {0x01, 0x01};
    auto p = hs->feed(reply.data(), reply.size());
    CHECK(p.state == client_handshake::status::failed);
    CHECK(hs->state() == client_handshake::status::failed);
    CHECK(describe(hs->error())
          == "proxy_failed: socks5 auth reply: status 0x01: authentication "
             "failed");
    CHECK(hs->wanted() == 0);
    // Nothing more is sent once the exchange failed.
    CHECK(hs->take_output().empty());
  }
  SUBCASE("proxy downgrades to no-auth") {
    auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 80),
                                        credentials{"u", "p"});
    REQUIRE(hs);
    hs->take_output();
    const bytes reply = {0x05, 0x00};
    CHECK(hs->feed(reply.data(), reply.size()).state
          == client_handshake::status::failed);
    CHECK(errc_of(hs->error()) == errc::proxy_failed);
    // Neither the credentials nor the request leak after a downgrade.
    CHECK(hs->take_output().empty());
  }
  SUBCASE("connection refused") {
    auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 80));
    REQUIRE(hs);
    const bytes wire = {0x05, 0x00, 0x05, 0x05};
    auto p = hs->feed(wire.data(), wire.size());
    CHECK(p.state == client_handshake::status::failed);
    CHECK(describe(hs->error())
          == "refused: socks5 reply 0x05: connection refused");
  }
  SUBCASE("RESOLVE of an unknown name") {
    auto hs = client_handshake::resolve("no-such-name.invalid");
    REQUIRE(hs);
    const bytes wire = {0x05, 0x00, 0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0};
    hs->feed(wire.data(), wire.size());
    CHECK(errc_of(hs->error()) == errc::resolve_failed);
  }
  SUBCASE("RESOLVE answered with a host name") {
    auto hs = client_handshake::resolve("example.com");
    REQUIRE(hs);
    const bytes wire = cat({{0x05, 0x00}, name_reply});
    hs->feed(wire.data(), wire.size());
    CHECK(hs->state() == client_handshake::status::failed);
    CHECK(errc_of(hs->error()) == errc::proxy_failed);
  }
  SUBCASE("not a SOCKS5 proxy") {
    auto hs = client_handshake::connect(address::ipv4({1, 2, 3, 4}, 80));
    REQUIRE(hs);
    const bytes wire = text("HTTP/1.1 400 Bad Request\r\n");
    auto p = hs->feed(wire.data(), wire.size());
    CHECK(p.state == client_handshake::status::failed);
    CHECK(describe(hs->error())
          == "proxy_failed: socks5 method reply: version byte 0x48, expected "
             "0x05");
  }
}

TEST_CASE("socks5: a handshake with an invalid target or credentials fails "
          "before sending anything") {
  auto long_name =
    client_handshake::connect(address::name(std::string(256, 'a'), 80));
  REQUIRE(!long_name);
  CHECK(errc_of(long_name.error()) == errc::invalid_address);
  auto empty_resolve = client_handshake::resolve("");
  REQUIRE(!empty_resolve);
  CHECK(errc_of(empty_resolve.error()) == errc::invalid_address);
  auto bad_creds =
    client_handshake::resolve("example.com", credentials{"", "p"});
  REQUIRE(!bad_creds);
  CHECK(errc_of(bad_creds.error()) == errc::invalid_config);
}
