// Downstream test: an application with headers of its own named like
// connmgr's (own_headers/messages/events.hpp, ...) includes the installed
// connmgr headers by their prefix and embeds the handler the way the README
// says: the real TCP dialer and a listener on 127.0.0.1, its own typed
// events actor (no actor_cast), a permanent connect to its own listener,
// `peers` on both ends, and a stop that answers the final counters.
#include <connmgr/actors/conn_handler.hpp>
#include <connmgr/actors/state_db.hpp>
#include <connmgr/actors/tcp_acceptor.hpp>
#include <connmgr/actors/tcp_dialer.hpp>
#include <connmgr/messages/error_code.hpp>
#include <connmgr/messages/events.hpp>
#include <connmgr/messages/peer_info.hpp>
#include <connmgr/net/reactor.hpp>
#include <connmgr/net/resolver.hpp>

#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <stdlib.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace {

using namespace std::chrono_literals;

/// What the events actor saw: the first connected and accepted event, and
/// whether each came from the handler.
struct seen {
  std::promise<void> connected;
  std::promise<void> accepted;
  caf::strong_actor_ptr connected_sender;
  caf::strong_actor_ptr accepted_sender;
  connmgr::connection_ptr outbound;
  connmgr::connection_ptr inbound;
  bool stopped = false;
};

connmgr::conn_events_actor::behavior_type
events(connmgr::conn_events_actor::pointer self, std::shared_ptr<seen> s) {
  return {
    [self, s](connmgr::connected_event& ev) {
      if (s->outbound)
        return;
      s->outbound = ev.conn;
      s->connected_sender = self->current_sender();
      s->connected.set_value();
    },
    [](connmgr::disconnected_event&) {},
    [](connmgr::failed_event&) {},
    [](connmgr::retry_event&) {},
    [self, s](connmgr::accepted_event& ev) {
      if (s->inbound)
        return;
      s->inbound = ev.conn;
      s->accepted_sender = self->current_sender();
      s->accepted.set_value();
    },
    [](connmgr::rejected_event&) {},
    [](connmgr::evicted_event&) {},
    [](connmgr::banned_event&) {},
    [](connmgr::drain_event&) {},
    [s](connmgr::stopped_event&) { s->stopped = true; },
  };
}

int fail(const std::string& what) {
  std::cerr << "consumer: " << what << '\n';
  return 1;
}

} // namespace

int main() {
  const std::string name = connmgr::to_string(connmgr::errc::refused);
  if (name != "refused")
    return fail("to_string(errc::refused) = " + name);
  {
    // The state library links and runs: a state file in a fresh directory.
    char dir[] = "/tmp/connmgr-consumer-XXXXXX";
    if (::mkdtemp(dir) == nullptr)
      return fail("mkdtemp failed");
    auto path = std::string{dir} + "/state.db";
    bool opened = static_cast<bool>(connmgr::state_db::open(path));
    for (const char* suffix : {"", "-wal", "-shm"})
      std::remove((path + suffix).c_str());
    ::rmdir(dir);
    if (!opened)
      return fail("state_db::open(" + path + ") failed");
  }
  caf::actor_system_config cfg;
  connmgr::add_error_category(cfg);
  caf::actor_system sys{cfg};
  auto io = connmgr::reactor::start();
  if (!io)
    return fail("reactor: " + sys.render(io.error()));
  auto names = std::make_shared<connmgr::resolver>(1);
  auto any_port = connmgr::net_address::parse("127.0.0.1:0", true);
  if (!any_port)
    return fail("parse: " + sys.render(any_port.error()));
  auto listener = connmgr::spawn_tcp_acceptor(sys, *io, *any_port);
  if (!listener)
    return fail("listen: " + sys.render(listener.error()));
  auto s = std::make_shared<seen>();
  connmgr::handler_setup setup;
  setup.dialer = connmgr::spawn_tcp_dialer(sys, *io, names);
  setup.listeners = {listener->acceptor};
  auto sink = sys.spawn(events, s);
  setup.events = sink; // typed: no actor_cast
  setup.config.target_outbound = 0;
  auto handler = connmgr::spawn_conn_handler(sys, setup);
  if (!handler)
    return fail("spawn: " + sys.render(handler.error()));
  caf::scoped_actor self{sys};
  self->send(*handler, connmgr::start_atom::value);
  uint64_t id = 0;
  self
    ->request(*handler, 5s, connmgr::connect_atom::value, uint64_t{0},
              listener->bound.to_string(), true)
    .receive([&](uint64_t x) { id = x; },
             [&](caf::error& err) { fail("connect: " + sys.render(err)); });
  if (id == 0)
    return 1;
  auto connected = s->connected.get_future();
  auto accepted = s->accepted.get_future();
  if (connected.wait_for(10s) != std::future_status::ready
      || accepted.wait_for(10s) != std::future_status::ready)
    return fail("no connected and accepted event within 10 s");
  auto me = caf::actor_cast<caf::strong_actor_ptr>(*handler);
  if (s->connected_sender != me || s->accepted_sender != me)
    return fail("events did not come from the handler");
  std::vector<connmgr::peer_info> peers;
  self->request(*handler, 5s, connmgr::peers_atom::value)
    .receive([&](std::vector<connmgr::peer_info>& xs) { peers = xs; },
             [&](caf::error& err) { fail(sys.render(err)); });
  if (peers.size() != 2 || peers[0].id != id
      || peers[0].kind != connmgr::peer_class::manual
      || peers[1].kind != connmgr::peer_class::inbound
      // The two ends of one loopback connection.
      || peers[0].local_address != peers[1].remote_address)
    return fail("unexpected peers: " + std::to_string(peers.size()));
  for (auto& p : peers)
    std::cout << connmgr::to_string(p) << '\n';
  connmgr::conn_stats final_stats;
  self->request(*handler, 10s, connmgr::stop_atom::value)
    .receive([&](connmgr::conn_stats& x) { final_stats = x; },
             [&](caf::error& err) { fail(sys.render(err)); });
  if (final_stats.dials_succeeded != 1 || final_stats.inbound_accepted != 1)
    return fail("final stats: " + connmgr::to_string(final_stats));
  // The connections are ours, so are the dialer and the events actor.
  s->outbound->close();
  s->inbound->close();
  self->send_exit(setup.dialer, caf::exit_reason::user_shutdown);
  self->send_exit(sink, caf::exit_reason::user_shutdown);
  (*io)->stop();
  std::cout << name << '\n';
  return 0;
}
