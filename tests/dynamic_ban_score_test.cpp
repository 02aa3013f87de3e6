// The ban score's decay, lifetime, saturation and locking, on simulated time:
// every time point is t0 plus an offset, so no test waits for a real clock.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "connmgr/actors/dynamic_ban_score.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t max_u32 = std::numeric_limits<uint32_t>::max();

// An arbitrary, non-zero start that is not a whole number of seconds, so the
// tests also cover elapsed times measured from the middle of a second.
const dynamic_ban_score::time_point t0 =
  dynamic_ban_score::time_point{} + 1000000s + 123ms;

constexpr int thread_count = 4;
constexpr int increases_per_thread = 10000;

/// `thread_count` threads at once, each increasing `score` by `persistent`
/// and `transient` `increases_per_thread` times (all at t0): no increase
/// may get lost between them.
void increase_from_threads(dynamic_ban_score& score, uint32_t persistent,
                           uint32_t transient) {
  std::vector<std::thread> threads;
  for (int i = 0; i < thread_count; ++i)
    threads.emplace_back([&score, persistent, transient] {
      for (int j = 0; j < increases_per_thread; ++j)
        score.increase(persistent, transient, t0);
    });
  for (auto& th : threads)
    th.join();
}

/// A score raised once at t0 by persistent 100 and transient 50: value 150,
/// then 125 after one half-life of the transient part.
struct score_of_150 {
  dynamic_ban_score score;
  score_of_150() {
    score.increase(100, 50, t0);
  }
};

} // namespace

TEST_CASE("ban score: a new score is zero") {
  dynamic_ban_score score;
  CHECK(score.value(t0) == 0);
  CHECK(score.value(t0 + 3600s) == 0);
}

TEST_CASE("ban score: an increase returns persistent plus transient") {
  dynamic_ban_score score;
  CHECK(score.increase(100, 50, t0) == 150);
  CHECK(score.value(t0) == 150);
}

TEST_CASE_FIXTURE(score_of_150,
                  "ban score: transient part halves every 60 seconds") {
  CHECK(score.value(t0 + 60s) == 125);
  CHECK(score.value(t0 + 120s) == 112);
  CHECK(score.value(t0 + 180s) == 106);
}

TEST_CASE_FIXTURE(
  score_of_150,
  "ban score: after seven minutes only the persistent part is left") {
  CHECK(score.value(t0 + 7min) == 100);
}

TEST_CASE_FIXTURE(score_of_150,
                  "ban score: reading the value does not change it") {
  CHECK(score.value(t0 + 60s) == 125);
  CHECK(score.value(t0 + 60s) == 125);
  CHECK(score.value(t0) == 150);
}

TEST_CASE("ban score: transient part is forgotten after the 1800 s lifetime") {
  dynamic_ban_score score;
  score.increase(0, max_u32, t0);
  // (2^32 - 1) / 2^30 is just under 4.
  CHECK(score.value(t0 + 1800s) == 3);
  CHECK(score.value(t0 + 1801s) == 0);
}

TEST_CASE("ban score: partial seconds are not counted") {
  dynamic_ban_score score;
  score.increase(0, 1000, t0);
  CHECK(score.value(t0 + 999ms) == 1000);
  // 59.9 s counts as 59 s: 1000 * 2^(-59/60) is about 505.8.
  CHECK(score.value(t0 + 59900ms) == 505);
  CHECK(score.value(t0 + 60s) == 500);
}

TEST_CASE("ban score: decay survives updates more often than once a second") {
  dynamic_ban_score score;
  score.increase(0, 1000, t0);
  for (auto offset = 400ms; offset <= 60s; offset += 400ms)
    score.increase(0, 0, t0 + offset);
  // 60 steps of 1 s each may round a hair below 500; without carrying the
  // partial seconds over there would be no decay at all.
  auto v = score.value(t0 + 60s);
  CHECK(v >= 499);
  CHECK(v <= 500);
}

TEST_CASE("ban score: a new increase adds to the decayed transient part") {
  dynamic_ban_score score;
  score.increase(10, 100, t0);
  // 10 + 100 / 2 + 20 + 40
  CHECK(score.increase(20, 40, t0 + 60s) == 120);
  // 30 + 90 / 2
  CHECK(score.value(t0 + 120s) == 75);
}

TEST_CASE("ban score: an increase after the lifetime starts a fresh "
          "transient part") {
  dynamic_ban_score score;
  score.increase(0, 1000, t0);
  CHECK(score.increase(0, 10, t0 + 1801s) == 10);
  CHECK(score.value(t0 + 1861s) == 5);
}

TEST_CASE("ban score: a time point before the last update sees no decay") {
  dynamic_ban_score score;
  score.increase(0, 100, t0 + 60s);
  CHECK(score.value(t0) == 100);
  // An out-of-order increase must not pull the last update back, or the
  // interval up to the later update would be decayed twice.
  CHECK(score.increase(0, 100, t0) == 200);
  CHECK(score.value(t0 + 120s) == 100);
}

TEST_CASE_FIXTURE(score_of_150, "ban score: reset clears both parts") {
  score.reset();
  CHECK(score.value(t0) == 0);
  CHECK(score.value(t0 + 60s) == 0);
  CHECK(score.increase(1, 2, t0 + 60s) == 3);
}

TEST_CASE("ban score: the largest increase saturates instead of wrapping") {
  dynamic_ban_score score;
  CHECK(score.increase(max_u32, max_u32, t0) == max_u32);
  CHECK(score.value(t0) == max_u32);
  for (int i = 0; i < 10; ++i)
    CHECK(score.increase(max_u32, max_u32, t0 + std::chrono::seconds{i})
          == max_u32);
  // The persistent part alone is already at the ceiling.
  CHECK(score.value(t0 + 1h) == max_u32);
}

TEST_CASE("ban score: the persistent part saturates across many increases") {
  dynamic_ban_score score;
  score.increase(max_u32 - 5, 0, t0);
  CHECK(score.increase(3, 0, t0) == max_u32 - 2);
  CHECK(score.increase(3, 0, t0) == max_u32);
  CHECK(score.increase(1, 0, t0) == max_u32);
  CHECK(score.value(t0 + 1h) == max_u32);
}

TEST_CASE("ban score: persistent plus transient saturates") {
  dynamic_ban_score score;
  score.increase(max_u32 - 10, 0, t0);
  CHECK(score.increase(0, 100, t0) == max_u32);
  // Once the transient part has gone, the persistent part shows again.
  CHECK(score.value(t0 + 1801s) == max_u32 - 10);
}

TEST_CASE("ban score: a transient part above the ceiling keeps decaying") {
  dynamic_ban_score score;
  score.increase(0, max_u32, t0);
  score.increase(0, max_u32, t0);
  score.increase(0, max_u32, t0);
  score.increase(0, max_u32, t0);
  CHECK(score.value(t0) == max_u32);
  // 4 * (2^32 - 1) / 4 after two half-lives.
  CHECK(score.value(t0 + 120s) == max_u32);
  // Halved once more: 2^31 - 1 after truncation.
  CHECK(score.value(t0 + 180s) == max_u32 / 2);
}

TEST_CASE("ban score: concurrent increases from several threads all count") {
  dynamic_ban_score score;
  increase_from_threads(score, 1, 0);
  CHECK(score.value(t0) == thread_count * increases_per_thread);
  CHECK(score.value(t0 + 1h) == thread_count * increases_per_thread);
}

TEST_CASE("ban score: concurrent transient increases all count") {
  dynamic_ban_score score;
  increase_from_threads(score, 1, 1);
  CHECK(score.value(t0) == 2 * thread_count * increases_per_thread);
  CHECK(score.value(t0 + 60s)
        == thread_count * increases_per_thread
          + thread_count * increases_per_thread / 2);
}

TEST_CASE_FIXTURE(score_of_150,
                  "ban score: to_string shows both parts and the value") {
  auto str = score.to_string(t0 + 60s);
  CHECK(str.find("persistent 100") != std::string::npos);
  CHECK(str.find("transient 25") != std::string::npos);
  CHECK(str.find("value 125") != std::string::npos);
  CHECK(score.to_string(t0).find("value 150") != std::string::npos);
}

TEST_CASE("ban score: to_string does not deadlock while another thread "
          "increases") {
  constexpr int increases = 10000;
  dynamic_ban_score score;
  std::atomic<bool> done{false};
  std::thread writer{[&] {
    for (int i = 0; i < increases; ++i)
      score.increase(1, 0, t0);
    done = true;
  }};
  std::string last;
  // At least one call even if the writer finishes first.
  do
    last = score.to_string(t0);
  while (!done);
  writer.join();
  CHECK(last.find("value") != std::string::npos);
  CHECK(score.to_string(t0).find("value " + std::to_string(increases))
        != std::string::npos);
}
