// connmgr-demo: two connection managers talking over loopback.
//
// In about three seconds it shows: an outbound target filled from an
// address pool in which one address refuses, a permanent peer that is down
// at first and is redialed with linear backoff until it comes up, inbound
// connections admitted up to a limit and refused beyond it, a disconnect
// that is replaced at once, and a stop that leaves no descriptor behind.
// Every socket is real and bound to 127.0.0.1.

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <fmt/format.h>

#include "connmgr/actors/manager.hpp"
#include "connmgr/actors/tcp_acceptor.hpp"
#include "connmgr/actors/tcp_dialer.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "connmgr/net/socket_ops.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

const auto demo_start = std::chrono::steady_clock::now();
std::mutex print_mtx;

template <class... Ts>
void say(fmt::format_string<Ts...> fstr, Ts&&... xs) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - demo_start)
              .count();
  std::lock_guard<std::mutex> guard{print_mtx};
  fmt::print("[{:>5} ms] {}\n", ms, fmt::format(fstr, std::forward<Ts>(xs)...));
  std::fflush(stdout);
}

/// Callbacks that print every event of one manager, prefixed with its name.
manager_callbacks printing(const std::string& who,
                           std::vector<connection_ptr>& keep,
                           std::mutex& keep_mtx) {
  manager_callbacks cb;
  cb.on_connection = [who, &keep, &keep_mtx](const conn_request& req,
                                             connection_ptr conn) {
    say("{} connected     {}", who, to_string(req));
    std::lock_guard<std::mutex> guard{keep_mtx};
    keep.push_back(std::move(conn));
  };
  cb.on_disconnection = [who](const conn_request& req, const caf::error& why) {
    say("{} disconnected  {} ({})", who, to_string(req), describe(why));
  };
  cb.on_failure = [who](const conn_request& req, const caf::error& why) {
    say("{} failed        {} ({})", who, to_string(req), describe(why));
  };
  cb.on_retry = [who](const conn_request& req, caf::timespan delay) {
    say("{} retry         #{} in {}", who, req.id, to_string_duration(delay));
  };
  cb.on_accept = [who, &keep, &keep_mtx](uint32_t listener,
                                         connection_ptr conn) {
    say("{} accepted      {} on listener {}", who, conn->remote_address(),
        listener);
    std::lock_guard<std::mutex> guard{keep_mtx};
    keep.push_back(std::move(conn));
  };
  cb.on_reject = [who](uint32_t listener, const std::string& from,
                       const caf::error& why) {
    say("{} rejected      {} on listener {} ({})", who, from, listener,
        describe(why));
  };
  return cb;
}

/// A loopback port that nothing listens on (yet).
uint16_t free_port() {
  auto any = net_address::parse("127.0.0.1:0", true);
  sockaddr_storage sa{};
  auto len = any->to_sockaddr(sa);
  auto fd = open_tcp_listener(sa, *len, 1);
  auto bound = net_address::from_sockaddr(
    reinterpret_cast<sockaddr*>(&*local_sockaddr(*fd)), *len);
  ::close(*fd);
  return bound->port();
}

int fail(const caf::error& err) {
  fmt::print(stderr, "connmgr-demo: {}\n", describe(err));
  return 1;
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  add_error_category(cfg);
  caf::actor_system sys{cfg};
  auto io = reactor::start();
  if (!io)
    return fail(io.error());
  auto names = std::make_shared<resolver>(2);
  auto dialer = spawn_tcp_dialer(sys, *io, names);
  auto fds_at_start = open_fd_count();
  std::mutex keep_mtx;
  std::vector<connection_ptr> keep;

  // Server: four listeners, at most 5 inbound connections.
  handler_setup server;
  server.dialer = dialer;
  server.config.target_outbound = 0;
  server.config.max_inbound = 5;
  std::vector<std::string> pool;
  for (int i = 0; i < 4; ++i) {
    auto l =
      spawn_tcp_acceptor(sys, *io, *net_address::parse("127.0.0.1:0", true));
    if (!l)
      return fail(l.error());
    server.listeners.push_back(l->acceptor);
    pool.push_back(l->bound.to_string());
  }
  // One address in the pool refuses: nothing listens there.
  pool.insert(pool.begin() + 2, fmt::format("127.0.0.1:{}", free_port()));
  auto srv = manager::make(sys, server, printing("server", keep, keep_mtx));
  if (!srv)
    return fail(srv.error());
  srv->start();

  // Client: target 4 from the pool, plus one permanent peer that is down.
  auto peer_port = free_port();
  auto peer = fmt::format("127.0.0.1:{}", peer_port);
  handler_setup client;
  client.dialer = dialer;
  client.config.target_outbound = 4;
  client.config.retry_duration = 200ms;
  client.config.max_retry_duration = 1s;
  client.config.dial_timeout = 2s;
  auto next = std::make_shared<std::atomic<size_t>>(0);
  client.get_address = [pool, next]() -> caf::expected<std::string> {
    return pool[(*next)++ % pool.size()];
  };
  auto cli = manager::make(sys, client, printing("client", keep, keep_mtx));
  if (!cli)
    return fail(cli.error());
  say("client: target 4 outbound from {} addresses (one refuses); "
      "server: 4 listeners, max 5 inbound",
      pool.size());
  cli->start();
  cli->connect(peer, true);
  say("client: permanent peer {} is down; backoff 200ms linear, cap 1s", peer);
  std::this_thread::sleep_for(700ms);

  say("the permanent peer comes up");
  handler_setup late;
  late.dialer = dialer;
  late.config.target_outbound = 0;
  auto peer_listener = spawn_tcp_acceptor(sys, *io, *net_address::parse(peer));
  if (!peer_listener)
    return fail(peer_listener.error());
  late.listeners.push_back(peer_listener->acceptor);
  auto up = manager::make(sys, late, printing("peer  ", keep, keep_mtx));
  if (!up)
    return fail(up.error());
  up->start();
  std::this_thread::sleep_for(900ms);

  say("a second client wants 2 connections to the server: one is over "
      "its limit of 5");
  handler_setup second = client;
  second.config.target_outbound = 2;
  second.get_address = [pool]() -> caf::expected<std::string> {
    return pool[0];
  };
  second.config.reject_duplicate_addresses = false;
  auto cli2 = manager::make(sys, second, printing("client2", keep, keep_mtx));
  if (!cli2)
    return fail(cli2.error());
  cli2->start();
  std::this_thread::sleep_for(300ms);

  for (auto& req : cli->requests())
    if (req.automatic && req.state == conn_state::established) {
      say("client: disconnecting #{}: automatic, so replaced at once", req.id);
      cli->disconnect(req.id);
      break;
    }
  std::this_thread::sleep_for(400ms);

  say("client requests now:");
  for (auto& req : cli->requests())
    say("  {}", to_string(req));
  say("stopping");
  cli->stop().wait();
  cli2->stop().wait();
  up->stop().wait();
  srv->stop().wait();
  {
    std::lock_guard<std::mutex> guard{keep_mtx};
    say("stopped; the application still holds {} delivered connections and "
        "closes them",
        keep.size());
    keep.clear();
  }
  say("descriptors open besides the reactor's own: {} before the managers "
      "started, {} now",
      fds_at_start, open_fd_count());
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  (*io)->stop();
  return 0;
}
