// Running out of descriptors: a reactor listener under EMFILE must pause
// instead of spinning (CAF's own doorman burns a core there) and must resume
// by itself once descriptors are free again.
//
// The listener lives in a child process (connmgr_emfile_child, see
// emfile_child.cpp) whose descriptor limit is lowered, so the test runner
// keeps its own limit. The test floods the child from here with loopback
// connects and steers it over one socketpair that serves as the child's
// stdin and stdout (a socket rather than a pipe, so a write to a dead child
// fails with EPIPE instead of killing the runner with SIGPIPE).

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connmgr/net/net_address.hpp"
#include "connmgr/net/socket_ops.hpp"

#ifndef CONNMGR_EMFILE_CHILD
#error "CONNMGR_EMFILE_CHILD must name the connmgr_emfile_child executable"
#endif

extern char** environ;

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

/// Soft descriptor limit of the child: it can hold about this many sockets.
constexpr unsigned child_fd_limit = 128;

/// Connects the test makes: well over what the child can hold, so plenty
/// stay queued in its backlog (which it opens with room for 1024).
constexpr size_t flood_size = 300;

/// Sockets the test asks the child to close once it is starved.
constexpr size_t free_count = 100;

/// How long an answer from the child may take on a loaded machine.
constexpr auto answer_bound = 20s;

/// One `stats` answer of the child.
struct child_stats {
  uint64_t accepted = 0;
  uint64_t pauses = 0;
  int64_t cpu_us = 0;
  uint64_t held = 0;
};

std::string to_string(const child_stats& st) {
  return "accepted " + std::to_string(st.accepted) + ", pauses "
    + std::to_string(st.pauses) + ", cpu " + std::to_string(st.cpu_us)
    + " us, held " + std::to_string(st.held);
}

/// The child process. Its destructor never leaves it running: it signals
/// end of input (the child treats that as `quit`), waits a little, then
/// kills it, and always reaps it.
class emfile_child {
public:
  explicit emfile_child(unsigned fd_limit) {
    int sv[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
    chan_ = sv[0];
    posix_spawn_file_actions_t actions;
    ::posix_spawn_file_actions_init(&actions);
    // dup2 clears close-on-exec on the copies: the child keeps fds 0 and 1.
    ::posix_spawn_file_actions_adddup2(&actions, sv[1], STDIN_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions, sv[1], STDOUT_FILENO);
    std::string path = CONNMGR_EMFILE_CHILD;
    std::string limit = std::to_string(fd_limit);
    char* argv[] = {path.data(), limit.data(), nullptr};
    pid_t pid = -1;
    int rc =
      ::posix_spawn(&pid, path.c_str(), &actions, nullptr, argv, environ);
    ::posix_spawn_file_actions_destroy(&actions);
    ::close(sv[1]);
    if (rc == 0)
      pid_ = pid;
    REQUIRE_MESSAGE(rc == 0, "posix_spawn " << path << ": " << rc);
  }

  ~emfile_child() {
    if (pid_ > 0) {
      ::shutdown(chan_, SHUT_WR);
      if (!wait_exit(3s) && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
      }
    }
    if (chan_ >= 0)
      ::close(chan_);
  }

  emfile_child(const emfile_child&) = delete;
  emfile_child& operator=(const emfile_child&) = delete;

  /// One line from the child, or nothing if none came within `bound`.
  std::optional<std::string> read_line(steady::duration bound = answer_bound) {
    auto deadline = steady::now() + bound;
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        auto line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      auto left =
        std::chrono::ceil<std::chrono::milliseconds>(deadline - steady::now());
      if (left.count() <= 0)
        return std::nullopt;
      pollfd p{chan_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue; // timeout or EINTR: the deadline check decides
      char tmp[256];
      auto n = ::recv(chan_, tmp, sizeof(tmp), 0);
      if (n == 0)
        return std::nullopt; // the child closed its end
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN)
          continue;
        return std::nullopt;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  /// Sends one command and returns the child's one-line answer.
  std::string ask(const std::string& command) {
    auto text = command + "\n";
    size_t sent = 0;
    while (sent < text.size()) {
      auto n =
        ::send(chan_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      REQUIRE_MESSAGE(n > 0, "cannot send '" << command << "' to the child");
      sent += static_cast<size_t>(n);
    }
    auto answer = read_line();
    REQUIRE_MESSAGE(answer, "no answer from the child to '" << command << "'");
    return *answer;
  }

  child_stats stats() {
    auto answer = ask("stats");
    std::istringstream in{answer};
    std::string k1, k2, k3, k4;
    child_stats st;
    in >> k1 >> st.accepted >> k2 >> st.pauses >> k3 >> st.cpu_us >> k4
      >> st.held;
    REQUIRE_MESSAGE((in && k1 == "accepted" && k2 == "pauses" && k3 == "cpu_us"
                     && k4 == "held"),
                    "unexpected stats answer: " << answer);
    return st;
  }

  /// Reaps the child once it exits; returns its wait status, or nothing if
  /// it is still running after `bound`.
  std::optional<int> wait_exit(steady::duration bound) {
    auto deadline = steady::now() + bound;
    for (;;) {
      int status = 0;
      auto rc = ::waitpid(pid_, &status, WNOHANG);
      if (rc == pid_) {
        pid_ = -1;
        return status;
      }
      if (rc < 0 && errno != EINTR) {
        pid_ = -1; // reaped elsewhere: nothing left to wait for or kill
        return std::nullopt;
      }
      if (steady::now() >= deadline)
        return std::nullopt;
      std::this_thread::sleep_for(10ms);
    }
  }

private:
  pid_t pid_ = -1;
  int chan_ = -1;
  std::string buf_;
};

/// Sockets of the test side, closed however the test ends.
struct socket_set {
  std::vector<int> fds;

  socket_set() = default;
  socket_set(const socket_set&) = delete;
  socket_set& operator=(const socket_set&) = delete;

  ~socket_set() {
    for (auto fd : fds)
      ::close(fd);
  }
};

/// Starts `n` non-blocking connects to 127.0.0.1:`port`, all kept open.
void flood(socket_set& out, uint16_t port, size_t n) {
  auto addr = net_address::parse("127.0.0.1:" + std::to_string(port));
  REQUIRE(addr);
  sockaddr_storage sa{};
  auto len = addr->to_sockaddr(sa);
  REQUIRE(len);
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    REQUIRE_MESSAGE(fd >= 0, "socket #" << i << ": errno " << errno);
    out.fds.push_back(fd);
    auto rc = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), *len);
    REQUIRE_MESSAGE((rc == 0 || errno == EINPROGRESS),
                    "connect #" << i << ": errno " << errno);
  }
}

/// How many of `s` finished their TCP handshake (accepted by the child or
/// waiting in its backlog).
size_t connected_count(const socket_set& s) {
  std::vector<pollfd> polls;
  for (auto fd : s.fds)
    polls.push_back(pollfd{fd, POLLOUT, 0});
  if (::poll(polls.data(), polls.size(), 0) < 0)
    return 0;
  size_t result = 0;
  for (auto& p : polls)
    if ((p.revents & POLLOUT) != 0 && (p.revents & (POLLERR | POLLHUP)) == 0)
      ++result;
  return result;
}

/// Asks the child for stats until it has accepted at least `floor` sockets,
/// paused at least once, and accepted nothing new for a while (it ran out of
/// descriptors); gives up after `bound` and returns the last answer.
child_stats wait_until_starved(emfile_child& child, uint64_t floor,
                               steady::duration bound) {
  constexpr auto quiet = 300ms;
  auto deadline = steady::now() + bound;
  auto last = child.stats();
  auto last_change = steady::now();
  for (;;) {
    std::this_thread::sleep_for(25ms);
    auto now_stats = child.stats();
    auto now = steady::now();
    if (now_stats.accepted != last.accepted)
      last_change = now;
    last = now_stats;
    if (last.pauses > 0 && last.accepted >= floor && now - last_change >= quiet)
      return last;
    if (now >= deadline)
      return last;
  }
}

} // namespace

TEST_CASE("emfile: a listener out of descriptors pauses instead of spinning "
          "and recovers") {
  raise_fd_limit(); // the test side holds a few hundred sockets
  emfile_child child{child_fd_limit};
  auto port_line = child.read_line();
  REQUIRE_MESSAGE(port_line, "the child printed no port");
  auto port = std::stoul(*port_line);
  REQUIRE((port > 0 && port <= 65535));

  socket_set clients;
  flood(clients, static_cast<uint16_t>(port), flood_size);

  // The child takes what its descriptors allow (its limit minus stdin,
  // stdout, stderr, epoll, eventfd and the listener), then pauses.
  const uint64_t near_limit = child_fd_limit - 16;
  auto starved = wait_until_starved(child, near_limit, 30s);
  INFO("starved child: ", to_string(starved));
  REQUIRE(starved.pauses > 0);
  REQUIRE(starved.accepted >= near_limit);
  REQUIRE(starved.accepted < child_fd_limit);
  CHECK(starved.held == starved.accepted);

  // The rest of the flood sits finished in the child's backlog: more than
  // enough to fill the descriptors we free below.
  size_t connected = 0;
  auto handshake_deadline = steady::now() + 10s;
  for (;;) {
    connected = connected_count(clients);
    if (connected >= starved.accepted + free_count + 20
        || steady::now() >= handshake_deadline)
      break;
    std::this_thread::sleep_for(20ms);
  }
  INFO("connected on the test side: ", connected);
  REQUIRE(connected >= starved.accepted + free_count + 20);

  // Starvation window: connections are pending, the listener cannot take
  // them. Sleeping is the measurement itself here, not a hope.
  auto before = child.stats();
  auto t0 = steady::now();
  std::this_thread::sleep_for(1s);
  auto after = child.stats();
  auto t1 = steady::now();
  auto window_us =
    std::chrono::duration_cast<std::chrono::microseconds>(t1 - t0).count();
  auto used_us = after.cpu_us - before.cpu_us;
  INFO("child CPU in the starvation window: ", used_us, " us of ", window_us,
       " us; pauses in it: ", after.pauses - before.pauses);
  CHECK(after.accepted == before.accepted);
  // A listener spinning on EMFILE would burn about the whole window.
  CHECK(used_us * 5 < window_us);
  // Backing off 10 ms, doubling up to 1 s, pauses a handful of times per
  // second at most.
  CHECK(after.pauses - before.pauses <= 12);

  // Free descriptors: the child must resume by itself and take about as many
  // of the pending connections, then run dry again.
  auto freed_line = child.ask("free " + std::to_string(free_count));
  INFO("answer to free: ", freed_line);
  REQUIRE(freed_line == "freed " + std::to_string(free_count));
  auto recovered =
    wait_until_starved(child, after.accepted + free_count - 2, 15s);
  INFO("recovered child: ", to_string(recovered));
  REQUIRE(recovered.accepted >= after.accepted + free_count - 2);
  CHECK(recovered.accepted <= after.accepted + free_count);
  CHECK(recovered.held
        == after.held - free_count + (recovered.accepted - after.accepted));
  CHECK(recovered.pauses > after.pauses);

  // Orderly end: the child answers, exits 0 and is reaped.
  CHECK(child.ask("quit") == "bye");
  auto status = child.wait_exit(10s);
  REQUIRE_MESSAGE(status, "the child did not exit after quit");
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("emfile: raising the descriptor limit reaches the hard limit and "
          "fd_limit reports it") {
  rlimit before{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &before) == 0);
  auto raised = raise_fd_limit();
  rlimit now{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &now) == 0);
  CHECK(raised == static_cast<size_t>(before.rlim_max));
  CHECK(now.rlim_cur == now.rlim_max);
  CHECK(fd_limit() == raised);
  // Raising again changes nothing.
  CHECK(raise_fd_limit() == raised);
  CHECK(fd_limit() == raised);
}
