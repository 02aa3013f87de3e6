// The plain C++ facade on a real, multi-threaded actor system.

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/fake_acceptor.hpp"
#include "connmgr/actors/fake_dialer.hpp"
#include "connmgr/actors/manager.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/connection.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// Counts callbacks and lets a test block until a condition holds (bounded).
struct callback_probe {
  std::mutex mtx;
  std::condition_variable cv;
  size_t connections = 0;
  size_t failures = 0;
  std::vector<conn_request> connected;
  std::atomic<bool> stopped{false};
  std::atomic<size_t> after_stop{0};

  manager_callbacks callbacks() {
    manager_callbacks cb;
    cb.on_connection = [this](const conn_request& req, connection_ptr) {
      if (stopped)
        ++after_stop;
      std::lock_guard<std::mutex> guard{mtx};
      ++connections;
      connected.push_back(req);
      cv.notify_all();
    };
    cb.on_failure = [this](const conn_request&, const caf::error&) {
      if (stopped)
        ++after_stop;
      std::lock_guard<std::mutex> guard{mtx};
      ++failures;
      cv.notify_all();
    };
    return cb;
  }

  template <class Predicate>
  bool await(Predicate pred) {
    std::unique_lock<std::mutex> guard{mtx};
    // Generous bound: a loaded 2-core machine must still pass.
    return cv.wait_for(guard, 30s, [&] { return pred(*this); });
  }
};

struct threaded_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::shared_ptr<fake_network> net = std::make_shared<fake_network>();
  fake_dialer_actor dialer;

  threaded_fixture() : sys(init(cfg)), dialer(spawn_fake_dialer(sys, net)) {
    // nop
  }

  static caf::actor_system_config& init(caf::actor_system_config& cfg) {
    add_error_category(cfg);
    return cfg;
  }

  ~threaded_fixture() {
    caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  }

  handler_setup setup(uint32_t target) {
    handler_setup s;
    s.dialer = dialer;
    s.config.target_outbound = target;
    auto n = std::make_shared<std::atomic<int>>(0);
    s.get_address = [n]() -> caf::expected<std::string> {
      return "127.2.0." + std::to_string(++*n) + ":8333";
    };
    return s;
  }
};

} // namespace

TEST_CASE_FIXTURE(threaded_fixture,
                  "manager: reaches its target and stops cleanly from several "
                  "threads at once") {
  callback_probe probe;
  auto mgr = manager::make(sys, setup(3), probe.callbacks());
  REQUIRE(mgr);
  mgr->start();
  REQUIRE(probe.await([](auto& p) { return p.connections == 3; }));
  auto st = mgr->stats();
  CHECK(st.outbound_established == 3);
  CHECK(mgr->requests().size() == 3);
  auto open = mgr->peers();
  REQUIRE(open.size() == 3);
  for (auto& p : open)
    CHECK(p.kind == peer_class::automatic);
  auto id = mgr->connect("127.0.0.1:18333", true);
  REQUIRE(id);
  REQUIRE(probe.await([](auto& p) { return p.connections == 4; }));
  {
    std::lock_guard<std::mutex> guard{probe.mtx};
    CHECK(probe.connected.back().id == *id);
    CHECK(probe.connected.back().permanent);
  }
  // stop and wait from three threads, twice each; each gets the final
  // counters.
  std::vector<std::thread> threads;
  std::vector<conn_stats> finals(3);
  for (size_t i = 0; i < 3; ++i)
    threads.emplace_back([&, i] {
      mgr->stop().wait();
      finals[i] = mgr->stop().get();
      mgr->wait();
    });
  for (auto& t : threads)
    t.join();
  probe.stopped = true;
  for (auto& final_stats : finals) {
    CHECK(final_stats.requests_created == 4);
    CHECK(final_stats.outbound_established == 0);
  }
  // After stop nothing happens; a connect says why, queries answer with
  // the final state: no request, the final counters.
  auto late = mgr->connect("127.0.0.1:18334", true);
  REQUIRE(!late);
  CHECK(errc_of(late.error()) == errc::stopped);
  mgr->disconnect(*id);
  mgr->remove(*id);
  mgr->start();
  CHECK(mgr->requests().empty());
  CHECK(mgr->peers().empty());
  CHECK(mgr->stats() == finals[0]);
  CHECK(probe.after_stop == 0);
  CHECK(net->dial_count() == 4);
}

TEST_CASE_FIXTURE(
  threaded_fixture,
  "manager: refuses a missing dialer and a foreign event sink") {
  handler_setup no_dialer;
  auto m1 = manager::make(sys, no_dialer, {});
  REQUIRE(!m1);
  CHECK(errc_of(m1.error()) == errc::invalid_config);
  CHECK(describe(m1.error()).find("dialer") != std::string::npos);
  auto s = setup(1);
  s.events = caf::actor_cast<conn_events_actor>(dialer);
  auto m2 = manager::make(sys, s, {});
  REQUIRE(!m2);
  CHECK(describe(m2.error()).find("events") != std::string::npos);
}

TEST_CASE_FIXTURE(threaded_fixture,
                  "manager: a refused connect returns its error and reaches "
                  "on_failure with its id") {
  callback_probe probe;
  std::mutex mtx;
  std::vector<std::pair<uint64_t, errc>> refusals;
  auto cb = probe.callbacks();
  cb.on_failure = [&](const conn_request& req, const caf::error& err) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      refusals.emplace_back(req.id, errc_of(err));
    }
    std::lock_guard<std::mutex> guard{probe.mtx};
    ++probe.failures;
    probe.cv.notify_all();
  };
  auto mgr = manager::make(sys, setup(0), cb);
  REQUIRE(mgr);
  auto first = mgr->connect("127.0.0.1:18333", true);
  REQUIRE(first);
  auto second = mgr->connect("127.0.0.1:18333", true);
  REQUIRE(!second);
  CHECK(errc_of(second.error()) == errc::duplicate_address);
  auto third = mgr->connect("", false);
  REQUIRE(!third);
  CHECK(errc_of(third.error()) == errc::invalid_address);
  REQUIRE(probe.await([](auto& p) { return p.failures == 2; }));
  std::lock_guard<std::mutex> guard{mtx};
  CHECK(refusals[0].second == errc::duplicate_address);
  CHECK(refusals[1].second == errc::invalid_address);
  CHECK(refusals[0].first != *first);
  CHECK(refusals[1].first != refusals[0].first);
}

TEST_CASE_FIXTURE(threaded_fixture,
                  "manager: destroying a running manager stops it") {
  callback_probe probe;
  {
    auto mgr = manager::make(sys, setup(2), probe.callbacks());
    REQUIRE(mgr);
    mgr->start();
    REQUIRE(probe.await([](auto& p) { return p.connections == 2; }));
  }
  probe.stopped = true;
  CHECK(probe.after_stop == 0);
}

TEST_CASE_FIXTURE(threaded_fixture,
                  "manager: stop completes in 200 start-stop cycles in a row") {
  // Stress for a race found in the demo: the event bridge, once held only by
  // the handler, could die with it before seeing it go, and stop hung about
  // one run in twenty. It depends on thread timing, so this repeats stop
  // rather than pinning one interleaving.
  for (int i = 0; i < 200; ++i) {
    callback_probe probe;
    auto s = setup(2);
    s.listeners.push_back(
      spawn_fake_acceptor(sys, std::make_shared<fake_acceptor_record>()));
    auto mgr = manager::make(sys, s, probe.callbacks());
    REQUIRE(mgr);
    mgr->start();
    REQUIRE(probe.await([](auto& p) { return p.connections == 2; }));
    auto done = mgr->stop();
    REQUIRE(done.wait_for(30s) == std::future_status::ready);
  }
}

TEST_CASE_FIXTURE(threaded_fixture,
                  "manager: inbound_ready for the slot of on_inbound keeps a "
                  "peer from eviction as a slow handshake") {
  // One pending slot: each newcomer evicts the oldest connection that has
  // not been reported ready. A (reported ready) must survive; B (not
  // reported) makes room for C.
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<std::pair<uint64_t, connection_ptr>> inbound;
  manager_callbacks cb;
  cb.on_inbound = [&](uint32_t, uint64_t slot, connection_ptr c) {
    std::lock_guard<std::mutex> guard{mtx};
    inbound.emplace_back(slot, std::move(c));
    cv.notify_all();
  };
  auto await_inbound = [&](size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, 30s, [&] { return inbound.size() == n; });
  };
  auto acceptor =
    spawn_fake_acceptor(sys, std::make_shared<fake_acceptor_record>());
  auto s = setup(0);
  s.listeners.push_back(acceptor);
  s.config.max_pending_inbound = 1;
  auto mgr = manager::make(sys, s, cb);
  REQUIRE(mgr);
  mgr->start();
  auto a = make_memory_connection("127.3.0.1:18333");
  auto b = make_memory_connection("127.3.0.2:18333");
  auto c = make_memory_connection("127.3.0.3:18333");
  caf::anon_send(acceptor, inject_atom::value, a);
  REQUIRE(await_inbound(1));
  uint64_t slot_a = 0;
  {
    std::lock_guard<std::mutex> guard{mtx};
    slot_a = inbound[0].first;
  }
  CHECK(slot_a != 0);
  // Enqueued at the handler before B's arrival can be.
  mgr->inbound_ready(slot_a);
  caf::anon_send(acceptor, inject_atom::value, b);
  REQUIRE(await_inbound(2));
  caf::anon_send(acceptor, inject_atom::value, c);
  REQUIRE(await_inbound(3));
  auto st = mgr->stats();
  CHECK(st.inbound_accepted == 3);
  CHECK(st.inbound_evicted == 1);
  CHECK(!a->closed());
  CHECK(b->closed());
  CHECK(!c->closed());
  {
    std::lock_guard<std::mutex> guard{mtx};
    CHECK(inbound[1].first != slot_a);
    CHECK(inbound[2].first != inbound[1].first);
  }
  mgr->stop().wait();
}

TEST_CASE_FIXTURE(threaded_fixture,
                  "manager: ban closes a peer inside the subnet, bans lists "
                  "it and unban lifts it") {
  callback_probe probe;
  auto cb = probe.callbacks();
  std::vector<caf::error> disconnects;
  std::vector<std::string> banned;
  cb.on_disconnection = [&](const conn_request&, const caf::error& reason) {
    std::lock_guard<std::mutex> guard{probe.mtx};
    disconnects.push_back(reason);
    probe.cv.notify_all();
  };
  cb.on_ban = [&](const std::string& subnet, const std::string&, caf::timespan,
                  uint64_t peer) {
    std::lock_guard<std::mutex> guard{probe.mtx};
    banned.push_back(subnet + " by " + std::to_string(peer));
    probe.cv.notify_all();
  };
  auto mgr = manager::make(sys, setup(0), cb);
  REQUIRE(mgr);
  mgr->start();
  REQUIRE(mgr->connect("10.0.0.1:8333", false));
  REQUIRE(probe.await([](auto& p) { return p.connections == 1; }));
  auto closed = mgr->ban("10.0.0.0/8", 1h, "test");
  REQUIRE(closed);
  CHECK(*closed == 1);
  REQUIRE(probe.await([&](auto&) { return !disconnects.empty(); }));
  CHECK(errc_of(disconnects[0]) == errc::banned);
  REQUIRE(probe.await([&](auto&) { return !banned.empty(); }));
  CHECK(banned[0] == "10.0.0.0/8 by 0");
  auto listed = mgr->bans();
  REQUIRE(listed.size() == 1);
  CHECK(listed[0].subnet == "10.0.0.0/8");
  CHECK(listed[0].reason == "test");
  CHECK(listed[0].remaining > 59min);
  auto refused = mgr->connect("10.0.0.1:8333", false);
  REQUIRE_FALSE(refused);
  CHECK(errc_of(refused.error()) == errc::banned);
  CHECK_FALSE(mgr->unban("10.0.0.0/8"));
  CHECK(errc_of(mgr->unban("10.0.0.0/8")) == errc::not_found);
  CHECK(mgr->bans().empty());
  CHECK(mgr->connect("10.0.0.1:8333", false));
  mgr->stop().wait();
  auto late = mgr->ban("10.0.0.0/8", 1h, "late");
  REQUIRE_FALSE(late);
  CHECK(errc_of(late.error()) == errc::stopped);
  CHECK(mgr->bans().empty());
}
