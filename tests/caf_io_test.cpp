// A connection the manager delivered can be handed to CAF's own I/O layer.

#include <doctest/doctest.h>

#include <future>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/io/broker.hpp>
#include <caf/io/middleman.hpp>
#include <caf/io/receive_policy.hpp>
#include <caf/io/system_messages.hpp>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/support/loopback_listener.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

TEST_CASE("caf io: a dialed connection is adopted by a broker with "
          "add_scribe") {
  caf::actor_system_config cfg;
  cfg.load<caf::io::middleman>();
  add_error_category(cfg);
  caf::actor_system sys{cfg};
  auto io = reactor::start();
  REQUIRE(io);
  auto lfd = test::listen_like_connmgr(4);
  auto target = local_sockaddr(lfd);
  std::promise<caf::expected<connection_ptr>> dialed;
  (*io)->connect({*target}, reactor::clock::now() + 5s, "peer",
                 [&dialed](caf::expected<connection_ptr> c) {
                   dialed.set_value(std::move(c));
                 });
  auto conn = dialed.get_future().get();
  REQUIRE(conn);
  pollfd p{lfd, POLLIN, 0};
  REQUIRE(::poll(&p, 1, 5000) == 1);
  int peer = ::accept(lfd, nullptr, nullptr);
  REQUIRE(peer >= 0);
  // Ownership moves to CAF: our handle no longer closes the descriptor.
  int fd = (*conn)->release();
  REQUIRE(fd >= 0);
  CHECK((*conn)->closed());
  std::promise<std::string> received;
  auto got = received.get_future();
  sys.middleman().spawn_broker(
    [fd, &received](caf::io::broker* self) -> caf::behavior {
      auto hdl = self->add_scribe(fd);
      self->configure_read(hdl, caf::io::receive_policy::exactly(5));
      return {
        [self, &received](const caf::io::new_data_msg& msg) {
          received.set_value(std::string(msg.buf.begin(), msg.buf.end()));
          self->quit();
        },
      };
    });
  REQUIRE(::write(peer, "hello", 5) == 5);
  REQUIRE(got.wait_for(10s) == std::future_status::ready);
  CHECK(got.get() == "hello");
  ::close(peer);
  ::close(lfd);
}
