// Real sockets on loopback: the reactor, the TCP dialer and acceptor under
// the connection handler.

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <future>
#include <thread>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/manager.hpp"
#include "connmgr/actors/tcp_acceptor.hpp"
#include "connmgr/actors/tcp_dialer.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/support/descriptor_audit.hpp"
#include "tests/support/loopback_listener.hpp"
#include "tests/support/timed_dial.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

/// Counts callbacks; tests block on a condition with a generous bound.
struct tally {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<connection_ptr> connected;
  std::vector<connection_ptr> accepted;
  std::vector<caf::error> failures;

  manager_callbacks callbacks() {
    manager_callbacks cb;
    cb.on_connection = [this](const conn_request&, connection_ptr c) {
      std::lock_guard<std::mutex> guard{mtx};
      connected.push_back(std::move(c));
      cv.notify_all();
    };
    cb.on_accept = [this](uint32_t, connection_ptr c) {
      std::lock_guard<std::mutex> guard{mtx};
      accepted.push_back(std::move(c));
      cv.notify_all();
    };
    cb.on_failure = [this](const conn_request&, const caf::error& err) {
      std::lock_guard<std::mutex> guard{mtx};
      failures.push_back(err);
      cv.notify_all();
    };
    return cb;
  }

  template <class Predicate>
  bool await(Predicate pred, std::chrono::seconds bound = 60s) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, bound, [&] { return pred(*this); });
  }
};

uint16_t port_of(int fd) {
  auto sa = local_sockaddr(fd);
  REQUIRE(sa);
  auto addr = net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&*sa),
                                         sizeof(sockaddr_in));
  REQUIRE(addr);
  return addr->port();
}

/// A socket listening on an ephemeral loopback port.
int loopback_listener(int backlog) {
  return test::listen_like_connmgr(backlog);
}

/// A listening socket nobody accepts from, its one-slot queue filled: SYNs
/// to it are dropped, so dials to it hang until their deadline.
struct silent_peer {
  int listener = -1;
  std::vector<int> fillers;
  std::string address;

  silent_peer() {
    listener = loopback_listener(0);
    address = "127.0.0.1:" + std::to_string(port_of(listener));
    // Fill the accept queue until a connect no longer completes: from
    // then on the kernel drops every SYN to this port.
    auto sa = test::loopback_v4(port_of(listener));
    for (int i = 0; i < 16; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      fillers.push_back(c);
      pollfd p{c, POLLOUT, 0};
      if (::poll(&p, 1, 500) == 0)
        return; // this one hangs: the queue is full
    }
    FAIL("could not fill the accept queue of the silent peer");
  }

  ~silent_peer() {
    for (auto fd : fillers)
      ::close(fd);
    ::close(listener);
  }
};

struct net_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::shared_ptr<reactor> io;
  std::shared_ptr<resolver> names = std::make_shared<resolver>(2);
  dialer_actor dialer;

  net_fixture() : sys(init(cfg)) {
    auto r = reactor::start();
    REQUIRE(r);
    io = *r;
    dialer = spawn_tcp_dialer(sys, io, names);
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    add_error_category(c);
    return c;
  }

  ~net_fixture() {
    caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  }

  /// One dial straight to the dialer; returns the result and how long it took.
  std::pair<caf::expected<connection_ptr>, steady::duration>
  dial(const std::string& address, caf::timespan timeout) {
    return test::timed_dial(sys, dialer, address, timeout);
  }
};

} // namespace

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: 1000 outbound connections reach an in-test listener, "
                  "each accepted exactly once") {
  constexpr size_t n = 1000;
  auto listener =
    spawn_tcp_acceptor(sys, io, *net_address::parse("127.0.0.1:0", true));
  REQUIRE(listener);
  tally server;
  handler_setup server_setup;
  server_setup.dialer = dialer;
  server_setup.config.target_outbound = 0;
  // n connections from one host at once: admission by count alone.
  server_setup.config.max_inbound = std::nullopt;
  server_setup.config.max_inbound_per_ip = std::nullopt;
  server_setup.config.max_pending_inbound = std::nullopt;
  server_setup.config.inbound_rate_per_ip = std::nullopt;
  server_setup.listeners.push_back(listener->acceptor);
  auto srv = manager::make(sys, server_setup, server.callbacks());
  REQUIRE(srv);
  srv->start();

  tally client;
  handler_setup client_setup;
  client_setup.dialer = dialer;
  client_setup.config.target_outbound = n;
  client_setup.config.reject_duplicate_addresses = false;
  client_setup.config.max_pending_dials = 256;
  auto target = listener->bound.to_string();
  client_setup.get_address = [target]() -> caf::expected<std::string> {
    return target;
  };
  auto cli = manager::make(sys, client_setup, client.callbacks());
  REQUIRE(cli);
  cli->start();
  REQUIRE(client.await([](auto& t) { return t.connected.size() >= n; }));
  REQUIRE(server.await([](auto& t) { return t.accepted.size() >= n; }));
  // Nothing more arrives: the target is exact.
  auto st = cli->stats();
  CHECK(st.outbound_established == n);
  CHECK(st.dials_started == n);
  CHECK(client.failures.empty());
  std::set<uint16_t> client_ports;
  std::set<std::string> server_seen;
  {
    std::lock_guard<std::mutex> g1{client.mtx};
    for (auto& c : client.connected)
      client_ports.insert(port_of(c->native_handle()));
  }
  {
    std::lock_guard<std::mutex> g2{server.mtx};
    CHECK(server.accepted.size() == n);
    for (auto& c : server.accepted)
      server_seen.insert(c->remote_address());
  }
  CHECK(client_ports.size() == n);
  CHECK(server_seen.size() == n);
  for (auto port : client_ports)
    CHECK(server_seen.count("127.0.0.1:" + std::to_string(port)) == 1);
  cli->stop().wait();
  srv->stop().wait();
}

TEST_CASE_FIXTURE(net_fixture, "tcp: a closed port is refused") {
  auto fd = loopback_listener(1);
  auto port = port_of(fd);
  ::close(fd); // nobody listens there now
  auto [result, took] = dial("127.0.0.1:" + std::to_string(port), 5s);
  REQUIRE(!result);
  CHECK(errc_of(result.error()) == errc::refused);
  CHECK(took < 5s);
}

TEST_CASE_FIXTURE(net_fixture, "tcp: a malformed address fails at once") {
  auto [result, took] = dial("1.2.3.4:99999", 5s);
  REQUIRE(!result);
  CHECK(errc_of(result.error()) == errc::invalid_address);
  CHECK(describe(result.error()).find("99999") != std::string::npos);
}

TEST_CASE_FIXTURE(
  net_fixture, "tcp: a silent peer makes the dial time out at its deadline") {
  silent_peer peer;
  auto [result, took] = dial(peer.address, 300ms);
  REQUIRE(!result);
  CHECK(errc_of(result.error()) == errc::timed_out);
  CHECK(took >= 300ms);
  CHECK(took < 300ms + 2s); // generous: a loaded 2-core machine
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: a host name resolves off the scheduler and connects") {
  auto listener =
    spawn_tcp_acceptor(sys, io, *net_address::parse("127.0.0.1:0", true));
  REQUIRE(listener);
  auto [result, took] =
    dial("localhost:" + std::to_string(listener->bound.port()), 5s);
  REQUIRE_MESSAGE(result, (result ? std::string{} : describe(result.error())));
  CHECK(!(*result)->closed());
  caf::anon_send_exit(listener->acceptor, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: an unknown host name fails with resolve_failed") {
  auto [result, took] = dial("no-such-host.invalid:8333", 5s);
  REQUIRE(!result);
  CHECK(errc_of(result.error()) == errc::resolve_failed);
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: stop during 1000 dials to a silent peer is prompt and "
                  "closes every descriptor") {
  silent_peer peer;
  auto baseline = open_descriptors();
  tally client;
  handler_setup s;
  s.dialer = dialer;
  s.config.target_outbound = 1000;
  s.config.max_pending_dials = 1000;
  s.config.reject_duplicate_addresses = false;
  s.config.dial_timeout = 60s;
  auto target = peer.address;
  s.get_address = [target]() -> caf::expected<std::string> { return target; };
  auto cli = manager::make(sys, s, client.callbacks());
  REQUIRE(cli);
  cli->start();
  // Wait until the reactor holds (nearly) all of them in flight.
  auto deadline = steady::now() + 30s;
  while (io->stats().pending_connects < 990 && steady::now() < deadline)
    std::this_thread::sleep_for(10ms);
  REQUIRE(io->stats().pending_connects >= 990);
  CHECK(open_fd_count() >= baseline.size() + 990);
  auto t0 = steady::now();
  cli->stop().wait();
  auto took = steady::now() - t0;
  CHECK(took < 5s);
  // The stop promise covers the sockets too: no waiting needed here.
  auto left = test::new_descriptors(baseline);
  CHECK_MESSAGE(left.empty(), describe(left));
  CHECK(io->stats().pending_connects == 0);
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: a peer reset mid-connection is seen as a disconnect "
                  "and a permanent peer is redialed") {
  auto lfd = loopback_listener(16);
  auto target = "127.0.0.1:" + std::to_string(port_of(lfd));
  tally client;
  std::vector<caf::error> disconnects;
  auto cb = client.callbacks();
  cb.on_disconnection = [&](const conn_request&, const caf::error& err) {
    std::lock_guard<std::mutex> guard{client.mtx};
    disconnects.push_back(err);
    client.cv.notify_all();
  };
  handler_setup s;
  s.dialer = dialer;
  s.config.target_outbound = 0;
  s.config.retry_duration = 50ms;
  auto cli = manager::make(sys, s, cb);
  REQUIRE(cli);
  cli->start();
  cli->connect(target, true);
  REQUIRE(client.await([](auto& t) { return t.connected.size() == 1; }));
  // Accept on the raw listener and reset the connection (linger 0 → RST).
  pollfd p{lfd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 10'000) == 1);
  int peer = ::accept(lfd, nullptr, nullptr);
  REQUIRE(peer >= 0);
  linger lg{1, 0};
  ::setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::close(peer);
  REQUIRE(client.await([&](auto&) { return disconnects.size() == 1; }, 10s));
  CHECK(errc_of(disconnects[0]) == errc::connection_closed);
  // The permanent request comes back on its own.
  REQUIRE(client.await([](auto& t) { return t.connected.size() == 2; }, 10s));
  cli->stop().wait();
  ::close(lfd);
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: addresses are tried in turn until one connects within "
                  "the deadline") {
  auto closed_fd = loopback_listener(1);
  auto closed_sa = local_sockaddr(closed_fd);
  ::close(closed_fd); // the first address refuses
  auto open_fd = loopback_listener(16);
  auto open_sa = local_sockaddr(open_fd);
  std::promise<caf::expected<connection_ptr>> done;
  auto result = done.get_future();
  io->connect(
    {*closed_sa, *open_sa}, reactor::clock::now() + 5s, "both",
    [&done](caf::expected<connection_ptr> c) { done.set_value(std::move(c)); });
  REQUIRE(result.wait_for(10s) == std::future_status::ready);
  auto conn = result.get();
  REQUIRE_MESSAGE(conn, (conn ? std::string{} : describe(conn.error())));
  // It reached the second address: the listener has a pending connection.
  pollfd p{open_fd, POLLIN, 0};
  CHECK(::poll(&p, 1, 5000) == 1);
  ::close(open_fd);
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: a target that cannot fit in the descriptor limit is "
                  "refused naming the limit") {
  handler_setup s;
  s.dialer = dialer;
  auto limit = raise_fd_limit();
  REQUIRE(limit > 0);
  s.config.target_outbound = static_cast<uint32_t>(limit);
  auto refused = spawn_conn_handler(sys, s);
  REQUIRE(!refused);
  CHECK(errc_of(refused.error()) == errc::invalid_config);
  auto text = describe(refused.error());
  CHECK(text.find("target_outbound") != std::string::npos);
  CHECK(text.find(std::to_string(limit)) != std::string::npos);
  s.config.target_outbound = static_cast<uint32_t>(limit / 2);
  auto accepted = spawn_conn_handler(sys, s);
  REQUIRE(accepted);
  // Stop it while its dialer still lives, as an application would.
  caf::scoped_actor self{sys};
  self->request(*accepted, caf::infinite, stop_atom::value)
    .receive([](const conn_stats&) {}, [](caf::error&) {});
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: the direct path dials IP literals without the actor, "
                  "leaves host names and bad addresses to it, and cancels") {
  caf::scoped_actor self{sys};
  direct_dialer_ptr path;
  self->request(dialer, 10s, direct_atom::value)
    .receive([&](direct_dialer_ptr& p) { path = std::move(p); },
             [&](caf::error& err) { FAIL(describe(err)); });
  REQUIRE(path);
  auto me = caf::actor_cast<caf::strong_actor_ptr>(self);
  auto listener = loopback_listener(16);
  auto address = "127.0.0.1:" + std::to_string(port_of(listener));
  CHECK(path->try_dial(7, address, 10s, me) != 0);
  self->receive(
    [&](dialed_atom, uint64_t id, connection_ptr& conn) {
      CHECK(id == 7);
      CHECK(!conn->closed());
      CHECK(conn->remote_address() == address);
    },
    [&](dialed_atom, uint64_t, caf::error& err) { FAIL(describe(err)); },
    caf::after(std::chrono::seconds{30}) >> [] { FAIL("no answer"); });
  CHECK(path->try_dial(8, "localhost:1", 10s, me) == 0);
  CHECK(path->try_dial(9, "not an address", 10s, me) == 0);
  silent_peer peer;
  auto token = path->try_dial(10, peer.address, 30s, me);
  REQUIRE(token != 0);
  path->cancel(token);
  self->receive(
    [&](dialed_atom, uint64_t id, caf::error& err) {
      CHECK(id == 10);
      CHECK(errc_of(err) == errc::canceled);
    },
    [&](dialed_atom, uint64_t, connection_ptr&) {
      FAIL("a dial to a silent peer connected");
    },
    caf::after(std::chrono::seconds{30}) >> [] { FAIL("no answer"); });
  ::close(listener);
}

TEST_CASE_FIXTURE(net_fixture,
                  "tcp: a dialer with a proxy offers no direct path") {
  tcp_dialer_options options;
  options.proxy = *net_address::parse("127.0.0.1:9050");
  auto proxied = spawn_tcp_dialer(sys, io, names, options);
  caf::scoped_actor self{sys};
  bool answered = false;
  self->request(proxied, 10s, direct_atom::value)
    .receive(
      [&](direct_dialer_ptr& p) {
        answered = true;
        CHECK(p == nullptr);
      },
      [&](caf::error& err) { FAIL(describe(err)); });
  CHECK(answered);
  caf::anon_send_exit(proxied, caf::exit_reason::user_shutdown);
}
