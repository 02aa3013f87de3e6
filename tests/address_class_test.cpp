// address_class: classification of addresses, the public-routability
// predicate, and network groups.

#include <doctest/doctest.h>

#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/address_class.hpp"

using namespace connmgr;

namespace {

net_address addr(const std::string& text) {
  auto result = net_address::parse(text, true);
  REQUIRE_MESSAGE(result, text);
  return *result;
}

netgroup group(const std::string& text, unsigned bits4 = 16,
               unsigned bits6 = 32) {
  auto result = netgroup_of(addr(text), bits4, bits6);
  REQUIRE_MESSAGE(result, describe(result.error()));
  return *result;
}

} // namespace

TEST_CASE("address_class: every range, its edges and its neighbours") {
  struct sample {
    const char* input;
    const char* name;
  };
  std::vector<sample> cases{
    // unspecified
    {"0.0.0.0:1", "unspecified"},
    {"[::]:1", "unspecified"},
    {"[::ffff:0.0.0.0]:1", "unspecified"},
    // 0/8 other than 0.0.0.0
    {"0.0.0.1:1", "reserved"},
    {"0.255.255.255:1", "reserved"},
    {"1.0.0.0:1", "routable"},
    // loopback
    {"127.0.0.1:1", "loopback"},
    {"127.255.255.255:1", "loopback"},
    {"126.255.255.255:1", "routable"},
    {"128.0.0.0:1", "routable"},
    {"[::1]:1", "loopback"},
    {"[::2]:1", "routable"},
    {"[::ffff:127.0.0.1]:1", "loopback"},
    // RFC 1918
    {"10.0.0.0:1", "private"},
    {"10.255.255.255:1", "private"},
    {"9.255.255.255:1", "routable"},
    {"11.0.0.0:1", "routable"},
    {"172.16.0.0:1", "private"},
    {"172.31.255.255:1", "private"},
    {"172.15.255.255:1", "routable"},
    {"172.32.0.0:1", "routable"},
    {"192.168.0.0:1", "private"},
    {"192.168.255.255:1", "private"},
    {"192.167.255.255:1", "routable"},
    {"192.169.0.0:1", "routable"},
    {"[::ffff:10.1.2.3]:1", "private"},
    // RFC 4193
    {"[fc00::]:1", "private"},
    {"[fdff:ffff::1]:1", "private"},
    {"[fbff:ffff::1]:1", "routable"},
    {"[fe00::1]:1", "routable"},
    // shared (RFC 6598)
    {"100.64.0.0:1", "shared"},
    {"100.127.255.255:1", "shared"},
    {"100.63.255.255:1", "routable"},
    {"100.128.0.0:1", "routable"},
    // link-local
    {"169.254.0.0:1", "link_local"},
    {"169.254.255.255:1", "link_local"},
    {"169.253.255.255:1", "routable"},
    {"169.255.0.0:1", "routable"},
    {"[fe80::1]:1", "link_local"},
    {"[febf:ffff::1]:1", "link_local"},
    {"[fec0::1]:1", "routable"},
    // multicast
    {"224.0.0.0:1", "multicast"},
    {"239.255.255.255:1", "multicast"},
    {"223.255.255.255:1", "routable"},
    {"[ff00::]:1", "multicast"},
    {"[ff02::1]:1", "multicast"},
    // broadcast and the rest of 240/4
    {"255.255.255.255:1", "broadcast"},
    {"255.255.255.254:1", "reserved"},
    {"240.0.0.0:1", "reserved"},
    {"[::ffff:255.255.255.255]:1", "broadcast"},
    // documentation
    {"192.0.2.0:1", "documentation"},
    {"192.0.2.255:1", "documentation"},
    {"192.0.1.255:1", "routable"},
    {"192.0.3.0:1", "routable"},
    {"198.51.100.7:1", "documentation"},
    {"198.51.101.7:1", "routable"},
    {"203.0.113.9:1", "documentation"},
    {"203.0.114.9:1", "routable"},
    {"[2001:db8::1]:1", "documentation"},
    {"[2001:db8:ffff::1]:1", "documentation"},
    {"[2001:db9::1]:1", "routable"},
    {"[2001:db7::1]:1", "routable"},
    // routable
    {"8.8.8.8:1", "routable"},
    {"[2a00:1450::1]:1", "routable"},
    {"[::ffff:8.8.8.8]:1", "routable"},
    // host names, even those that look local
    {"localhost:1", "hostname"},
    {"seed.example.org:8333", "hostname"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.input);
    auto a = addr(c.input);
    CHECK(std::string{to_string(classify(a))} == c.name);
    CHECK(is_publicly_routable(a) == (std::string{c.name} == "routable"));
  }
}

TEST_CASE("address_class: names are distinct and stable") {
  std::vector<address_class> all{
    address_class::unspecified,     address_class::loopback,
    address_class::private_network, address_class::shared,
    address_class::link_local,      address_class::multicast,
    address_class::broadcast,       address_class::reserved,
    address_class::documentation,   address_class::routable,
    address_class::hostname,
  };
  std::set<std::string> names;
  for (auto x : all)
    names.insert(to_string(x));
  CHECK(names.size() == all.size());
  CHECK(std::string{to_string(address_class::private_network)} == "private");
  CHECK(std::string{to_string(address_class::link_local)} == "link_local");
}

TEST_CASE("netgroup: IPv4 prefixes of the configured length") {
  CHECK(group("1.2.3.4:1") == group("1.2.200.9:2"));
  CHECK(group("1.2.3.4:1") != group("1.3.3.4:1"));
  CHECK(group("1.2.3.4:1").to_string() == "1.2.0.0/16");
  CHECK(group("1.2.3.4:1").type() == netgroup::family::ipv4);
  CHECK(group("1.2.3.4:1").bits() == 16);
  // /24 and /32 for loopback tests; odd lengths cut inside a byte.
  CHECK(group("127.0.0.1:1", 24) == group("127.0.0.200:1", 24));
  CHECK(group("127.0.0.1:1", 24) != group("127.0.1.1:1", 24));
  CHECK(group("127.0.0.1:1", 32) != group("127.0.0.2:1", 32));
  CHECK(group("127.0.0.1:1", 32) == group("127.0.0.1:2", 32));
  CHECK(group("10.0.0.1:1", 12) == group("10.15.255.1:1", 12));
  CHECK(group("10.0.0.1:1", 12) != group("10.16.0.1:1", 12));
  CHECK(group("10.31.0.1:1", 12).to_string() == "10.16.0.0/12");
  CHECK(group("200.1.2.3:1", 1).to_string() == "128.0.0.0/1");
  // The same prefix at another length is another group.
  CHECK(group("1.2.3.4:1", 16) != group("1.2.3.4:1", 17));
}

TEST_CASE("netgroup: IPv6 prefixes, and IPv4-mapped addresses group as IPv4") {
  CHECK(group("[2a00:1450:4001::1]:1") == group("[2a00:1450:ffff::2]:1"));
  CHECK(group("[2a00:1450::1]:1") != group("[2a00:1451::1]:1"));
  CHECK(group("[2a00:1450::1]:1").to_string() == "2a00:1450::/32");
  CHECK(group("[2a00:1450::1]:1").type() == netgroup::family::ipv6);
  CHECK(group("[2a00:1450:abcd::1]:1", 16, 36).to_string()
        == "2a00:1450:a000::/36");
  CHECK(group("[::1]:1", 16, 128).to_string() == "::1/128");
  auto mapped = group("[::ffff:1.2.3.4]:1");
  CHECK(mapped.type() == netgroup::family::ipv4);
  CHECK(mapped == group("1.2.99.99:1"));
  CHECK(mapped.to_string() == "1.2.0.0/16");
  // An IPv6 group whose leading bytes spell an IPv4 prefix is still IPv6.
  CHECK(group("[102::]:1", 16, 16) != group("1.2.0.0:1", 16, 16));
}

TEST_CASE("netgroup: a host name is its own group") {
  auto a = group("seed.example.org:1");
  CHECK(a.type() == netgroup::family::hostname);
  CHECK(a.name() == "seed.example.org");
  CHECK(a.to_string() == "seed.example.org");
  CHECK(a.bits() == 0);
  CHECK(a == group("Seed.Example.org:2"));
  CHECK(a != group("other.example.org:1"));
  CHECK(a != group("1.2.3.4:1"));
}

TEST_CASE("netgroup: equality, order and hash agree") {
  std::vector<netgroup> xs{
    group("1.2.3.4:1"),          group("1.2.9.9:1"),   group("1.3.0.0:1"),
    group("1.2.3.4:1", 24),      group("[2a00::1]:1"), group("[2a00::2]:1"),
    group("[::ffff:1.2.0.1]:1"), group("a.example:1"), group("b.example:1"),
    group("a.example:2"),
  };
  std::set<netgroup> ordered(xs.begin(), xs.end());
  std::unordered_set<netgroup> hashed(xs.begin(), xs.end());
  CHECK(ordered.size() == 6);
  CHECK(hashed.size() == 6);
  for (auto& x : xs)
    for (auto& y : xs) {
      CHECK((x == y) == (!(x < y) && !(y < x)));
      if (x == y)
        CHECK(x.hash() == y.hash());
    }
  // Family first: every IPv4 group before every IPv6 group before names.
  CHECK(group("255.255.0.0:1") < group("[::2]:1"));
  CHECK(group("[ffff::1]:1") < group("a.example:1"));
}

TEST_CASE("netgroup: bit counts out of range are refused by name") {
  struct bad {
    unsigned bits4;
    unsigned bits6;
    const char* says;
  };
  std::vector<bad> cases{
    {0, 32, "bits_ipv4 = 0, expected 1..32"},
    {33, 32, "bits_ipv4 = 33, expected 1..32"},
    {16, 0, "bits_ipv6 = 0, expected 1..128"},
    {16, 129, "bits_ipv6 = 129, expected 1..128"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.says);
    // Checked whatever the address's family.
    for (auto text : {"1.2.3.4:1", "[2a00::1]:1", "a.example:1"}) {
      auto res = netgroup_of(addr(text), c.bits4, c.bits6);
      REQUIRE(!res);
      CHECK(errc_of(res.error()) == errc::invalid_config);
      CHECK(describe(res.error()).find(c.says) != std::string::npos);
    }
  }
  CHECK(netgroup_of(addr("1.2.3.4:1"), 32, 128));
  CHECK(netgroup_of(addr("1.2.3.4:1"), 1, 1));
}
