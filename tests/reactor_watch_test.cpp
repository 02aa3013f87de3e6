// The peer-gone watch of accepted connections: registered only after a
// short delay, so connections closed at once cost no registration, while a
// peer that leaves at any time is still reported.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/support/loopback_listener.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// Generous: these run on a loaded 2-core machine.
constexpr auto bound = 10s;

struct watch_fixture {
  std::shared_ptr<reactor> io;
  sockaddr_storage target{};
  std::mutex mtx;
  std::vector<connection_ptr> accepted;
  /// Close each accepted connection inside the accept handler.
  std::atomic<bool> close_at_once{false};
  std::promise<void> first;
  std::once_flag once;

  watch_fixture() {
    auto r = reactor::start();
    REQUIRE(r);
    io = *r;
    int lfd = test::listen_like_connmgr(64);
    auto bound_addr = local_sockaddr(lfd);
    REQUIRE(bound_addr);
    target = *bound_addr;
    io->listen(
      lfd,
      [this](std::vector<connection_ptr>& batch) {
        for (auto& c : batch) {
          if (close_at_once)
            c->close();
          std::lock_guard<std::mutex> guard{mtx};
          accepted.push_back(c);
        }
        std::call_once(once, [this] { first.set_value(); });
      },
      true);
  }

  ~watch_fixture() {
    io->stop();
  }

  /// Waits until reactor work posted before has run.
  void sync() {
    std::promise<void> done;
    auto f = done.get_future();
    io->barrier([&done] { done.set_value(); });
    REQUIRE(f.wait_for(bound) == std::future_status::ready);
  }

  /// A blocking socket connected to the listener.
  int connect_raw() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&target),
                      sizeof(sockaddr_in))
            == 0);
    return fd;
  }

  /// The first accepted connection.
  connection_ptr first_accepted() {
    REQUIRE(first.get_future().wait_for(bound) == std::future_status::ready);
    std::lock_guard<std::mutex> guard{mtx};
    return accepted.front();
  }

  /// Waits past the longest time a watch stays unregistered.
  void wait_past_delay() {
    std::this_thread::sleep_for(50ms);
    sync();
  }
};

/// Open descriptors of this process that are timerfds.
int open_timerfds() {
  int n = 0;
  DIR* dir = ::opendir("/proc/self/fd");
  REQUIRE(dir != nullptr);
  while (auto* entry = ::readdir(dir)) {
    char target[256] = {};
    auto path = std::string{"/proc/self/fd/"} + entry->d_name;
    auto len = ::readlink(path.c_str(), target, sizeof(target) - 1);
    if (len > 0 && std::string{target}.find("[timerfd]") != std::string::npos)
      ++n;
  }
  ::closedir(dir);
  return n;
}

/// Records the one peer-gone report of a connection.
struct gone_recorder {
  std::promise<caf::error> reported;
  std::atomic<int> runs{0};

  void attach(const connection_ptr& c) {
    c->on_peer_gone([this](const caf::error& why) {
      if (++runs == 1)
        reported.set_value(why);
    });
  }
};

} // namespace

TEST_CASE("reactor watch: a peer that leaves before its watch is registered "
          "is reported") {
  watch_fixture fx;
  int peer = fx.connect_raw();
  auto conn = fx.first_accepted();
  gone_recorder rec;
  rec.attach(conn);
  ::close(peer); // well within the delay, before any registration
  auto f = rec.reported.get_future();
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  auto why = f.get();
  CHECK(errc_of(why) == errc::connection_closed);
  CHECK(rec.runs == 1);
  CHECK_FALSE(conn->closed()); // reporting is all the reactor does
}

TEST_CASE("reactor watch: a peer that leaves after its watch is registered "
          "is reported once") {
  auto timers_before = open_timerfds();
  watch_fixture fx;
  int peer = fx.connect_raw();
  auto conn = fx.first_accepted();
  gone_recorder rec;
  rec.attach(conn);
  fx.wait_past_delay();
  CHECK(fx.io->stats().watched == 1);
  CHECK(rec.runs == 0); // the registration alone reports nothing
  // Nothing waits any more: the reactor's timer is closed again.
  CHECK(open_timerfds() == timers_before);
  ::close(peer);
  auto f = rec.reported.get_future();
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  fx.sync();
  CHECK(rec.runs == 1);
  CHECK(fx.io->stats().watched == 0);
}

TEST_CASE("reactor watch: a connection closed within the delay is never "
          "registered") {
  watch_fixture fx;
  fx.close_at_once = true;
  int peer = fx.connect_raw();
  auto conn = fx.first_accepted();
  CHECK(conn->closed());
  fx.wait_past_delay();
  // A registered watch of a closed connection stays in the table until a
  // sweep; one that was never registered is dropped when it comes due.
  CHECK(fx.io->stats().watched == 0);
  ::close(peer);
}

TEST_CASE("reactor watch: a released connection's descriptor is never "
          "registered") {
  watch_fixture fx;
  int peer = fx.connect_raw();
  auto conn = fx.first_accepted();
  int fd = conn->release();
  REQUIRE(fd >= 0);
  fx.wait_past_delay();
  // Released before it came due: its registration is never made (a made
  // one would stay in the table until a sweep).
  CHECK(fx.io->stats().watched == 0);
  ::close(fd);
  ::close(peer);
}

TEST_CASE("reactor: an accepted IPv4 connection keeps its address in "
          "binary, printed as its remote address") {
  watch_fixture fx;
  int peer = fx.connect_raw();
  auto conn = fx.first_accepted();
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  REQUIRE(::getsockname(peer, reinterpret_cast<sockaddr*>(&local), &len) == 0);
  auto ip = ntohl(local.sin_addr.s_addr);
  REQUIRE(conn->remote_ipv4());
  CHECK(*conn->remote_ipv4() == ip);
  std::string expected;
  for (int shift = 24; shift >= 0; shift -= 8)
    expected += std::to_string((ip >> shift) & 0xff) + (shift > 0 ? "." : ":");
  expected += std::to_string(ntohs(local.sin_port));
  CHECK(conn->remote_address() == expected);
  // The listener is bound to 127.0.0.1: the local end is its address.
  sockaddr_in theirs{};
  len = sizeof(theirs);
  REQUIRE(::getpeername(peer, reinterpret_cast<sockaddr*>(&theirs), &len) == 0);
  CHECK(conn->local_address()
        == "127.0.0.1:" + std::to_string(ntohs(theirs.sin_port)));
  // In-memory connections carry it too, so simulated peers take the same
  // path; only IPv4 literals have one.
  CHECK(make_memory_connection("1.2.3.4:5")->remote_ipv4() == 0x01020304u);
  CHECK_FALSE(make_memory_connection("[::1]:5")->remote_ipv4());
  CHECK_FALSE(make_memory_connection("seed.example.org:5")->remote_ipv4());
  ::close(peer);
}

TEST_CASE("reactor: a connection accepted on a wildcard listener asks the "
          "socket for its local end, and has none once closed") {
  auto r = reactor::start();
  REQUIRE(r);
  auto io = *r;
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  REQUIRE(lfd >= 0);
  sockaddr_in any{};
  any.sin_family = AF_INET;
  any.sin_addr.s_addr = htonl(INADDR_ANY);
  REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&any), sizeof(any)) == 0);
  REQUIRE(::listen(lfd, 8) == 0);
  socklen_t len = sizeof(any);
  REQUIRE(::getsockname(lfd, reinterpret_cast<sockaddr*>(&any), &len) == 0);
  std::promise<connection_ptr> got;
  std::once_flag once;
  io->listen(
    lfd,
    [&](std::vector<connection_ptr>& batch) {
      std::call_once(once, [&] { got.set_value(batch.front()); });
    },
    false);
  auto to = test::loopback_v4(ntohs(any.sin_port));
  int peer = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(::connect(peer, reinterpret_cast<sockaddr*>(&to), sizeof(to)) == 0);
  auto f = got.get_future();
  REQUIRE(f.wait_for(bound) == std::future_status::ready);
  auto conn = f.get();
  CHECK(conn->local_address()
        == "127.0.0.1:" + std::to_string(ntohs(any.sin_port)));
  conn->close();
  CHECK(conn->local_address().empty());
  ::close(peer);
  io->stop();
}
