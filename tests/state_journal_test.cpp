// The journal of unwritten state changes, on plain values and hand-made
// instants: the last change to a key wins, a batch holds each key once,
// writes come at the interval or once max_pending keys wait, and a churning
// peer cannot grow a batch beyond the keys it touches.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "connmgr/actors/state_journal.hpp"
#include "tests/support/temp_dir.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = state_journal::time_point;

const time_point t0 = time_point{} + 1000h;

stored_address addr(const std::string& text, uint32_t failures = 0) {
  stored_address a;
  a.address = text;
  a.failures = failures;
  return a;
}

} // namespace

TEST_CASE("state journal: the last change to each key wins, once per "
          "batch") {
  state_journal j{10s, 1000};
  j.put(addr("10.0.0.1:1", 1));
  j.put(addr("10.0.0.1:1", 2));
  j.put(addr("10.0.0.2:1"));
  j.erase_address("10.0.0.2:1");
  j.erase_address("10.0.0.3:1");
  j.put(addr("10.0.0.3:1", 7));
  j.put(stored_ban{"10.9.0.0/16", 5, "first"});
  j.erase_ban("10.9.0.0/16");
  j.put(stored_ban{"10.8.0.0/16", 6, "kept"});
  j.set_anchors({"10.0.0.5:1"});
  j.set_anchors({"10.0.0.6:1", "10.0.0.7:1"});
  CHECK(j.pending() == 6);
  auto c = j.take(t0);
  REQUIRE(c.put_addresses.size() == 2);
  CHECK(c.put_addresses[0].address == "10.0.0.1:1");
  CHECK(c.put_addresses[0].failures == 2);
  CHECK(c.put_addresses[1].address == "10.0.0.3:1");
  CHECK(c.put_addresses[1].failures == 7);
  CHECK(c.erase_addresses == std::vector<std::string>{"10.0.0.2:1"});
  REQUIRE(c.put_bans.size() == 1);
  CHECK(c.put_bans[0].reason == "kept");
  CHECK(c.erase_bans == std::vector<std::string>{"10.9.0.0/16"});
  CHECK(c.anchors == std::vector<std::string>{"10.0.0.6:1", "10.0.0.7:1"});
  CHECK(j.pending() == 0);
  CHECK(j.take(t0).empty());
}

TEST_CASE("state journal: writes are due at the interval, and only when "
          "something waits") {
  state_journal j{10s, 1000};
  CHECK_FALSE(j.flush_due(t0));
  CHECK_FALSE(j.next_flush());
  j.take(t0);
  j.put(addr("10.0.0.1:1"));
  CHECK(j.next_flush() == t0 + 10s);
  CHECK_FALSE(j.flush_due(t0 + 9s));
  CHECK(j.flush_due(t0 + 10s));
  j.take(t0 + 10s);
  CHECK_FALSE(j.flush_due(t0 + 30s));
  // A change after a quiet spell is due at once: its interval has passed.
  j.put(addr("10.0.0.2:1"));
  CHECK(j.flush_due(t0 + 30s));
}

TEST_CASE("state journal: max_pending keys make a write due before the "
          "interval, and a churning peer stays within the keys it "
          "touches") {
  state_journal j{1h, 100};
  j.take(t0);
  for (int i = 0; i < 99; ++i)
    j.put(addr("10.0.0." + std::to_string(i) + ":1"));
  CHECK_FALSE(j.flush_due(t0 + 1s));
  j.put(stored_ban{"10.1.0.0/16", 1, "x"});
  CHECK(j.flush_due(t0 + 1s));
  j.take(t0 + 1s);
  // A million failures of the same ten addresses: ten keys wait.
  for (int i = 0; i < 1'000'000; ++i)
    j.put(addr("10.0.1." + std::to_string(i % 10) + ":1",
               static_cast<uint32_t>(i)));
  CHECK(j.pending() == 10);
  CHECK_FALSE(j.flush_due(t0 + 2s));
}

TEST_CASE("state journal: a batch applied to the state file leaves what "
          "the changes say") {
  test::temp_dir dir{"connmgr-journal"};
  auto opened = state_db::open(dir.path("state.db"));
  REQUIRE(opened);
  auto& db = opened->db;
  state_journal j{1s, 1000};
  j.put(addr("10.0.0.1:1", 3));
  j.put(addr("10.0.0.2:1"));
  j.put(stored_ban{"10.9.0.0/16", 5, "operator"});
  REQUIRE_FALSE(db.apply(j.take(t0)));
  j.erase_address("10.0.0.2:1");
  j.put(addr("10.0.0.1:1", 4));
  j.erase_ban("10.9.0.0/16");
  REQUIRE_FALSE(db.apply(j.take(t0 + 1s)));
  auto snap = db.load();
  REQUIRE(snap);
  REQUIRE(snap->addresses.size() == 1);
  CHECK(snap->addresses[0].address == "10.0.0.1:1");
  CHECK(snap->addresses[0].failures == 4);
  CHECK(snap->bans.empty());
}
