// The handler's state machine at the pending cap: a slot whose connection
// the user closed already (its close report still on the way) is released,
// not evicted, so `evicted` only ever names a connection that was open.

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/net/connection.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// Records inbound decisions; nothing else happens in these tests.
struct inbound_recorder : conn_effects {
  std::vector<uint64_t> accepted_slots;
  std::vector<uint64_t> evicted_slots;
  size_t rejections = 0;

  void start_dial(uint64_t, uint64_t, const std::string&) override {}
  void cancel_dial(uint64_t, uint64_t) override {}
  void fetch_address(uint64_t) override {}
  void arm_timer(uint64_t, time_point) override {}
  void connected(const conn_request&, const connection_ptr&) override {}
  void disconnected(const conn_request&, const caf::error&) override {}
  void failed(const conn_request&, const caf::error&) override {}
  void retry_scheduled(const conn_request&, caf::timespan) override {}
  void accepted(uint32_t, uint64_t slot, const connection_ptr&) override {
    accepted_slots.push_back(slot);
  }
  void rejected(uint32_t, const connection_ptr&, const caf::error&,
                const std::string&) override {
    ++rejections;
  }
  void evicted(uint64_t slot, const std::string&, const caf::error&,
               const std::string&) override {
    evicted_slots.push_back(slot);
  }
};

manager_config pending_cap(uint32_t n) {
  manager_config cfg;
  cfg.target_outbound = 0;
  cfg.max_inbound = 100;
  cfg.max_inbound_per_ip.reset();
  cfg.inbound_rate_per_ip.reset();
  cfg.max_pending_inbound = n;
  return cfg;
}

const conn_machine::time_point t0 = conn_machine::time_point{} + 1000s;

} // namespace

TEST_CASE("conn_machine: at the pending cap a slot whose connection is "
          "closed already is released, not evicted") {
  inbound_recorder fx;
  conn_machine m{pending_cap(3), false, fx};
  m.start(t0);
  std::vector<connection_ptr> conns;
  for (int i = 0; i < 3; ++i) {
    conns.push_back(
      make_memory_connection("10.0.0." + std::to_string(i + 1) + ":1000"));
    m.inbound(0, conns.back(), t0 + i * 1s);
  }
  REQUIRE(fx.accepted_slots.size() == 3);
  // The user closes the oldest; its inbound_closed has not arrived yet.
  conns[0]->close();
  auto newcomer = make_memory_connection("10.0.1.1:1000");
  m.inbound(0, newcomer, t0 + 5s);
  CHECK(fx.accepted_slots.size() == 4);
  CHECK(fx.evicted_slots.empty());
  CHECK(m.stats().inbound_evicted == 0);
  CHECK(m.stats().inbound_live == 3);
  CHECK_FALSE(conns[1]->closed());
  // The late report changes nothing.
  m.inbound_closed(fx.accepted_slots[0]);
  CHECK(m.stats().inbound_live == 3);
  // With every pending connection open, the oldest one is evicted as before.
  auto late = make_memory_connection("10.0.2.1:1000");
  m.inbound(0, late, t0 + 6s);
  REQUIRE(fx.evicted_slots.size() == 1);
  CHECK(fx.evicted_slots[0] == fx.accepted_slots[1]);
  CHECK(conns[1]->closed());
  CHECK(m.stats().inbound_evicted == 1);
  // A dropped connection (no handle left) counts as closed too.
  conns[2].reset();
  auto last = make_memory_connection("10.0.3.1:1000");
  m.inbound(0, last, t0 + 7s);
  CHECK(fx.evicted_slots.size() == 1);
  CHECK(fx.rejections == 0);
}
