// Model-based randomized test of `conn_machine`: drives the machine with
// seeded random inputs on a simulated clock, records every effect, keeps a
// reference model of what must be alive, and checks invariants after every
// single input. The model and its invariants live in conn_machine_model.hpp,
// shared with the libFuzzer target tests/fuzz/fuzz_conn_machine.cpp (which
// decodes the same operations from fuzz input bytes).

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/conn_machine_model.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace model = connmgr::model;

TEST_CASE("model: conn_machine under 1 000 000 random inputs") {
  constexpr uint64_t inputs_per_preset = 250'000;
  constexpr uint64_t inputs_per_drawn = 10'000;
  constexpr size_t drawn_configs = 16;
  const auto started = std::chrono::steady_clock::now();
  uint64_t total = 0;
  size_t failed_runs = 0;
  uint64_t seed = 0x5eed0001;
  auto one = [&](const model::named_config& nc, uint64_t inputs) {
    INFO("config " << nc.name << " seed " << seed);
    REQUIRE(!validate(nc.cfg));
    model::random_source src{seed++};
    model::model_run run{nc, src};
    auto failure = run.run(inputs);
    CHECK_MESSAGE(failure.empty(), failure);
    failed_runs += failure.empty() ? 0 : 1;
    CHECK(run.inputs() == inputs);
    total += run.inputs();
    return run.coverage();
  };
  // Hand-picked configurations, long runs.
  for (auto& nc : model::preset_configs()) {
    auto cov = one(nc, inputs_per_preset);
    MESSAGE("config " << nc.name << ": " << cov);
  }
  // Configurations drawn at random, shorter runs.
  model::random_source config_src{0xc0ff1600};
  for (size_t i = 0; i < drawn_configs; ++i)
    one(model::draw_config(config_src), inputs_per_drawn);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - started)
              .count();
  MESSAGE("model: " << total << " random operations on conn_machine in " << ms
                    << " ms, "
                    << (failed_runs == 0 ? std::string{"all invariants held"}
                                         : std::to_string(failed_runs)
                            + " run(s) broke an invariant"));
  CHECK(total >= 1'000'000);
}

// The fuzz target decodes its input with `byte_source`. A run recorded as
// bytes must replay to the very same run, and arbitrary bytes must drive the
// model to the end of the input without a violation.
TEST_CASE("model: byte-decoded operation sequences") {
  for (uint64_t seed = 1; seed <= 32; ++seed) {
    INFO("seed " << seed);
    model::recording_source rec{seed};
    auto nc = model::draw_config(rec);
    REQUIRE(!validate(nc.cfg));
    model::model_run recorded{nc, rec};
    auto failure = recorded.run(2000);
    CHECK_MESSAGE(failure.empty(), failure);
    auto bytes = rec.bytes();
    model::byte_source src{bytes.data(), bytes.size()};
    auto nc2 = model::draw_config(src);
    CHECK(nc2.name == nc.name);
    model::model_run replayed{nc2, src};
    failure = replayed.run(SIZE_MAX);
    CHECK_MESSAGE(failure.empty(), failure);
    CHECK(src.exhausted());
    CHECK(replayed.inputs() == recorded.inputs());
    CHECK(replayed.coverage() == recorded.coverage());
  }
  for (uint64_t seed = 1; seed <= 32; ++seed) {
    std::vector<uint8_t> bytes(3000);
    model::random_source gen{seed};
    for (auto& b : bytes)
      b = static_cast<uint8_t>(gen.pick(256));
    model::byte_source src{bytes.data(), bytes.size()};
    auto nc = model::draw_config(src);
    INFO("seed " << seed << " config " << nc.name);
    REQUIRE(!validate(nc.cfg));
    model::model_run run{nc, src};
    auto failure = run.run(SIZE_MAX);
    CHECK_MESSAGE(failure.empty(), failure);
    CHECK(src.exhausted());
    CHECK(run.inputs() > 0);
  }
}

// manager_config::max_failed_attempts / stable_connection_period promise that
// the failed-attempt count resets only "once a connection has lasted
// stable_connection_period without a new failure". Here the only connection
// since the first failure lasted 1 s (the user removed it), yet a failure
// 100 s later is counted as the first of a new run instead of the second.
TEST_CASE("model: a short user-closed connection does not reset the "
          "failed-attempt throttle") {
  manager_config cfg;
  cfg.target_outbound = 1;
  cfg.max_failed_attempts = 2;
  cfg.stable_connection_period = 60s;
  REQUIRE(!validate(cfg));
  model::log_effects fx;
  conn_machine m{cfg, true, fx};
  auto t0 = model::time_point{} + std::chrono::hours{1};
  auto last_fetch = [&] {
    REQUIRE(!fx.log.empty());
    REQUIRE(fx.log.back().kind == model::fx_kind::fetch);
    return fx.log.back().id;
  };
  m.start(t0);
  // Failure 1: the address source has nothing.
  m.address_ready(last_fetch(), make_error(errc::no_address), t0);
  CHECK(m.stats().failed_attempts == 1);
  // The replacement connects at once...
  auto b = last_fetch();
  m.address_ready(b, std::string{"10.0.0.1:8333"}, t0);
  REQUIRE(fx.log.back().kind == model::fx_kind::start_dial);
  m.dial_succeeded(b, fx.log.back().num, make_memory_connection("10.0.0.1"),
                   t0);
  REQUIRE(m.stats().outbound_established == 1);
  // ...and the user removes it after 1 s: not a failure, not stable either.
  m.disconnect(b, false, false, t0 + 1s);
  // Failure 2, long after: the second consecutive failure, so the
  // replacement must wait (be throttled) rather than fetch at once.
  m.address_ready(last_fetch(), make_error(errc::no_address), t0 + 100s);
  CHECK(m.stats().failed_attempts == 2);
  CHECK(m.stats().throttled == 1);
  CHECK(fx.log.back().kind == model::fx_kind::arm);
}
