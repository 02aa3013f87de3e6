// The state writer with its real thread and a real file: submitters never
// wait on the disk, batches queued behind a slow write merge into one, the
// last change to a key wins, every callback hears its outcome once, and
// stop writes what waits.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "connmgr/actors/state_writer.hpp"
#include "connmgr/messages/error_code.hpp"
#include "tests/support/temp_dir.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// Generous: these run on a loaded 2-core machine.
constexpr auto bound = 10s;

state_changes one(const std::string& address, uint32_t failures) {
  state_changes c;
  stored_address a;
  a.address = address;
  a.failures = failures;
  c.put_addresses.push_back(a);
  return c;
}

state_db open_db(const std::string& path) {
  auto r = state_db::open(path);
  REQUIRE_MESSAGE(r, describe(r.error()));
  return std::move(r->db);
}

state_snapshot load(const std::string& path) {
  auto db = open_db(path);
  auto snap = db.load();
  REQUIRE(snap);
  return std::move(*snap);
}

/// A callback that holds the writer's thread until `release`.
struct gate {
  std::promise<void> entered;
  std::promise<void> opened;
  std::shared_future<void> open_future{opened.get_future().share()};

  state_writer::callback hold() {
    return [this](const caf::error&) {
      entered.set_value();
      open_future.wait();
    };
  }
  bool released = false;
  void release() {
    if (!released)
      opened.set_value();
    released = true;
  }
};

/// A writer on a fresh file, its thread held inside the callback of a first
/// batch (10.0.0.1:1 with 1 failure) until `g.release()`.
struct held_writer {
  test::temp_dir dir{"connmgr-writer"};
  std::string path = dir.path("state.db");
  gate g;
  state_writer w{open_db(path)};

  held_writer() {
    w.submit(one("10.0.0.1:1", 1), g.hold());
    REQUIRE(g.entered.get_future().wait_for(bound)
            == std::future_status::ready);
  }

  // Also when a check failed while held: the writer's stop must not wait
  // for ever.
  ~held_writer() {
    g.release();
    w.stop();
  }
};

} // namespace

TEST_CASE("state writer: a submitted batch is committed, its callback "
          "hears so, and it is in the file after stop") {
  test::temp_dir dir{"connmgr-writer"};
  auto path = dir.path("state.db");
  state_writer w{open_db(path)};
  std::promise<caf::error> outcome;
  w.submit(one("10.0.0.1:1", 3),
           [&](const caf::error& err) { outcome.set_value(err); });
  auto f = outcome.get_future();
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  CHECK_FALSE(f.get());
  CHECK_FALSE(w.stop());
  CHECK(w.commits() == 1);
  auto snap = load(path);
  REQUIRE(snap.addresses.size() == 1);
  CHECK(snap.addresses[0].failures == 3);
}

TEST_CASE_FIXTURE(held_writer,
                  "state writer: batches queued behind a slow write merge "
                  "into one write, the last change winning, without blocking "
                  "submitters") {
  // The writer's thread is held: these must return without it.
  std::atomic<int> heard{0};
  auto submits = std::async(std::launch::async, [&] {
    for (uint32_t i = 2; i <= 1000; ++i)
      w.submit(one("10.0.0.1:1", i), [&](const caf::error& err) {
        CHECK_FALSE(err);
        ++heard;
      });
    w.submit(one("10.0.0.2:1", 7));
  });
  REQUIRE(submits.wait_for(bound) == std::future_status::ready);
  CHECK(heard == 0);
  g.release();
  CHECK_FALSE(w.stop());
  CHECK(heard == 999);
  // The first batch, then everything that queued behind it, as one.
  CHECK(w.commits() == 2);
  auto snap = load(path);
  REQUIRE(snap.addresses.size() == 2);
  CHECK(snap.addresses[0].failures == 1000);
  CHECK(snap.addresses[1].failures == 7);
}

TEST_CASE_FIXTURE(held_writer,
                  "state writer: stop writes what waits; later "
                  "submits hear stopped at once") {
  w.submit(one("10.0.0.3:1", 5));
  auto stopping = std::async(std::launch::async, [&] { return w.stop(); });
  g.release();
  REQUIRE(stopping.wait_for(bound) == std::future_status::ready);
  CHECK_FALSE(stopping.get());
  caf::error late;
  bool called = false;
  w.submit(one("10.0.0.4:1", 1), [&](const caf::error& err) {
    late = err;
    called = true;
  });
  REQUIRE(called);
  CHECK(errc_of(late) == errc::stopped);
  auto snap = load(path);
  REQUIRE(snap.addresses.size() == 2);
  CHECK(snap.addresses[1].address == "10.0.0.3:1");
}
