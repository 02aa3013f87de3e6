// The connection handle: one close, hooks once, descriptors never leaked.

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/net/connection.hpp"
#include "tests/support/loopback_listener.hpp"

using namespace connmgr;

namespace {

bool fd_open(int fd) {
  return fcntl(fd, F_GETFD) != -1;
}

} // namespace

TEST_CASE("connection: close runs once, hooks run once, from any thread") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  auto conn = std::make_shared<connection>(fds[0], "127.0.0.1:1");
  std::atomic<int> hook_runs{0};
  conn->on_close([&] { ++hook_runs; });
  std::atomic<int> winners{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i)
    threads.emplace_back([&] {
      if (conn->close())
        ++winners;
    });
  for (auto& t : threads)
    t.join();
  CHECK(winners == 1);
  CHECK(hook_runs == 1);
  CHECK(conn->closed());
  CHECK(conn->native_handle() == -1);
  CHECK(!fd_open(fds[0]));
  close(fds[1]);
}

TEST_CASE("connection: a hook added after close runs at once") {
  auto conn = make_memory_connection("127.0.0.1:2");
  conn->close();
  bool ran = false;
  conn->on_close([&] { ran = true; });
  CHECK(ran);
}

TEST_CASE("connection: the last handle going away closes the descriptor") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  int hook_runs = 0;
  {
    auto conn = std::make_shared<connection>(fds[0], "127.0.0.1:3");
    conn->on_close([&] { ++hook_runs; });
    CHECK(fd_open(fds[0]));
  }
  CHECK(hook_runs == 1);
  CHECK(!fd_open(fds[0]));
  close(fds[1]);
}

TEST_CASE("connection: release hands the descriptor over without closing it") {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  int hook_runs = 0;
  int taken = -1;
  {
    auto conn = std::make_shared<connection>(fds[0], "127.0.0.1:4");
    conn->on_close([&] { ++hook_runs; });
    taken = conn->release();
    CHECK(conn->closed());
    CHECK(conn->release() == -1);
    CHECK(!conn->close());
  }
  CHECK(taken == fds[0]);
  CHECK(hook_runs == 1);
  CHECK(fd_open(taken));
  close(taken);
  close(fds[1]);
}

TEST_CASE("connection: local_address is our end of a loopback socket, empty "
          "once closed or without a socket") {
  test::loopback_options o;
  o.backlog = 1;
  o.close_on_exec = false;
  auto [listener, port] = test::open_loopback(o);
  REQUIRE(listener >= 0);
  auto sa = test::loopback_v4(port);
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  sockaddr_in mine{};
  socklen_t len = sizeof(mine);
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&mine), &len) == 0);
  auto conn = std::make_shared<connection>(
    fd, "127.0.0.1:" + std::to_string(ntohs(sa.sin_port)));
  CHECK(conn->local_address()
        == "127.0.0.1:" + std::to_string(ntohs(mine.sin_port)));
  conn->close();
  CHECK(conn->local_address().empty());
  CHECK(make_memory_connection("127.0.0.1:1")->local_address().empty());
  ::close(listener);
}
