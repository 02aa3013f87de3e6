// What an embedder sees of the handler: exits of linked actors, and the
// answers to requests about ids it does not know. On simulated time.

#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include <caf/event_based_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "connmgr/messages/error_code.hpp"
#include "tests/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

namespace {

struct api_fixture : sim_fixture {
  api_fixture() {
    auto s = setup();
    spawn(s);
    start();
  }

  /// Sends `xs` as a request and returns the error it was answered with
  /// (none for a plain answer).
  template <class... Ts>
  caf::error ask_error(Ts... xs) {
    caf::error result;
    bool answered = false;
    sys.spawn([&](caf::event_based_actor* self) {
      self->request(handler, caf::infinite, xs...)
        .then([&]() { answered = true; },
              [&](caf::error& err) {
                result = std::move(err);
                answered = true;
              });
    });
    run();
    REQUIRE(answered);
    return result;
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

TEST_CASE_FIXTURE(api_fixture,
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
  auto err = ask_error(disconnect_atom::value, unknown, false);
  CHECK(err == errc::unknown_request);
  err = ask_error(remove_atom::value, unknown);
  CHECK(err == errc::unknown_request);
  // A known id is answered without error.
  CHECK_FALSE(ask_error(disconnect_atom::value, id, false));
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
    seen->senders.push_back(caf::actor_cast<caf::actor_addr>(
      self->current_sender()));
  };
  return {
    [=](connected_event&) { note(seen->connected); },
    [=](disconnected_event&) { note(seen->other); },
    [=](failed_event&) { note(seen->other); },
    [=](retry_event&) { note(seen->other); },
    [=](accepted_event&) { note(seen->other); },
    [=](rejected_event&) { note(seen->other); },
    [=](evicted_event&) { note(seen->other); },
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
