// Which gossiped addresses a node may dial: the reflector attack (gossip
// that makes the node send its hello to hosts of the attacker's choosing).

#include <doctest/doctest.h>

#include "connmgr/actors/dial_policy.hpp"

using namespace connmgr;

namespace {

net_address addr(const std::string& text) {
  auto res = net_address::parse(text);
  REQUIRE_MESSAGE(res, text);
  return *res;
}

std::string why(const dial_policy& p, const std::string& text) {
  auto r = p.refusal(addr(text));
  return r == nullptr ? std::string{"ok"} : std::string{r};
}

} // namespace

TEST_CASE("dial policy: on an open network only public IP literals pass") {
  dial_policy p;
  CHECK(why(p, "1.2.3.4:8333") == "ok");
  CHECK(why(p, "[2a01:4f8::1]:8333") == "ok");
  CHECK(why(p, "seed.example.org:8333") == "hostname");
  // Frames cannot carry port 0 (parsing refuses it); the policy still does.
  REQUIRE(net_address{}.port() == 0);
  CHECK(std::string{p.refusal(net_address{})} == "port_zero");
  CHECK(why(p, "0.0.0.0:8333") == "unspecified");
  CHECK(why(p, "[::]:8333") == "unspecified");
  CHECK(why(p, "224.0.0.1:8333") == "multicast");
  CHECK(why(p, "[ff02::1]:8333") == "multicast");
  CHECK(why(p, "255.255.255.255:8333") == "broadcast");
  CHECK(why(p, "127.0.0.1:8333") == "loopback");
  CHECK(why(p, "[::1]:8333") == "loopback");
  CHECK(why(p, "10.0.0.1:8333") == "private");
  CHECK(why(p, "172.16.5.4:8333") == "private");
  CHECK(why(p, "192.168.1.1:8333") == "private");
  CHECK(why(p, "[fd00::1]:8333") == "private");
  CHECK(why(p, "100.64.0.1:8333") == "shared");
  CHECK(why(p, "169.254.169.254:80") == "link_local");
  CHECK(why(p, "[fe80::1]:8333") == "link_local");
  CHECK(why(p, "192.0.2.1:8333") == "documentation");
  CHECK(why(p, "240.0.0.1:8333") == "reserved");
}

TEST_CASE("dial policy: allowing local addresses admits local ranges, never "
          "hosts that are no peer") {
  dial_policy p{dial_policy_config{true, {}}};
  CHECK(why(p, "127.0.0.1:8333") == "ok");
  CHECK(why(p, "10.0.0.1:8333") == "ok");
  CHECK(why(p, "169.254.1.1:8333") == "ok");
  CHECK(why(p, "0.0.0.0:8333") == "unspecified");
  CHECK(why(p, "224.0.0.1:8333") == "multicast");
  CHECK(why(p, "255.255.255.255:8333") == "broadcast");
  CHECK(why(p, "seed.example.org:8333") == "hostname");
}

TEST_CASE("dial policy: the node's own endpoints are never dialed") {
  dial_policy_config cfg;
  cfg.allow_local_addresses = true;
  cfg.own_endpoints = {addr("127.0.0.1:9100"), addr("0.0.0.0:8333")};
  dial_policy p{cfg};
  CHECK(why(p, "127.0.0.1:9100") == "own_address");
  CHECK(why(p, "127.0.0.1:8333") == "own_address");
  CHECK(why(p, "127.0.0.9:8333") == "own_address");
  CHECK(why(p, "127.0.0.2:9100") == "ok");
  CHECK(why(p, "127.0.0.1:8334") == "ok");
}

TEST_CASE("dial policy: filter keeps the dialable addresses in order and "
          "counts the rest by reason") {
  dial_policy p;
  std::map<std::string, size_t> refused;
  auto kept =
    p.filter({addr("1.2.3.4:1"), addr("10.0.0.1:2"), addr("5.6.7.8:3"),
              addr("10.0.0.2:4"), addr("224.0.0.1:5")},
             refused);
  CHECK(kept == std::vector<net_address>{addr("1.2.3.4:1"), addr("5.6.7.8:3")});
  CHECK(refused
        == std::map<std::string, size_t>{{"private", 2}, {"multicast", 1}});
}
