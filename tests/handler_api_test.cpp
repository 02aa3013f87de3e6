// What an embedder sees of the handler: exits of linked actors, and the
// answers to requests about ids it does not know. On simulated time.

#include <doctest/doctest.h>

#include <caf/event_based_actor.hpp>

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
