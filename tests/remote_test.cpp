// A handler queried from a second actor system over a real loopback socket
// through CAF's middleman: what an operator's tool on another machine does.

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/deep_to_string.hpp>
#include <caf/io/middleman.hpp>
#include <caf/scoped_actor.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/actors/fake_dialer.hpp"
#include "connmgr/messages/message_types.hpp"
#include "connmgr/messages/peer_info.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

caf::actor_system_config& remote_ready(caf::actor_system_config& cfg) {
  cfg.load<caf::io::middleman>();
  add_message_types(cfg);
  return cfg;
}

// Polls `f` (a request over the wire) until `done` holds: the handler dials
// on its own schedule. Bounded, for a loaded 2-core machine.
template <class F, class Done>
auto poll_until(F f, Done done) {
  auto deadline = std::chrono::steady_clock::now() + 30s;
  auto x = f();
  while (!done(x) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
    x = f();
  }
  return x;
}

} // namespace

TEST_CASE("remote: requests and stats of a published handler reach a second "
          "actor system over loopback, by name") {
  caf::actor_system_config server_cfg;
  caf::actor_system server{remote_ready(server_cfg)};
  auto net = std::make_shared<fake_network>();
  auto dialer = spawn_fake_dialer(server, net);
  handler_setup setup;
  setup.dialer = dialer;
  auto handler = spawn_conn_handler(server, std::move(setup));
  REQUIRE(handler);
  auto port = server.middleman().publish(*handler, 0, "127.0.0.1");
  REQUIRE_MESSAGE(port, server.render(port.error()));

  caf::actor_system_config client_cfg;
  caf::actor_system client{remote_ready(client_cfg)};
  auto remote =
    client.middleman().remote_actor<conn_handler_actor>("127.0.0.1", *port);
  REQUIRE_MESSAGE(remote, client.render(remote.error()));
  caf::scoped_actor self{client};

  // A permanent manual request, made over the wire.
  uint64_t id = 0;
  self
    ->request(*remote, 30s, connect_atom::value, uint64_t{0},
              std::string{"127.0.0.1:18444"}, true)
    .receive([&](uint64_t x) { id = x; },
             [&](const caf::error& err) { FAIL(client.render(err)); });
  REQUIRE(id != 0);

  auto requests = poll_until(
    [&] {
      std::vector<conn_request> xs;
      self->request(*remote, 30s, requests_atom::value)
        .receive([&](std::vector<conn_request>& ys) { xs = std::move(ys); },
                 [&](const caf::error& err) { FAIL(client.render(err)); });
      return xs;
    },
    [](const std::vector<conn_request>& xs) {
      return xs.size() == 1 && xs[0].state == conn_state::established;
    });
  REQUIRE(requests.size() == 1);
  CHECK(requests[0].id == id);
  CHECK(requests[0].address == "127.0.0.1:18444");
  CHECK(requests[0].permanent);
  CHECK(requests[0].state == conn_state::established);

  conn_stats st;
  self->request(*remote, 30s, stats_atom::value)
    .receive([&](conn_stats& x) { st = x; },
             [&](const caf::error& err) { FAIL(client.render(err)); });
  CHECK(st.requests_created == 1);
  CHECK(st.dials_succeeded == 1);
  CHECK(st.outbound_established == 1);
  // Printed by name, not as a row of numbers.
  auto text = caf::deep_to_string(st);
  CHECK(text.find("dials_succeeded=1") != std::string::npos);
  CHECK(text.find("outbound_established=1") != std::string::npos);

  std::vector<peer_info> peers;
  self->request(*remote, 30s, peers_atom::value)
    .receive([&](std::vector<peer_info>& xs) { peers = std::move(xs); },
             [&](const caf::error& err) { FAIL(client.render(err)); });
  REQUIRE(peers.size() == 1);
  CHECK(peers[0].id == id);
  CHECK(peers[0].kind == peer_class::manual);
  CHECK(peers[0].remote_address == "127.0.0.1:18444");

  self->request(*remote, 30s, stop_atom::value)
    .receive([](conn_stats&) {},
             [&](const caf::error& err) { FAIL(client.render(err)); });
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
}

TEST_CASE("remote: conn_stats print every counter by name") {
  conn_stats st;
  st.requests_created = 1;
  st.inbound_evicted = 11;
  st.failed_attempts = 17;
  auto text = to_string(st);
  CHECK(text.rfind("conn_stats(requests_created=1, ", 0) == 0);
  CHECK(text.find("inbound_evicted=11") != std::string::npos);
  st.bans = 19;
  text = to_string(st);
  CHECK(text.find("failed_attempts=17, ") != std::string::npos);
  CHECK(text.find("bans=19, ") != std::string::npos);
  CHECK(text.back() == ')');
  CHECK(caf::deep_to_string(st) == text);
  conn_stats other = st;
  CHECK(other == st);
  other.dials_queued = 1;
  CHECK_FALSE(other == st);
}
