// The ban list and the subnets it holds, on plain values and hand-made
// instants: which prefixes parse, which addresses a ban covers, when bans
// end, and a misbehaving attacker banned from 100 000 addresses of its
// choosing.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "connmgr/actors/ban_list.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/address_class.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = ban_list::time_point;

const time_point t0 = time_point{} + 1000h;

netgroup subnet(const std::string& text) {
  auto result = parse_subnet(text);
  REQUIRE_MESSAGE(result, describe(result.error()));
  return *result;
}

net_address addr(const std::string& text) {
  auto result = net_address::parse(text);
  REQUIRE_MESSAGE(result, text);
  return *result;
}

std::string subnet_error(const std::string& text) {
  auto result = parse_subnet(text);
  REQUIRE_FALSE(result);
  CHECK(errc_of(result.error()) == errc::invalid_address);
  return describe(result.error());
}

/// The subnet of the ban covering `a` at `now`, or "none".
std::string ban_of(const ban_list& bans, const std::string& a,
                   time_point now = t0) {
  auto e = bans.find(addr(a), now);
  return e == nullptr ? "none" : e->subnet.to_string();
}

} // namespace

TEST_CASE("subnets: prefixes and bare addresses parse to their canonical "
          "form") {
  CHECK(subnet("10.0.0.0/8").to_string() == "10.0.0.0/8");
  CHECK(subnet("1.2.3.4").to_string() == "1.2.3.4/32");
  CHECK(subnet("2001:db8::/32").to_string() == "2001:db8::/32");
  CHECK(subnet("2001:DB8:0::1").to_string() == "2001:db8::1/128");
  CHECK(subnet("::ffff:10.0.0.0/104").to_string() == "10.0.0.0/8");
  CHECK(subnet("0.0.0.0/1").to_string() == "0.0.0.0/1");
  CHECK(subnet("::/1").to_string() == "::/1");
}

TEST_CASE("subnets: malformed prefixes fail naming the input and what was "
          "expected") {
  CHECK(subnet_error("10.1.2.3/8")
        == "invalid_address: \"10.1.2.3/8\": bits set past /8, expected "
           "10.0.0.0/8");
  CHECK(subnet_error("10.0.0.0/33")
        == "invalid_address: \"10.0.0.0/33\": prefix length /33, expected "
           "/1..32");
  CHECK(subnet_error("10.0.0.0/0")
        == "invalid_address: \"10.0.0.0/0\": prefix length /0, expected "
           "/1..32");
  CHECK(subnet_error("10.0.0.0/08").find("prefix length /08")
        != std::string::npos);
  CHECK(subnet_error("10.0.0.0/").find("prefix length /,")
        != std::string::npos);
  CHECK(subnet_error("::/129").find("expected /1..128") != std::string::npos);
  CHECK(subnet_error("::ffff:10.0.0.0/96").find("expected /97..128")
        != std::string::npos);
  for (auto bad : {"seed.example.org", "seed.example.org/8", "010.0.0.1",
                   "1.2.3", "", "/8", "[::1]", "fe80::1%eth0"})
    CHECK_MESSAGE(subnet_error(bad).find("expected an IPv4 or IPv6 address")
                    != std::string::npos,
                  bad);
}

TEST_CASE("subnets: an address lies in a prefix of its own family only") {
  CHECK(contains(subnet("10.0.0.0/8"), addr("10.200.3.4:1")));
  CHECK_FALSE(contains(subnet("10.0.0.0/8"), addr("11.0.0.1:1")));
  CHECK(contains(subnet("10.0.0.0/8"), addr("[::ffff:10.9.9.9]:1")));
  CHECK(contains(subnet("2001:db8::/32"), addr("[2001:db8:1::5]:1")));
  CHECK_FALSE(contains(subnet("2001:db8::/32"), addr("10.0.0.1:1")));
  CHECK_FALSE(contains(subnet("10.0.0.0/8"), addr("seed.example.org:1")));
}

TEST_CASE("ban list: the most specific ban in force covers an address") {
  ban_list bans{42};
  REQUIRE_FALSE(bans.add(subnet("10.0.0.0/8"), t0 + 1h, "range"));
  REQUIRE_FALSE(bans.add(subnet("10.1.0.0/16"), t0 + 1h, "narrower"));
  REQUIRE_FALSE(bans.add(subnet("10.1.2.3"), t0 + 1h, "host"));
  REQUIRE_FALSE(bans.add(subnet("2001:db8::/32"), t0 + 1h, "v6"));
  CHECK(ban_of(bans, "10.1.2.3:8333") == "10.1.2.3/32");
  CHECK(ban_of(bans, "10.1.9.9:8333") == "10.1.0.0/16");
  CHECK(ban_of(bans, "10.2.0.1:8333") == "10.0.0.0/8");
  CHECK(ban_of(bans, "11.0.0.1:8333") == "none");
  CHECK(ban_of(bans, "[::ffff:10.1.2.3]:8333") == "10.1.2.3/32");
  CHECK(ban_of(bans, "[2001:db8:ffff::1]:8333") == "2001:db8::/32");
  CHECK(ban_of(bans, "[2001:db9::1]:8333") == "none");
  CHECK(ban_of(bans, "seed.example.org:8333") == "none");
  CHECK(bans.find(addr("10.1.2.3:8333"), t0)->reason == "host");
  // The accept path's binary lookup finds the same bans.
  CHECK(bans.find_ipv4(0x0a010203, t0)->subnet.to_string() == "10.1.2.3/32");
  CHECK(bans.find_ipv4(0x0a010909, t0)->subnet.to_string() == "10.1.0.0/16");
  CHECK(bans.find_ipv4(0x0a020001, t0)->subnet.to_string() == "10.0.0.0/8");
  CHECK(bans.find_ipv4(0x0b000001, t0) == nullptr);
  CHECK(bans.find_ipv4(0x0a010203, t0 + 1h) == nullptr);
  // Lifting the host ban uncovers the next one; the wider ones stay.
  CHECK(bans.remove(subnet("10.1.2.3")));
  CHECK_FALSE(bans.remove(subnet("10.1.2.3")));
  CHECK(ban_of(bans, "10.1.2.3:8333") == "10.1.0.0/16");
  CHECK(bans.size() == 3);
}

TEST_CASE("ban list: a ban ends at its instant, a renewal moves it, and "
          "expire forgets ended bans") {
  ban_list bans{7};
  REQUIRE_FALSE(bans.add(subnet("1.2.3.4"), t0 + 10s, "first"));
  REQUIRE_FALSE(bans.add(subnet("5.6.7.0/24"), t0 + 20s, "second"));
  CHECK(bans.next_expiry() == t0 + 10s);
  CHECK(ban_of(bans, "1.2.3.4:1", t0 + 10s - 1ns) == "1.2.3.4/32");
  CHECK(ban_of(bans, "1.2.3.4:1", t0 + 10s) == "none");
  CHECK(bans.list(t0 + 10s).size() == 1);
  // Renewed before it ends: the first end no longer forgets it.
  REQUIRE_FALSE(bans.add(subnet("1.2.3.4"), t0 + 30s, "renewed"));
  CHECK(bans.expire(t0 + 10s) == 0);
  CHECK(bans.size() == 2);
  CHECK(bans.find(addr("1.2.3.4:1"), t0 + 15s)->reason == "renewed");
  CHECK(bans.expire(t0 + 20s) == 1);
  CHECK(ban_of(bans, "5.6.7.8:1", t0 + 15s) == "none");
  CHECK(bans.expire(t0 + 30s) == 1);
  CHECK(bans.size() == 0);
  CHECK_FALSE(bans.next_expiry());
}

TEST_CASE("ban list: host-name groups cannot be banned") {
  ban_list bans;
  auto g = netgroup_of(addr("seed.example.org:1"));
  REQUIRE(g);
  auto err = bans.add(*g, t0 + 1h, "no");
  CHECK(errc_of(err) == errc::invalid_address);
  CHECK(bans.size() == 0);
}

TEST_CASE("ban list: listing gives the bans in force ordered by subnet") {
  ban_list bans;
  REQUIRE_FALSE(bans.add(subnet("2001:db8::/32"), t0 + 1h, "c"));
  REQUIRE_FALSE(bans.add(subnet("9.0.0.0/8"), t0 + 1h, "b"));
  REQUIRE_FALSE(bans.add(subnet("1.2.3.4"), t0 + 1h, "a"));
  REQUIRE_FALSE(bans.add(subnet("8.8.8.8"), t0 - 1s, "ended"));
  std::vector<std::string> got;
  for (auto& e : bans.list(t0))
    got.push_back(e.subnet.to_string() + " " + e.reason);
  CHECK(got
        == std::vector<std::string>{"9.0.0.0/8 b", "1.2.3.4/32 a",
                                    "2001:db8::/32 c"});
}

TEST_CASE("ban list: an attacker banned from 100 000 addresses of its "
          "choosing is found at every one and nothing else is") {
  // Misbehaviour bans are made from addresses the attacker picks; here
  // they all share their low bits, which an unkeyed hash of the prefix
  // would send to few buckets.
  ban_list bans{0x5eed};
  for (uint32_t i = 0; i < 100000; ++i) {
    auto a = std::to_string(10 + (i >> 16)) + "." + std::to_string(i >> 8 & 255)
      + "." + std::to_string(i & 255) + ".0";
    REQUIRE_FALSE(bans.add(subnet(a + "/32"), t0 + 24h, "misbehaving"));
  }
  CHECK(bans.size() == 100000);
  CHECK(ban_of(bans, "10.0.0.0:1") == "10.0.0.0/32");
  CHECK(ban_of(bans, "11.134.159.0:1") == "11.134.159.0/32");
  CHECK(ban_of(bans, "10.0.0.1:1") == "none");
  CHECK(ban_of(bans, "12.0.0.0:1") == "none");
  CHECK(bans.expire(t0 + 24h) == 100000);
  CHECK(bans.size() == 0);
}
