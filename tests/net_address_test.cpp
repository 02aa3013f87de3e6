// net_address: strict parsing, canonical printing, and the trip through
// socket addresses and CAF serialization.
//
// Over 500 lines because every accepted and refused form is a case.

#include <doctest/doctest.h>

#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>
#include <caf/deep_to_string.hpp>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/net_address.hpp"

using namespace connmgr;

namespace {

net_address must_parse(std::string_view text, bool allow_port_zero = false) {
  auto result = net_address::parse(text, allow_port_zero);
  if (!result)
    FAIL("unexpected rejection: " << describe(result.error()));
  return *result;
}

struct rejection {
  std::string input;
  /// A piece of the explanation that must follow the quoted input.
  std::string says;
};

// Every rejection must be our error, start by quoting the input, and explain.
void check_rejected(const std::vector<rejection>& cases,
                    bool allow_port_zero = false) {
  for (const auto& c : cases) {
    CAPTURE(c.input);
    auto result = net_address::parse(c.input, allow_port_zero);
    REQUIRE_FALSE(result);
    CHECK(errc_of(result.error()) == errc::invalid_address);
    auto text = describe(result.error());
    CAPTURE(text);
    CHECK(text.find("invalid_address: \"" + c.input + "\": ") == 0);
    CHECK(text.find(c.says) != std::string::npos);
    CHECK(text.find("expected") != std::string::npos);
  }
}

} // namespace

// -- accepted forms -----------------------------------------------------------

TEST_CASE(
  "net_address: accepted forms parse to their canonical host and print") {
  struct accepted {
    std::string input;
    net_address::kind type;
    std::string host;
    uint16_t port;
    std::string printed;
  };
  using k = net_address::kind;
  std::vector<accepted> cases{
    {"1.2.3.4:8333", k::ipv4, "1.2.3.4", 8333, "1.2.3.4:8333"},
    {"0.0.0.0:1", k::ipv4, "0.0.0.0", 1, "0.0.0.0:1"},
    {"255.255.255.255:65535", k::ipv4, "255.255.255.255", 65535,
     "255.255.255.255:65535"},
    {"10.0.0.1:00080", k::ipv4, "10.0.0.1", 80, "10.0.0.1:80"},
    {"[::1]:8333", k::ipv6, "::1", 8333, "[::1]:8333"},
    {"[2001:db8::1]:8333", k::ipv6, "2001:db8::1", 8333, "[2001:db8::1]:8333"},
    {"[0:0:0:0:0:0:0:1]:80", k::ipv6, "::1", 80, "[::1]:80"},
    {"[2001:DB8:0:0:0:0:0:1]:80", k::ipv6, "2001:db8::1", 80,
     "[2001:db8::1]:80"},
    {"[::]:9", k::ipv6, "::", 9, "[::]:9"},
    {"[::ffff:1.2.3.4]:80", k::ipv6, "::ffff:1.2.3.4", 80,
     "[::ffff:1.2.3.4]:80"},
    {"seed.example.org:8333", k::hostname, "seed.example.org", 8333,
     "seed.example.org:8333"},
    {"Seed.Example.ORG.:8333", k::hostname, "seed.example.org", 8333,
     "seed.example.org:8333"},
    {"localhost:1", k::hostname, "localhost", 1, "localhost:1"},
    {"expyuzz4wqqyqhjn.onion:8333", k::hostname, "expyuzz4wqqyqhjn.onion", 8333,
     "expyuzz4wqqyqhjn.onion:8333"},
    {"_srv._tcp.host-1.example:53", k::hostname, "_srv._tcp.host-1.example", 53,
     "_srv._tcp.host-1.example:53"},
    {"1e100.net:443", k::hostname, "1e100.net", 443, "1e100.net:443"},
    {"1.2.3.4.nip.io:80", k::hostname, "1.2.3.4.nip.io", 80,
     "1.2.3.4.nip.io:80"},
    {"deadbeef:80", k::hostname, "deadbeef", 80, "deadbeef:80"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.input);
    auto x = must_parse(c.input);
    CHECK(x.type() == c.type);
    CHECK(x.is_ip() == (c.type != k::hostname));
    CHECK(x.host() == c.host);
    CHECK(x.port() == c.port);
    CHECK(x.to_string() == c.printed);
    CHECK(to_string(x) == c.printed);
  }
}

TEST_CASE("net_address: host names at the length limits are accepted") {
  std::string label63(63, 'a');
  auto x = must_parse(label63 + ".example:1");
  CHECK(x.host() == label63 + ".example");
  // 63 + 1 + 63 + 1 + 63 + 1 + 61 = 253 characters, then a trailing dot.
  std::string name253 =
    label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  REQUIRE(name253.size() == 253);
  CHECK(must_parse(name253 + ":80").host() == name253);
  CHECK(must_parse(name253 + ".:80").host() == name253);
}

TEST_CASE("net_address: printing and re-parsing gives back an equal value") {
  std::vector<std::string> inputs{
    "1.2.3.4:8333",          "127.0.0.1:1",
    "255.255.255.255:65535", "[::1]:8333",
    "[2001:db8::1]:18333",   "[fe80::1]:80",
    "[::ffff:10.0.0.1]:1",   "[::]:443",
    "example.org:8333",      "A.B.C.example.:99",
    "seed_1.example:5",      "x.onion:9050",
  };
  for (const auto& in : inputs) {
    CAPTURE(in);
    auto x = must_parse(in);
    auto again = must_parse(x.to_string());
    CHECK(again == x);
    CHECK_FALSE(again != x);
    CHECK(again.to_string() == x.to_string());
  }
  auto listening = must_parse("[::]:0", true);
  CHECK(must_parse(listening.to_string(), true) == listening);
}

TEST_CASE("net_address: a binary IPv4 address prints as its parsed text "
          "does") {
  CHECK(ipv4_to_string(0x01020304, 8333) == "1.2.3.4:8333");
  CHECK(ipv4_to_string(0, 0) == net_address{}.to_string());
  CHECK(ipv4_to_string(0xffffffff, 65535)
        == must_parse("255.255.255.255:65535").to_string());
  CHECK(ipv4_to_string(0x7f000001, 1) == must_parse("127.0.0.1:1").to_string());
  CHECK(ipv4_to_string(0x0a00640a, 80) == "10.0.100.10:80");
}

TEST_CASE("net_address: the default value is the IPv4 wildcard with port 0") {
  net_address x;
  CHECK(x.type() == net_address::kind::ipv4);
  CHECK(x.host() == "0.0.0.0");
  CHECK(x.port() == 0);
  CHECK(x.is_ip());
  CHECK_FALSE(x.is_loopback());
  CHECK(x.to_string() == "0.0.0.0:0");
  CHECK(must_parse("0.0.0.0:0", true) == x);
}

TEST_CASE("net_address: port 0 is accepted only when listening on an "
          "ephemeral port is allowed") {
  check_rejected({{"1.2.3.4:0", "port 0 out of range, expected 1..65535"},
                  {"[::1]:00000", "port 0 out of range, expected 1..65535"},
                  {"example.org:0", "port 0 out of range"}});
  CHECK(must_parse("1.2.3.4:0", true).port() == 0);
  CHECK(must_parse("[::1]:0", true).port() == 0);
  CHECK(must_parse("example.org:0", true).port() == 0);
  // The wider range shows up in the explanation too.
  check_rejected({{"1.2.3.4:65536", "expected 0..65535"}}, true);
}

// -- rejections ---------------------------------------------------------------

TEST_CASE("net_address: a port beyond 65535 is rejected naming the input") {
  check_rejected(
    {{"1.2.3.4:99999", "port 99999 out of range, expected 1..65535"},
     {"1.2.3.4:65536", "port 65536 out of range, expected 1..65535"},
     {"[::1]:70000", "port 70000 out of range"},
     {"example.org:65536", "port 65536 out of range"}});
}

TEST_CASE("net_address: a port of more than five digits is rejected even "
          "with leading zeros") {
  check_rejected({{"1.2.3.4:000080", "has more than 5 digits"},
                  {"1.2.3.4:1000000", "has more than 5 digits"},
                  {"[::1]:0000000000000000000001", "has more than 5 digits"}});
}

TEST_CASE("net_address: a port that is not plain decimal digits is rejected") {
  check_rejected({{"1.2.3.4:8a", "is not a decimal number"},
                  {"1.2.3.4:+80", "is not a decimal number"},
                  {"1.2.3.4:-80", "is not a decimal number"},
                  {"1.2.3.4:0x50", "is not a decimal number"},
                  {"[::1]:80:80", "is not a decimal number"}});
}

TEST_CASE("net_address: an empty input, host or port is rejected naming "
          "the input") {
  check_rejected({{"", "empty address"},
                  {"1.2.3.4", "missing port"},
                  {"example.org", "missing port"},
                  {"host:", "missing port after ':'"},
                  {"1.2.3.4:", "missing port after ':'"},
                  {"[::1]:", "missing port after ':'"},
                  {"[::1]", "missing port after ']'"},
                  {":8333", "empty host"},
                  {"[]:8333", "empty host in brackets"}});
}

TEST_CASE("net_address: whitespace anywhere is rejected") {
  check_rejected({{"1.2.3.4: 80", "whitespace at offset 8"},
                  {" 1.2.3.4:80", "whitespace at offset 0"},
                  {"1.2.3.4:80 ", "whitespace at offset 10"},
                  {"exa mple.org:80", "whitespace"},
                  {"[:: 1]:80", "whitespace"}});
  // Control characters are escaped so the error stays on one line.
  auto result = net_address::parse("1.2.3.4:\t80\n");
  REQUIRE_FALSE(result);
  CHECK(describe(result.error()).find("\"1.2.3.4:\\x0980\\x0a\"")
        != std::string::npos);
}

TEST_CASE("net_address: IPv6 needs closed brackets and brackets hold only "
          "IPv6") {
  check_rejected({{"::1:8333", "expected IPv6 addresses in brackets"},
                  {"2001:db8::1:80", "expected IPv6 addresses in brackets"},
                  {"[::1", "unclosed '['"},
                  {"[::1:8333", "unclosed '['"},
                  {"[1.2.3.4]:80", "in brackets is not an IPv6 address"},
                  {"[example.org]:80", "in brackets is not an IPv6 address"},
                  {"[::1]x80", "after ']', expected ':' and a port"},
                  {"[::1]]:80", "after ']'"},
                  {"[::g]:80", "is not a valid IPv6 address"},
                  {"[1::2::3]:80", "is not a valid IPv6 address"},
                  {"[[::1]]:80", "is not a valid IPv6 address"},
                  {"::1]:80", "expected IPv6 addresses in brackets"}});
}

TEST_CASE("net_address: IPv6 zone ids are rejected as unsupported") {
  check_rejected({{"[fe80::1%eth0]:80", "zone id \"%eth0\" is not supported"},
                  {"[fe80::1%25eth0]:80", "is not supported"},
                  {"[fe80::1%]:80", "is not supported"},
                  {"fe80::1%eth0:80", "expected IPv6 addresses in brackets"}});
}

TEST_CASE("net_address: an IPv4 octet with a leading zero is rejected as "
          "ambiguous octal") {
  check_rejected({{"01.2.3.4:80", "octet \"01\""},
                  {"1.2.3.010:80", "has a leading zero"},
                  {"1.2.00.4:80", "has a leading zero"},
                  {"1.2.3.0004:80", "has a leading zero"}});
}

TEST_CASE("net_address: an IPv4 octet beyond 255 is rejected") {
  check_rejected({{"1.2.3.256:80",
                   "octet \"256\" in \"1.2.3.256\" out of "
                   "range, expected 0..255"},
                  {"999.1.1.1:80", "octet \"999\""},
                  {"1.2.3.1000:80", "out of range"},
                  {"1.2.3.99999999999999999999:80", "out of range"}});
}

TEST_CASE("net_address: an all-numeric host needs exactly four octets and "
          "is never a host name") {
  check_rejected({{"1.2.3:80", "has 3 octets, expected four decimal octets"},
                  {"1.2.3.4.5:80", "has 5 octets"},
                  {"1234:80", "has 1 octet,"},
                  {"1..2.3:80", "empty octet"},
                  {"1..2:80", "has 3 octets"},
                  {".1.2.3:80", "empty octet"},
                  {"1.2.3.4.:80", "ends in '.'"},
                  {".:80", "ends in '.'"}});
}

TEST_CASE("net_address: a host ending in a number is not taken as a host "
          "name") {
  // A resolver would read these as IP addresses (inet_aton), skipping the
  // IPv4 checks above.
  check_rejected({{"0x7f.0.0.1:80", "ends in a numeric label"},
                  {"0x7f000001:80", "ends in a numeric label"},
                  {"example.123:80", "ends in a numeric label"},
                  {"a.0X1F:80", "ends in a numeric label"},
                  {"example.123.:80", "ends in a numeric label"}});
}

TEST_CASE("net_address: a malformed host name is rejected") {
  std::string label64(64, 'a');
  std::string name254 = std::string(63, 'a') + "." + std::string(63, 'a') + "."
    + std::string(63, 'a') + "." + std::string(62, 'a');
  REQUIRE(name254.size() == 254);
  check_rejected({{"-a.example:80", "starts or ends with '-'"},
                  {"a-.example:80", "starts or ends with '-'"},
                  {"a..b:80", "empty label"},
                  {".a:80", "empty label"},
                  {"a.b..:80", "empty label"},
                  {label64 + ".example:80", "label of 64 characters"},
                  {name254 + ":80", "host name of 254 characters is too long"},
                  {"exa/mple:80", "character \"/\""},
                  {"ex@mple.org:80", "character \"@\""},
                  {"host%eth0:80", "character \"%\""},
                  {"1-2.3-4:80", "has no letter"},
                  {"_:80", "has no letter"}});
  // Non-ASCII bytes (unencoded IDNs) are refused and shown escaped.
  auto result = net_address::parse("b\xc3\xbc"
                                   "cher.de:80");
  REQUIRE_FALSE(result);
  auto text = describe(result.error());
  CAPTURE(text);
  CHECK(text.find("\"b\\xc3\\xbccher.de:80\"") != std::string::npos);
  CHECK(text.find("character \"\\xc3\"") != std::string::npos);
}

TEST_CASE("net_address: the error text for a huge input stays bounded") {
  std::string huge(100000, 'a');
  auto result = net_address::parse(huge + ":80");
  REQUIRE_FALSE(result);
  auto text = describe(result.error());
  CHECK(text.size() < 2000);
  CHECK(text.find("(100003 bytes)") != std::string::npos);
}

// -- loopback -----------------------------------------------------------------

TEST_CASE("net_address: loopback means 127.0.0.0/8 or ::1 and nothing else") {
  CHECK(must_parse("127.0.0.1:1").is_loopback());
  CHECK(must_parse("127.255.255.254:1").is_loopback());
  CHECK(must_parse("[::1]:1").is_loopback());
  CHECK(must_parse("[0:0:0:0:0:0:0:1]:1").is_loopback());
  CHECK_FALSE(must_parse("128.0.0.1:1").is_loopback());
  CHECK_FALSE(must_parse("126.255.255.255:1").is_loopback());
  CHECK_FALSE(must_parse("[::]:1").is_loopback());
  CHECK_FALSE(must_parse("[::2]:1").is_loopback());
  CHECK_FALSE(must_parse("[::ffff:127.0.0.1]:1").is_loopback());
  CHECK_FALSE(must_parse("localhost:1").is_loopback());
}

// -- socket addresses ---------------------------------------------------------

TEST_CASE("net_address: an IPv4 address survives to_sockaddr and "
          "from_sockaddr") {
  auto x = must_parse("192.0.2.7:8333");
  sockaddr_storage ss;
  std::memset(&ss, 0xab, sizeof(ss));
  auto len = x.to_sockaddr(ss);
  REQUIRE(len);
  CHECK(*len == sizeof(sockaddr_in));
  sockaddr_in sin;
  std::memcpy(&sin, &ss, sizeof(sin));
  CHECK(sin.sin_family == AF_INET);
  CHECK(ntohs(sin.sin_port) == 8333);
  // 8333 = 0x208d, most significant byte first on the wire.
  const auto* port_bytes =
    reinterpret_cast<const unsigned char*>(&sin.sin_port);
  CHECK(port_bytes[0] == 0x20);
  CHECK(port_bytes[1] == 0x8d);
  const auto* addr = reinterpret_cast<const unsigned char*>(&sin.sin_addr);
  CHECK(addr[0] == 192);
  CHECK(addr[1] == 0);
  CHECK(addr[2] == 2);
  CHECK(addr[3] == 7);
  auto back =
    net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), *len);
  REQUIRE(back);
  CHECK(*back == x);
}

TEST_CASE("net_address: an IPv6 address survives to_sockaddr and "
          "from_sockaddr") {
  for (auto in : {"[2001:db8::1]:18333", "[::1]:1", "[::ffff:1.2.3.4]:65535"}) {
    CAPTURE(in);
    auto x = must_parse(in);
    sockaddr_storage ss;
    auto len = x.to_sockaddr(ss);
    REQUIRE(len);
    CHECK(*len == sizeof(sockaddr_in6));
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof(sin6));
    CHECK(sin6.sin6_family == AF_INET6);
    CHECK(ntohs(sin6.sin6_port) == x.port());
    CHECK(sin6.sin6_scope_id == 0);
    CHECK(sin6.sin6_flowinfo == 0);
    char text[INET6_ADDRSTRLEN] = {};
    REQUIRE(inet_ntop(AF_INET6, &sin6.sin6_addr, text, sizeof(text)));
    CHECK(x.host() == text);
    auto back =
      net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), *len);
    REQUIRE(back);
    CHECK(*back == x);
    CHECK(back->type() == net_address::kind::ipv6);
  }
}

TEST_CASE("net_address: from_sockaddr keeps an IPv4-mapped address IPv6 and "
          "takes any port") {
  sockaddr_in6 sin6;
  std::memset(&sin6, 0, sizeof(sin6));
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(0);
  REQUIRE(inet_pton(AF_INET6, "::ffff:10.1.2.3", &sin6.sin6_addr) == 1);
  auto x = net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&sin6),
                                      sizeof(sin6));
  REQUIRE(x);
  CHECK(x->type() == net_address::kind::ipv6);
  CHECK(x->host() == "::ffff:10.1.2.3");
  CHECK(x->port() == 0);
  CHECK(x->to_string() == "[::ffff:10.1.2.3]:0");
  CHECK(must_parse(x->to_string(), true) == *x);
}

TEST_CASE("net_address: from_sockaddr rejects null, short, foreign and scoped "
          "addresses") {
  auto rejected = [](const caf::expected<net_address>& r, const char* says) {
    REQUIRE_FALSE(r);
    CHECK(errc_of(r.error()) == errc::invalid_address);
    auto text = describe(r.error());
    CAPTURE(text);
    CHECK(text.find(says) != std::string::npos);
  };
  rejected(net_address::from_sockaddr(nullptr, 16), "null pointer");
  sockaddr_in sin;
  std::memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  auto* sa = reinterpret_cast<sockaddr*>(&sin);
  rejected(net_address::from_sockaddr(sa, 1), "cannot hold an address family");
  rejected(net_address::from_sockaddr(sa, sizeof(sin) - 1), "AF_INET address");
  sockaddr_in6 sin6;
  std::memset(&sin6, 0, sizeof(sin6));
  sin6.sin6_family = AF_INET6;
  auto* sa6 = reinterpret_cast<sockaddr*>(&sin6);
  rejected(net_address::from_sockaddr(sa6, sizeof(sockaddr_in)),
           "AF_INET6 address");
  REQUIRE(inet_pton(AF_INET6, "fe80::1", &sin6.sin6_addr) == 1);
  sin6.sin6_scope_id = 2;
  rejected(net_address::from_sockaddr(sa6, sizeof(sin6)),
           "zone ids are not supported");
  sockaddr_storage ss;
  std::memset(&ss, 0, sizeof(ss));
  ss.ss_family = AF_UNIX;
  rejected(
    net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), sizeof(ss)),
    "not supported, expected AF_INET or AF_INET6");
}

TEST_CASE("net_address: a host name refuses to_sockaddr because it needs "
          "resolving") {
  auto x = must_parse("seed.example.org:8333");
  sockaddr_storage ss;
  std::memset(&ss, 0x5a, sizeof(ss));
  auto len = x.to_sockaddr(ss);
  REQUIRE_FALSE(len);
  CHECK(errc_of(len.error()) == errc::invalid_address);
  auto text = describe(len.error());
  CHECK(text.find("\"seed.example.org:8333\"") != std::string::npos);
  CHECK(text.find("needs resolving") != std::string::npos);
  const auto* raw = reinterpret_cast<const unsigned char*>(&ss);
  bool untouched = true;
  for (size_t i = 0; i < sizeof(ss); ++i)
    untouched = untouched && raw[i] == 0x5a;
  CHECK(untouched);
}

// -- comparison and CAF -------------------------------------------------------

TEST_CASE("net_address: equal values compare equal and order consistently "
          "as map keys") {
  CHECK(must_parse("[0:0::1]:80") == must_parse("[::1]:80"));
  CHECK(must_parse("Example.ORG.:80") == must_parse("example.org:80"));
  CHECK(must_parse("1.2.3.4:80") != must_parse("1.2.3.4:81"));
  CHECK(must_parse("[::ffff:1.2.3.4]:80") != must_parse("1.2.3.4:80"));
  // IPs order numerically, not by their text.
  CHECK(must_parse("9.0.0.1:1") < must_parse("10.0.0.1:1"));
  std::map<net_address, int> m;
  for (auto in : {"10.0.0.1:1", "9.0.0.1:1", "[::1]:1", "a.example:1",
                  "[0::1]:1", "A.example:1", "9.0.0.1:2"})
    ++m[must_parse(in)];
  CHECK(m.size() == 5);
  CHECK(m[must_parse("[::1]:1")] == 2);
  CHECK(m[must_parse("a.example:1")] == 2);
  CHECK(m.begin()->first.to_string() == "9.0.0.1:1");
  CHECK(m.rbegin()->first.to_string() == "a.example:1");
  for (auto i = m.begin(), j = std::next(m.begin()); j != m.end(); ++i, ++j) {
    CHECK(i->first < j->first);
    CHECK_FALSE(j->first < i->first);
  }
}

TEST_CASE("net_address: a value crosses CAF serialization and malformed text "
          "is refused on arrival") {
  for (auto in : {"1.2.3.4:8333", "[2001:db8::1]:1", "example.org:80"}) {
    CAPTURE(in);
    auto x = must_parse(in);
    std::vector<char> buf;
    caf::binary_serializer sink{nullptr, buf};
    REQUIRE_FALSE(sink(x));
    net_address y;
    caf::binary_deserializer source{nullptr, buf};
    REQUIRE_FALSE(source(y));
    CHECK(y == x);
  }
  CHECK(caf::deep_to_string(must_parse("[::1]:80")).find("[::1]:80")
        != std::string::npos);
  std::vector<char> buf;
  caf::binary_serializer sink{nullptr, buf};
  std::string forged = "01.2.3.4:80";
  REQUIRE_FALSE(sink(forged));
  net_address y;
  caf::binary_deserializer source{nullptr, buf};
  auto err = source(y);
  CHECK(errc_of(err) == errc::invalid_address);
  CHECK(describe(err).find("\"01.2.3.4:80\"") != std::string::npos);
  CHECK(y == net_address{});
}

TEST_CASE("net_address: an IPv4 socket address prints like inet_ntop for "
          "octets of one, two and three digits") {
  const uint8_t samples[][4] = {{0, 0, 0, 0},         {1, 9, 10, 99},
                                {100, 199, 200, 255}, {127, 0, 0, 1},
                                {10, 20, 30, 40},     {255, 255, 255, 255}};
  for (auto& octets : samples) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(8333);
    std::memcpy(&sin.sin_addr, octets, 4);
    char expected[INET_ADDRSTRLEN] = {};
    REQUIRE(inet_ntop(AF_INET, &sin.sin_addr, expected, sizeof(expected)));
    auto addr = net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&sin),
                                           sizeof(sin));
    REQUIRE(addr);
    CHECK(addr->host() == std::string{expected});
    CHECK(addr->to_string() == std::string{expected} + ":8333");
  }
}
