// The example node's peer protocol as scenarios on a fake clock: no sockets,
// no actors. Each side is a node_machine; "wires" carry the encoded frames.
//
// Over 500 lines: one scenario per rule of the protocol.

#include <doctest/doctest.h>

#include <deque>
#include <map>
#include <optional>
#include <set>

#include "examples/node/node_machine.hpp"
#include "connmgr/messages/error_code.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = node_machine::time_point;

struct recorded_drop {
  uint64_t peer;
  drop_reason why;
  caf::error reason;
};

/// Records every effect; frames are kept encoded, as they would travel.
struct recorder : node_effects {
  std::map<uint64_t, std::deque<std::vector<uint8_t>>> sent;
  std::vector<recorded_drop> drops;
  std::map<uint64_t, std::pair<uint64_t, std::optional<net_address>>>
    ready_peers;
  std::vector<std::pair<uint64_t, std::vector<net_address>>> learnt;
  std::map<uint64_t, time_point> timers;

  void send(uint64_t peer, const node_frames::frame& msg) override {
    sent[peer].push_back(node_frames::encode(msg));
  }
  void drop(uint64_t peer, drop_reason why, const caf::error& reason) override {
    drops.push_back({peer, why, reason});
  }
  void ready(uint64_t peer, uint64_t node_id,
             const std::optional<net_address>& listen) override {
    ready_peers[peer] = {node_id, listen};
  }
  void learned(uint64_t peer, std::vector<net_address> addrs) override {
    learnt.emplace_back(peer, std::move(addrs));
  }
  void arm_timer(uint64_t peer, time_point at) override {
    timers[peer] = at;
  }

  /// Frames sent to `peer` so far, decoded, and forgets them.
  std::vector<node_frames::frame> take(uint64_t peer) {
    std::vector<node_frames::frame> result;
    for (auto& bytes : sent[peer]) {
      auto res = node_frames::decode(bytes.data(), bytes.size());
      REQUIRE(res.status == parse_status::done);
      result.push_back(res.value);
    }
    sent[peer].clear();
    return result;
  }
};

net_address addr(const std::string& text) {
  auto res = net_address::parse(text);
  REQUIRE(res);
  return *res;
}

std::vector<uint8_t> bytes_of(const node_frames::frame& f) {
  return node_frames::encode(f);
}

/// One node: its machine and its effects.
struct test_node {
  recorder fx;
  node_machine m;

  test_node(uint64_t id, uint16_t port, caf::timespan ping = 30s)
    : m(node_machine_config{id, port, 10s, ping, {}, 0}, fx) {
    // nop
  }

  void feed(uint64_t peer, const node_frames::frame& f, time_point now) {
    auto b = bytes_of(f);
    m.received(peer, b.data(), b.size(), now);
  }
};

/// Carries everything one side sent on `from_peer` to the other side's
/// `to_peer`, in both directions, until nothing moves.
void pump(test_node& a, uint64_t a_key, test_node& b, uint64_t b_key,
          time_point now) {
  for (bool moved = true; moved;) {
    moved = false;
    for (auto& bytes : std::exchange(a.fx.sent[a_key], {})) {
      b.m.received(b_key, bytes.data(), bytes.size(), now);
      moved = true;
    }
    for (auto& bytes : std::exchange(b.fx.sent[b_key], {})) {
      a.m.received(a_key, bytes.data(), bytes.size(), now);
      moved = true;
    }
  }
}

const time_point t0{};

} // namespace

TEST_CASE("node machine: both sides send a hello at once and become ready "
          "with each other's listening address") {
  test_node a{0xA, 9001};
  test_node b{0xB, 9002};
  a.m.opened(1, true, "127.0.0.1:9002", t0);
  b.m.opened(7, false, "127.0.0.1:51000", t0);
  auto first = a.fx.take(1);
  REQUIRE(first.size() == 1);
  CHECK(std::get<node_frames::hello>(first[0])
        == node_frames::hello{0xA, 9001});
  a.fx.sent[1].push_back(bytes_of(first[0]));
  pump(a, 1, b, 7, t0);
  REQUIRE(a.fx.ready_peers.count(1) == 1);
  CHECK(a.fx.ready_peers[1].first == 0xB);
  CHECK(a.fx.ready_peers[1].second == addr("127.0.0.1:9002"));
  REQUIRE(b.fx.ready_peers.count(7) == 1);
  CHECK(b.fx.ready_peers[7].first == 0xA);
  // The inbound side learns where A listens: A's host, A's announced port.
  CHECK(b.fx.ready_peers[7].second == addr("127.0.0.1:9001"));
  CHECK(a.m.ready_count() == 1);
  CHECK(b.m.ready_count() == 1);
  CHECK(a.m.node_of(1) == std::optional<uint64_t>{0xB});
}

TEST_CASE("node machine: a hello with our own id drops the connection as "
          "self") {
  test_node a{0xA, 9001};
  a.m.opened(1, true, "127.0.0.1:9001", t0);
  a.feed(1, node_frames::hello{0xA, 9001}, t0);
  REQUIRE(a.fx.drops.size() == 1);
  CHECK(a.fx.drops[0].why == drop_reason::self);
  CHECK(errc_of(a.fx.drops[0].reason) == errc::connection_closed);
  CHECK(a.m.open_count() == 0);
  CHECK(a.fx.ready_peers.empty());
}

TEST_CASE("node machine: a peer without hello within the handshake timeout "
          "is dropped, a stale timer is not acted on") {
  test_node a{0xA, 9001};
  a.m.opened(1, true, "127.0.0.1:9002", t0);
  REQUIRE(a.fx.timers.count(1) == 1);
  CHECK(a.fx.timers[1] == t0 + 10s);
  a.m.timer_fired(1, t0 + 9s); // early: nothing happens
  CHECK(a.fx.drops.empty());
  a.m.timer_fired(1, t0 + 10s);
  REQUIRE(a.fx.drops.size() == 1);
  CHECK(a.fx.drops[0].why == drop_reason::handshake_timeout);
  CHECK(errc_of(a.fx.drops[0].reason) == errc::timed_out);
  // Once forgotten, further timers and bytes are ignored.
  a.m.timer_fired(1, t0 + 20s);
  a.feed(1, node_frames::hello{0xB, 1}, t0 + 20s);
  CHECK(a.fx.drops.size() == 1);
  CHECK(a.fx.ready_peers.empty());
}

TEST_CASE("node machine: anything before the hello, a second hello or "
          "garbage is a protocol error") {
  SUBCASE("ping before hello") {
    test_node a{0xA, 9001};
    a.m.opened(1, false, "127.0.0.1:5000", t0);
    a.feed(1, node_frames::ping{1}, t0);
    REQUIRE(a.fx.drops.size() == 1);
    CHECK(a.fx.drops[0].why == drop_reason::protocol);
  }
  SUBCASE("getaddr before hello") {
    test_node a{0xA, 9001};
    a.m.opened(1, false, "127.0.0.1:5000", t0);
    a.feed(1, node_frames::getaddr{}, t0);
    REQUIRE(a.fx.drops.size() == 1);
    CHECK(a.fx.drops[0].why == drop_reason::protocol);
  }
  SUBCASE("second hello") {
    test_node a{0xA, 9001};
    a.m.opened(1, false, "127.0.0.1:5000", t0);
    a.feed(1, node_frames::hello{0xB, 1}, t0);
    a.feed(1, node_frames::hello{0xB, 1}, t0);
    REQUIRE(a.fx.drops.size() == 1);
    CHECK(a.fx.drops[0].why == drop_reason::protocol);
  }
  SUBCASE("bad magic") {
    test_node a{0xA, 9001};
    a.m.opened(1, false, "127.0.0.1:5000", t0);
    std::vector<uint8_t> junk{'G', 'E', 'T', ' ', '/', ' ', 'H', 'T', 'T'};
    a.m.received(1, junk.data(), junk.size(), t0);
    REQUIRE(a.fx.drops.size() == 1);
    CHECK(a.fx.drops[0].why == drop_reason::protocol);
    CHECK(errc_of(a.fx.drops[0].reason) == errc::connection_closed);
  }
}

TEST_CASE("node machine: frames split at every byte boundary and several "
          "frames in one read decode alike") {
  std::vector<uint8_t> stream;
  for (auto& f : std::vector<node_frames::frame>{
         node_frames::hello{0xB, 9002}, node_frames::ping{5},
         node_frames::addr{{addr("127.0.0.1:9003"), addr("[::1]:9004")}}}) {
    auto b = bytes_of(f);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    test_node a{0xA, 9001};
    a.m.opened(1, true, "127.0.0.1:9002", t0);
    a.fx.take(1);
    a.m.received(1, stream.data(), cut, t0);
    a.m.received(1, stream.data() + cut, stream.size() - cut, t0);
    REQUIRE(a.fx.drops.empty());
    CHECK(a.fx.ready_peers.count(1) == 1);
    auto out = a.fx.take(1);
    REQUIRE(out.size() == 1);
    CHECK(std::get<node_frames::pong>(out[0]) == node_frames::pong{5});
    REQUIRE(a.fx.learnt.size() == 1);
    CHECK(
      a.fx.learnt[0].second
      == std::vector<net_address>{addr("127.0.0.1:9003"), addr("[::1]:9004")});
  }
}

TEST_CASE("node machine: a ready peer is pinged every interval and dropped "
          "when a pong is missing at the next one") {
  test_node a{0xA, 9001, 5s};
  a.m.opened(1, true, "127.0.0.1:9002", t0);
  a.feed(1, node_frames::hello{0xB, 9002}, t0);
  a.fx.take(1);
  CHECK(a.fx.timers[1] == t0 + 5s);
  // First ping; the pong comes back in time.
  a.m.timer_fired(1, t0 + 5s);
  auto out = a.fx.take(1);
  REQUIRE(out.size() == 1);
  auto nonce = std::get<node_frames::ping>(out[0]).nonce;
  a.feed(1, node_frames::pong{nonce + 1000}, t0 + 6s); // wrong nonce: ignored
  a.feed(1, node_frames::pong{nonce}, t0 + 6s);
  CHECK(a.fx.timers[1] == t0 + 10s);
  a.m.timer_fired(1, t0 + 10s);
  CHECK(a.fx.drops.empty());
  out = a.fx.take(1);
  REQUIRE(out.size() == 1);
  CHECK(std::holds_alternative<node_frames::ping>(out[0]));
  // This one is never answered.
  a.m.timer_fired(1, t0 + 15s);
  REQUIRE(a.fx.drops.size() == 1);
  CHECK(a.fx.drops[0].why == drop_reason::ping_timeout);
  CHECK(a.m.ready_count() == 0);
}

TEST_CASE("node machine: a newcomer learns every ready peer's listening "
          "address and the others learn the newcomer's") {
  test_node seed{0x10, 9000};
  // Three nodes connect in turn; each announces a listening port.
  for (uint64_t k = 1; k <= 3; ++k) {
    seed.m.opened(k, false, "127.0.0.1:" + std::to_string(50000 + k), t0);
    seed.feed(k, node_frames::hello{0x10 + k, static_cast<uint16_t>(9000 + k)},
              t0);
  }
  // The third got an addr with the first two.
  auto to_third = seed.fx.take(3);
  std::vector<net_address> told;
  for (auto& f : to_third)
    if (auto a = std::get_if<node_frames::addr>(&f))
      told = a->addresses;
  std::set<net_address> told_set(told.begin(), told.end());
  CHECK(
    told_set
    == std::set<net_address>{addr("127.0.0.1:9001"), addr("127.0.0.1:9002")});
  // The first heard about the second and the third, one relay each.
  std::set<net_address> first_heard;
  for (auto& f : seed.fx.take(1))
    if (auto a = std::get_if<node_frames::addr>(&f))
      first_heard.insert(a->addresses.begin(), a->addresses.end());
  CHECK(
    first_heard
    == std::set<net_address>{addr("127.0.0.1:9002"), addr("127.0.0.1:9003")});
  // Addresses learnt from gossip are reported but not relayed further.
  seed.feed(2, node_frames::addr{{addr("127.0.0.1:9999")}}, t0);
  REQUIRE(seed.fx.learnt.size() == 1);
  CHECK(seed.fx.learnt[0].first == 2);
  CHECK(seed.fx.take(1).empty());
  CHECK(seed.fx.take(3).empty());
}

TEST_CASE("node machine: a peer announcing port 0 has no listening address "
          "and is not relayed") {
  test_node seed{0x10, 9000};
  seed.m.opened(1, false, "127.0.0.1:50001", t0);
  seed.feed(1, node_frames::hello{0x11, 9001}, t0);
  seed.fx.take(1);
  seed.m.opened(2, false, "127.0.0.1:50002", t0);
  seed.feed(2, node_frames::hello{0x12, 0}, t0);
  CHECK_FALSE(seed.fx.ready_peers[2].second.has_value());
  CHECK(seed.fx.take(1).empty());
}

TEST_CASE("node machine: simultaneous connections between two nodes keep "
          "the same one on both sides") {
  // A (id 1) dials B (id 2) while B dials A. Both ends keep the connection
  // dialed by the smaller id, A's, whatever order the hellos arrive in.
  for (int order = 0; order < 2; ++order) {
    CAPTURE(order);
    test_node a{1, 9001};
    test_node b{2, 9002};
    // Connection X: A dialed B (A key 10, B key 20).
    // Connection Y: B dialed A (B key 21, A key 11).
    a.m.opened(10, true, "127.0.0.1:9002", t0);
    b.m.opened(20, false, "127.0.0.1:40000", t0);
    b.m.opened(21, true, "127.0.0.1:9001", t0 + 1ms);
    a.m.opened(11, false, "127.0.0.1:40001", t0 + 1ms);
    if (order == 0) {
      pump(a, 10, b, 20, t0 + 2ms);
      pump(a, 11, b, 21, t0 + 2ms);
    } else {
      pump(a, 11, b, 21, t0 + 2ms);
      pump(a, 10, b, 20, t0 + 2ms);
    }
    REQUIRE(a.fx.drops.size() == 1);
    REQUIRE(b.fx.drops.size() == 1);
    CHECK(a.fx.drops[0].peer == 11); // Y, dialed by B
    CHECK(b.fx.drops[0].peer == 21); // Y, dialed by B
    CHECK(a.fx.drops[0].why == drop_reason::duplicate);
    CHECK(a.m.ready_count() == 1);
    CHECK(b.m.ready_count() == 1);
    CHECK(a.m.node_of(10) == std::optional<uint64_t>{2});
    CHECK(b.m.node_of(20) == std::optional<uint64_t>{1});
  }
}

TEST_CASE("node machine: a second connection dialed by the same side keeps "
          "the older one; closing it frees the node for a new one") {
  test_node a{5, 9001};
  a.m.opened(1, true, "127.0.0.1:9002", t0);
  a.feed(1, node_frames::hello{9, 9002}, t0);
  a.m.opened(2, true, "localhost:9002", t0 + 1s);
  a.feed(2, node_frames::hello{9, 9002}, t0 + 1s);
  REQUIRE(a.fx.drops.size() == 1);
  CHECK(a.fx.drops[0].peer == 2);
  CHECK(a.fx.drops[0].why == drop_reason::duplicate);
  CHECK(a.m.closed(1));
  CHECK_FALSE(a.m.closed(1));
  a.m.opened(3, true, "127.0.0.1:9002", t0 + 2s);
  a.feed(3, node_frames::hello{9, 9002}, t0 + 2s);
  CHECK(a.fx.drops.size() == 1);
  CHECK(a.m.node_of(3) == std::optional<uint64_t>{9});
}

// -- attacks on the peer protocol ------------------------------------------------

namespace {

/// Counts the addresses sent to `peer` in addr frames, and forgets them.
size_t addresses_sent(test_node& n, uint64_t peer) {
  size_t count = 0;
  for (auto& f : n.fx.take(peer))
    if (auto a = std::get_if<node_frames::addr>(&f))
      count += a->addresses.size();
  return count;
}

/// `n` holds a ready inbound peer under `key` with node id `id`.
void make_ready(test_node& n, uint64_t key, uint64_t id, time_point now) {
  n.m.opened(key, false, "127.0.0.1:" + std::to_string(40000 + key), now);
  n.feed(key, node_frames::hello{id, static_cast<uint16_t>(10000 + key)}, now);
  n.fx.take(key);
}

struct limited_recorder : recorder {
  std::vector<std::pair<uint64_t, size_t>> limited;
  void gossip_limited(uint64_t peer, size_t count) override {
    limited.emplace_back(peer, count);
  }
};

} // namespace

TEST_CASE("node machine: a peer over the frame rate is dropped; one within "
          "it is not") {
  test_node n{1, 9001};
  make_ready(n, 1, 0x22, t0);
  make_ready(n, 2, 0x33, t0);
  auto& lim = n.m.config().limits;
  // Peer 2 sends pongs at the sustained rate for 20 s: never dropped.
  auto step = std::chrono::duration_cast<caf::timespan>(
    std::chrono::duration<double>(1.0 / lim.frames_per_second));
  auto now = t0;
  for (int i = 0; i < 20 * static_cast<int>(lim.frames_per_second); ++i) {
    now += step;
    n.feed(2, node_frames::pong{7}, now);
  }
  CHECK(n.fx.drops.empty());
  // Peer 1 sends its burst and one more at once.
  for (int i = 0; i <= static_cast<int>(lim.frame_burst); ++i)
    n.feed(1, node_frames::pong{7}, now);
  REQUIRE(n.fx.drops.size() == 1);
  CHECK(n.fx.drops[0].peer == 1);
  CHECK(n.fx.drops[0].why == drop_reason::frame_rate);
  CHECK(to_string(drop_reason::frame_rate) == "frame_rate");
  CHECK(n.m.node_of(2).has_value());
}

TEST_CASE("node machine: a ping flood is dropped after the ping burst; every "
          "ping before it is answered once") {
  test_node n{1, 9001};
  make_ready(n, 1, 0x22, t0);
  auto burst = static_cast<int>(n.m.config().limits.ping_burst);
  for (int i = 0; i < burst + 5; ++i)
    n.feed(1, node_frames::ping{static_cast<uint64_t>(i)}, t0);
  REQUIRE(n.fx.drops.size() == 1);
  CHECK(n.fx.drops[0].why == drop_reason::ping_rate);
  size_t pongs = 0;
  for (auto& f : n.fx.take(1))
    pongs += std::holds_alternative<node_frames::pong>(f) ? 1 : 0;
  CHECK(pongs == static_cast<size_t>(burst));
  // Pings at the allowed rate go on for ever.
  test_node m{1, 9001};
  make_ready(m, 1, 0x22, t0);
  auto every = std::chrono::duration_cast<caf::timespan>(
    std::chrono::duration<double>(1.0 / m.m.config().limits.pings_per_second));
  for (int i = 0; i < 1000; ++i)
    m.feed(1, node_frames::ping{1}, t0 + every * i);
  CHECK(m.fx.drops.empty());
}

TEST_CASE("node machine: gossiped addresses beyond the address rate are "
          "ignored and reported") {
  limited_recorder fx;
  node_machine m{node_machine_config{1, 9001, 10s, 30s, {}, 0}, fx};
  m.opened(1, false, "127.0.0.1:40001", t0);
  auto hello = bytes_of(node_frames::hello{0x22, 9002});
  m.received(1, hello.data(), hello.size(), t0);
  auto frame_of = [](int base) {
    node_frames::addr a;
    for (int i = 0; i < 1000; ++i)
      a.addresses.push_back(addr("10." + std::to_string(base) + "."
                                 + std::to_string(i / 250) + "."
                                 + std::to_string(i % 250 + 1) + ":8333"));
    return bytes_of(a);
  };
  // The burst passes whole.
  auto first = frame_of(1);
  m.received(1, first.data(), first.size(), t0);
  REQUIRE(fx.learnt.size() == 1);
  CHECK(fx.learnt[0].second.size() == 1000);
  CHECK(fx.limited.empty());
  // A second frame a second later: nothing passes.
  auto second = frame_of(2);
  m.received(1, second.data(), second.size(), t0 + 1s);
  CHECK(fx.learnt.size() == 1);
  REQUIRE(fx.limited.size() == 1);
  CHECK(fx.limited[0] == std::pair<uint64_t, size_t>{1, 1000});
  // 100 s on, 10 more (0.1 per second).
  auto third = frame_of(3);
  m.received(1, third.data(), third.size(), t0 + 101s);
  REQUIRE(fx.learnt.size() == 2);
  CHECK(fx.learnt[1].second.size() == 10);
  CHECK(fx.limited.back().second == 990);
  CHECK(fx.drops.empty());
}

TEST_CASE("node machine: an impostor claiming a connected node's id never "
          "displaces the established connection") {
  // Node 5 holds a connection to honest node H. An attacker copies H's id
  // and connects, in either direction and whatever the ids' order.
  for (uint64_t h : {uint64_t{3}, uint64_t{9}}) {
    for (bool honest_outbound : {true, false}) {
      CAPTURE(h);
      CAPTURE(honest_outbound);
      test_node a{5, 9001};
      a.m.opened(1, honest_outbound, "127.0.0.1:9002", t0);
      a.feed(1, node_frames::hello{h, 9002}, t0);
      REQUIRE(a.m.node_of(1) == std::optional<uint64_t>{h});
      a.fx.take(1);
      // A moment after the honest hello: no simultaneous open.
      a.m.opened(2, !honest_outbound, "127.0.0.66:40000", t0 + 1ms);
      a.feed(2, node_frames::hello{h, 9002}, t0 + 1ms);
      REQUIRE(a.fx.drops.size() == 1);
      CHECK(a.fx.drops[0].peer == 2);
      CHECK(a.fx.drops[0].why == drop_reason::duplicate);
      CHECK(a.m.node_of(1) == std::optional<uint64_t>{h});
      // Nothing was sent on the honest connection because of it.
      CHECK(a.fx.take(1).empty());
    }
  }
}

TEST_CASE("node machine: a newcomer's address is relayed to at most two "
          "ready peers, whatever their number") {
  test_node seed{0x10, 9000};
  for (uint64_t k = 1; k <= 50; ++k)
    make_ready(seed, k, 0x100 + k, t0);
  // Each newcomer went to 2 of the peers before it (the second to 1).
  size_t total = 0;
  for (uint64_t k = 1; k <= 50; ++k)
    total += addresses_sent(seed, k);
  CHECK(total == 1 + 48 * 2);
  seed.m.opened(51, false, "127.0.0.1:40051", t0);
  seed.feed(51, node_frames::hello{0x200, 10051}, t0);
  size_t relayed = 0;
  for (uint64_t k = 1; k <= 50; ++k)
    relayed += addresses_sent(seed, k);
  CHECK(relayed == 2);
  // The newcomer itself still learns up to max_addresses peers at once.
  CHECK(addresses_sent(seed, 51) == 50);
}

TEST_CASE("node machine: a peer sending addr frames beyond their limit is "
          "dropped, however few frames it sends in all") {
  test_node n{1, 9001};
  make_ready(n, 1, 0x22, t0);
  make_ready(n, 2, 0x33, t0);
  auto& lim = n.m.config().limits;
  CHECK(lim.addr_frames_per_second < lim.frames_per_second);
  // Peer 2 relays one newcomer a second for a minute: never dropped.
  for (int i = 0; i < 60; ++i)
    n.feed(2,
           node_frames::addr{{addr("127.0.0.9:" + std::to_string(9000 + i))}},
           t0 + std::chrono::seconds{i});
  CHECK(n.fx.drops.empty());
  // Peer 1 sends 50 addr frames a second, far below the frame limit.
  auto step = std::chrono::milliseconds{20};
  auto now = t0;
  for (int i = 0; i < 1000 && n.fx.drops.empty(); ++i) {
    now += step;
    n.feed(1, node_frames::addr{{addr("127.0.0.8:9000")}}, now);
  }
  REQUIRE(n.fx.drops.size() == 1);
  CHECK(n.fx.drops[0].peer == 1);
  CHECK(n.fx.drops[0].why == drop_reason::addr_rate);
  CHECK(to_string(drop_reason::addr_rate) == "addr_rate");
  CHECK(n.m.node_of(2).has_value());
}

TEST_CASE("node machine: a peer the relays missed learns of a newcomer by "
          "asking, and getaddrs are answered at most once per half "
          "interval") {
  test_node seed{0x10, 9000};
  for (uint64_t k = 1; k <= 10; ++k)
    make_ready(seed, k, 0x100 + k, t0);
  for (uint64_t k = 1; k <= 10; ++k)
    seed.fx.take(k);
  make_ready(seed, 11, 0x200, t0);
  // The relay reached 2 of the 10; pick one it missed.
  uint64_t missed = 0;
  for (uint64_t k = 1; k <= 10; ++k)
    if (addresses_sent(seed, k) == 0)
      missed = k;
  REQUIRE(missed != 0);
  auto newcomer = addr("127.0.0.1:10011");
  auto answer_to = [&](time_point now) {
    seed.feed(missed, node_frames::getaddr{}, now);
    std::optional<std::set<net_address>> told;
    for (auto& f : seed.fx.take(missed))
      if (auto a = std::get_if<node_frames::addr>(&f))
        told.emplace(a->addresses.begin(), a->addresses.end());
    return told;
  };
  auto told = answer_to(t0 + 1s);
  REQUIRE(told);
  CHECK(told->size() == 10); // every ready peer but the asker
  CHECK(told->count(newcomer) == 1);
  CHECK(told->count(addr("127.0.0.1:" + std::to_string(10000 + missed))) == 0);
  auto half = seed.m.config().limits.address_request_interval / 2;
  CHECK_FALSE(answer_to(t0 + 1s + half - 1ms)); // too soon: ignored
  CHECK(answer_to(t0 + 1s + half));
  CHECK(seed.fx.drops.empty());
}

TEST_CASE("node machine: a node out of addresses asks each ready peer at "
          "most once per interval, and never one still in its handshake") {
  test_node n{1, 9001};
  make_ready(n, 1, 0x22, t0);
  make_ready(n, 2, 0x33, t0);
  n.m.opened(3, true, "127.0.0.1:7003", t0); // no hello yet
  n.fx.take(3);
  auto getaddrs_to = [&](uint64_t peer) {
    size_t count = 0;
    for (auto& f : n.fx.take(peer))
      count += std::holds_alternative<node_frames::getaddr>(f) ? 1 : 0;
    return count;
  };
  auto every = n.m.config().limits.address_request_interval;
  CHECK(n.m.request_addresses(t0) == 2);
  CHECK(getaddrs_to(1) == 1);
  CHECK(getaddrs_to(2) == 1);
  CHECK(getaddrs_to(3) == 0);
  CHECK(n.m.request_addresses(t0 + every - 1ms) == 0);
  CHECK(getaddrs_to(1) == 0);
  CHECK(n.m.request_addresses(t0 + every) == 2);
  CHECK(getaddrs_to(1) == 1);
}
