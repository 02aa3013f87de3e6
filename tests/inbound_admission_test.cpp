// Inbound admission on simulated time and simulated peers: the tests play
// squatters, slowloris attackers and floods from many addresses against the
// plain state machine, with no sockets. Addresses are only strings here;
// nothing is ever sent to them.
//
// Over 500 lines: one scenario per rule and per attack, all on the same
// simulated peers.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "connmgr/actors/inbound_admission.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/inbound_limits.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = inbound_admission::time_point;

const time_point t0 = time_point{} + 1000000s + 123ms;

std::string v4(unsigned a, unsigned b, unsigned c, unsigned d,
               unsigned port = 8333) {
  return std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(c)
    + "." + std::to_string(d) + ":" + std::to_string(port);
}

/// A distinct /16 netgroup (and IP) per `i` < 50 000.
std::string netgroup_addr(unsigned i) {
  return v4(1 + i / 256, i % 256, 7, 9);
}

/// Limits with nothing limited, so each test turns on what it is about.
inbound_limits open_limits() {
  inbound_limits x;
  x.max_inbound.reset();
  x.max_inbound_per_ip.reset();
  x.max_inbound_per_netgroup.reset();
  x.max_pending_inbound.reset();
  x.inbound_rate_per_ip.reset();
  return x;
}

/// The embedder's side: hands out slots, closes victims, remembers who holds
/// which slot.
struct node {
  explicit node(inbound_limits limits, uint64_t secret = 0x5eed)
    : adm(std::move(limits), secret) {
    // nop
  }

  inbound_admission adm;
  uint64_t next_slot = 0;
  std::map<uint64_t, std::string> open; // slot -> remote address
  admission_decision last;

  /// Returns the new slot, or 0 when rejected. Closes the victim, if any.
  uint64_t connect(const std::string& addr, time_point now) {
    auto slot = ++next_slot;
    last = adm.admit(slot, addr, now);
    if (!last.admits())
      return 0;
    if (last.verdict == admission_verdict::evict_then_admit) {
      REQUIRE(open.count(last.victim) == 1);
      open.erase(last.victim);
      adm.closed(last.victim);
    }
    open.emplace(slot, addr);
    return slot;
  }

  void close(uint64_t slot) {
    open.erase(slot);
    adm.closed(slot);
  }

  size_t held_by(const std::string& prefix) const {
    size_t n = 0;
    for (auto& [slot, addr] : open)
      if (addr.rfind(prefix, 0) == 0)
        ++n;
    return n;
  }
};

} // namespace

// -- attacks ------------------------------------------------------------------

TEST_CASE("inbound admission: squatters from one source lose a slot to a "
          "legitimate peer from another netgroup at its first try") {
  auto limits = open_limits();
  limits.max_inbound = 8;
  node n{limits};
  // Eight handshaked squatters from one address that answer pings fast and
  // even look useful: every protection is theirs to win.
  std::vector<uint64_t> squatters;
  for (unsigned i = 0; i < 8; ++i) {
    auto s = n.connect(v4(203, 0, 113, 7, 40000 + i), t0 + i * 1s);
    REQUIRE(s != 0);
    n.adm.ready(s, t0 + i * 1s + 100ms);
    n.adm.ping(s, 1ms);
    n.adm.useful(s, t0 + 20s);
    squatters.push_back(s);
  }
  REQUIRE(n.adm.size() == 8);
  // Ten legitimate peers from ten other netgroups, one try each.
  for (unsigned i = 0; i < 10; ++i) {
    auto now = t0 + 60s + i * 10s;
    auto s = n.connect(netgroup_addr(100 + i), now);
    CAPTURE(i);
    CAPTURE(to_string(n.last));
    REQUIRE(s != 0);
    if (i == 0) {
      CHECK(n.last.verdict == admission_verdict::evict_then_admit);
      CHECK(n.last.reason == admission_reason::evicted_for_newcomer);
      CHECK(n.last.context == "203.0.0.0/16");
      // The youngest squatter goes; the protections keep older ones.
      CHECK(n.last.victim == squatters.back());
    }
    n.adm.ready(s, now + 200ms);
    n.adm.ping(s, 40ms);
  }
  CHECK(n.adm.size() == 8);
  // As in Bitcoin Core, the protections keep some squatters: here the
  // lowest ping, the most recently useful and the older half of the rest
  // (all squatters, being the oldest), at most 5 of 8.
  CHECK(n.held_by("203.") <= 5);
  auto legit = 8 - n.held_by("203.");
  CHECK(legit >= 3);
  // The squatter reconnecting never gets back in at a full node and never
  // displaces a legitimate peer: its netgroup holds the most connections.
  for (unsigned i = 0; i < 100; ++i) {
    CHECK(n.connect(v4(203, 0, 113, 7, 50000 + i), t0 + 200s + i * 1s) == 0);
    CHECK(n.last.reason == admission_reason::inbound_limit);
  }
  CHECK(8 - n.held_by("203.") == legit);
  CHECK(n.adm.count(admission_reason::inbound_limit) == 100);
}

TEST_CASE("inbound admission: without eviction a squatted node refuses "
          "everyone") {
  // The control for the test above: the same squat with eviction off.
  auto limits = open_limits();
  limits.max_inbound = 8;
  limits.evict_when_full = false;
  node n{limits};
  for (unsigned i = 0; i < 8; ++i)
    n.adm.ready(n.connect(v4(203, 0, 113, 7, 40000 + i), t0), t0);
  for (unsigned i = 0; i < 10; ++i) {
    CHECK(n.connect(netgroup_addr(100 + i), t0 + 60s) == 0);
    CHECK(n.last.reason == admission_reason::inbound_limit);
    CHECK(n.last.context == "max_inbound = 8");
  }
}

TEST_CASE("inbound admission: slowloris beyond max_pending_inbound does not "
          "keep legitimate peers out") {
  // An attacker from ever new netgroups keeps as many silent connections
  // open as it can, four new ones a second, and the node times out
  // handshakes after 10 s. Legitimate peers try once a second, finish their
  // handshake 200 ms later and leave after 3 s.
  auto limits = open_limits();
  limits.max_inbound = 8;
  limits.max_pending_inbound = 4;
  node n{limits};
  unsigned attacker_addrs = 0;
  std::map<uint64_t, time_point> silent;
  std::vector<std::pair<uint64_t, time_point>> legit_leaves;
  auto attack = [&](time_point now) {
    for (auto i = silent.begin(); i != silent.end();) {
      if (n.open.count(i->first) == 0) {
        i = silent.erase(i); // evicted
      } else if (now - i->second >= 10s) {
        n.close(i->first); // handshake timeout
        i = silent.erase(i);
      } else {
        ++i;
      }
    }
    for (int k = 0; k < 2; ++k)
      if (auto s = n.connect(netgroup_addr(1000 + attacker_addrs++), now))
        silent.emplace(s, now);
  };
  unsigned admitted = 0;
  unsigned survived_handshake = 0;
  for (unsigned sec = 0; sec < 112; ++sec) {
    auto t = t0 + sec * 1s;
    attack(t);
    for (auto i = legit_leaves.begin(); i != legit_leaves.end();) {
      if (i->second <= t) {
        n.close(i->first);
        i = legit_leaves.erase(i);
      } else {
        ++i;
      }
    }
    auto s = n.connect(netgroup_addr(100 + sec), t + 50ms);
    if (s != 0)
      ++admitted;
    attack(t + 100ms);
    if (s != 0 && n.open.count(s) == 1) {
      ++survived_handshake;
      n.adm.ready(s, t + 250ms);
      legit_leaves.emplace_back(s, t + 3s);
    }
    attack(t + 500ms);
    CHECK(n.adm.pending() <= 4);
    CHECK(n.adm.size() <= 8);
  }
  CHECK(admitted == 112);
  CHECK(survived_handshake == 112);
  CHECK(n.adm.count(admission_reason::evicted_slow_handshake) > 100);
}

TEST_CASE("inbound admission: at max_pending_inbound without eviction "
          "newcomers are rejected") {
  auto limits = open_limits();
  limits.max_pending_inbound = 3;
  limits.evict_when_full = false;
  node n{limits};
  for (unsigned i = 0; i < 3; ++i)
    REQUIRE(n.connect(netgroup_addr(i), t0) != 0);
  CHECK(n.connect(netgroup_addr(10), t0 + 1s) == 0);
  CHECK(n.last.reason == admission_reason::pending_limit);
  CHECK(n.last.context == "max_pending_inbound = 3");
  // Readiness frees the pending slot; the connection stays.
  n.adm.ready(1, t0 + 2s);
  CHECK(n.adm.pending() == 2);
  CHECK(n.connect(netgroup_addr(10), t0 + 3s) != 0);
  CHECK(n.adm.size() == 4);
}

TEST_CASE("inbound admission: at max_pending_inbound the oldest unprotected "
          "pending connection is evicted") {
  auto limits = open_limits();
  limits.max_pending_inbound = 3;
  node n{limits};
  auto a = n.connect(netgroup_addr(0), t0);
  auto b = n.connect(netgroup_addr(1), t0 + 1s);
  auto c = n.connect(netgroup_addr(2), t0 + 2s);
  n.adm.protect(a);
  auto d = n.connect(netgroup_addr(3), t0 + 3s);
  REQUIRE(d != 0);
  CHECK(n.last.verdict == admission_verdict::evict_then_admit);
  CHECK(n.last.reason == admission_reason::evicted_slow_handshake);
  CHECK(n.last.victim == b); // a is older but protected
  CHECK(n.adm.contains(a));
  CHECK(n.adm.pending() == 3);
  // Ready connections are never pending victims.
  n.adm.ready(c, t0 + 4s);
  auto e = n.connect(netgroup_addr(4), t0 + 5s);
  CHECK(n.last.verdict == admission_verdict::admit);
  auto f = n.connect(netgroup_addr(5), t0 + 6s);
  REQUIRE(f != 0);
  CHECK(n.last.victim == d);
  CHECK(n.adm.contains(c));
  CHECK(n.adm.contains(e));
  CHECK(n.adm.count(admission_reason::evicted_slow_handshake) == 2);
  // Every pending one protected: nobody to evict.
  n.adm.protect(e);
  n.adm.protect(f);
  CHECK(n.connect(netgroup_addr(6), t0 + 7s) == 0);
  CHECK(n.last.reason == admission_reason::pending_limit);
  CHECK(n.last.context
        == "max_pending_inbound = 3, every pending peer protected");
}

// -- per-source caps ------------------------------------------------------------

TEST_CASE("inbound admission: max_inbound_per_ip counts an IPv4 address "
          "over all ports") {
  auto limits = open_limits();
  limits.max_inbound_per_ip = 2;
  node n{limits};
  CHECK(n.connect(v4(1, 2, 3, 4, 1000), t0) != 0);
  CHECK(n.connect(v4(1, 2, 3, 4, 1001), t0) != 0);
  CHECK(n.connect(v4(1, 2, 3, 4, 1002), t0) == 0);
  CHECK(n.last.reason == admission_reason::per_ip_limit);
  CHECK(n.last.context == "max_inbound_per_ip = 2 for 1.2.3.4/32");
  CHECK(describe(n.last.error())
        == "inbound_limit: per_ip_limit: max_inbound_per_ip = 2 for "
           "1.2.3.4/32");
  // The neighbour is another IP; an IPv4-mapped IPv6 form is the same one.
  CHECK(n.connect(v4(1, 2, 3, 5, 1000), t0) != 0);
  CHECK(n.connect("[::ffff:1.2.3.4]:1003", t0) == 0);
  CHECK(n.adm.count(admission_reason::per_ip_limit) == 2);
  // A full node never evicts for a per-IP newcomer, and closing frees.
  n.close(1);
  CHECK(n.connect(v4(1, 2, 3, 4, 1004), t0) != 0);
}

TEST_CASE("inbound admission: max_inbound_per_ip counts IPv6 per /64") {
  auto limits = open_limits();
  limits.max_inbound_per_ip = 1;
  node n{limits};
  CHECK(n.connect("[2001:db8:1:2::1]:8333", t0) != 0);
  CHECK(n.connect("[2001:db8:1:2:ffff:ffff:ffff:fffe]:8333", t0) == 0);
  CHECK(n.last.reason == admission_reason::per_ip_limit);
  CHECK(n.last.context == "max_inbound_per_ip = 1 for 2001:db8:1:2::/64");
  CHECK(n.connect("[2001:db8:1:3::1]:8333", t0) != 0);
  CHECK(n.adm.ips() == 2);
}

TEST_CASE("inbound admission: max_inbound_per_netgroup caps a /16 and an "
          "IPv6 /32, with configurable prefix lengths") {
  auto limits = open_limits();
  limits.max_inbound_per_netgroup = 2;
  node n{limits};
  CHECK(n.connect(v4(10, 1, 0, 1), t0) != 0);
  CHECK(n.connect(v4(10, 1, 200, 1), t0) != 0);
  CHECK(n.connect(v4(10, 1, 255, 255), t0) == 0);
  CHECK(n.last.reason == admission_reason::per_netgroup_limit);
  CHECK(n.last.context == "max_inbound_per_netgroup = 2 for 10.1.0.0/16");
  CHECK(n.connect(v4(10, 2, 0, 1), t0) != 0);
  CHECK(n.connect("[2001:db8:aaaa::1]:1", t0) != 0);
  CHECK(n.connect("[2001:db8:bbbb::1]:1", t0) != 0);
  CHECK(n.connect("[2001:db8:cccc::1]:1", t0) == 0);
  CHECK(n.last.context == "max_inbound_per_netgroup = 2 for 2001:db8::/32");
  CHECK(n.connect("[2001:db9::1]:1", t0) != 0);
  CHECK(n.adm.netgroups() == 4);

  limits.netgroup_bits_ipv4 = 24;
  limits.netgroup_bits_ipv6 = 48;
  node m{limits};
  CHECK(m.connect(v4(10, 1, 0, 1), t0) != 0);
  CHECK(m.connect(v4(10, 1, 0, 2), t0) != 0);
  CHECK(m.connect(v4(10, 1, 1, 1), t0) != 0); // another /24
  CHECK(m.connect(v4(10, 1, 0, 3), t0) == 0);
  CHECK(m.last.context == "max_inbound_per_netgroup = 2 for 10.1.0.0/24");
  CHECK(m.connect("[2001:db8:aaaa::1]:1", t0) != 0);
  CHECK(m.connect("[2001:db8:bbbb::1]:1", t0) != 0); // another /48
}

TEST_CASE("inbound admission: an address that does not parse is its own IP "
          "and netgroup by text") {
  auto limits = open_limits();
  limits.max_inbound_per_ip = 1;
  node n{limits};
  CHECK(n.connect("memory-peer-1", t0) != 0);
  CHECK(n.connect("memory-peer-2", t0) != 0);
  CHECK(n.connect("memory-peer-1", t0) == 0);
  CHECK(n.last.context == "max_inbound_per_ip = 1 for text:memory-peer-1");
  // Bare IP literals are understood as IPs.
  CHECK(n.connect("192.0.2.1", t0) != 0);
  CHECK(n.connect(v4(192, 0, 2, 1, 5), t0) == 0);
  CHECK(n.connect("2001:db8::1", t0) != 0);
  CHECK(n.connect("[2001:db8::2]:5", t0) == 0);
}

// -- rate limit -----------------------------------------------------------------

TEST_CASE("inbound admission: the per-IP rate limit allows a burst, then "
          "refills over simulated time") {
  auto limits = open_limits();
  limits.inbound_rate_per_ip = 0.5; // one every 2 s
  limits.inbound_burst_per_ip = 3;
  node n{limits};
  auto from = [](unsigned port) { return v4(198, 51, 100, 1, port); };
  for (unsigned i = 0; i < 3; ++i)
    n.close(n.connect(from(i + 1), t0));
  CHECK(n.adm.count(admission_reason::admitted) == 3);
  CHECK(n.connect(from(10), t0) == 0);
  CHECK(n.last.reason == admission_reason::rate_limit);
  CHECK(n.last.context
        == "inbound_rate_per_ip = 0.5/s, inbound_burst_per_ip = 3 for "
           "198.51.100.1/32");
  // Other sources have their own buckets.
  CHECK(n.connect(v4(198, 51, 100, 2, 1), t0) != 0);
  // 1.9 s: still no whole token; 2 s: one.
  CHECK(n.connect(from(11), t0 + 1900ms) == 0);
  CHECK(n.connect(from(12), t0 + 2s) != 0);
  CHECK(n.connect(from(13), t0 + 2s) == 0);
  // A long pause refills to the burst, not beyond.
  for (unsigned i = 0; i < 3; ++i)
    CHECK(n.connect(from(20 + i), t0 + 1h) != 0);
  CHECK(n.connect(from(30), t0 + 1h) == 0);
  CHECK(n.adm.count(admission_reason::rate_limit) == 4);
}

TEST_CASE("inbound admission: arrivals rejected by another limit still "
          "cost a rate token") {
  auto limits = open_limits();
  limits.inbound_rate_per_ip = 1;
  limits.inbound_burst_per_ip = 3;
  limits.max_inbound_per_ip = 1;
  node n{limits};
  CHECK(n.connect(v4(198, 51, 100, 1, 1), t0) != 0);
  CHECK(n.connect(v4(198, 51, 100, 1, 2), t0) == 0);
  CHECK(n.last.reason == admission_reason::per_ip_limit);
  CHECK(n.connect(v4(198, 51, 100, 1, 3), t0) == 0);
  CHECK(n.last.reason == admission_reason::per_ip_limit);
  CHECK(n.connect(v4(198, 51, 100, 1, 4), t0) == 0);
  CHECK(n.last.reason == admission_reason::rate_limit);
}

// -- eviction -------------------------------------------------------------------

namespace {

/// Limits for testing the netgroup rule alone.
inbound_limits no_protection(uint32_t max_inbound) {
  auto x = open_limits();
  x.max_inbound = max_inbound;
  x.protect_netgroups = 0;
  x.protect_lowest_ping = 0;
  x.protect_recently_useful = 0;
  return x;
}

} // namespace

TEST_CASE("inbound admission: eviction picks the youngest of the biggest "
          "netgroup, ties to the netgroup with the youngest member") {
  // All pending, so the longest-connected half (ready peers only) keeps
  // nobody: the netgroup rule alone decides.
  node n{no_protection(8)};
  auto a = [](unsigned i) { return v4(10, 1, 0, i); };
  auto b = [](unsigned i) { return v4(10, 2, 0, i); };
  auto c = [](unsigned i) { return v4(10, 3, 0, i); };
  auto a1 = n.connect(a(1), t0 + 1s);
  auto b1 = n.connect(b(1), t0 + 2s);
  auto a2 = n.connect(a(2), t0 + 3s);
  auto b2 = n.connect(b(2), t0 + 4s);
  auto c1 = n.connect(c(1), t0 + 5s);
  auto b3 = n.connect(b(3), t0 + 6s);
  auto a3 = n.connect(a(3), t0 + 7s);
  auto c2 = n.connect(c(2), t0 + 8s);
  REQUIRE(n.adm.size() == 8);
  // A and B have 3 each; A's youngest (7 s) is younger than B's (6 s).
  CHECK(n.connect(v4(10, 4, 0, 1), t0 + 9s) != 0);
  CHECK(n.last.victim == a3);
  CHECK(n.last.context == "10.1.0.0/16");
  // Now B alone has 3.
  CHECK(n.connect(v4(10, 5, 0, 1), t0 + 10s) != 0);
  CHECK(n.last.victim == b3);
  // A, B, C have 2 each; C's youngest (8 s) is the youngest.
  CHECK(n.connect(v4(10, 6, 0, 1), t0 + 11s) != 0);
  CHECK(n.last.victim == c2);
  CHECK(n.adm.count(admission_reason::evicted_for_newcomer) == 3);
  for (auto s : {a1, a2, b1, b2, c1})
    CHECK(n.adm.contains(s));
}

TEST_CASE("inbound admission: a newcomer never evicts a peer of its own "
          "netgroup") {
  node n{no_protection(4)};
  for (unsigned i = 0; i < 3; ++i)
    n.connect(v4(10, 1, 0, i + 1), t0 + i * 1s);
  n.connect(v4(10, 2, 0, 1), t0 + 5s);
  CHECK(n.connect(v4(10, 1, 9, 9), t0 + 6s) == 0);
  CHECK(n.last.reason == admission_reason::inbound_limit);
  CHECK(n.last.context
        == "max_inbound = 4, netgroup 10.1.0.0/16 holds 3, no fewer than the "
           "victim's 10.1.0.0/16");
  CHECK(n.connect(v4(10, 3, 0, 1), t0 + 7s) != 0);
  CHECK(n.last.context == "10.1.0.0/16");
}

TEST_CASE("inbound admission: no netgroup grows by eviction, even with its "
          "peers protected") {
  // Netgroup A holds 3 protected peers; B and C one each. A newcomer from A
  // would evict B's or C's peer and grow A: refused. One from a new
  // netgroup D gets in; then D (1) cannot evict C's only peer either.
  node n{no_protection(5)};
  for (unsigned i = 0; i < 3; ++i)
    n.adm.protect(n.connect(v4(10, 1, 0, i + 1), t0 + i * 1s));
  auto b1 = n.connect(v4(10, 2, 0, 1), t0 + 5s);
  auto c1 = n.connect(v4(10, 3, 0, 1), t0 + 6s);
  CHECK(n.connect(v4(10, 1, 9, 9), t0 + 10s) == 0);
  CHECK(n.last.reason == admission_reason::inbound_limit);
  CHECK(n.connect(v4(10, 4, 0, 1), t0 + 11s) != 0);
  CHECK(n.last.victim == c1);
  CHECK(n.connect(v4(10, 4, 0, 2), t0 + 12s) == 0);
  CHECK(n.adm.contains(b1));
}

TEST_CASE("inbound admission: pending connections are evicted before ready "
          "ones") {
  node n{no_protection(4)};
  // Netgroup A has 3 ready peers; the one pending peer of B is older than
  // all of them but goes first.
  auto b1 = n.connect(v4(10, 2, 0, 1), t0);
  for (unsigned i = 0; i < 3; ++i) {
    auto s = n.connect(v4(10, 1, 0, i + 1), t0 + (i + 1) * 1s);
    n.adm.ready(s, t0 + 10s);
  }
  CHECK(n.connect(v4(10, 3, 0, 1), t0 + 20s) != 0);
  CHECK(n.last.victim == b1);
}

TEST_CASE("inbound admission: protected peers are never evicted and still "
          "count") {
  auto limits = open_limits();
  limits.max_inbound = 4;
  node n{limits};
  std::vector<uint64_t> a;
  for (unsigned i = 0; i < 4; ++i)
    a.push_back(n.connect(v4(10, 1, 0, i + 1), t0 + i * 1s));
  n.adm.protect(a[3]); // the youngest: the victim without protection
  CHECK(n.connect(v4(10, 2, 0, 1), t0 + 10s) != 0);
  CHECK(n.last.victim == a[2]);
  // All protected: nobody to evict, the node stays full.
  for (auto s : n.open)
    n.adm.protect(s.first);
  CHECK(n.connect(v4(10, 3, 0, 1), t0 + 11s) == 0);
  CHECK(n.last.context == "max_inbound = 4, every peer protected");
  CHECK(n.adm.size() == 4);
}

namespace {

/// A full max_inbound = 8 node of eight ready peers from one netgroup,
/// connected one second apart; the youngest is the victim unless protected.
struct full_of_one_netgroup {
  node n;
  std::vector<uint64_t> peers;

  explicit full_of_one_netgroup(uint32_t protect_ping, uint32_t protect_useful)
    : n([&] {
        auto x = open_limits();
        x.max_inbound = 8;
        x.protect_lowest_ping = protect_ping;
        x.protect_recently_useful = protect_useful;
        return x;
      }()) {
    for (unsigned i = 0; i < 8; ++i) {
      auto s = n.connect(v4(10, 1, 0, i + 1), t0 + i * 1s);
      n.adm.ready(s, t0 + i * 1s + 100ms);
      peers.push_back(s);
    }
  }

  uint64_t victim_of_newcomer() {
    REQUIRE(n.connect(v4(10, 9, 0, 1), t0 + 60s) != 0);
    return n.last.victim;
  }
};

} // namespace

TEST_CASE("inbound admission: the lowest ping keeps its peer") {
  full_of_one_netgroup control{8, 4};
  CHECK(control.victim_of_newcomer() == control.peers[7]);
  full_of_one_netgroup f{8, 4};
  f.n.adm.ping(f.peers[7], 5ms);
  for (unsigned i = 0; i < 7; ++i)
    f.n.adm.ping(f.peers[i], 80ms);
  f.n.adm.ping(f.peers[7], 90ms); // the minimum counts, not the last
  CHECK(f.victim_of_newcomer() == f.peers[6]);
  full_of_one_netgroup off{0, 4};
  off.n.adm.ping(off.peers[7], 5ms);
  CHECK(off.victim_of_newcomer() == off.peers[7]);
}

TEST_CASE("inbound admission: the most recently useful peer is kept") {
  full_of_one_netgroup f{8, 4};
  f.n.adm.useful(f.peers[6], t0 + 30s);
  f.n.adm.useful(f.peers[7], t0 + 40s);
  // 8 candidates keep at most 8 / 8 = 1 by usefulness: the most recent.
  CHECK(f.victim_of_newcomer() == f.peers[6]);
  full_of_one_netgroup off{8, 0};
  off.n.adm.useful(off.peers[7], t0 + 40s);
  CHECK(off.victim_of_newcomer() == off.peers[7]);
}

TEST_CASE("inbound admission: the longest-connected ready half is kept") {
  // Netgroup A: five old peers; B: three young ones. Of 8 candidates the
  // netgroup rule keeps one, the age rule half of the other 7 (3), all old
  // A peers: B becomes the biggest netgroup and loses its youngest.
  auto victim = [](bool ready) {
    auto x = no_protection(8);
    x.protect_netgroups = 4;
    node n{x};
    for (unsigned i = 0; i < 5; ++i) {
      auto s = n.connect(v4(10, 1, 0, i + 1), t0 + i * 1s);
      if (ready)
        n.adm.ready(s, t0 + 10s);
    }
    for (unsigned i = 0; i < 3; ++i) {
      auto s = n.connect(v4(10, 2, 0, i + 1), t0 + 20s + i * 1s);
      if (ready)
        n.adm.ready(s, t0 + 30s);
    }
    REQUIRE(n.connect(v4(10, 3, 0, 1), t0 + 60s) != 0);
    return n.last.victim;
  };
  CHECK(victim(true) == 8); // B's youngest
  // Old but never ready (the slowloris pattern) earns no age protection: A
  // stays the biggest netgroup and loses its youngest.
  CHECK(victim(false) == 5);
}

TEST_CASE("inbound admission: the protected netgroups depend on the secret "
          "and their peer is kept") {
  // 32 pending peers from 32 netgroups: 32 / 8 = 4 netgroups are protected,
  // nothing else is (no pings, no usefulness, nobody ready), and the victim
  // is the youngest unprotected peer. The youngest is spared exactly when
  // its netgroup ranks among the top `protect_netgroups` under the secret.
  auto victim_for = [](uint64_t secret, uint32_t protect) {
    auto x = open_limits();
    x.max_inbound = 32;
    x.protect_netgroups = protect;
    node n{x, secret};
    for (unsigned i = 0; i < 32; ++i)
      n.connect(netgroup_addr(i), t0 + i * 1s);
    REQUIRE(n.connect(netgroup_addr(100), t0 + 60s) != 0);
    return n.last.victim;
  };
  auto spared = [&](uint32_t protect) {
    unsigned result = 0;
    for (uint64_t secret = 1; secret <= 400; ++secret) {
      auto v = victim_for(secret, protect);
      CHECK(v == victim_for(secret, protect)); // deterministic per secret
      if (v != 32)
        ++result;
    }
    return result;
  };
  // Binomial over 400 secrets; fixed secrets make the counts exact.
  auto four = spared(4); // expected 50, sd 6.6
  CHECK(four >= 30);
  CHECK(four <= 70);
  auto one = spared(1); // expected 12.5, sd 3.5
  CHECK(one >= 2);
  CHECK(one <= 26);
  CHECK(spared(0) == 0);
}

TEST_CASE("inbound admission: netgroup protection keeps one peer per "
          "netgroup") {
  // 16 pending peers: A's 9 old ones, B's 7 young ones; 16 / 8 = 2
  // netgroups protected, one peer each, whatever the secret: A keeps 8
  // candidates, B 6, and A's youngest goes. (Two protected from whichever
  // netgroup ranks first would tie A and B at 7 for some secrets, and B's
  // youngest would go.)
  for (uint64_t secret = 1; secret <= 20; ++secret) {
    auto x = open_limits();
    x.max_inbound = 16;
    node n{x, secret};
    for (unsigned i = 0; i < 9; ++i)
      n.connect(v4(10, 1, 0, i + 1), t0 + i * 1s);
    for (unsigned i = 0; i < 7; ++i)
      n.connect(v4(10, 2, 0, i + 1), t0 + 20s + i * 1s);
    REQUIRE(n.connect(v4(10, 3, 0, 1), t0 + 60s) != 0);
    CAPTURE(secret);
    CHECK(n.last.victim == 9);
  }
}

TEST_CASE("inbound admission: with Bitcoin Core's 114 slots the ping, "
          "usefulness and age protections keep their counts") {
  // 114 ready peers, one netgroup each, connected a second apart; the cap
  // 114 / 8 = 14 does not bite. The young ones get pings and usefulness.
  // Netgroup protection is off here (the test above covers it) so the exact
  // victims are known.
  auto x = open_limits();
  x.max_inbound = 114;
  x.protect_netgroups = 0;
  node n{x};
  std::vector<uint64_t> s;
  for (unsigned i = 0; i < 114; ++i) {
    s.push_back(n.connect(netgroup_addr(i), t0 + i * 1s));
    n.adm.ready(s.back(), t0 + 200s);
  }
  for (unsigned i = 0; i < 10; ++i) // the 8 lowest are kept: 104..111
    n.adm.ping(s[104 + i], std::chrono::milliseconds{1 + i});
  for (unsigned i = 0; i < 6; ++i) // the 4 most recent are kept: 98..101
    n.adm.useful(s[96 + i], t0 + 300s + i * 1s);
  // Newcomers the embedder protects (so they are not victims themselves)
  // evict 40 peers one by one.
  std::set<uint64_t> evicted;
  for (unsigned k = 0; k < 40; ++k) {
    auto slot = n.connect(netgroup_addr(1000 + k), t0 + 400s + k * 1ms);
    REQUIRE(slot != 0);
    n.adm.protect(slot);
    evicted.insert(n.last.victim);
  }
  // Expected: the 40 youngest of those no protection keeps. The age rule
  // keeps the older half of the rest all along (at the last round 75
  // candidates minus 12 leaves 63, of which 31 are kept), so no peer older
  // than those 40 goes.
  std::set<uint64_t> expected;
  for (unsigned i = 114; i-- > 0 && expected.size() < 40;) {
    if ((i >= 104 && i <= 111) || (i >= 98 && i <= 101))
      continue;
    expected.insert(s[i]);
  }
  CHECK(evicted == expected);
}

// -- bookkeeping ----------------------------------------------------------------

TEST_CASE("inbound admission: closed frees everything once") {
  auto limits = open_limits();
  limits.max_inbound = 10;
  limits.max_inbound_per_ip = 1;
  limits.max_inbound_per_netgroup = 2;
  limits.max_pending_inbound = 5;
  node n{limits};
  std::vector<uint64_t> slots;
  for (unsigned i = 0; i < 5; ++i)
    slots.push_back(n.connect(v4(10, i % 3, 0, i), t0));
  n.adm.ready(slots[0], t0);
  n.adm.ping(slots[0], 1ms);
  n.adm.useful(slots[0], t0);
  n.adm.protect(slots[1]);
  CHECK(n.adm.size() == 5);
  CHECK(n.adm.pending() == 4);
  CHECK(n.adm.ips() == 5);
  CHECK(n.adm.netgroups() == 3);
  for (auto s : slots) {
    n.adm.closed(s);
    n.adm.closed(s); // twice: a no-op
  }
  n.adm.closed(999); // never held: a no-op
  CHECK(n.adm.size() == 0);
  CHECK(n.adm.pending() == 0);
  CHECK(n.adm.ips() == 0);
  CHECK(n.adm.netgroups() == 0);
  // Reports about closed slots change nothing.
  n.adm.ready(slots[2], t0);
  n.adm.protect(slots[2]);
  CHECK(n.adm.pending() == 0);
  for (unsigned i = 0; i < 5; ++i)
    CHECK(n.connect(v4(10, i % 3, 0, i), t0 + 1s) != 0);
}

TEST_CASE("inbound admission: reasons and verdicts have stable names") {
  CHECK(std::string{to_string(admission_reason::admitted)} == "admitted");
  CHECK(std::string{to_string(admission_reason::inbound_limit)}
        == "inbound_limit");
  CHECK(std::string{to_string(admission_reason::per_ip_limit)}
        == "per_ip_limit");
  CHECK(std::string{to_string(admission_reason::per_netgroup_limit)}
        == "per_netgroup_limit");
  CHECK(std::string{to_string(admission_reason::pending_limit)}
        == "pending_limit");
  CHECK(std::string{to_string(admission_reason::rate_limit)} == "rate_limit");
  CHECK(std::string{to_string(admission_reason::evicted_for_newcomer)}
        == "evicted_for_newcomer");
  CHECK(std::string{to_string(admission_reason::evicted_slow_handshake)}
        == "evicted_slow_handshake");
  admission_decision d;
  CHECK(to_string(d) == "admit");
  CHECK(!d.error());
  d.verdict = admission_verdict::evict_then_admit;
  d.reason = admission_reason::evicted_for_newcomer;
  d.victim = 17;
  d.context = "10.1.0.0/16";
  CHECK(to_string(d)
        == "evict_then_admit 17 evicted_for_newcomer "
           "(10.1.0.0/16)");
  CHECK(!d.error());
}

TEST_CASE("inbound admission: max_inbound = 0 refuses everyone") {
  auto limits = open_limits();
  limits.max_inbound = 0;
  node n{limits};
  CHECK(n.connect(v4(10, 1, 0, 1), t0) == 0);
  CHECK(n.last.reason == admission_reason::inbound_limit);
  CHECK(n.last.context == "max_inbound = 0");
}

// -- validation -----------------------------------------------------------------

TEST_CASE("inbound limits: the defaults are valid") {
  inbound_limits x;
  CHECK(!validate(x));
  CHECK(x.max_inbound == 114u);
  CHECK(x.netgroup_bits_ipv4 == 16);
  CHECK(x.netgroup_bits_ipv6 == 32);
  CHECK(x.evict_when_full);
  CHECK(!validate(open_limits()));
}

TEST_CASE("inbound limits: validate names the field, the value and what "
          "was expected") {
  auto check = [](auto mutate, const std::string& expected) {
    inbound_limits x;
    mutate(x);
    auto err = validate(x);
    CHECK(errc_of(err) == errc::invalid_config);
    CHECK(describe(err) == "invalid_config: " + expected);
  };
  check([](inbound_limits& x) { x.max_inbound_per_ip = 0; },
        "max_inbound_per_ip = 0, expected >= 1");
  check([](inbound_limits& x) { x.max_inbound_per_netgroup = 0; },
        "max_inbound_per_netgroup = 0, expected >= 1");
  check([](inbound_limits& x) { x.max_pending_inbound = 0; },
        "max_pending_inbound = 0, expected >= 1");
  check([](inbound_limits& x) { x.inbound_rate_per_ip = 0.0; },
        "inbound_rate_per_ip = 0, expected a finite number > 0");
  check([](inbound_limits& x) { x.inbound_rate_per_ip = -1.5; },
        "inbound_rate_per_ip = -1.5, expected a finite number > 0");
  check([](inbound_limits& x) { x.inbound_burst_per_ip = 0.5; },
        "inbound_burst_per_ip = 0.5, expected a finite number >= 1");
  check([](inbound_limits& x) { x.max_rate_tracked_ips = 0; },
        "max_rate_tracked_ips = 0, expected >= 1");
  check([](inbound_limits& x) { x.netgroup_bits_ipv4 = 0; },
        "netgroup_bits_ipv4 = 0, expected 1..32");
  check([](inbound_limits& x) { x.netgroup_bits_ipv4 = 33; },
        "netgroup_bits_ipv4 = 33, expected 1..32");
  check([](inbound_limits& x) { x.netgroup_bits_ipv6 = 129; },
        "netgroup_bits_ipv6 = 129, expected 1..128");
}

// -- bounded memory ---------------------------------------------------------------

TEST_CASE("inbound admission: 100 000 distinct source IPs keep every table "
          "bounded") {
  auto limits = inbound_limits{}; // the defaults, rate limit included
  limits.max_rate_tracked_ips = 1000;
  node n{limits};
  for (unsigned i = 0; i < 100'000; ++i) {
    auto now = t0 + std::chrono::microseconds{i * 10}; // 100 000/s
    auto s = n.connect(v4(11 + i / 65536, (i / 256) % 256, i % 256, 1), now);
    if (s != 0 && i % 3 == 0)
      n.adm.ready(s, now);
    // Some leave at once; the rest hold their slot until evicted.
    if (s != 0 && i % 2 == 0)
      n.close(s);
    REQUIRE(n.adm.tracked_ips() <= 1000);
    REQUIRE(n.adm.size() <= 114);
    REQUIRE(n.adm.pending() <= 32);
  }
  CHECK(n.adm.ips() <= n.adm.size());
  CHECK(n.adm.netgroups() <= n.adm.size());
  // The table was full of buckets still refilling: the oldest were dropped.
  CHECK(n.adm.rate_buckets_dropped() >= 98'000);
  uint64_t decided = 0;
  for (size_t r = 0; r < admission_reason_count; ++r)
    if (r != static_cast<size_t>(admission_reason::evicted_for_newcomer)
        && r != static_cast<size_t>(admission_reason::evicted_slow_handshake))
      decided += n.adm.count(static_cast<admission_reason>(r));
  CHECK(decided == 100'000);
}

TEST_CASE("inbound admission: rate buckets that refilled are forgotten") {
  // Rate 1/s, burst 2: a bucket that gave one token is full again after
  // 1 s. 100 000 sources arriving 10 ms apart leave about 100 buckets still
  // refilling at any moment, and nothing has to be dropped early.
  auto limits = open_limits();
  limits.inbound_rate_per_ip = 1.0;
  limits.inbound_burst_per_ip = 2.0;
  limits.max_rate_tracked_ips = 1000;
  node n{limits};
  size_t most = 0;
  for (unsigned i = 0; i < 100'000; ++i) {
    auto now = t0 + i * 10ms;
    n.close(n.connect(v4(11 + i / 65536, (i / 256) % 256, i % 256, 1), now));
    most = std::max(most, n.adm.tracked_ips());
  }
  CHECK(most <= 102);
  CHECK(n.adm.rate_buckets_dropped() == 0);
}

// -- invariants under random traffic ----------------------------------------------

TEST_CASE("inbound admission: random traffic never breaks a limit nor "
          "evicts a protected peer") {
  auto limits = inbound_limits{};
  limits.max_inbound = 20;
  limits.max_inbound_per_ip = 3;
  limits.max_inbound_per_netgroup = 6;
  limits.max_pending_inbound = 7;
  limits.inbound_rate_per_ip = 2.0;
  limits.inbound_burst_per_ip = 4.0;
  node n{limits, 42};
  std::mt19937_64 rng{7};
  std::set<uint64_t> protected_slots;
  std::set<uint64_t> ready_slots;
  auto pick = [&]() -> uint64_t {
    if (n.open.empty())
      return 0;
    auto i = n.open.begin();
    std::advance(i, static_cast<long>(rng() % n.open.size()));
    return i->first;
  };
  auto group_of = [](const std::string& addr) {
    return addr.substr(0, addr.find('.', addr.find('.') + 1));
  };
  auto ip_of = [](const std::string& addr) {
    return addr.substr(0, addr.find(':'));
  };
  for (unsigned step = 0; step < 50'000; ++step) {
    auto now = t0 + step * 37ms;
    auto op = rng() % 10;
    if (op < 5) {
      // Few netgroups and IPs, so every limit is hit often.
      auto addr = v4(
        10, static_cast<unsigned>(rng() % 6), static_cast<unsigned>(rng() % 3),
        static_cast<unsigned>(rng() % 3), static_cast<unsigned>(1 + step));
      auto before = n.open;
      auto s = n.connect(addr, now);
      if (n.last.verdict == admission_verdict::evict_then_admit) {
        CHECK(protected_slots.count(n.last.victim) == 0);
        if (n.last.reason == admission_reason::evicted_for_newcomer)
          CHECK(group_of(before.at(n.last.victim)) != group_of(addr));
        else
          CHECK(ready_slots.count(n.last.victim) == 0);
      }
      (void)s;
    } else if (op < 7) {
      if (auto s = pick()) {
        n.adm.ready(s, now);
        ready_slots.insert(s);
      }
    } else if (op == 7) {
      if (auto s = pick()) {
        n.adm.ping(s, std::chrono::milliseconds{rng() % 200});
        n.adm.useful(s, now);
      }
    } else if (op == 8) {
      if (auto s = pick(); s != 0 && rng() % 8 == 0) {
        n.adm.protect(s);
        protected_slots.insert(s);
      }
    } else {
      if (auto s = pick())
        n.close(s);
    }
    // The admission's counts match the embedder's view.
    REQUIRE(n.adm.size() == n.open.size());
    REQUIRE(n.adm.size() <= 20);
    REQUIRE(n.adm.pending() <= 7);
    std::map<std::string, unsigned> per_ip;
    std::map<std::string, unsigned> per_group;
    size_t pending = 0;
    for (auto& [slot, addr] : n.open) {
      REQUIRE(n.adm.contains(slot));
      ++per_ip[ip_of(addr)];
      ++per_group[group_of(addr)];
      if (ready_slots.count(slot) == 0)
        ++pending;
    }
    REQUIRE(n.adm.pending() == pending);
    REQUIRE(n.adm.ips() == per_ip.size());
    REQUIRE(n.adm.netgroups() == per_group.size());
    for (auto& kv : per_ip)
      REQUIRE(kv.second <= 3);
    for (auto& kv : per_group)
      REQUIRE(kv.second <= 6);
  }
  CHECK(n.adm.count(admission_reason::evicted_for_newcomer) > 0);
  CHECK(n.adm.count(admission_reason::evicted_slow_handshake) > 0);
  CHECK(n.adm.count(admission_reason::per_ip_limit) > 0);
  CHECK(n.adm.count(admission_reason::per_netgroup_limit) > 0);
  CHECK(n.adm.count(admission_reason::rate_limit) > 0);
}

TEST_CASE("inbound admission: the slow-handshake victim is the oldest "
          "unprotected pending peer, ties by slot, over long runs") {
  // A reference model next to the real thing, with slots the embedder picks
  // out of order, many arrivals at the same instant, and enough peers that
  // got ready, protected or closed for stale bookkeeping to pile up.
  auto limits = open_limits();
  limits.max_pending_inbound = 16;
  inbound_admission adm{limits, 99};
  struct model_peer {
    time_point at;
    bool ready = false;
    bool is_protected = false;
  };
  std::map<uint64_t, model_peer> model;
  std::mt19937_64 rng{11};
  auto pick = [&]() -> uint64_t {
    auto i = model.begin();
    std::advance(i, static_cast<long>(rng() % model.size()));
    return i->first;
  };
  size_t evictions = 0;
  for (unsigned step = 0; step < 20'000; ++step) {
    auto now = t0 + (step / 4) * 10ms; // four steps share each instant
    auto op = rng() % 8;
    if (op < 4 || model.empty()) {
      uint64_t slot;
      do
        slot = 1 + rng() % 1'000'000;
      while (model.count(slot) != 0);
      std::optional<uint64_t> expected;
      size_t pending = 0;
      for (auto& [s, p] : model) {
        if (p.ready)
          continue;
        ++pending;
        if (p.is_protected)
          continue;
        if (!expected
            || std::tie(p.at, s) < std::tie(model.at(*expected).at, *expected))
          expected = s;
      }
      auto d = adm.admit(slot, netgroup_addr(step % 40'000), now);
      if (pending >= 16) {
        if (expected) {
          REQUIRE(d.verdict == admission_verdict::evict_then_admit);
          REQUIRE(d.reason == admission_reason::evicted_slow_handshake);
          REQUIRE(d.victim == *expected);
          model.erase(*expected);
          ++evictions;
        } else {
          REQUIRE(d.reason == admission_reason::pending_limit);
          continue;
        }
      } else {
        REQUIRE(d.verdict == admission_verdict::admit);
      }
      model[slot] = model_peer{now};
    } else if (op < 6) {
      auto s = pick();
      adm.ready(s, now);
      model[s].ready = true;
    } else if (op == 6) {
      if (auto s = pick(); rng() % 16 == 0) {
        adm.protect(s);
        model[s].is_protected = true;
      }
    } else {
      auto s = pick();
      adm.closed(s);
      model.erase(s);
    }
    REQUIRE(adm.size() == model.size());
  }
  CHECK(evictions > 100);
}

TEST_CASE("inbound admission: an IPv4 address is one source however it is "
          "printed") {
  auto limits = open_limits();
  limits.max_inbound_per_ip = 3;
  limits.max_inbound_per_netgroup = 5;
  node n{limits};
  CHECK(n.connect("198.51.100.7:8333", t0) != 0);
  CHECK(n.connect("198.51.100.7", t0) != 0);
  CHECK(n.connect("[::ffff:198.51.100.7]:9000", t0) != 0);
  CHECK(n.connect("198.51.100.7:1", t0) == 0);
  CHECK(n.last.context == "max_inbound_per_ip = 3 for 198.51.100.7/32");
  CHECK(n.connect("[::ffff:198.51.100.7]:9001", t0) == 0);
  CHECK(n.adm.ips() == 1);
  // The netgroup is the /16 whatever the form.
  CHECK(n.connect("198.51.0.1:65535", t0) != 0);
  CHECK(n.connect("[::ffff:198.51.255.255]:2", t0) != 0);
  CHECK(n.connect("198.51.9.9:3", t0) == 0);
  CHECK(n.last.context == "max_inbound_per_netgroup = 5 for 198.51.0.0/16");
  CHECK(n.adm.netgroups() == 1);
  // Not addresses: text, each its own source.
  CHECK(n.connect("198.51.100.256:1", t0) != 0);
  CHECK(n.connect("198.51.100.7:65536", t0) != 0);
  CHECK(n.adm.netgroups() == 3);
}

TEST_CASE("inbound admission: a binary IPv4 address counts as the address "
          "it prints") {
  auto limits = open_limits();
  limits.max_inbound_per_ip = 2;
  limits.max_inbound_per_netgroup = 3;
  inbound_admission adm{limits, 0x5eed};
  const uint32_t ip = 0x0102'0304; // 1.2.3.4
  const uint32_t neighbour = 0x0102'0909; // 1.2.9.9, same /16
  // The binary form and the printed one share the per-IP count...
  CHECK(adm.admit(1, ip, "ignored when the IP is given", t0).admits());
  CHECK(adm.admit(2, std::nullopt, v4(1, 2, 3, 4, 1111), t0).admits());
  auto third = adm.admit(3, ip, "", t0);
  CHECK(third.reason == admission_reason::per_ip_limit);
  CHECK(third.context == "max_inbound_per_ip = 2 for 1.2.3.4/32");
  CHECK(adm.admit(4, std::nullopt, v4(1, 2, 3, 4), t0).reason
        == admission_reason::per_ip_limit);
  // ... and the netgroup count.
  CHECK(adm.admit(5, neighbour, "", t0).admits());
  auto sixth = adm.admit(6, std::nullopt, v4(1, 2, 200, 1), t0);
  CHECK(sixth.reason == admission_reason::per_netgroup_limit);
  CHECK(sixth.context == "max_inbound_per_netgroup = 3 for 1.2.0.0/16");
  CHECK(adm.ips() == 2);
  CHECK(adm.netgroups() == 1);
  // Closing a binary admission frees what the printed form would need.
  adm.closed(1);
  CHECK(adm.admit(7, std::nullopt, v4(1, 2, 3, 4), t0).admits());
  CHECK(adm.size() == 3);
}

TEST_CASE("inbound admission: dotted quads are IPv4 sources as the address "
          "parser reads them") {
  auto limits = open_limits();
  limits.max_inbound_per_ip = 1;
  // The source a second arrival from `addr` is refused for.
  auto source_of = [&limits](const std::string& addr) {
    inbound_admission adm{limits, 0x5eed};
    REQUIRE(adm.admit(1, addr, t0).admits());
    auto d = adm.admit(2, addr, t0);
    REQUIRE(d.reason == admission_reason::per_ip_limit);
    return d.context.substr(d.context.find(" for ") + 5);
  };
  // "05": the fast path leaves it to the full parser, which reads it.
  for (auto addr : {"1.2.3.4", "1.2.3.4:1", "1.2.3.4:65535", "1.2.3.4:8333",
                    "1.2.3.4:05"})
    CHECK_MESSAGE(source_of(addr) == "1.2.3.4/32", addr);
  CHECK(source_of("0.0.0.0:9") == "0.0.0.0/32");
  CHECK(source_of("255.255.255.255:9") == "255.255.255.255/32");
  for (auto addr : {"01.2.3.4:5", "1.2.3.04:5", "1.2.3.4:0",
                    "1.2.3.4:65536", "1.2.3.256:5", "1.2.3.1000:5",
                    "1.2.3:5", "1.2.3.4.5:6", "1.2.3.4:", "1.2.3.4x",
                    "00.2.3.4:5", "1.2.3.4:123456"})
    CHECK_MESSAGE(source_of(addr) == std::string{"text:"} + addr, addr);
}
