// What an embedder sees of the handler: exits of linked actors, and the
// answers to requests about ids it does not know. On simulated time.

#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "connmgr/actors/fake_acceptor.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/peer_info.hpp"
#include "tests/support/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

namespace {

struct api_fixture : sim_fixture {
  api_fixture() {
    auto s = setup();
    spawn(s);
    start();
  }

  /// Spawns an actor linked to the handler that exits with `reason`.
  void linked_actor_exits(caf::exit_reason reason) {
    auto h = caf::actor_cast<caf::actor>(handler);
    sys.spawn([h, reason](caf::event_based_actor* self) {
      self->link_to(h);
      self->quit(reason);
    });
    run();
  }
};

} // namespace

TEST_CASE_FIXTURE(api_fixture,
                  "handler api: a linked actor that exits normally leaves the "
                  "handler running, as CAF's own default does") {
  auto id = connect("127.0.0.1:18333", true);
  linked_actor_exits(caf::exit_reason::normal);
  CHECK(log->stopped.empty());
  CHECK(request_of(id).state == conn_state::established);
  CHECK(stats().outbound_established == 1);
}

TEST_CASE_FIXTURE(
  api_fixture,
  "handler api: a linked actor that exits with any other reason "
  "stops the handler gracefully") {
  connect("127.0.0.1:18333", true);
  linked_actor_exits(caf::exit_reason::user_shutdown);
  CHECK(log->stopped.size() == 1);
  handler = nullptr;
}

TEST_CASE_FIXTURE(api_fixture,
                  "handler api: disconnect and remove of an unknown id answer "
                  "unknown_request and change nothing") {
  auto id = connect("127.0.0.1:18333", true);
  auto unknown = id + 1000;
  auto err = refusal(disconnect_atom::value, unknown, false);
  CHECK(err == errc::unknown_request);
  err = refusal(remove_atom::value, unknown);
  CHECK(err == errc::unknown_request);
  // A known id is answered without error.
  CHECK_FALSE(refusal(disconnect_atom::value, id, false));
  CHECK(log->failed.empty());
  CHECK(stats().requests_created == 1);
}

namespace {

/// What a typed events actor saw: every event by kind, and who sent each.
struct typed_events_seen {
  int connected = 0;
  int stopped = 0;
  int other = 0;
  std::vector<caf::actor_addr> senders;
};

conn_events_actor::behavior_type
typed_receiver(conn_events_actor::pointer self,
               std::shared_ptr<typed_events_seen> seen) {
  auto note = [self, seen](int& counter) {
    ++counter;
    seen->senders.push_back(
      caf::actor_cast<caf::actor_addr>(self->current_sender()));
  };
  return {
    [=](connected_event&) { note(seen->connected); },
    [=](disconnected_event&) { note(seen->other); },
    [=](failed_event&) { note(seen->other); },
    [=](retry_event&) { note(seen->other); },
    [=](accepted_event&) { note(seen->other); },
    [=](rejected_event&) { note(seen->other); },
    [=](evicted_event&) { note(seen->other); },
    [=](banned_event&) { note(seen->other); },
    [=](drain_event&) { note(seen->other); },
    [=](stopped_event&) { note(seen->stopped); },
  };
}

} // namespace

TEST_CASE_FIXTURE(sim_fixture,
                  "handler api: a typed events actor gets every event with "
                  "the handler as sender") {
  auto seen = std::make_shared<typed_events_seen>();
  auto s = setup();
  s.events = sys.spawn(typed_receiver, seen); // no actor_cast needed
  spawn(s);
  auto handler_addr = handler.address();
  start();
  connect("127.0.0.1:18333", true);
  stop();
  CHECK(seen->connected == 1);
  CHECK(seen->stopped == 1);
  REQUIRE(seen->senders.size() == 2u + static_cast<size_t>(seen->other));
  for (auto& sender : seen->senders)
    CHECK(sender == handler_addr);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "handler api: spawn errors name the keys of the config "
                  "section the config came from") {
  auto s = setup();
  s.config.target_outbound = 1000000; // beyond any descriptor limit here
  auto plain = spawn_conn_handler(sys, s);
  REQUIRE_FALSE(plain);
  CHECK(describe(plain.error()).find("target_outbound") != std::string::npos);
  s.config_section = "p2p";
  auto keyed = spawn_conn_handler(sys, s);
  REQUIRE_FALSE(keyed);
  auto text = describe(keyed.error());
  CHECK(text.find("p2p.target-outbound") != std::string::npos);
  CHECK(text.find("target_outbound") == std::string::npos);
}

TEST_CASE_FIXTURE(api_fixture,
                  "handler api: a plain send of disconnect or remove for an "
                  "unknown id gets no answer, so its sender lives on") {
  // An error sent back for a plain send would end a sender without an error
  // handler (CAF's default): the example node died that way when its remove
  // crossed a connection's own close.
  auto hdl = handler;
  auto sender = sys.spawn([hdl](caf::event_based_actor* self) -> caf::behavior {
    self->send(hdl, remove_atom::value, uint64_t{999999});
    self->send(hdl, disconnect_atom::value, uint64_t{999999}, true);
    return {[](int x) { return x; }};
  });
  run();
  int answer = 0;
  sys.spawn([&](caf::event_based_actor* self) {
    self->request(sender, caf::infinite, 42)
      .then([&](int x) { answer = x; }, [&](caf::error&) { answer = -1; });
  });
  run();
  CHECK(answer == 42);
  caf::anon_send_exit(sender, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "handler api: peers lists every open connection, outbound "
                  "by id, then inbound by slot, with class and ages") {
  manager_config limits;
  limits.target_outbound = 1;
  limits.max_inbound = 4;
  limits.max_inbound_per_ip = std::nullopt;
  limits.inbound_rate_per_ip = std::nullopt;
  auto s = setup(limits);
  s.get_address = counting_addresses();
  auto acceptor =
    spawn_fake_acceptor(sys, std::make_shared<fake_acceptor_record>());
  s.listeners.push_back(acceptor);
  spawn(std::move(s));
  // Dials take 30 ms: held, then released.
  net->set_policy([](const std::string&) {
    return fake_dial_plan{fake_dial_plan::hold, {}};
  });
  start();
  auto manual = connect("127.0.0.1:18333", true);
  advance(30ms);
  caf::anon_send(dialer, release_atom::value, true);
  run();
  REQUIRE(log->connected.size() == 2);
  auto auto_id = log->connected[0].request.id == manual
    ? log->connected[1].request.id
    : log->connected[0].request.id;
  advance(1s);
  auto a = make_memory_connection("127.0.0.2:40001");
  auto b = make_memory_connection("127.0.0.3:40002");
  caf::anon_send(acceptor, inject_atom::value, a);
  caf::anon_send(acceptor, inject_atom::value, b);
  run();
  REQUIRE(log->accepted.size() == 2);
  advance(2s);
  auto peers = ask<std::vector<peer_info>>(peers_atom::value);
  REQUIRE(peers.size() == 4);
  // Outbound first, by id.
  CHECK(peers[0].id < peers[1].id);
  for (size_t i = 0; i < 2; ++i) {
    auto& p = peers[i];
    CAPTURE(to_string(p));
    CHECK(p.dial_time == 30ms);
    CHECK(p.connected_for == 3s);
    CHECK(p.local_address.empty()); // in-memory: no socket
    if (p.id == manual) {
      CHECK(p.kind == peer_class::manual);
      CHECK(p.permanent);
      CHECK(p.remote_address == "127.0.0.1:18333");
    } else {
      CHECK(p.id == auto_id);
      CHECK(p.kind == peer_class::automatic);
      CHECK(!p.permanent);
    }
  }
  // Then inbound, by slot.
  CHECK(peers[2].id < peers[3].id);
  for (size_t i = 2; i < 4; ++i) {
    CHECK(peers[i].kind == peer_class::inbound);
    CHECK(peers[i].listener == 0);
    CHECK(peers[i].connected_for == 2s);
    CHECK(peers[i].dial_time == caf::timespan{0});
  }
  CHECK(peers[2].remote_address == "127.0.0.2:40001");
  CHECK(peers[3].remote_address == "127.0.0.3:40002");
  // A closed inbound connection and a removed request leave the list.
  a->close();
  remove(manual);
  peers = ask<std::vector<peer_info>>(peers_atom::value);
  REQUIRE(peers.size() == 2);
  CHECK(peers[0].id == auto_id);
  CHECK(peers[1].remote_address == "127.0.0.3:40002");
  caf::anon_send_exit(acceptor, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(sim_fixture,
                  "handler api: a handler killed outright takes its acceptors "
                  "with it") {
  // exit_reason::kill skips the graceful stop (as a failure would): the
  // acceptors must still close, or they accept for nobody and hold the
  // reactor.
  auto record = std::make_shared<fake_acceptor_record>();
  // The embedder keeps its handle (as it keeps a tcp_listener): the
  // acceptor cannot simply become unreachable.
  auto acceptor = spawn_fake_acceptor(sys, record);
  auto s = setup();
  s.listeners.push_back(acceptor);
  spawn(std::move(s));
  start();
  REQUIRE(!record->closed);
  caf::anon_send_exit(handler, caf::exit_reason::kill);
  run();
  handler = nullptr;
  CHECK(record->closed);
}
