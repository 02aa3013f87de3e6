// A peer that closes or resets an established connection, on simulated
// time: in-memory connections report it through connection::peer_gone, as
// the reactor does for real sockets.

#include <doctest/doctest.h>

#include "connmgr/actors/conn_handler_internal.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

namespace {

caf::error peer_closed() {
  return make_error(errc::connection_closed, "peer closed the connection");
}

} // namespace

TEST_CASE_FIXTURE(sim_fixture,
                  "peer gone: a permanent peer that hangs up is redialed "
                  "with backoff") {
  auto id = connect_one_permanent(100ms);
  auto t0 = now();
  log->connected[0].conn->peer_gone(peer_closed());
  run();
  REQUIRE(log->disconnected.size() == 1);
  CHECK(log->disconnected[0].request.id == id);
  CHECK(log->disconnected[0].request.state == conn_state::pending);
  CHECK(describe(log->disconnected[0].reason).find("peer closed")
        != std::string::npos);
  CHECK(log->connected[0].conn->closed());
  REQUIRE(log->retries.size() == 1);
  CHECK(log->retries[0].delay == 100ms);
  advance(100ms);
  REQUIRE(log->connected.size() == 2);
  CHECK(log->connected[1].request.id == id);
  CHECK(net->dials().back().at - t0 == 100ms);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "peer gone: automatic peers that hang up at once are "
                  "throttled like failed dials") {
  auto s = automatic_setup(1);
  s.config.max_failed_attempts = 3;
  one_group_per_address(s.config);
  s.config.retry_duration = 100ms;
  spawn(s);
  start();
  // Every connection is dropped by its peer as soon as it is delivered.
  size_t handled = 0;
  auto drop_new = [&] {
    for (; handled < log->connected.size(); ++handled)
      log->connected[handled].conn->peer_gone(peer_closed());
    run();
  };
  for (int i = 0; i < 10; ++i)
    drop_new();
  // The first connection and two quick replacements, then the throttle.
  CHECK(net->dial_count() == 3);
  advance(100ms);
  drop_new();
  CHECK(net->dial_count() == 4);
  CHECK(stats().throttled >= 1);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "peer gone: a user's own disconnects never throttle") {
  auto s = automatic_setup(1);
  s.config.max_failed_attempts = 3;
  one_group_per_address(s.config);
  spawn(s);
  start();
  for (int i = 0; i < 10; ++i) {
    REQUIRE(log->connected.size() == static_cast<size_t>(i + 1));
    disconnect(log->connected.back().request.id);
  }
  CHECK(net->dial_count() == 11);
  CHECK(stats().throttled == 0);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "peer gone: a report about an older connection of a "
                  "redialed request is ignored") {
  auto id = connect_one_permanent(10ms);
  auto first = log->connected[0].conn;
  disconnect(id);
  advance(10ms);
  REQUIRE(log->connected.size() == 2);
  // A late report naming the first connection must not touch the second.
  // A stale report, as only the reactor could send it.
  caf::anon_send(caf::actor_cast<conn_handler_internal_actor>(handler),
                 peer_gone_atom::value, id, first, peer_closed());
  run();
  CHECK(log->disconnected.size() == 1);
  CHECK(request_of(id).state == conn_state::established);
  CHECK(!log->connected[1].conn->closed());
}

TEST_CASE_FIXTURE(sim_fixture,
                  "peer gone: an inbound peer that goes away frees its slot") {
  auto record = std::make_shared<fake_acceptor_record>();
  auto acceptor = spawn_fake_acceptor(sys, record);
  auto s = setup();
  s.config.max_inbound = 1;
  s.listeners.push_back(acceptor);
  spawn(s);
  start();
  auto first = make_memory_connection("127.0.0.1:40001");
  caf::anon_send(acceptor, inject_atom::value, first);
  run();
  REQUIRE(log->accepted.size() == 1);
  CHECK(stats().inbound_live == 1);
  first->peer_gone(peer_closed());
  run();
  CHECK(first->closed());
  CHECK(stats().inbound_live == 0);
  caf::anon_send(acceptor, inject_atom::value,
                 make_memory_connection("127.0.0.1:40002"));
  run();
  CHECK(log->accepted.size() == 2);
  CHECK(log->rejected.empty());
}
