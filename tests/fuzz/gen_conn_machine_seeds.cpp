// Writes the seed corpus of fuzz_conn_machine: recorded random runs of the
// conn_machine model (tests/conn_machine_model.hpp) as the bytes that make
// the fuzz target replay them exactly. Deterministic; each seed is checked
// (replayed through the model) before it is written.
//
// Usage: gen_conn_machine_seeds <dir>   (tests/fuzz/run does not call it; the
// output is committed under tests/fuzz/corpus/conn_machine/)

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tests/conn_machine_model.hpp"

namespace model = connmgr::model;

namespace {

struct seed_spec {
  const char* name;
  std::vector<uint64_t> config; // draw_config's picks; empty = random
  size_t inputs;
  std::vector<uint64_t> boost; // extra weight per op (x100 scale)
};

std::vector<uint64_t> boost(model::op o, uint64_t x) {
  std::vector<uint64_t> b(model::op_count, 0);
  b[static_cast<size_t>(o)] = x;
  return b;
}

std::vector<uint64_t> boost2(model::op o1, uint64_t x1, model::op o2,
                             uint64_t x2) {
  auto b = boost(o1, x1);
  b[static_cast<size_t>(o2)] = x2;
  return b;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <dir>\n", argv[0]);
    return 2;
  }
  std::string dir = argv[1];
  using model::op;
  // draw_config picks: target(0..5), slots{1,2,3,128}, inbound{none,0..3},
  // dup{reject,allow}, base{100ms,500ms,1s,3s}, cap x{1,4,10,60},
  // jitter{0,0,.5,1}, max_failed-1 (0..4), stable{0,1s,30s,60s},
  // source (0 = none).
  const std::vector<uint64_t> tight{4, 1, 4, 0, 2, 2, 0, 2, 2, 1};
  const std::vector<uint64_t> no_source{3, 2, 0, 1, 2, 2, 0, 4, 2, 0};
  const std::vector<uint64_t> one_slot{5, 0, 1, 0, 1, 2, 2, 0, 0, 1};
  const std::vector<uint64_t> wide{2, 3, 4, 1, 3, 3, 0, 4, 3, 1};
  const std::vector<uint64_t> manual_only{0, 1, 0, 0, 0, 1, 0, 0, 1, 1};
  const std::vector<uint64_t> jitter{5, 1, 2, 0, 0, 1, 3, 1, 1, 2};
  const std::vector<seed_spec> specs{
    {"tight_short", tight, 40, {}},
    {"tight_long", tight, 700, {}},
    {"no_source_short", no_source, 40, {}},
    {"no_source_long", no_source, 500, {}},
    {"one_slot_short", one_slot, 40, {}},
    {"one_slot_long", one_slot, 700, {}},
    {"wide_short", wide, 40, {}},
    {"wide_long", wide, 700, {}},
    {"manual_only", manual_only, 300, {}},
    {"jitter_retries", jitter, 500, boost(op::dial_failed, 1500)},
    {"tight_stop_late", tight, 400,
     boost2(op::stop, 60, op::late_dial_result, 800)},
    {"one_slot_stop", one_slot, 300, boost(op::stop, 100)},
    {"tight_peer_gone", tight, 500, boost(op::peer_gone, 1500)},
    {"wide_inbound", wide, 300,
     boost2(op::inbound, 1500, op::inbound_closed, 600)},
    {"tight_throttle", tight, 500,
     boost2(op::dial_failed, 2000, op::address_ready, 800)},
    {"wide_clock", wide, 400,
     boost2(op::advance_clock, 1500, op::disconnect, 600)},
    {"random_1", {}, 300, {}},
    {"random_2", {}, 300, {}},
    {"random_3", {}, 300, {}},
    {"random_4", {}, 300, {}},
    {"random_5", {}, 150, boost(op::stop, 50)},
    {"random_6", {}, 150, boost(op::remove, 1000)},
  };
  uint64_t seed = 0xf022;
  int status = 0;
  auto write = [&](const std::string& name, const std::vector<uint8_t>& b) {
    std::ofstream out{dir + "/" + name, std::ios::binary | std::ios::trunc};
    out.write(reinterpret_cast<const char*>(b.data()),
              static_cast<std::streamsize>(b.size()));
    if (!out.good()) {
      std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
      status = 1;
    }
  };
  for (auto& spec : specs) {
    model::recording_source rec{seed++};
    rec.script(spec.config);
    rec.boost(spec.boost);
    auto nc = model::draw_config(rec);
    model::model_run run{nc, rec};
    auto failure = run.run(spec.inputs);
    if (!failure.empty()) {
      std::fprintf(stderr, "%s: %s\n", spec.name, failure.c_str());
      status = 1;
      continue;
    }
    // Replay to make sure the bytes mean the same run.
    auto bytes = rec.bytes();
    model::byte_source src{bytes.data(), bytes.size()};
    auto nc2 = model::draw_config(src);
    model::model_run replay{nc2, src};
    failure = replay.run(SIZE_MAX);
    if (!failure.empty() || replay.coverage() != run.coverage()) {
      std::fprintf(stderr, "%s: replay differs: %s\n", spec.name,
                   failure.c_str());
      status = 1;
      continue;
    }
    std::printf("%-18s %5zu bytes  %s\n  %s\n", spec.name, bytes.size(),
                nc.name.c_str(), run.coverage().c_str());
    write(spec.name, bytes);
  }
  // Edge cases: nothing at all, a configuration without operations.
  write("empty", {});
  write("config_only", {4, 1, 4, 0, 2, 2, 0, 2, 2, 1});
  return status;
}
