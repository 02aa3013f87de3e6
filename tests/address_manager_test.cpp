// The address manager on plain code and hand-made instants: the ordinary
// book-keeping, then the attacker's moves (gossip floods from one source,
// connected attacker addresses, outbound selection) on many simulated
// addresses and sources.
//
// Over 500 lines: the ordinary book-keeping and each attack are scenarios
// on the same simulated book.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "connmgr/actors/address_manager.hpp"
#include "connmgr/messages/error_code.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = address_manager::time_point;

/// An arbitrary fixed instant to count from.
const time_point t0 = time_point{} + 1000h;

net_address addr(const std::string& text) {
  auto result = net_address::parse(text);
  REQUIRE_MESSAGE(result, text);
  return *result;
}

/// The IPv4 address a.b.c.d:8333.
net_address ip4(unsigned a, unsigned b, unsigned c, unsigned d,
                uint16_t port = 8333) {
  return addr(fmt::format("{}.{}.{}.{}:{}", a, b, c, d, port));
}

/// The i-th address of a simulated honest network (i < 10 000): one address
/// in each of many /16s (20.0/16, 20.1/16, ..., 59.15/16), so every address
/// is its own group with the default bits.
net_address honest(unsigned i) {
  REQUIRE(i < 10000);
  return ip4(20 + i / 256, i % 256, 0, 1);
}

/// A gossiping peer (the source of an entry), in its own /16.
std::optional<net_address> peer(unsigned i) {
  return ip4(150 + i / 256, i % 256, 0, 1);
}

address_manager_config small_config() {
  address_manager_config cfg;
  cfg.backoff_base = 10s;
  cfg.backoff_cap = 40s;
  cfg.seed = 7;
  return cfg;
}

/// The table shape of an address manager: buckets, slots per bucket and
/// buckets one group may use, of the new table and of the tried table.
struct tables {
  size_t new_count, new_size, new_per_source_group;
  size_t tried_count, tried_size, tried_per_group;
};

/// small_config() with tables shaped as `t`.
address_manager_config shaped(const tables& t) {
  auto cfg = small_config();
  cfg.new_bucket_count = t.new_count;
  cfg.new_bucket_size = t.new_size;
  cfg.new_buckets_per_source_group = t.new_per_source_group;
  cfg.tried_bucket_count = t.tried_count;
  cfg.tried_bucket_size = t.tried_size;
  cfg.tried_buckets_per_group = t.tried_per_group;
  return cfg;
}

/// One bucket of one slot per table: every address collides.
address_manager_config one_slot_config() {
  return shaped({1, 1, 1, 1, 1, 1});
}

std::map<net_address, managed_address> by_address(const address_manager& m) {
  std::map<net_address, managed_address> result;
  for (auto& x : m.snapshot())
    result.emplace(x.address, x);
  return result;
}

/// Takes until nothing is left; returns what it gave, in order.
std::vector<net_address> drain(address_manager& m, time_point now) {
  std::vector<net_address> result;
  for (;;) {
    auto got = m.take(now);
    if (!got) {
      CHECK(errc_of(got.error()) == errc::no_address);
      return result;
    }
    result.push_back(*got);
  }
}

} // namespace

// -- configuration -------------------------------------------------------------

TEST_CASE("address manager: config validation names the bad field") {
  CHECK(!validate(address_manager_config{}));
  struct bad_case {
    void (*apply)(address_manager_config&);
    const char* says;
  };
  std::vector<bad_case> cases{
    {[](auto& c) { c.new_bucket_count = 0; }, "new_bucket_count = 0"},
    {[](auto& c) { c.new_bucket_size = 0; }, "new_bucket_size = 0"},
    {[](auto& c) { c.new_bucket_size = size_t{1} << 20; },
     "new_bucket_size = 1048576, expected 1..65536"},
    {[](auto& c) { c.new_buckets_per_source_group = 0; },
     "new_buckets_per_source_group = 0"},
    {[](auto& c) { c.new_buckets_per_source_group = 257; },
     "new_buckets_per_source_group = 257, expected 1..256"},
    {[](auto& c) { c.tried_bucket_count = 0; }, "tried_bucket_count = 0"},
    {[](auto& c) { c.tried_bucket_size = 0; }, "tried_bucket_size = 0"},
    {[](auto& c) { c.tried_buckets_per_group = 65; },
     "tried_buckets_per_group = 65, expected 1..64"},
    {[](auto& c) { c.netgroup_bits_ipv4 = 0; },
     "netgroup_bits_ipv4 = 0, expected 1..32"},
    {[](auto& c) { c.netgroup_bits_ipv4 = 33; }, "netgroup_bits_ipv4 = 33"},
    {[](auto& c) { c.netgroup_bits_ipv6 = 129; },
     "netgroup_bits_ipv6 = 129, expected 1..128"},
    {[](auto& c) { c.backoff_base = caf::timespan{0}; }, "backoff_base = "},
    {[](auto& c) { c.backoff_cap = 1s; }, "backoff_cap = "},
    {[](auto& c) { c.max_failures = 0; }, "max_failures = 0"},
    {[](auto& c) { c.max_failures_never_connected = 11; },
     "max_failures_never_connected = 11, expected 1..10"},
    {[](auto& c) { c.horizon = caf::timespan{0}; }, "horizon = "},
    {[](auto& c) { c.tried_replace_failures = 0; },
     "tried_replace_failures = 0"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.says);
    address_manager_config cfg;
    c.apply(cfg);
    auto err = validate(cfg);
    REQUIRE(err);
    CHECK(errc_of(err) == errc::invalid_config);
    CHECK(describe(err).find(c.says) != std::string::npos);
  }
}

TEST_CASE("address manager: out-of-range values are clamped, not trusted") {
  address_manager_config cfg;
  cfg.new_bucket_count = 0;
  cfg.new_buckets_per_source_group = 99;
  cfg.tried_bucket_size = 0;
  cfg.netgroup_bits_ipv4 = 0;
  cfg.backoff_cap = caf::timespan{0};
  address_manager m{cfg};
  CHECK(m.config().new_bucket_count == 1);
  CHECK(m.config().new_buckets_per_source_group == 1);
  CHECK(m.config().tried_bucket_size == 1);
  CHECK(m.config().netgroup_bits_ipv4 == 1);
  CHECK(m.config().backoff_cap == m.config().backoff_base);
  CHECK(!validate(m.config()));
  CHECK(m.add(honest(1), std::nullopt, t0) == add_result::added);
  CHECK(m.take(t0));
}

// -- book-keeping --------------------------------------------------------------

TEST_CASE("address manager: an empty manager answers no_address") {
  address_manager m{small_config()};
  auto got = m.take(t0);
  REQUIRE(!got);
  CHECK(errc_of(got.error()) == errc::no_address);
  CHECK(describe(got.error()).find("empty") != std::string::npos);
  CHECK(m.size() == 0);
  CHECK(m.snapshot().empty());
}

TEST_CASE("address manager: adding, knowing, removing") {
  address_manager m{small_config()};
  auto a = honest(1);
  CHECK(m.add(a, peer(1), t0) == add_result::added);
  CHECK(m.add(a, peer(2), t0 + 5s) == add_result::known);
  CHECK(m.add(a, std::nullopt, t0 + 3s) == add_result::known);
  CHECK(m.contains(a));
  CHECK(m.size() == 1);
  CHECK(m.new_size() == 1);
  CHECK(m.tried_size() == 0);
  auto s = by_address(m).at(a);
  CHECK(s.source == peer(1)); // the first source stays
  CHECK(s.added_at == t0);
  CHECK(s.last_seen == t0 + 5s); // refreshed, never moved back
  CHECK(s.group == m.group_of(a));
  CHECK(!s.tried);
  CHECK(m.stats().adds[static_cast<size_t>(add_result::added)] == 1);
  CHECK(m.stats().adds[static_cast<size_t>(add_result::known)] == 2);
  CHECK(m.remove(a));
  CHECK(!m.remove(a));
  CHECK(!m.contains(a));
  CHECK(m.size() == 0);
  CHECK(!m.take(t0));
  CHECK(std::string{to_string(add_result::slot_taken)} == "slot_taken");
}

TEST_CASE("address manager: an address is never handed out twice at once") {
  address_manager m{small_config()};
  // Fifty stored; where the hash puts two in one slot, the second is
  // refused and the next address tried instead.
  size_t stored = 0;
  for (unsigned i = 0; stored < 50; ++i) {
    auto r = m.add(honest(i), peer(i % 5), t0);
    REQUIRE((r == add_result::added || r == add_result::slot_taken));
    stored += r == add_result::added ? 1 : 0;
  }
  auto got = drain(m, t0);
  CHECK(got.size() == 50);
  CHECK(std::set<net_address>(got.begin(), got.end()).size() == 50);
  for (auto& a : got)
    CHECK(m.in_use(a));
  // Released addresses come back; others stay out.
  CHECK(m.release(got[3]));
  CHECK(!m.release(got[3]));
  auto again = drain(m, t0);
  REQUIRE(again.size() == 1);
  CHECK(again[0] == got[3]);
  // In use survives removal and re-learning.
  CHECK(m.remove(got[4]));
  CHECK(m.in_use(got[4]));
  CHECK(m.add(got[4], std::nullopt, t0) == add_result::added);
  CHECK(drain(m, t0).empty());
  CHECK(m.release(got[4]));
  CHECK(drain(m, t0) == std::vector<net_address>{got[4]});
  // A connection to an unknown address still counts as in use.
  auto stranger = honest(999);
  CHECK(!m.mark_connected(stranger, t0));
  CHECK(m.in_use(stranger));
  CHECK(m.add(stranger, std::nullopt, t0) == add_result::added);
  CHECK(drain(m, t0).empty());
}

TEST_CASE("address manager: backoff is per address, exponential and capped") {
  address_manager m{small_config()}; // base 10 s, cap 40 s
  CHECK(m.backoff(0) == caf::timespan{0});
  CHECK(m.backoff(1) == 10s);
  CHECK(m.backoff(2) == 20s);
  CHECK(m.backoff(3) == 40s);
  CHECK(m.backoff(4) == 40s);
  CHECK(m.backoff(UINT32_MAX) == 40s);
  auto a = honest(1);
  auto b = honest(2);
  REQUIRE(m.add(a, std::nullopt, t0) == add_result::added);
  REQUIRE(m.add(b, std::nullopt, t0) == add_result::added);
  auto now = t0;
  for (uint32_t n = 1; n <= 4; ++n) {
    CAPTURE(n);
    // Hand out both, fail a, release b.
    auto got = drain(m, now);
    REQUIRE(got.size() == 2);
    CHECK(m.mark_failed(a, now));
    CHECK(m.release(b));
    auto s = by_address(m).at(a);
    CHECK(s.failures == n);
    CHECK(s.retry_at == now + m.backoff(n));
    CHECK(by_address(m).at(b).failures == 0);
    // Only b until the backoff ends, a again from that instant on.
    auto end = now + m.backoff(n);
    CHECK(drain(m, end - 1ns) == std::vector<net_address>{b});
    auto err = m.take(end - 1ns);
    REQUIRE(!err);
    CHECK(describe(err.error()).find("1 backing off") != std::string::npos);
    CHECK(describe(err.error()).find("next in 1ns") != std::string::npos);
    CHECK(m.release(b));
    now = end;
  }
  // Success clears the failures.
  auto got = drain(m, now);
  REQUIRE(got.size() == 2);
  CHECK(m.mark_connected(a, now));
  CHECK(by_address(m).at(a).failures == 0);
  CHECK(!by_address(m).at(a).retry_at);
  CHECK(m.release(a));
  CHECK(drain(m, now) == std::vector<net_address>{a});
}

TEST_CASE("address manager: excluded addresses are never stored nor given") {
  address_manager m{small_config()};
  auto own = honest(1);
  auto other = honest(2);
  REQUIRE(m.add(own, std::nullopt, t0) == add_result::added);
  REQUIRE(m.add(other, std::nullopt, t0) == add_result::added);
  CHECK(m.exclude(own));
  CHECK(!m.exclude(own));
  CHECK(m.is_excluded(own));
  CHECK(!m.contains(own));
  CHECK(m.add(own, peer(1), t0) == add_result::excluded);
  CHECK(!m.contains(own));
  CHECK(drain(m, t0) == std::vector<net_address>{other});
  CHECK(!m.is_excluded(other));
}

TEST_CASE("address manager: determinism given the seed and the calls") {
  auto run = [](uint64_t seed) {
    auto cfg = small_config();
    cfg.seed = seed;
    address_manager m{cfg};
    std::vector<std::string> log;
    for (unsigned i = 0; i < 3000; ++i)
      m.add(honest(i % 700 * 13), peer(i % 40), t0);
    for (unsigned i = 0; i < 200; ++i) {
      auto got = m.take(t0 + 1s);
      if (!got)
        break;
      log.push_back(got->to_string());
      if (i % 3 == 0)
        m.mark_connected(*got, t0 + 2s);
      else if (i % 3 == 1)
        m.mark_failed(*got, t0 + 2s);
    }
    for (auto& s : m.snapshot())
      log.push_back(fmt::format("{} {} {} {}", s.address.to_string(), s.tried,
                                s.bucket, s.slot));
    return log;
  };
  auto a = run(1);
  CHECK(a.size() > 500);
  CHECK(run(1) == a);
  // Another seed is another key: other buckets, other choices.
  CHECK(run(2) != a);
}

// -- tables and collisions ---------------------------------------------------

TEST_CASE("address manager: a new-slot collision keeps a healthy occupant") {
  address_manager m{one_slot_config()};
  auto a = honest(1);
  auto b = honest(2);
  REQUIRE(m.add(a, peer(1), t0) == add_result::added);
  CHECK(m.add(b, peer(1), t0) == add_result::slot_taken);
  CHECK(m.contains(a));
  CHECK(!m.contains(b));
  // Two failures of a never-connected address: not yet terrible.
  for (int i = 0; i < 2; ++i) {
    REQUIRE(m.take(t0 + 1h * (i + 1)));
    m.mark_failed(a, t0 + 1h * (i + 1));
  }
  CHECK(m.add(b, peer(1), t0 + 3h) == add_result::slot_taken);
  // The third makes it terrible (max_failures_never_connected = 3).
  REQUIRE(m.take(t0 + 3h) == a);
  m.mark_failed(a, t0 + 3h);
  CHECK(m.add(b, peer(1), t0 + 3h) == add_result::replaced);
  CHECK(!m.contains(a));
  CHECK(m.contains(b));
  CHECK(m.size() == 1);
}

TEST_CASE("address manager: a sparse bucket keeps every address (peers on "
          "one host, or a user's short peer list)") {
  // Every address below shares a network group and a source, so all land in
  // one bucket; with 4 slots their hashed slots collide for most keys.
  auto cfg = small_config();
  cfg.new_bucket_count = 1;
  cfg.new_bucket_size = 4;
  cfg.new_buckets_per_source_group = 1;
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    CAPTURE(seed);
    cfg.seed = seed;
    address_manager m{cfg};
    for (uint16_t port = 1; port <= 4; ++port) {
      auto addr = *net_address::parse(fmt::format("127.0.0.1:{}", port));
      CHECK(m.add(addr, std::nullopt, t0) == add_result::added);
    }
    CHECK(m.size() == 4);
    // The bucket is full now: a fifth is refused, nobody is displaced.
    auto fifth = *net_address::parse("127.0.0.1:5");
    CHECK(m.add(fifth, std::nullopt, t0) == add_result::slot_taken);
    CHECK(m.size() == 4);
  }
}

TEST_CASE("address manager: stale and failing occupants are terrible") {
  auto cfg = one_slot_config();
  cfg.horizon = 24h;
  SUBCASE("not seen for longer than the horizon") {
    address_manager m{cfg};
    REQUIRE(m.add(honest(1), peer(1), t0) == add_result::added);
    CHECK(m.add(honest(2), peer(2), t0 + 24h) == add_result::slot_taken);
    // Learning it again refreshes it.
    CHECK(m.add(honest(1), peer(3), t0 + 20h) == add_result::known);
    CHECK(m.add(honest(2), peer(2), t0 + 44h) == add_result::slot_taken);
    CHECK(m.add(honest(2), peer(2), t0 + 44h + 1ns) == add_result::replaced);
    CHECK(!m.contains(honest(1)));
  }
  SUBCASE("an entry in use is never evicted, terrible or not") {
    address_manager m{cfg};
    REQUIRE(m.add(honest(1), peer(1), t0) == add_result::added);
    REQUIRE(m.take(t0) == honest(1));
    CHECK(m.add(honest(2), peer(2), t0 + 1000h) == add_result::slot_taken);
    CHECK(m.contains(honest(1)));
  }
  SUBCASE("a connected entry is terrible only at max_failures") {
    cfg.tried_bucket_count = 1; // tried is full, so it stays in new
    address_manager m{cfg};
    REQUIRE(m.add(honest(9), peer(9), t0) == add_result::added);
    REQUIRE(m.take(t0) == honest(9));
    REQUIRE(m.mark_connected(honest(9), t0));
    REQUIRE(m.add(honest(1), peer(1), t0) == add_result::added);
    REQUIRE(m.take(t0) == honest(1));
    REQUIRE(m.mark_connected(honest(1), t0));
    REQUIRE(!by_address(m).at(honest(1)).tried);
    auto now = t0;
    for (uint32_t n = 1; n <= 10; ++n) {
      m.mark_failed(honest(1), now);
      CHECK(m.add(honest(2), peer(2), now)
            == (n < 10 ? add_result::slot_taken : add_result::replaced));
      now += 1h;
      if (n < 10)
        REQUIRE(m.take(now) == honest(1));
    }
  }
}

TEST_CASE("address manager: mark_connected moves to tried; a healthy tried "
          "entry keeps its slot, a failing one goes back to new") {
  auto cfg = one_slot_config();
  cfg.new_bucket_size = 64; // room in new for both, one tried slot
  address_manager m{cfg};
  auto a = honest(1);
  auto b = honest(2);
  REQUIRE(m.add(a, peer(1), t0) == add_result::added);
  auto rb = m.add(b, peer(1), t0);
  if (rb == add_result::slot_taken) {
    b = honest(3); // another slot of the same bucket
    rb = m.add(b, peer(1), t0);
  }
  REQUIRE(rb == add_result::added);
  CHECK(m.mark_connected(a, t0));
  CHECK(by_address(m).at(a).tried);
  CHECK(m.tried_size() == 1);
  CHECK(m.stats().promoted == 1);
  CHECK(m.release(a));
  // b connects: a is healthy, so b stays in new (its success recorded).
  CHECK(m.mark_connected(b, t0));
  CHECK(!by_address(m).at(b).tried);
  CHECK(by_address(m).at(b).last_success == t0);
  CHECK(m.stats().tried_slot_kept == 1);
  CHECK(m.release(b));
  // a fails tried_replace_failures (3) times; then b's success takes the
  // slot and a goes back to new, still known.
  auto now = t0;
  for (int i = 0; i < 3; ++i) {
    now += 1h;
    while (true) {
      auto got = m.take(now);
      REQUIRE(got);
      if (*got == a)
        break;
      m.release(*got);
    }
    m.mark_failed(a, now);
  }
  CHECK(by_address(m).at(a).tried); // failing alone does not demote
  CHECK(m.mark_connected(b, now));
  CHECK(by_address(m).at(b).tried);
  REQUIRE(m.contains(a));
  CHECK(!by_address(m).at(a).tried);
  CHECK(by_address(m).at(a).failures == 3);
  CHECK(m.stats().demoted == 1);
  CHECK(m.tried_size() == 1);
  CHECK(m.size() == 2);
}

TEST_CASE("address manager: size never exceeds the tables' slots") {
  auto cfg = shaped({8, 4, 8, 2, 4, 2});
  address_manager m{cfg};
  for (unsigned i = 0; i < 5000; ++i) {
    m.add(honest(i), peer(i % 97), t0);
    if (i % 7 == 0)
      m.mark_connected(honest(i), t0);
    CHECK(m.size() <= 8 * 4 + 2 * 4);
    CHECK(m.tried_size() <= 2 * 4);
  }
  CHECK(m.size() == m.snapshot().size());
}

// -- selection -----------------------------------------------------------------

TEST_CASE("address manager: take mixes tried and new about half and half") {
  address_manager m{small_config()};
  // 20 tried entries, 500 new ones.
  for (unsigned i = 0; i < 520; ++i)
    REQUIRE(m.add(honest(i), peer(i % 50), t0) != add_result::excluded);
  size_t tried_wanted = 20;
  for (unsigned i = 0; tried_wanted > 0; ++i) {
    if (!m.contains(honest(i)))
      continue;
    m.mark_connected(honest(i), t0);
    m.release(honest(i));
    if (by_address(m).at(honest(i)).tried)
      --tried_wanted;
  }
  auto tried = m.tried_size();
  REQUIRE(tried >= 20);
  auto snap = by_address(m);
  size_t from_tried = 0;
  constexpr size_t rounds = 4000;
  for (size_t i = 0; i < rounds; ++i) {
    auto got = m.take(t0);
    REQUIRE(got);
    if (snap.at(*got).tried)
      ++from_tried;
    m.release(*got);
  }
  // Uniform over entries would give tried ~ 20/520 = 4 %.
  CHECK(from_tried > rounds * 45 / 100);
  CHECK(from_tried < rounds * 55 / 100);
}

TEST_CASE("address manager: take picks a group first, then an address") {
  auto cfg = small_config();
  address_manager m{cfg};
  // One /16 with 300 addresses (learnt from many sources so that they are
  // stored), and 30 /16s with one address each.
  size_t crowd = 0;
  for (unsigned i = 0; i < 300; ++i)
    if (m.add(ip4(99, 1, i / 200, i % 200 + 1), peer(i), t0)
        == add_result::added)
      ++crowd;
  REQUIRE(crowd > 100);
  size_t singles = 0;
  for (unsigned i = 0; i < 30; ++i)
    if (m.add(honest(i), peer(i), t0) == add_result::added)
      ++singles;
  REQUIRE(singles >= 25); // a few may collide with the crowd's slots
  auto crowd_group = m.group_of(ip4(99, 1, 0, 1));
  size_t hits = 0;
  constexpr size_t rounds = 3100;
  for (size_t i = 0; i < rounds; ++i) {
    auto got = m.take(t0);
    REQUIRE(got);
    if (m.group_of(*got) == crowd_group)
      ++hits;
    m.release(*got);
  }
  // 1 group in singles + 1: ~100 hits; uniform over addresses would give
  // ~2700.
  auto expected = rounds / (singles + 1);
  CHECK(hits > expected / 2);
  CHECK(hits < expected * 2);
}

TEST_CASE("address manager: take skips avoided groups, and says so when "
          "nothing else is left") {
  address_manager m{small_config()};
  auto a1 = ip4(30, 1, 0, 1);
  auto a2 = ip4(30, 1, 0, 2);
  auto b1 = ip4(30, 2, 0, 1);
  REQUIRE(m.add(a1, peer(1), t0) == add_result::added);
  REQUIRE(m.add(a2, peer(2), t0) == add_result::added);
  REQUIRE(m.add(b1, peer(3), t0) == add_result::added);
  std::vector<netgroup> avoid{m.group_of(a1)};
  // Unknown groups and repeats in `avoid` are harmless.
  avoid.push_back(m.group_of(ip4(77, 7, 0, 1)));
  avoid.push_back(m.group_of(a2));
  CHECK(m.take(t0, avoid) == b1);
  auto none = m.take(t0, avoid);
  REQUIRE(!none);
  CHECK(errc_of(none.error()) == errc::no_address);
  CHECK(describe(none.error()).find("2 in avoided network groups")
        != std::string::npos);
  CHECK(describe(none.error()).find("1 in use") != std::string::npos);
  auto got = m.take(t0);
  REQUIRE(got);
  CHECK(m.group_of(*got) == m.group_of(a1));
}

TEST_CASE("address manager: the same avoid list stays right while groups "
          "come and go") {
  address_manager m{small_config()};
  auto a = honest(1);
  auto c = honest(2);
  std::vector<netgroup> avoid{m.group_of(a)};
  REQUIRE(m.group_of(a) != m.group_of(c));
  REQUIRE(m.add(a, peer(1), t0) == add_result::added);
  CHECK(!m.take(t0, avoid));
  // a's group goes away and c's group is made in its place.
  REQUIRE(m.remove(a));
  REQUIRE(m.add(c, peer(1), t0) == add_result::added);
  CHECK(m.take(t0, avoid) == c);
  m.release(c);
  // And a's group comes back: avoided again.
  REQUIRE(m.remove(c));
  REQUIRE(m.add(a, peer(1), t0) == add_result::added);
  CHECK(!m.take(t0, avoid));
}

TEST_CASE("address manager: loopback tests can make every address a group") {
  auto cfg = small_config();
  cfg.netgroup_bits_ipv4 = 32;
  address_manager m{cfg};
  auto a = addr("127.0.0.1:9000");
  auto b = addr("127.0.0.2:9000");
  CHECK(m.group_of(a) != m.group_of(b));
  REQUIRE(m.add(a, std::nullopt, t0) == add_result::added);
  REQUIRE(m.add(b, std::nullopt, t0) == add_result::added);
  CHECK(m.take(t0, {m.group_of(a)}) == b);
  cfg.netgroup_bits_ipv4 = 24;
  address_manager n{cfg};
  CHECK(n.group_of(a) == n.group_of(b));
}

TEST_CASE("address manager: stored entries group as group_of says, IPv4-"
          "mapped IPv6 addresses with their IPv4 network") {
  for (uint32_t bits : {8u, 16u, 23u, 30u, 32u}) {
    CAPTURE(bits);
    auto cfg = small_config();
    cfg.netgroup_bits_ipv4 = bits;
    address_manager m{cfg};
    auto v4 = addr("10.20.30.40:8333");
    auto mapped = addr("[::ffff:10.20.30.41]:8333");
    auto v6 = addr("[2001:db8::1]:8333");
    auto name = addr("seed.example.org:8333");
    REQUIRE(m.add(v4, peer(1), t0) == add_result::added);
    REQUIRE(m.add(mapped, ip4(10, 20, 30, 99), t0) == add_result::added);
    REQUIRE(m.add(v6, addr("[::ffff:150.0.0.1]:8333"), t0)
            == add_result::added);
    REQUIRE(m.add(name, std::nullopt, t0) == add_result::added);
    for (auto& s : m.snapshot())
      CHECK(s.group == m.group_of(s.address));
    bool same = bits <= 30;
    CHECK((m.group_of(v4) == m.group_of(mapped)) == same);
    // Avoiding the IPv4 group avoids the mapped address exactly when they
    // share it.
    std::set<net_address> got;
    for (;;) {
      auto x = m.take(t0, {m.group_of(v4)});
      if (!x)
        break;
      got.insert(*x);
    }
    CHECK(got.count(v4) == 0);
    CHECK(got.count(mapped) == (same ? 0u : 1u));
    CHECK(got.count(v6) == 1);
    CHECK(got.count(name) == 1);
  }
}

// -- the attacker --------------------------------------------------------------

TEST_CASE("attack: one source gossiping 10 000 addresses reaches a bounded "
          "share of the new table") {
  address_manager_config cfg; // the defaults: 256 x 64, 16 per source group
  cfg.seed = 11;
  const size_t per_source = cfg.new_buckets_per_source_group;
  const auto attacker = ip4(66, 6, 6, 6);
  auto buckets_of = [&](const address_manager& m,
                        const std::optional<net_address>& source) {
    std::set<size_t> buckets;
    size_t stored = 0;
    for (auto& s : m.snapshot())
      if (s.source == source) {
        buckets.insert(s.bucket);
        ++stored;
      }
    return std::make_pair(buckets.size(), stored);
  };
  SUBCASE("addresses of the attacker's own four /16s") {
    address_manager m{cfg};
    for (unsigned i = 0; i < 10000; ++i)
      m.add(ip4(66, 6 + i % 4, i / 4 / 250, i / 4 % 250 + 1), attacker, t0);
    auto [buckets, stored] = buckets_of(m, attacker);
    // One bucket per (address group, source group): four.
    CHECK(buckets <= 4);
    CHECK(stored <= 4 * cfg.new_bucket_size);
  }
  SUBCASE("addresses spread over 10 000 /16s") {
    address_manager m{cfg};
    for (unsigned i = 0; i < 10000; ++i)
      m.add(honest(i), attacker, t0);
    auto [buckets, stored] = buckets_of(m, attacker);
    CHECK(buckets <= per_source);
    CHECK(stored <= per_source * cfg.new_bucket_size);
    // 1/16 of the new table at most, and it does reach that bound's order.
    CHECK(stored * 16 <= cfg.new_bucket_count * cfg.new_bucket_size);
    CHECK(stored > per_source * cfg.new_bucket_size / 2);
  }
  SUBCASE("sourceless entries share one bounded source group too") {
    address_manager m{cfg};
    for (unsigned i = 0; i < 10000; ++i)
      m.add(honest(i), std::nullopt, t0);
    auto [buckets, stored] = buckets_of(m, std::nullopt);
    CHECK(buckets <= per_source);
    CHECK(stored <= per_source * cfg.new_bucket_size);
  }
}

TEST_CASE("attack: gossip floods evict no honest entry, new or tried") {
  address_manager_config cfg;
  cfg.seed = 12;
  address_manager m{cfg};
  // Honest: 3000 addresses from 100 sources; 300 of them connected.
  std::vector<net_address> honest_new;
  std::vector<net_address> honest_tried;
  for (unsigned i = 0; i < 3000; ++i)
    m.add(honest(i), peer(i % 100), t0);
  for (unsigned i = 0; i < 3000; ++i) {
    if (!m.contains(honest(i)))
      continue;
    if (i % 10 == 0) {
      m.mark_connected(honest(i), t0);
      m.release(honest(i));
    }
  }
  for (auto& s : m.snapshot())
    (s.tried ? honest_tried : honest_new).push_back(s.address);
  REQUIRE(honest_tried.size() > 200);
  REQUIRE(honest_new.size() > 2000);
  // Attackers: 20 inbound peers in 20 /16s, each gossiping 5 000 addresses
  // spread over all of IPv4 (100 000 in all), a day later.
  for (unsigned src = 0; src < 20; ++src) {
    auto source = ip4(66, src, 0, 1);
    for (unsigned i = 0; i < 5000; ++i) {
      auto x = src * 5000 + i;
      m.add(ip4(100 + x % 100, x / 100 % 256, x / 25600, 7), source, t0 + 24h);
    }
  }
  auto snap = by_address(m);
  for (auto& a : honest_tried) {
    CAPTURE(a.to_string());
    REQUIRE(snap.count(a) == 1);
    CHECK(snap.at(a).tried);
  }
  for (auto& a : honest_new)
    CHECK(snap.count(a) == 1);
  CHECK(m.stats().adds[static_cast<size_t>(add_result::replaced)] == 0);
  CHECK(m.size() > honest_new.size() + honest_tried.size());
}

TEST_CASE("attack: connected attacker addresses displace no healthy tried "
          "entry and fill few tried buckets") {
  address_manager_config cfg;
  cfg.seed = 13;
  address_manager m{cfg};
  std::vector<net_address> honest_tried;
  for (unsigned i = 0; i < 1000; ++i) {
    if (m.add(honest(i), peer(i % 100), t0) != add_result::added)
      continue;
    m.mark_connected(honest(i), t0);
    m.release(honest(i));
  }
  for (auto& s : m.snapshot())
    if (s.tried)
      honest_tried.push_back(s.address);
  REQUIRE(honest_tried.size() > 800); // 1000 into 4096 slots: ~887
  // The attacker's 2 000 addresses in one /16, learnt from 100 sources
  // (so that many are stored), all of them answering our dials.
  const auto attacker_group = m.group_of(ip4(66, 6, 0, 1));
  for (unsigned i = 0; i < 2000; ++i) {
    auto a = ip4(66, 6, i / 250, i % 250 + 1);
    if (m.add(a, peer(200 + i % 100), t0 + 1h) != add_result::added)
      continue;
    m.mark_connected(a, t0 + 1h);
    m.release(a);
  }
  std::set<size_t> attacker_buckets;
  size_t attacker_tried = 0;
  auto snap = by_address(m);
  for (auto& [a, s] : snap)
    if (s.tried && s.group == attacker_group) {
      attacker_buckets.insert(s.bucket);
      ++attacker_tried;
    }
  CHECK(attacker_buckets.size() <= cfg.tried_buckets_per_group);
  CHECK(attacker_tried <= cfg.tried_buckets_per_group * cfg.tried_bucket_size);
  CHECK(attacker_tried > 0);
  for (auto& a : honest_tried)
    CHECK(snap.at(a).tried);
  CHECK(m.stats().demoted == 0);
}

TEST_CASE("attack: outbound selection with avoid never picks two addresses "
          "of one group, and the flooding peer gets few slots") {
  address_manager_config cfg;
  cfg.seed = 14;
  address_manager m{cfg};
  auto now = t0;
  // Honest: 2000 addresses from 200 sources over 1000 /16s; 100 connected.
  for (unsigned i = 0; i < 2000; ++i)
    m.add(ip4(20 + i % 1000 / 256, i % 1000 % 256, i / 1000, 1), peer(i % 200),
          now);
  size_t connected = 0;
  for (auto& s : m.snapshot()) {
    if (connected == 100)
      break;
    m.mark_connected(s.address, now);
    m.release(s.address);
    ++connected;
  }
  // The attacker: one inbound peer gossiping 10 000 addresses of its four
  // /16s, two of which we connected to once.
  const auto attacker = ip4(66, 9, 9, 9);
  std::set<netgroup> attacker_groups;
  for (unsigned i = 0; i < 10000; ++i) {
    auto a = ip4(66, 6 + i % 4, i / 4 / 250, i / 4 % 250 + 1);
    attacker_groups.insert(m.group_of(a));
    m.add(a, attacker, now);
  }
  size_t promoted = 0;
  for (auto& s : m.snapshot())
    if (promoted < 2 && attacker_groups.count(s.group) > 0) {
      m.mark_connected(s.address, now);
      m.release(s.address);
      ++promoted;
    }
  REQUIRE(promoted == 2);
  // 200 churns of 8 automatic outbound connections each.
  constexpr size_t outbound = 8;
  size_t attacker_picks = 0;
  size_t worst_churn = 0;
  for (size_t churn = 0; churn < 200; ++churn) {
    now += 1min;
    std::vector<net_address> taken;
    std::vector<netgroup> avoid;
    size_t mine = 0;
    for (size_t k = 0; k < outbound; ++k) {
      auto got = m.take(now, avoid);
      REQUIRE(got);
      auto g = m.group_of(*got);
      CHECK(std::find(avoid.begin(), avoid.end(), g) == avoid.end());
      avoid.push_back(g);
      taken.push_back(*got);
      if (attacker_groups.count(g) > 0)
        ++mine;
    }
    attacker_picks += mine;
    worst_churn = std::max(worst_churn, mine);
    for (auto& a : taken)
      m.release(a);
  }
  // Before: 4 of 4 outbound went to the attacker. Now at most one per
  // attacker group at once, and about 1 % of picks overall.
  MESSAGE("attacker picks: " << attacker_picks << " of " << 200 * outbound
                             << ", worst churn " << worst_churn);
  CHECK(worst_churn <= 2);
  CHECK(attacker_picks < 200 * outbound * 5 / 100);
}

TEST_CASE("attack: avoid has a bounded cost even when most groups are "
          "avoided") {
  address_manager m{small_config()};
  std::vector<netgroup> avoid;
  for (unsigned i = 0; i < 64; ++i) {
    REQUIRE(m.add(honest(i), peer(i), t0) == add_result::added);
    if (i != 41)
      avoid.push_back(m.group_of(honest(i)));
  }
  for (int round = 0; round < 100; ++round) {
    auto got = m.take(t0, avoid);
    REQUIRE(got);
    CHECK(*got == honest(41));
    m.release(*got);
  }
}
