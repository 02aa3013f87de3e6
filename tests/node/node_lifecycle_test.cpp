// The node as a library object: however its actor ends, no part of it runs
// on. Real sockets on 127.0.0.1.

#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "examples/node/node.hpp"
#include "tests/support/loopback_listener.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// Whether a TCP connect to 127.0.0.1:`port` is refused.
bool refused(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  auto sa = test::loopback_v4(port);
  auto rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  ::close(fd);
  return rc != 0;
}

} // namespace

TEST_CASE("node: a node actor that dies outright takes its handler, "
          "listener and dialer with it") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto io = reactor::start();
  REQUIRE(io);
  auto names = std::make_shared<resolver>(1);
  node_setup setup;
  setup.io = *io;
  setup.names = names;
  setup.settings.listen = {*net_address::parse("127.0.0.1:0", true)};
  setup.settings.manager.target_outbound = 0;
  auto n = node::make(sys, std::move(setup));
  REQUIRE(n);
  auto port = n->listening().front().port();
  n->start();
  REQUIRE(!refused(port));
  // kill skips every graceful path, as a failure in the actor would.
  caf::anon_send_exit(n->handle(), caf::exit_reason::kill);
  REQUIRE(n->stop().wait_for(10s) == std::future_status::ready);
  // The listener closes and nothing of the node holds the reactor.
  auto until = std::chrono::steady_clock::now() + 10s;
  while ((!refused(port) || io->use_count() > 1)
         && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(20ms);
  CHECK(refused(port));
  CHECK(io->use_count() == 1);
  (*io)->stop();
}
