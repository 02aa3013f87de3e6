// Fuzzes conn_machine against the reference model of
// tests/conn_machine_model.hpp (the one the doctest model test runs 1 000 000
// random operations through).
//
// Input: the first bytes pick the configuration (`model::draw_config`: target,
// dial slots, inbound limit, duplicate policy, retry base and cap, jitter,
// throttle, stable period, address source; one byte each), the rest is the
// operation sequence (`model::byte_source`): one byte chooses the operation
// among those that make sense in the model's current state (connect,
// disconnect, remove, address/dial results in any order, late and repeated
// results, peer_gone, timers, clock steps, inbound, stop, ...), the next
// bytes its arguments. After every operation the model checks every
// invariant; a violation prints "FUZZ PROPERTY VIOLATED conn_machine model:"
// with the config, the step, the operation and the effects, and aborts.
//
// CONNMGR_FUZZ_STRICT_STOP=1 also demands a terminal event at stop for every
// live request that is not established (see run_options::strict_stop).

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "fuzz_check.hpp"
#include "tests/conn_machine_model.hpp"

using namespace connmgr;
namespace model = connmgr::model;

namespace {

bool strict_stop() {
  static const bool value = [] {
    auto x = std::getenv("CONNMGR_FUZZ_STRICT_STOP");
    return x != nullptr && std::strcmp(x, "1") == 0;
  }();
  return value;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  model::byte_source src{data, size};
  auto nc = model::draw_config(src);
  FUZZ_CHECK(!validate(nc.cfg));
  model::run_options opts;
  opts.strict_stop = strict_stop();
  model::model_run run{nc, src, opts};
  auto failure = run.run(SIZE_MAX);
  if (!failure.empty()) {
    std::fprintf(stderr, "FUZZ PROPERTY VIOLATED conn_machine model: %s\n",
                 failure.c_str());
    std::abort();
  }
  FUZZ_CHECK(src.exhausted());
  return 0;
}
