// SOCKS5 over real loopback sockets (127.0.0.1 and ::1 only):
// - dials through a real SOCKS5 server, Debian's `microsocks`, run as a child
//   process for the length of one test case;
// - Tor RESOLVE lookups against a scripted fake proxy on a thread of the test,
//   which checks the exact request bytes and answers with whatever bytes the
//   case needs (in pieces, malformed, truncated, or not at all).
// Every wait is bounded; every child process, thread and socket is cleaned up
// by a guard, also when an assertion ends a test case early.
//
// Over 500 lines because each case needs its own scripted proxy; they share
// the guards and helpers above the cases.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/tcp_dialer.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "connmgr/net/socks5.hpp"
#include "connmgr/net/socks5_stream.hpp"
#include "tests/support/timed_dial.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;
using bytes = std::vector<uint8_t>;

// -- small byte and socket helpers --------------------------------------------

bytes text(const std::string& s) {
  return bytes(s.begin(), s.end());
}

bytes cat(std::initializer_list<bytes> parts) {
  bytes out;
  for (auto& p : parts)
    out.insert(out.end(), p.begin(), p.end());
  return out;
}

/// "05 01 00" style, for readable assertion output.
std::string hex(const bytes& data) {
  std::string out;
  char buf[4];
  for (auto b : data) {
    std::snprintf(buf, sizeof(buf), "%02X", static_cast<unsigned>(b));
    if (!out.empty())
      out += ' ';
    out += buf;
  }
  return out;
}

/// Tor's RESOLVE request for `host`, spelled out by hand so the library's
/// encoder is checked against the wire format instead of against itself.
bytes resolve_request_for(const std::string& host) {
  bytes out{0x05, 0xF0, 0x00, 0x03, static_cast<uint8_t>(host.size())};
  out.insert(out.end(), host.begin(), host.end());
  out.push_back(0x00);
  out.push_back(0x00);
  return out;
}

/// A CONNECT request to host name `host`, spelled out by hand as well.
bytes connect_by_name_for(const std::string& host, uint16_t port) {
  bytes out{0x05, 0x01, 0x00, 0x03, static_cast<uint8_t>(host.size())};
  out.insert(out.end(), host.begin(), host.end());
  out.push_back(static_cast<uint8_t>(port >> 8));
  out.push_back(static_cast<uint8_t>(port & 0xFF));
  return out;
}

/// Closes its descriptor when it goes out of scope.
struct fd_guard {
  int fd = -1;
  fd_guard() = default;
  explicit fd_guard(int x) : fd(x) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

enum class wait_result { ready, timeout, stopped };

/// Waits until `fd` reports `events` (or an error/hang-up), `timeout` passes,
/// or `stop_fd` (if any) becomes readable.
wait_result wait_on(int fd, short events, ms timeout, int stop_fd = -1) {
  const auto deadline = steady::now() + timeout;
  for (;;) {
    pollfd p[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
    if (left < 0ms)
      left = 0ms;
    const nfds_t count = stop_fd >= 0 ? nfds_t{2} : nfds_t{1};
    const int n = ::poll(p, count, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR)
      return wait_result::timeout;
    if (n > 0 && stop_fd >= 0 && p[1].revents != 0)
      return wait_result::stopped;
    if (n > 0 && p[0].revents != 0)
      return wait_result::ready;
    if (steady::now() >= deadline)
      return wait_result::timeout;
  }
}

/// Writes all of `data` to a (possibly non-blocking) socket within `timeout`.
bool send_all(int fd, const bytes& data, ms timeout = 5s) {
  const auto deadline = steady::now() + timeout;
  size_t done = 0;
  while (done < data.size()) {
    auto n = ::send(fd, data.data() + done, data.size() - done,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
      if (left <= 0ms || wait_on(fd, POLLOUT, left) != wait_result::ready)
        return false;
      continue;
    }
    return false;
  }
  return true;
}

/// Reads until `n` bytes arrived, the peer closed, `timeout` passed or
/// `stop_fd` fired; returns what arrived.
bytes recv_exact(int fd, size_t n, ms timeout = 10s, int stop_fd = -1) {
  const auto deadline = steady::now() + timeout;
  bytes out;
  uint8_t buf[512];
  while (out.size() < n) {
    auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
    if (left < 0ms || wait_on(fd, POLLIN, left, stop_fd) != wait_result::ready)
      break;
    auto got =
      ::recv(fd, buf, std::min(sizeof(buf), n - out.size()), MSG_DONTWAIT);
    if (got == 0)
      break; // closed
    if (got < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        continue;
      break;
    }
    out.insert(out.end(), buf, buf + got);
  }
  return out;
}

net_address loopback(int family, uint16_t port) {
  auto text_form = family == AF_INET6 ? "[::1]:" + std::to_string(port)
                                      : "127.0.0.1:" + std::to_string(port);
  auto addr = net_address::parse(text_form, true);
  REQUIRE(addr);
  return *addr;
}

/// A listening loopback socket (non-blocking, close-on-exec), or -1.
int open_listener(const net_address& addr, int backlog = 16) {
  sockaddr_storage sa{};
  auto len = addr.to_sockaddr(sa);
  if (!len)
    return -1;
  auto fd = open_tcp_listener(sa, *len, backlog);
  return fd ? *fd : -1;
}

uint16_t bound_port(int fd) {
  auto sa = local_sockaddr(fd);
  if (!sa)
    return 0;
  if (sa->ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6&>(*sa).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(*sa).sin_port);
}

/// The remote port of a connected socket.
uint16_t peer_port(int fd) {
  sockaddr_storage sa{};
  socklen_t len = sizeof(sa);
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return 0;
  if (sa.ss_family == AF_INET6)
    return ntohs(reinterpret_cast<const sockaddr_in6&>(sa).sin6_port);
  return ntohs(reinterpret_cast<const sockaddr_in&>(sa).sin_port);
}

/// A loopback port nobody listens on right now (bound, read, closed).
uint16_t unused_port(int family) {
  fd_guard fd{open_listener(loopback(family, 0))};
  return fd.fd >= 0 ? bound_port(fd.fd) : 0;
}

/// A non-blocking client socket connected to `addr` within `timeout`, or -1.
int connect_to(const net_address& addr, ms timeout) {
  sockaddr_storage sa{};
  auto len = addr.to_sockaddr(sa);
  if (!len)
    return -1;
  int fd =
    ::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), *len) == 0)
    return fd;
  if (errno == EINPROGRESS
      && wait_on(fd, POLLOUT, timeout) == wait_result::ready) {
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err == 0)
      return fd;
  }
  ::close(fd);
  return -1;
}

/// Proves a socket pair is one real tunnel: bytes go through both ways.
void check_tunnel(int client_fd, int server_fd) {
  const auto ping = text("ping through the socks5 tunnel");
  REQUIRE(send_all(client_fd, ping));
  CHECK(hex(recv_exact(server_fd, ping.size())) == hex(ping));
  const auto pong = text("pong back");
  REQUIRE(send_all(server_fd, pong));
  CHECK(hex(recv_exact(client_fd, pong.size())) == hex(pong));
}

// -- an in-test target ---------------------------------------------------------

/// The place a tunneled dial should end up: listening on 127.0.0.1 (and, when
/// asked, on ::1 at the same port, so a name resolving to either works) or on
/// ::1 alone.
struct target_listener {
  std::vector<int> fds;
  uint16_t port = 0;

  enum class where { ipv4, ipv6, both };

  explicit target_listener(where w = where::ipv4) {
    for (int attempt = 0; attempt < 10 && port == 0; ++attempt) {
      const int first_family = w == where::ipv6 ? AF_INET6 : AF_INET;
      int first = open_listener(loopback(first_family, 0));
      if (first < 0)
        continue;
      auto p = bound_port(first);
      if (w == where::both) {
        int second = open_listener(loopback(AF_INET6, p));
        if (second < 0) {
          ::close(first); // ::1 port taken: try another pair
          continue;
        }
        fds.push_back(second);
      }
      fds.push_back(first);
      port = p;
    }
  }

  ~target_listener() {
    for (auto fd : fds)
      ::close(fd);
  }

  target_listener(const target_listener&) = delete;
  target_listener& operator=(const target_listener&) = delete;

  /// The next connection on any of the sockets, or -1 after `timeout`.
  int accept_one(ms timeout = 10s) {
    const auto deadline = steady::now() + timeout;
    while (steady::now() < deadline) {
      std::vector<pollfd> p;
      for (auto fd : fds)
        p.push_back(pollfd{fd, POLLIN, 0});
      auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
      if (::poll(p.data(), p.size(), static_cast<int>(left.count())) <= 0)
        continue;
      for (auto& entry : p) {
        if (entry.revents == 0)
          continue;
        int fd =
          ::accept4(entry.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0)
          return fd;
      }
    }
    return -1;
  }
};

/// A loopback listener whose one-slot accept queue is full: the kernel drops
/// further SYNs, so connects to it hang until someone gives up.
struct silent_target {
  fd_guard listener;
  std::vector<int> fillers;
  uint16_t port = 0;
  bool ok = false;

  silent_target() : listener(open_listener(loopback(AF_INET, 0), 0)) {
    if (listener.fd < 0)
      return;
    port = bound_port(listener.fd);
    sockaddr_storage sa{};
    auto len = loopback(AF_INET, port).to_sockaddr(sa);
    for (int i = 0; i < 16 && !ok; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (c < 0)
        return;
      ::connect(c, reinterpret_cast<const sockaddr*>(&sa), *len);
      fillers.push_back(c);
      ok = wait_on(c, POLLOUT, 500ms) == wait_result::timeout;
    }
  }

  ~silent_target() {
    for (auto fd : fillers)
      ::close(fd);
  }
};

// -- microsocks as a child process ---------------------------------------------

/// The descriptors open in this process right now (read before a fork, since
/// the child may not allocate).
std::vector<int> open_descriptors() {
  std::vector<int> out;
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    while (auto* entry = ::readdir(dir)) {
      if (entry->d_name[0] >= '0' && entry->d_name[0] <= '9')
        out.push_back(std::atoi(entry->d_name));
    }
    ::closedir(dir);
  }
  return out;
}

/// Runs `/usr/bin/microsocks` on a free loopback port until destroyed; then
/// kills and reaps it. The child also dies with this thread
/// (PR_SET_PDEATHSIG), should the test process crash.
class microsocks_process {
public:
  static constexpr const char* binary = "/usr/bin/microsocks";

  explicit microsocks_process(
    int family = AF_INET,
    std::optional<socks5::credentials> creds = std::nullopt)
    : family_(family), creds_(std::move(creds)) {
    if (::access(binary, X_OK) != 0) {
      failure_ = std::string{binary}
        + " is missing (apt-get install "
          "microsocks)";
      return;
    }
    for (int attempt = 0; attempt < 5 && pid_ < 0; ++attempt)
      try_start();
  }

  ~microsocks_process() {
    if (pid_ > 0)
      kill_and_reap(pid_);
  }

  microsocks_process(const microsocks_process&) = delete;
  microsocks_process& operator=(const microsocks_process&) = delete;

  bool running() const {
    return pid_ > 0;
  }

  /// Why it did not start (every attempt), empty when running.
  const std::string& failure() const {
    return failure_;
  }

  net_address address() const {
    return loopback(family_, port_);
  }

private:
  enum class startup { ready, exited, foreign, slow };

  static void kill_and_reap(pid_t pid) {
    ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      // retry
    }
  }

  void try_start() {
    auto port = unused_port(family_);
    if (port == 0) {
      failure_ += "[no free port] ";
      return;
    }
    std::vector<std::string> args{binary, "-i",
                                  family_ == AF_INET6 ? "::1" : "127.0.0.1",
                                  "-p", std::to_string(port)};
    if (creds_) {
      args.insert(args.end(), {"-u", creds_->user, "-P", creds_->password});
    }
    auto pid = spawn(args);
    if (pid < 0) {
      failure_ += "[fork: " + std::string{std::strerror(errno)} + "] ";
      return;
    }
    switch (await_ready(pid, port)) {
      case startup::ready:
        pid_ = pid;
        port_ = port;
        failure_.clear();
        return;
      case startup::exited:
        failure_ += "[port " + std::to_string(port) + ": exited at start] ";
        return; // already reaped
      case startup::foreign:
        failure_ +=
          "[port " + std::to_string(port) + ": something else answers] ";
        break;
      case startup::slow:
        failure_ += "[port " + std::to_string(port) + ": not ready in 10 s] ";
        break;
    }
    kill_and_reap(pid);
  }

  static pid_t spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    // Everything the child needs is prepared here: between fork and exec a
    // multi-threaded parent's child may only make async-signal-safe calls.
    const auto inherited = open_descriptors();
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid != 0)
      return pid;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(126);
    int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
      ::dup2(null_fd, STDIN_FILENO);
      ::dup2(null_fd, STDOUT_FILENO);
      ::dup2(null_fd, STDERR_FILENO);
    }
    // No socket of the test (say, a listener it just closed on its side)
    // may live on in the proxy.
    for (int fd : inherited)
      if (fd > STDERR_FILENO)
        ::close(fd);
    if (null_fd > STDERR_FILENO)
      ::close(null_fd);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }

  /// Polls until the child answers a SOCKS5 greeting on `port`.
  startup await_ready(pid_t pid, uint16_t port) {
    const auto deadline = steady::now() + 10s;
    const auto addr = loopback(family_, port);
    const bytes greeting{0x05, 0x01, creds_ ? uint8_t{0x02} : uint8_t{0x00}};
    while (steady::now() < deadline) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid)
        return startup::exited;
      fd_guard probe{connect_to(addr, 1s)};
      if (probe.fd >= 0) {
        // Something listens: make sure it is our SOCKS5 server, not a
        // stranger that took the port between our check and its bind.
        if (!send_all(probe.fd, greeting, 2s))
          return startup::foreign;
        auto reply = recv_exact(probe.fd, 2, 2s);
        if (reply.size() == 2 && reply[0] == 0x05
            && ::waitpid(pid, &status, WNOHANG) == 0)
          return startup::ready;
        return startup::foreign;
      }
      std::this_thread::sleep_for(10ms); // poll interval, bounded above
    }
    return startup::slow;
  }

  int family_;
  std::optional<socks5::credentials> creds_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string failure_;
};

// -- a scripted fake proxy -------------------------------------------------------

/// A one-connection fake SOCKS5 proxy on a thread of its own: it accepts one
/// connection within `accept_window`, then runs `script` on it. The script
/// records mismatches as faults (never asserting off the test thread); every
/// read it makes is bounded, and the destructor aborts whatever is still
/// waiting and joins.
class scripted_proxy {
public:
  using script = std::function<void(scripted_proxy&, int)>;

  explicit scripted_proxy(script s, int family = AF_INET,
                          ms accept_window = 10s, size_t connections = 1)
    : listener_(open_listener(loopback(family, 0))) {
    REQUIRE(::pipe2(wake_, O_CLOEXEC) == 0);
    REQUIRE(listener_.fd >= 0);
    address_ = loopback(family, bound_port(listener_.fd));
    thread_ = std::thread{[this, s = std::move(s), accept_window, connections] {
      for (size_t i = 0; i < connections; ++i)
        if (!serve_one(s, accept_window))
          return;
    }};
  }

  ~scripted_proxy() {
    if (wake_[1] >= 0) {
      [[maybe_unused]] auto n = ::write(wake_[1], "x", 1);
    }
    join();
    for (auto fd : wake_)
      if (fd >= 0)
        ::close(fd);
  }

  scripted_proxy(const scripted_proxy&) = delete;
  scripted_proxy& operator=(const scripted_proxy&) = delete;

  const net_address& address() const {
    return address_;
  }

  /// Waits for the script to end (its own waits are bounded).
  void join() {
    if (thread_.joinable())
      thread_.join();
  }

  bool accepted() const {
    return accepted_.load() > 0;
  }

  size_t accepted_count() const {
    return accepted_.load();
  }

  /// Every fault the script recorded, one per line; empty if all went as
  /// scripted. Call after `join`.
  std::string faults() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return faults_;
  }

  // -- for scripts -------------------------------------------------------------

  void fault(const std::string& what) {
    std::lock_guard<std::mutex> guard{mtx_};
    faults_ += what + "\n";
  }

  /// Reads exactly `want.size()` bytes and compares.
  bool expect(int fd, const bytes& want, const std::string& what) {
    auto got = recv_exact(fd, want.size(), 10s, wake_[0]);
    if (got == want)
      return true;
    fault(what + ": got [" + hex(got) + "], expected [" + hex(want) + "]");
    return false;
  }

  bool send(int fd, const bytes& data) {
    if (send_all(fd, data))
      return true;
    fault("could not send [" + hex(data) + "]");
    return false;
  }

  /// One byte per write, `pause` between writes (no Nagle: each byte is a
  /// segment of its own).
  bool send_bytewise(int fd, const bytes& data, ms pause) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (auto b : data) {
      if (!send(fd, bytes{b}))
        return false;
      std::this_thread::sleep_for(pause); // pacing, not waiting
    }
    return true;
  }

  /// Waits until the client closes the connection (any further data is a
  /// fault); false after `timeout`.
  bool await_close(int fd, ms timeout = 10s) {
    const auto deadline = steady::now() + timeout;
    uint8_t buf[64];
    for (;;) {
      auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
      if (left < 0ms
          || wait_on(fd, POLLIN, left, wake_[0]) != wait_result::ready) {
        fault("the client did not close the connection");
        return false;
      }
      auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno == ECONNRESET))
        return true;
      if (n > 0)
        fault("unexpected bytes from the client: [" + hex(bytes(buf, buf + n))
              + "]");
    }
  }

  /// What a Tor client does first: the no-auth greeting (answered with
  /// `05 00`), then the RESOLVE request for `host`.
  bool tor_prologue(int fd, const std::string& host) {
    return expect(fd, {0x05, 0x01, 0x00}, "greeting") && send(fd, {0x05, 0x00})
      && expect(fd, resolve_request_for(host), "RESOLVE request");
  }

private:
  /// Accepts one connection within `accept_window` and runs the script on
  /// it; false if nobody came (which some cases want) or on a stop.
  bool serve_one(const script& s, ms accept_window) {
    const auto deadline = steady::now() + accept_window;
    for (;;) {
      auto left = std::chrono::duration_cast<ms>(deadline - steady::now());
      if (left < 0ms
          || wait_on(listener_.fd, POLLIN, left, wake_[0])
            != wait_result::ready)
        return false;
      fd_guard conn{::accept4(listener_.fd, nullptr, nullptr,
                              SOCK_NONBLOCK | SOCK_CLOEXEC)};
      if (conn.fd < 0)
        continue;
      ++accepted_;
      s(*this, conn.fd);
      return true; // closing the connection is part of every script's end
    }
  }

  fd_guard listener_;
  int wake_[2] = {-1, -1};
  net_address address_;
  std::atomic<size_t> accepted_{0};
  mutable std::mutex mtx_;
  std::string faults_;
  std::thread thread_;
};

// -- the fixture -----------------------------------------------------------------

struct live_fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys;
  std::shared_ptr<reactor> io;
  std::shared_ptr<resolver> names = std::make_shared<resolver>(2);
  std::vector<dialer_actor> dialers;

  live_fixture() : sys(init(cfg)) {
    auto r = reactor::start();
    REQUIRE(r);
    io = *r;
  }

  static caf::actor_system_config& init(caf::actor_system_config& c) {
    add_error_category(c);
    return c;
  }

  ~live_fixture() {
    for (auto& d : dialers)
      caf::anon_send_exit(d, caf::exit_reason::user_shutdown);
  }

  /// A TCP dialer that goes through the SOCKS5 proxy at `proxy`.
  dialer_actor proxy_dialer(const net_address& proxy, bool isolate = false) {
    tcp_dialer_options opts;
    opts.proxy = proxy;
    opts.isolate_streams = isolate;
    dialers.push_back(spawn_tcp_dialer(sys, io, names, opts));
    return dialers.back();
  }

  /// One dial; returns the result and how long it took.
  std::pair<caf::expected<connection_ptr>, steady::duration>
  dial(const dialer_actor& dialer, const std::string& address,
       caf::timespan timeout = std::chrono::seconds{10}) {
    return test::timed_dial(sys, dialer, address, timeout);
  }

  /// Runs `fn` on the reactor thread after all work posted before it, and
  /// waits for that (bounded).
  void drain_reactor() {
    auto done = std::make_shared<std::promise<void>>();
    auto ready = done->get_future();
    io->barrier([done] { done->set_value(); });
    REQUIRE(ready.wait_for(10s) == std::future_status::ready);
  }

  struct lookup {
    caf::expected<net_address> result{caf::error{}};
    steady::duration took{};
    int calls = 0;
  };

  /// One `tor_resolve` through `proxy` with a deadline of `budget` from now;
  /// waits for its callback (bounded), then counts how often it ran.
  lookup resolve(const net_address& proxy, const std::string& host,
                 ms budget = 10s) {
    using outcome = std::pair<caf::expected<net_address>, steady::time_point>;
    struct shared {
      std::promise<outcome> promise;
      std::atomic<int> calls{0};
    };
    auto st = std::make_shared<shared>();
    auto answer = st->promise.get_future();
    const auto t0 = steady::now();
    tor_resolve(*io, proxy, host, t0 + budget,
                [st](caf::expected<net_address> r) {
                  if (st->calls++ == 0)
                    st->promise.set_value(outcome{std::move(r), steady::now()});
                });
    REQUIRE_MESSAGE(answer.wait_for(budget + 10s) == std::future_status::ready,
                    "tor_resolve never called back");
    auto [result, at] = answer.get();
    lookup out;
    out.result = std::move(result);
    out.took = at - t0;
    drain_reactor(); // a second callback would have run by now
    out.calls = st->calls.load();
    return out;
  }
};

std::string describe_result(const caf::expected<connection_ptr>& r) {
  return r ? "connected" : describe(r.error());
}

std::string describe_result(const caf::expected<net_address>& r) {
  return r ? r->to_string() : describe(r.error());
}

bool mentions(const caf::error& err, const std::string& what) {
  return describe(err).find(what) != std::string::npos;
}

} // namespace

// -- through microsocks ----------------------------------------------------------

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a dial through microsocks tunnels bytes both "
                  "ways to the target") {
  microsocks_process proxy;
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  target_listener target;
  REQUIRE(target.port != 0);
  auto dialer = proxy_dialer(proxy.address());
  auto address = "127.0.0.1:" + std::to_string(target.port);
  auto [result, took] = dial(dialer, address);
  REQUIRE_MESSAGE(result, describe_result(result));
  auto& conn = *result;
  CHECK(conn->remote_address() == address);
  REQUIRE(conn->native_handle() >= 0);
  // The socket leads to the proxy, yet what we write comes out at the target.
  CHECK(peer_port(conn->native_handle()) == proxy.address().port());
  fd_guard accepted{target.accept_one()};
  REQUIRE(accepted.fd >= 0);
  check_tunnel(conn->native_handle(), accepted.fd);
  // Closing our end reaches the target through the proxy as well.
  const auto closed_at = steady::now();
  conn->close();
  CHECK(recv_exact(accepted.fd, 1).empty());
  CHECK(steady::now() - closed_at < 5s); // end of stream, not a timeout
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a dial through microsocks to a closed port "
                  "fails as refused, as microsocks reports it") {
  microsocks_process proxy;
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  auto port = unused_port(AF_INET);
  REQUIRE(port != 0);
  auto dialer = proxy_dialer(proxy.address());
  auto [result, took] = dial(dialer, "127.0.0.1:" + std::to_string(port));
  REQUIRE(!result);
  // microsocks 1.0.3 answers ECONNREFUSED with reply code 0x05.
  CHECK_MESSAGE(errc_of(result.error()) == errc::refused,
                describe(result.error()));
  CHECK(mentions(result.error(), "0x05"));
  CHECK(took < 10s);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a dial through microsocks to a silent target "
                  "times out at its deadline") {
  microsocks_process proxy;
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  silent_target peer;
  REQUIRE(peer.ok);
  auto dialer = proxy_dialer(proxy.address());
  auto [result, took] = dial(dialer, "127.0.0.1:" + std::to_string(peer.port),
                             std::chrono::milliseconds{300});
  REQUIRE(!result);
  CHECK_MESSAGE(errc_of(result.error()) == errc::timed_out,
                describe(result.error()));
  CHECK(took >= 300ms);
  CHECK(took < 300ms + 2s); // generous: a loaded 2-core machine
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: microsocks requiring a password rejects the "
                  "random credentials of an isolating dialer") {
  microsocks_process proxy{AF_INET, socks5::credentials{"user", "pass"}};
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  target_listener target;
  REQUIRE(target.port != 0);
  auto dialer = proxy_dialer(proxy.address(), true);
  auto [result, took] =
    dial(dialer, "127.0.0.1:" + std::to_string(target.port));
  REQUIRE(!result);
  CHECK_MESSAGE(errc_of(result.error()) == errc::proxy_failed,
                describe(result.error()));
  CHECK(mentions(result.error(), "authentication"));
  // Rejected before any CONNECT: the target never saw a connection.
  CHECK(target.accept_one(200ms) < 0);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: microsocks requiring a password refuses a "
                  "dialer without credentials, which never falls back") {
  microsocks_process proxy{AF_INET, socks5::credentials{"user", "pass"}};
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  target_listener target;
  REQUIRE(target.port != 0);
  auto dialer = proxy_dialer(proxy.address(), false);
  auto [result, took] =
    dial(dialer, "127.0.0.1:" + std::to_string(target.port));
  REQUIRE(!result);
  CHECK_MESSAGE(errc_of(result.error()) == errc::proxy_failed,
                describe(result.error()));
  CHECK(mentions(result.error(), "no acceptable method"));
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a reactor connect with microsocks' own "
                  "credentials authenticates and tunnels bytes") {
  microsocks_process proxy{AF_INET, socks5::credentials{"user", "pass"}};
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  target_listener target;
  REQUIRE(target.port != 0);
  auto run = [&](const socks5::credentials& creds) {
    auto hs = socks5::client_handshake::connect(
      socks5::address::ipv4({127, 0, 0, 1}, target.port), creds);
    REQUIRE(hs);
    auto stream = std::make_shared<socks5_stream>(std::move(*hs));
    sockaddr_storage sa{};
    REQUIRE(proxy.address().to_sockaddr(sa));
    auto done = std::make_shared<std::promise<caf::expected<connection_ptr>>>();
    auto answer = done->get_future();
    io->connect(
      {sa}, reactor::clock::now() + 10s, proxy.address().to_string(),
      [done](caf::expected<connection_ptr> conn) {
        done->set_value(std::move(conn));
      },
      stream);
    REQUIRE(answer.wait_for(20s) == std::future_status::ready);
    return answer.get();
  };
  SUBCASE("the right password") {
    auto conn = run(socks5::credentials{"user", "pass"});
    REQUIRE_MESSAGE(conn, describe_result(conn));
    REQUIRE((*conn)->native_handle() >= 0);
    fd_guard accepted{target.accept_one()};
    REQUIRE(accepted.fd >= 0);
    check_tunnel((*conn)->native_handle(), accepted.fd);
  }
  SUBCASE("a wrong password") {
    auto conn = run(socks5::credentials{"user", "wrong"});
    REQUIRE(!conn);
    CHECK_MESSAGE(errc_of(conn.error()) == errc::proxy_failed,
                  describe(conn.error()));
    CHECK(mentions(conn.error(), "authentication"));
  }
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a host name target through microsocks is "
                  "resolved by the proxy and connects") {
  microsocks_process proxy;
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  // "localhost" may be 127.0.0.1 or ::1 to microsocks: listen on both.
  target_listener target{target_listener::where::both};
  REQUIRE(target.port != 0);
  auto dialer = proxy_dialer(proxy.address());
  auto address = "localhost:" + std::to_string(target.port);
  auto [result, took] = dial(dialer, address);
  REQUIRE_MESSAGE(result, describe_result(result));
  CHECK((*result)->remote_address() == address);
  fd_guard accepted{target.accept_one()};
  REQUIRE(accepted.fd >= 0);
  check_tunnel((*result)->native_handle(), accepted.fd);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: an IPv6 target through microsocks on ::1 "
                  "connects") {
  microsocks_process proxy{AF_INET6};
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  target_listener target{target_listener::where::ipv6};
  REQUIRE(target.port != 0);
  auto dialer = proxy_dialer(proxy.address());
  auto [result, took] = dial(dialer, "[::1]:" + std::to_string(target.port));
  REQUIRE_MESSAGE(result, describe_result(result));
  fd_guard accepted{target.accept_one()};
  REQUIRE(accepted.fd >= 0);
  check_tunnel((*result)->native_handle(), accepted.fd);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: microsocks does not know RESOLVE, so "
                  "tor_resolve fails with proxy_failed") {
  microsocks_process proxy;
  REQUIRE_MESSAGE(proxy.running(), proxy.failure());
  auto r = resolve(proxy.address(), "localhost");
  REQUIRE(!r.result);
  // microsocks answers 0x07, "command not supported".
  CHECK_MESSAGE(errc_of(r.result.error()) == errc::proxy_failed,
                describe(r.result.error()));
  CHECK(mentions(r.result.error(), "0x07"));
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: an isolating dialer offers only username/"
                  "password and sends fresh random credentials on every "
                  "dial") {
  auto seen = std::make_shared<std::vector<socks5::credentials>>();
  const uint16_t port = 8333;
  scripted_proxy fake{
    [seen, port](scripted_proxy& p, int fd) {
      // Only method 0x02 is offered: no-auth next to it would let a proxy
      // fall back and mix circuits.
      if (!p.expect(fd, {0x05, 0x01, 0x02}, "greeting")
          || !p.send(fd, {0x05, 0x02}))
        return;
      auto field = [&](const char* what) -> std::optional<std::string> {
        auto len = recv_exact(fd, 1);
        if (len.size() != 1 || len[0] == 0) {
          p.fault(std::string{"no "} + what + " length");
          return std::nullopt;
        }
        auto value = recv_exact(fd, len[0]);
        if (value.size() != len[0]) {
          p.fault(std::string{"short "} + what);
          return std::nullopt;
        }
        return std::string(value.begin(), value.end());
      };
      if (!p.expect(fd, {0x01}, "RFC 1929 version"))
        return;
      auto user = field("user name");
      auto pass = user ? field("password") : std::nullopt;
      if (!pass)
        return;
      seen->push_back(socks5::credentials{*user, *pass});
      if (p.send(fd, {0x01, 0x00})
          && p.expect(fd, {0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, 0x20, 0x8D},
                      "CONNECT request")
          && p.send(fd, {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))
        p.await_close(fd);
    },
    AF_INET, 10s, 2};
  auto dialer = proxy_dialer(fake.address(), true);
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    auto [result, took] = dial(dialer, "127.0.0.1:" + std::to_string(port));
    REQUIRE_MESSAGE(result, describe_result(result));
    (*result)->close();
  }
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE(seen->size() == 2);
  auto is_token = [](const std::string& s) {
    return s.size() == 16
      && s.find_first_not_of("0123456789abcdef") == std::string::npos;
  };
  for (auto& c : *seen) {
    CHECK(is_token(c.user));
    CHECK(is_token(c.password));
  }
  CHECK((*seen)[0].user != (*seen)[1].user);
  CHECK((*seen)[0].password != (*seen)[1].password);
}

// -- host names go to the proxy as names ---------------------------------------

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a host name target reaches the proxy as a "
                  "domain and is never resolved locally") {
  // The first name cannot resolve anywhere: a local lookup would fail the dial.
  for (std::string name : {"no-such-host.invalid", "localhost"}) {
    CAPTURE(name);
    const uint16_t port = 8333;
    scripted_proxy fake{[name, port](scripted_proxy& p, int fd) {
      if (!p.expect(fd, {0x05, 0x01, 0x00}, "greeting")
          || !p.send(fd, {0x05, 0x00})
          || !p.expect(fd, connect_by_name_for(name, port), "CONNECT request")
          || !p.send(fd, {0x05, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))
        return;
      // Now a plain stream: echo one message back.
      if (p.expect(fd, text("ping"), "tunneled bytes"))
        p.send(fd, text("pong"));
      p.await_close(fd);
    }};
    auto dialer = proxy_dialer(fake.address());
    auto [result, took] = dial(dialer, name + ":" + std::to_string(port));
    REQUIRE_MESSAGE(result, describe_result(result));
    REQUIRE(send_all((*result)->native_handle(), text("ping")));
    CHECK(hex(recv_exact((*result)->native_handle(), 4)) == hex(text("pong")));
    (*result)->close();
    fake.join();
    CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  }
}

// -- Tor RESOLVE against a scripted proxy -----------------------------------------

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: tor_resolve sends the exact RESOLVE request "
                  "and returns an IPv4 answer") {
  scripted_proxy fake{[](scripted_proxy& p, int fd) {
    if (p.tor_prologue(fd, "seed.example.org")
        && p.send(fd, {0x05, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0x00, 0x00}))
      p.await_close(fd); // the client hangs up once it has the answer
  }};
  auto r = resolve(fake.address(), "seed.example.org");
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE_MESSAGE(r.result, describe_result(r.result));
  CHECK(r.result->type() == net_address::kind::ipv4);
  CHECK(r.result->host() == "1.2.3.4");
  CHECK(r.result->port() == 0);
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: tor_resolve through a proxy on ::1 returns an "
                  "IPv6 answer") {
  scripted_proxy fake{[](scripted_proxy& p, int fd) {
                        if (p.tor_prologue(fd, "seed.example.org")
                            && p.send(fd,
                                      cat({{0x05, 0x00, 0x00, 0x04},
                                           {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0,
                                            0, 0, 0, 0, 0, 0, 0, 0x01},
                                           {0x00, 0x00}})))
                          p.await_close(fd);
                      },
                      AF_INET6};
  auto r = resolve(fake.address(), "seed.example.org");
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE_MESSAGE(r.result, describe_result(r.result));
  CHECK(r.result->type() == net_address::kind::ipv6);
  CHECK(r.result->host() == "2001:db8::1");
  CHECK(r.result->port() == 0);
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: tor_resolve copes with replies arriving one "
                  "byte at a time") {
  scripted_proxy fake{[](scripted_proxy& p, int fd) {
    if (p.expect(fd, {0x05, 0x01, 0x00}, "greeting")
        && p.send_bytewise(fd, {0x05, 0x00}, 5ms)
        && p.expect(fd, resolve_request_for("slow.example.org"),
                    "RESOLVE request")
        && p.send_bytewise(fd, {0x05, 0x00, 0x00, 0x01, 10, 20, 30, 40, 0, 0},
                           5ms))
      p.await_close(fd);
  }};
  auto r = resolve(fake.address(), "slow.example.org");
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE_MESSAGE(r.result, describe_result(r.result));
  CHECK(r.result->host() == "10.20.30.40");
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a RESOLVE answered with status 4 fails with "
                  "resolve_failed") {
  scripted_proxy fake{[](scripted_proxy& p, int fd) {
    if (p.tor_prologue(fd, "unknown.example.org")
        && p.send(fd, {0x05, 0x04, 0x00, 0x01, 0, 0, 0, 0, 0, 0}))
      p.await_close(fd);
  }};
  auto r = resolve(fake.address(), "unknown.example.org");
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE(!r.result);
  CHECK_MESSAGE(errc_of(r.result.error()) == errc::resolve_failed,
                describe(r.result.error()));
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a malformed RESOLVE reply fails with "
                  "proxy_failed") {
  struct malformed {
    const char* label;
    bytes reply;
    const char* mention;
  };
  const std::vector<malformed> cases{
    {"version byte 4",
     {0x04, 0x00, 0x00, 0x01, 1, 2, 3, 4, 0, 0},
     "version byte 0x04"},
    {"unknown address type",
     {0x05, 0x00, 0x00, 0x07, 1, 2, 3, 4, 0, 0},
     "address type 0x07"},
    {"host name answer",
     cat({{0x05, 0x00, 0x00, 0x03, 0x04}, text("host"), {0x00, 0x00}}),
     "host name"},
  };
  for (auto& c : cases) {
    CAPTURE(c.label);
    auto reply = c.reply;
    scripted_proxy fake{[reply](scripted_proxy& p, int fd) {
      if (p.tor_prologue(fd, "bad.example.org") && p.send(fd, reply))
        p.await_close(fd);
    }};
    auto r = resolve(fake.address(), "bad.example.org");
    fake.join();
    CHECK_MESSAGE(fake.faults().empty(), fake.faults());
    REQUIRE(!r.result);
    CHECK_MESSAGE(errc_of(r.result.error()) == errc::proxy_failed,
                  describe(r.result.error()));
    CHECK_MESSAGE(mentions(r.result.error(), c.mention),
                  describe(r.result.error()));
    CHECK(r.calls == 1);
  }
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a truncated RESOLVE reply followed by silence "
                  "times out at the deadline") {
  scripted_proxy fake{[](scripted_proxy& p, int fd) {
    // 6 of the 10 bytes, then nothing: only the deadline ends this.
    if (p.tor_prologue(fd, "stuck.example.org")
        && p.send(fd, {0x05, 0x00, 0x00, 0x01, 1, 2}))
      p.await_close(fd); // the client must hang up at its deadline
  }};
  auto r = resolve(fake.address(), "stuck.example.org", 300ms);
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE(!r.result);
  CHECK_MESSAGE(errc_of(r.result.error()) == errc::timed_out,
                describe(r.result.error()));
  CHECK(r.took >= 300ms);
  CHECK(r.took < 300ms + 2s); // generous: a loaded 2-core machine
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a proxy closing mid-reply fails the RESOLVE "
                  "with proxy_failed") {
  scripted_proxy fake{[](scripted_proxy& p, int fd) {
    // Half a reply, then the script ends and the connection closes.
    if (p.tor_prologue(fd, "gone.example.org"))
      p.send(fd, {0x05, 0x00, 0x00, 0x01, 1});
  }};
  auto t0 = steady::now();
  auto r = resolve(fake.address(), "gone.example.org");
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE(!r.result);
  CHECK_MESSAGE(errc_of(r.result.error()) == errc::proxy_failed,
                describe(r.result.error()));
  CHECK(mentions(r.result.error(), "closed"));
  // The close ends it, not the 10 s deadline.
  CHECK(steady::now() - t0 < 5s);
  CHECK(r.calls == 1);
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a 256-byte name is rejected before anything "
                  "is sent") {
  scripted_proxy fake{
    [](scripted_proxy& p, int) {
      p.fault("a connection arrived for a name that should be refused");
    },
    AF_INET, 500ms};
  const auto started = io->stats().connects_started;
  auto r = resolve(fake.address(), std::string(256, 'a'));
  REQUIRE(!r.result);
  CHECK_MESSAGE(errc_of(r.result.error()) == errc::invalid_address,
                describe(r.result.error()));
  CHECK(mentions(r.result.error(), "256"));
  CHECK(r.took < 1s); // at once, not at some deadline
  CHECK(r.calls == 1);
  CHECK(io->stats().connects_started == started);
  fake.join(); // its accept window closes unused
  CHECK(!fake.accepted());
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
}

TEST_CASE_FIXTURE(live_fixture,
                  "socks5 live: a 255-byte name is sent whole and resolves") {
  const std::string name(255, 'b');
  scripted_proxy fake{[name](scripted_proxy& p, int fd) {
    if (p.tor_prologue(fd, name)
        && p.send(fd, {0x05, 0x00, 0x00, 0x01, 5, 6, 7, 8, 0x00, 0x00}))
      p.await_close(fd);
  }};
  auto r = resolve(fake.address(), name);
  fake.join();
  CHECK_MESSAGE(fake.faults().empty(), fake.faults());
  REQUIRE_MESSAGE(r.result, describe_result(r.result));
  CHECK(r.result->host() == "5.6.7.8");
}
