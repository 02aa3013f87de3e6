// Eclipse and reflector attacks through gossip, against a real
// connmgr-node: one inbound peer that gossips the addresses of listeners it
// controls, one that gossips addresses that refuse and leaves, and one that
// gossips addresses the node must never dial (other hosts, its own
// endpoints, names). Each test names what the attack did to the node before
// it had an address manager, a dial policy, outbound diversity and a
// throttle that ignores addresses nobody ever reached, and asserts it is
// gone.
//
// The first two tests run on loopback only (127.0.0.x, every network group
// its own with netgroup-bits-ipv4=32). The third gossips other addresses, so
// its node runs inside a network namespace holding nothing but `lo`
// (lo_namespace): whatever it dials, nothing leaves. It is skipped where
// namespaces cannot be made (not root, no `ip`).
//
// CONNMGR_ATTACK_NODE_BINARY=<older connmgr-node> runs the same scenarios
// against an older build (keys it does not know are left out).

#include <doctest/doctest.h>

#ifdef CONNMGR_NODE_BINARY

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/fault/eclipse_support.hpp"

using namespace connmgr::eclipse;

namespace {

/// "127.0.0.<first>" .. "127.0.0.<first + count - 1>".
std::vector<std::string> loopback_ips(int first, int count) {
  std::vector<std::string> out;
  for (int i = first; i < first + count; ++i)
    out.push_back("127.0.0." + std::to_string(i));
  return out;
}

/// Polls `pred` until it held on three reads in a row 100 ms apart (a
/// connection being replaced does not decide), or `timeout` passes.
bool settle(const std::function<bool()>& pred, clock_type::duration timeout) {
  auto deadline = clock_type::now() + timeout;
  int good = 0;
  for (;;) {
    good = pred() ? good + 1 : 0;
    if (good >= 3)
      return true;
    if (clock_type::now() >= deadline)
      return false;
    std::this_thread::sleep_for(100ms);
  }
}

/// The sum of "count" of the node's gossip_dropped events from `from`, by
/// reason_code.
std::map<std::string, int64_t> dropped_by_reason(const node_process& n,
                                                 const std::string& from) {
  std::map<std::string, int64_t> out;
  for (auto& l : n.events("gossip_dropped", {{"addr", from}}))
    out[json_get(l, "reason_code").value_or("?")] += int_of(l, "count");
  return out;
}

std::string text_of(const std::map<std::string, int64_t>& m) {
  std::string out;
  for (auto& [k, v] : m)
    out += k + "=" + std::to_string(v) + " ";
  return out;
}

std::string text_of(const std::map<std::string, size_t>& m) {
  std::string out;
  for (auto& [k, v] : m)
    out += k + "=" + std::to_string(v) + " ";
  return out;
}

/// The node's dial outcomes (connected, failed, retry) naming `addr`.
std::vector<std::string> dials_of(const node_process& n,
                                  const std::string& addr) {
  std::vector<std::string> out;
  for (auto* kind : {"connected", "failed", "retry"})
    for (auto& l : n.events(kind, {{"addr", addr}}))
      out.push_back(l);
  return out;
}

} // namespace

TEST_CASE("fault: eclipse: a source gossiping 1100 own listeners gets one "
          "outbound slot per network group") {
  // Before: after one churn of the honest peers, 4 of 4 outbound
  // connections went to the attacker's listeners and none to the 8 honest
  // peers. Now the attacker's two networks (127.0.0.100 and .101, one group
  // each at /32) get at most one automatic slot each, the honest peers the
  // rest, and the book holds at most one new bucket (64 slots) of the
  // attacker's addresses per group it announced from its one source group.
  REQUIRE_MESSAGE(raise_fd_limit(8192) >= 2048,
                  "1100 listeners need an open-file limit of 2048 or more");
  hello_listeners honest{loopback_ips(10, 8), 1};
  REQUIRE_MESSAGE(honest.ok(), honest.error);
  const std::vector<std::string> attacker_ips{"127.0.0.100", "127.0.0.101"};
  hello_listeners evil{attacker_ips, 550};
  REQUIRE_MESSAGE(evil.ok(), evil.error);
  REQUIRE(evil.addresses().size() == 1100);
  auto victim = eclipse_node(
    {opt("listen", list({"127.0.0.1:0"})),
     opt("peers", list(honest.addresses())), opt("target-outbound", "4"),
     opt("netgroup-bits-ipv4", "32"), opt("outbound-per-netgroup", "1"),
     opt("retry-duration", "200ms"), opt("status-interval", "200ms")});
  REQUIRE_MESSAGE(poll_until([&] { return honest.open_total() == 4; }, 15s),
                  "honest outbound: " << honest.open_total() << "\n"
                                      << victim->tail(30));

  // The attacker connects and gossips its listeners: 1000, then 100 more.
  wire_peer attacker{victim->port, "127.0.0.50"};
  REQUIRE(attacker.ok());
  REQUIRE(attacker.send_all(hello_frame(fresh_id())));
  REQUIRE(gossip(attacker, evil.addresses()));
  expect_event(*victim, "learned", {{"addr", attacker.local()}});
  // Two status lines later both frames are in.
  expect_event(*victim, "status");
  expect_event(*victim, "status");

  const size_t rounds = 3;
  for (size_t round = 1; round <= rounds; ++round) {
    CAPTURE(round);
    honest.churn();
    auto full =
      settle([&] { return honest.open_total() + evil.open_total() == 4; }, 15s);
    auto evil_by_ip = evil.open_by_ip();
    auto honest_open = honest.open_total();
    auto evil_open = evil.open_total();
    MESSAGE("round " << round << ": outbound to honest " << honest_open
                     << ", to attacker " << evil_open << " ("
                     << text_of(evil_by_ip) << ")");
    CHECK_MESSAGE(full,
                  "outbound honest " << honest_open << " attacker " << evil_open
                                     << "\n"
                                     << victim->tail(20));
    // At most one slot per attacker group, so never all four.
    for (auto& [ip, count] : evil_by_ip)
      CHECK_MESSAGE(count <= 1, ip << " holds " << count << " slots");
    CHECK(evil_open <= attacker_ips.size());
    // The honest peers' tried addresses survived the gossip.
    CHECK(honest_open >= 4 - attacker_ips.size());
  }
  // Two status lines after the last round: the book as it stands.
  victim->seek(victim->texts().size());
  expect_event(*victim, "status");
  auto known = known_addresses(*victim);
  MESSAGE("known addresses: " << known << " (honest 8, gossiped "
                              << evil.addresses().size() << ")");
  CHECK(known > 8);
  CHECK(known <= static_cast<int64_t>(8 + 64 * attacker_ips.size() + 1));
  // And the 100 beyond the gossip burst of 1000 were refused outright.
  auto dropped = dropped_by_reason(*victim, attacker.local());
  MESSAGE("gossip dropped: " << text_of(dropped));
  CHECK(dropped["rate_limited"] >= 90);
  attacker.reset();
  stop_ok(*victim);
}

TEST_CASE("fault: eclipse: 1000 refused addresses from a peer that left do "
          "not stall the outbound connections") {
  // Before: one addr frame of 1000 refused addresses, then the attacker
  // left; once the honest peers churned the node sat at 0 of 4 outbound
  // for 20 s and at 2 of 4 after 540 s: the failures of gossiped addresses
  // tripped the node's network-down throttle. Now addresses nobody ever
  // reached back off alone: all four slots are back within two retry steps
  // (2 x 500 ms) plus 5 s for dials on a loaded machine.
  REQUIRE_MESSAGE(raise_fd_limit(8192) >= 2048,
                  "1000 refused ports need an open-file limit of 2048 or more");
  constexpr auto retry_step = 500ms;
  constexpr auto allowance = 5s;
  hello_listeners honest{loopback_ips(10, 8), 1};
  REQUIRE_MESSAGE(honest.ok(), honest.error);
  dead_ports dead{loopback_ips(100, 100), 1000};
  REQUIRE_MESSAGE(dead.ok(), dead.error);
  auto victim = eclipse_node(
    {opt("listen", list({"127.0.0.1:0"})),
     opt("peers", list(honest.addresses())), opt("target-outbound", "4"),
     opt("netgroup-bits-ipv4", "32"), opt("outbound-per-netgroup", "1"),
     opt("retry-duration", "500ms"), opt("status-interval", "500ms")});
  REQUIRE_MESSAGE(poll_until([&] { return honest.open_total() == 4; }, 15s),
                  "honest outbound: " << honest.open_total() << "\n"
                                      << victim->tail(30));

  int64_t stored = 0;
  {
    wire_peer attacker{victim->port, "127.0.0.50"};
    REQUIRE(attacker.ok());
    REQUIRE(attacker.send_all(hello_frame(fresh_id())));
    REQUIRE(gossip(attacker, dead.addresses()));
    auto learned =
      expect_event(*victim, "learned", {{"addr", attacker.local()}});
    // The poison is in the book (most of it: collisions in the attacker's
    // buckets keep the first entry).
    stored = int_of(learned, "count");
    CHECK(stored >= 100);
    attacker.reset();
    expect_event(*victim, "peer_closed", {{"addr", attacker.local()}});
  }
  auto churn_line = victim->texts().size();
  auto start = clock_type::now();
  honest.churn();
  auto bound = 2 * retry_step + allowance;
  auto regained = poll_until([&] { return honest.open_total() == 4; }, bound);
  auto took = ms_between(start, clock_type::now());
  // The dials the poison cost, from the churn on.
  std::set<std::string> dead_set(dead.addresses().begin(),
                                 dead.addresses().end());
  size_t dead_dials = 0;
  for (auto& l : events_of(*victim, "failed", {}, churn_line))
    if (dead_set.count(json_get(l, "addr").value_or("")) > 0)
      ++dead_dials;
  auto bound_ms =
    std::chrono::duration_cast<std::chrono::milliseconds>(bound).count();
  MESSAGE("refused addresses stored: "
          << stored << "; outbound 4/4 again after " << took << " ms (bound "
          << bound_ms << " ms); then " << honest.open_total()
          << " honest; dials of refused addresses meanwhile: " << dead_dials);
  CHECK_MESSAGE(regained,
                "outbound " << honest.open_total() << "/4 after " << took
                            << " ms\n"
                            << victim->tail(20));
  CHECK(settle([&] { return honest.open_total() == 4; }, 5s));
  stop_ok(*victim);
}

TEST_CASE("fault: eclipse: gossip never makes the node dial other hosts, "
          "names or its own endpoints") {
  // Before: from gossip the node dialed anything: third-party hosts,
  // 0.0.0.0, [::], multicast, broadcast, RFC 1918, link-local,
  // 169.254.169.254, its own metrics port, host names; each target got the
  // node's hello. Now only IP literals of routable hosts are dialed (local
  // ranges only with allow-local-addresses), never its own endpoints, and
  // every refusal is counted by reason.
  if (::geteuid() != 0
      || run_command("command -v ip >/dev/null 2>&1").second != 0) {
    MESSAGE("SKIPPED: the reflector test gossips non-loopback addresses, so "
            "its node must run in a network namespace with only lo (root "
            "and `ip`, Debian package iproute2)");
    return;
  }
  lo_namespace ns;
  if (!ns.ok() && ns.error.rfind("ip netns add", 0) == 0) {
    MESSAGE("SKIPPED: cannot make a network namespace: " << ns.error);
    return;
  }
  REQUIRE_MESSAGE(ns.ok(), ns.error);
  // Two listeners of ours inside: port 0 is gossiped as 127.0.0.1 (and on
  // every other host), port 1 by the name "localhost".
  hello_listeners mine{{"127.0.0.1"}, 2, ns.name};
  REQUIRE_MESSAGE(mine.ok(), mine.error);
  auto port_of = [](const std::string& addr) {
    return addr.substr(addr.rfind(':') + 1);
  };
  auto p = port_of(mine.addresses()[0]);
  auto p_name = port_of(mine.addresses()[1]);

  SUBCASE("without allow-local-addresses nothing gossiped but a routable "
          "host is dialed") {
    auto victim = eclipse_node(
      {opt("listen", list({"127.0.0.1:0"})),
       opt("metrics-listen", "\"127.0.0.1:0\""), opt("target-outbound", "4"),
       opt("retry-duration", "100ms"), opt("max-retry-duration", "200ms"),
       opt("dial-timeout", "1s"), opt("allow-local-addresses", "false")},
      ns.exec_in());
    auto metrics =
      json_get(expect_event(*victim, "metrics"), "addr").value_or("");
    REQUIRE(!metrics.empty());
    // Each gossiped address with the reason it must be refused.
    const std::vector<std::pair<std::string, std::string>> refused{
      {"0.0.0.0:" + p, "unspecified"},
      {"[::]:" + p, "unspecified"},
      {"224.0.0.1:" + p, "multicast"},
      {"[ff02::1]:" + p, "multicast"},
      {"255.255.255.255:" + p, "broadcast"},
      {"10.1.2.3:" + p, "private"},
      {"172.16.0.1:" + p, "private"},
      {"192.168.1.1:" + p, "private"},
      {"[fc00::1]:" + p, "private"},
      {"100.64.0.1:" + p, "shared"},
      {"169.254.169.254:80", "link_local"},
      {"[fe80::1]:" + p, "link_local"},
      {"192.0.2.1:" + p, "documentation"},
      {"[2001:db8::1]:" + p, "documentation"},
      {"240.0.0.1:" + p, "reserved"},
      {"127.0.0.1:" + p, "loopback"},
      {"[::1]:" + p, "loopback"},
      {metrics, "loopback"},
      {victim->addr, "loopback"},
      {"localhost:" + p_name, "hostname"},
    };
    // A routable host (benchmarking space, unreachable from a namespace
    // with only lo): dialed, and its failure shows the gossip was taken in.
    const std::string canary = "198.18.0.1:" + p;
    std::vector<std::string> texts;
    std::map<std::string, int64_t> expected;
    for (auto& [addr, why] : refused) {
      texts.push_back(addr);
      ++expected[why];
    }
    texts.push_back(canary);
    std::unique_ptr<wire_peer> attacker;
    REQUIRE(ns.run_in([&] {
      attacker = std::make_unique<wire_peer>(victim->port, "127.0.0.2");
    }));
    REQUIRE(attacker->ok());
    REQUIRE(attacker->send_all(hello_frame(fresh_id())));
    REQUIRE(gossip(*attacker, texts));
    expect_event(*victim, "failed", {{"addr", canonical(canary)}});
    // Any other dial would have come by now: the node asks for an address
    // every 100 ms and has 3 free slots. Give it another second anyway.
    std::this_thread::sleep_for(1s);
    for (auto& [addr, why] : refused) {
      CAPTURE(addr);
      auto dials = dials_of(*victim, canonical(addr));
      CHECK_MESSAGE(dials.empty(),
                    dials.size() << " dial events, e.g. " << dials.front());
    }
    CHECK_MESSAGE(mine.accepted() == 0,
                  mine.accepted() << " connections reached our "
                                     "listeners");
    auto dropped = dropped_by_reason(*victim, attacker->local());
    MESSAGE("gossip dropped: " << text_of(dropped));
    CHECK(dropped == expected);
    // Only the attacker connected: the node never dialed itself.
    CHECK(victim->events("accepted").size() == 1);
    attacker->reset();
    stop_ok(*victim);
  }

  SUBCASE("with allow-local-addresses loopback gossip is dialed, but never "
          "the node's own endpoints") {
    auto victim = eclipse_node(
      {opt("listen", list({"127.0.0.1:0"})),
       opt("metrics-listen", "\"127.0.0.1:0\""), opt("target-outbound", "4"),
       opt("retry-duration", "100ms"), opt("max-retry-duration", "200ms"),
       opt("dial-timeout", "1s")},
      ns.exec_in());
    auto metrics =
      json_get(expect_event(*victim, "metrics"), "addr").value_or("");
    REQUIRE(!metrics.empty());
    const std::string ours = "127.0.0.1:" + p;
    std::unique_ptr<wire_peer> attacker;
    REQUIRE(ns.run_in([&] {
      attacker = std::make_unique<wire_peer>(victim->port, "127.0.0.2");
    }));
    REQUIRE(attacker->ok());
    REQUIRE(attacker->send_all(hello_frame(fresh_id())));
    REQUIRE(gossip(*attacker, {metrics, victim->addr, ours}));
    expect_event(*victim, "connected", {{"addr", ours}});
    REQUIRE(poll_until([&] { return mine.hellos() >= 1; }, 10s));
    std::this_thread::sleep_for(1s);
    for (auto& own : {metrics, victim->addr}) {
      CAPTURE(own);
      auto dials = dials_of(*victim, own);
      CHECK_MESSAGE(dials.empty(),
                    dials.size() << " dial events, e.g. " << dials.front());
    }
    auto dropped = dropped_by_reason(*victim, attacker->local());
    MESSAGE("gossip dropped: " << text_of(dropped));
    CHECK(dropped == std::map<std::string, int64_t>{{"own_address", 2}});
    CHECK(victim->events("accepted").size() == 1);
    attacker->reset();
    stop_ok(*victim);
  }
}

#endif // CONNMGR_NODE_BINARY
