#pragma once

// Support for the attack tests (tests/fault/attack_test.cpp): raw peers that
// speak the example node's wire protocol (examples/node/node_frames.hpp) from chosen
// loopback source addresses, so a test can play an attacker that floods,
// never reads, or claims another node's id, against a real connmgr-node.
//
// - `wire_peer`: one TCP connection to 127.0.0.1:PORT from a given
//   127.0.0.0/8 source address, with a small receive buffer on request;
//   sends frames, reads frames, notices the node's close.
// - `hello_frame`, `ping_frame`, `addr_frame`: encoded frames.
// - `send_queued_to`, `unread_bytes`: what the node sent a peer that does
//   not read, still in the kernel's queues.
// - `rss_sampler`: the node's peak VmRSS, sampled on a thread.
// - `attack_binary`: the node the attacks run against.
//
// Every socket made here connects to 127.0.0.1 only.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "examples/node/node_frames.hpp"
#include "tests/fault/fault_support.hpp"

namespace connmgr::attack {

using namespace connmgr::fault;
namespace frames = connmgr::node_frames;

/// The node program the attacks run against: the one under test, unless
/// the environment names another in CONNMGR_ATTACK_NODE_BINARY (to show
/// that an attack succeeds against an older build).
inline std::string attack_binary() {
  if (auto* other = std::getenv("CONNMGR_ATTACK_NODE_BINARY");
      other != nullptr && *other != '\0')
    return other;
  return node_binary();
}

/// Source address number `i` of a test: 127.0.0.2 .. 127.0.0.254, round
/// robin, so one test can spread its connections over 253 addresses (the
/// node's per-address inbound limits then see a few each).
inline std::string source_ip(size_t i) {
  return "127.0.0." + std::to_string(2 + i % 253);
}

/// Milliseconds between two steady-clock instants.
inline int64_t ms_between(clock_type::time_point from,
                          clock_type::time_point to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from)
    .count();
}

/// Raises this process's soft open-file limit to at least `want` (up to the
/// hard limit); returns the soft limit in effect afterwards. Node processes
/// started afterwards inherit it.
inline size_t raise_fd_limit(size_t want) {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 0;
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
    auto target = static_cast<rlim_t>(want);
    if (lim.rlim_max != RLIM_INFINITY)
      target = std::min(target, lim.rlim_max);
    lim.rlim_cur = target;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur == RLIM_INFINITY ? size_t{1} << 20
                                       : static_cast<size_t>(lim.rlim_cur);
}

// -- frames ------------------------------------------------------------------------

inline std::vector<uint8_t> hello_frame(uint64_t node_id,
                                        uint16_t listen_port = 0) {
  return frames::encode(frames::hello{node_id, listen_port});
}

inline std::vector<uint8_t> ping_frame(uint64_t nonce) {
  return frames::encode(frames::ping{nonce});
}

/// An addr frame of the given address texts (each must parse).
inline std::vector<uint8_t> addr_frame(const std::vector<std::string>& texts) {
  frames::addr msg;
  for (auto& t : texts) {
    auto a = net_address::parse(t);
    REQUIRE_MESSAGE(a, t);
    msg.addresses.push_back(std::move(*a));
  }
  auto out = frames::encode(msg);
  REQUIRE(!out.empty());
  return out;
}

/// `count` copies of `frame`, back to back.
inline std::vector<uint8_t> repeated(const std::vector<uint8_t>& frame,
                                     size_t count) {
  std::vector<uint8_t> out;
  out.reserve(frame.size() * count);
  for (size_t i = 0; i < count; ++i)
    out.insert(out.end(), frame.begin(), frame.end());
  return out;
}

/// The node id in a hello line's "peer_node" (16 hex digits) as a number.
inline uint64_t parse_node_id(const std::string& hex) {
  return std::stoull(hex, nullptr, 16);
}

/// A node id as the logs print it.
inline std::string node_id_text(uint64_t id) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(id));
  return buf;
}

/// A node id for a listener or attacker (never 0).
inline uint64_t fresh_id() {
  static std::mt19937_64 gen{std::random_device{}()};
  static std::mutex mtx;
  std::lock_guard<std::mutex> guard{mtx};
  uint64_t id = 0;
  while (id == 0)
    id = gen();
  return id;
}

/// Appends to `in` whatever `fd` has ready to read, without waiting.
/// False once the other end closed (or the socket failed).
inline bool read_available(int fd, std::vector<uint8_t>& in) {
  uint8_t buf[16384];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) {
      in.insert(in.end(), buf, buf + n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return true;
    if (n < 0 && errno == EINTR)
      continue;
    return false;
  }
}

// -- raw peers ----------------------------------------------------------------------

/// One non-blocking TCP connection from `source` (an address of
/// 127.0.0.0/8) to 127.0.0.1:`port`. With `rcvbuf` > 0 its receive buffer
/// is set that small before connecting, so a peer that never reads pushes
/// back on the node after a few kilobytes. Closes on destruction.
class wire_peer {
public:
  wire_peer(uint16_t port, const std::string& source, int rcvbuf = 0,
            clock_type::duration timeout = 5s) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0)
      return;
    if (rcvbuf > 0)
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in src{};
    src.sin_family = AF_INET;
    if (::inet_pton(AF_INET, source.c_str(), &src.sin_addr) != 1
        || ::bind(fd_, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
      reset();
      return;
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons(port);
    auto r = ::connect(fd_, reinterpret_cast<sockaddr*>(&dst), sizeof(dst));
    if (r != 0 && errno != EINPROGRESS) {
      reset();
      return;
    }
    if (r != 0) {
      pollfd p{fd_, POLLOUT, 0};
      auto ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count());
      int err = 0;
      socklen_t len = sizeof(err);
      if (::poll(&p, 1, ms) != 1
          || ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0
          || err != 0) {
        reset();
        return;
      }
    }
    sockaddr_in local{};
    socklen_t len = sizeof(local);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    char text[INET_ADDRSTRLEN] = "?";
    ::inet_ntop(AF_INET, &local.sin_addr, text, sizeof(text));
    local_ = std::string{text} + ":" + std::to_string(ntohs(local.sin_port));
  }

  ~wire_peer() {
    reset();
  }

  wire_peer(const wire_peer&) = delete;
  wire_peer& operator=(const wire_peer&) = delete;

  bool ok() const {
    return fd_ >= 0;
  }

  int fd() const {
    return fd_;
  }

  /// "127.0.0.x:port": how the node names this connection in its events.
  const std::string& local() const {
    return local_;
  }

  /// Sends all of `bytes` within `timeout`; false when the connection
  /// failed or the node did not take them in time.
  bool send_all(const std::vector<uint8_t>& bytes,
                clock_type::duration timeout = 5s) {
    auto deadline = clock_type::now() + timeout;
    size_t done = 0;
    while (done < bytes.size()) {
      auto n = send_some(bytes.data() + done, bytes.size() - done);
      if (n < 0)
        return false;
      done += static_cast<size_t>(n);
      if (done == bytes.size())
        break;
      if (clock_type::now() >= deadline)
        return false;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 20);
    }
    return true;
  }

  /// Sends what the socket takes right now: the count (0 when full), or -1
  /// once the connection failed.
  ssize_t send_some(const uint8_t* data, size_t size) {
    if (fd_ < 0)
      return -1;
    auto n = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
      return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
      return 0;
    return -1;
  }

  /// The next frame from the node within `timeout`; nothing on timeout,
  /// close or a malformed frame.
  std::optional<frames::frame> read_frame(clock_type::duration timeout) {
    auto deadline = clock_type::now() + timeout;
    for (;;) {
      auto res = frames::decode(in_.data(), in_.size());
      if (res.status == parse_status::done) {
        in_.erase(in_.begin(),
                  in_.begin() + static_cast<ptrdiff_t>(res.consumed));
        return std::move(res.value);
      }
      if (res.status == parse_status::failed)
        return std::nullopt;
      if (!fill(deadline))
        return std::nullopt;
    }
  }

  /// Reads and discards whatever has arrived; false once the node closed
  /// the connection.
  bool drain() {
    char buf[65536];
    for (;;) {
      auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0)
        continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return true;
      return false;
    }
  }

  /// Waits up to `timeout` for the node to close the connection (reading
  /// and discarding what it sends meanwhile); whether it did.
  bool closed_within(clock_type::duration timeout) {
    auto deadline = clock_type::now() + timeout;
    while (clock_type::now() < deadline) {
      if (!drain())
        return true;
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, 20);
    }
    return !drain();
  }

  /// Closes the connection.
  void reset() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

private:
  bool fill(clock_type::time_point deadline) {
    for (;;) {
      uint8_t buf[16384];
      auto n = ::recv(fd_, buf, sizeof(buf), MSG_DONTWAIT);
      if (n > 0) {
        in_.insert(in_.end(), buf, buf + n);
        return true;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        return false;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - clock_type::now())
                    .count();
      if (left <= 0)
        return false;
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 50)));
    }
  }

  int fd_ = -1;
  std::string local_;
  std::vector<uint8_t> in_;
};

/// How long a fresh peer from `source` waits for the node's hello (in ms,
/// from its connect() call); nothing when the hello did not come within
/// `timeout`.
inline std::optional<int64_t> hello_latency_ms(uint16_t port,
                                               const std::string& source,
                                               clock_type::duration timeout) {
  auto start = clock_type::now();
  wire_peer p{port, source, 0, timeout};
  if (!p.ok())
    return std::nullopt;
  auto left = timeout - (clock_type::now() - start);
  auto f = p.read_frame(left);
  if (!f || !std::holds_alternative<frames::hello>(*f))
    return std::nullopt;
  return ms_between(start, clock_type::now());
}

// -- bytes in flight ----------------------------------------------------------------

/// Bytes the kernel holds that process `pid`'s TCP sockets wrote towards
/// any of `remotes` ("127.0.0.x:port", the remote ends as /proc names them)
/// and the other end has not read yet: the sockets' send queues
/// (tx_queue of /proc/<pid>/net/tcp: written, not yet acknowledged by a
/// receiver whose window is closed).
inline uint64_t send_queued_to(pid_t pid,
                               const std::set<std::string>& remotes) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/net/tcp"};
  std::string line;
  std::getline(in, line); // header
  uint64_t total = 0;
  while (std::getline(in, line)) {
    std::istringstream fields{line};
    std::string sl, local, remote, st, queues;
    fields >> sl >> local >> remote >> st >> queues;
    if (!fields || remotes.count(proc_address(remote)) == 0)
      continue;
    auto colon = queues.find(':');
    if (colon != std::string::npos)
      total += std::stoull(queues.substr(0, colon), nullptr, 16);
  }
  return total;
}

/// Bytes waiting unread in the receive queue of socket `fd`.
inline uint64_t unread_bytes(int fd) {
  int n = 0;
  if (::ioctl(fd, FIONREAD, &n) != 0 || n < 0)
    return 0;
  return static_cast<uint64_t>(n);
}

// -- memory ----------------------------------------------------------------------

/// Samples a process's VmRSS every 10 ms on its own thread until destroyed
/// (or `stop`); keeps the peak. With `kill_above_kib` > 0 it kills the
/// process (SIGKILL) once its RSS exceeds that: a node that lost its
/// bounds would otherwise grow by gigabytes a second under attack and take
/// the machine down with it (the test then fails on the peak).
class rss_sampler {
public:
  explicit rss_sampler(pid_t pid, uint64_t kill_above_kib = 0) : pid_(pid) {
    worker_.start([this, kill_above_kib] {
      while (!worker_.stopping()) {
        auto rss = rss_kib(pid_);
        if (rss > peak_)
          peak_ = rss;
        if (kill_above_kib > 0 && rss > kill_above_kib && !killed_) {
          ::kill(pid_, SIGKILL);
          killed_ = true;
        }
        std::this_thread::sleep_for(10ms);
      }
    });
  }

  /// Whether it killed the process for its memory.
  bool killed() const {
    return killed_;
  }

  ~rss_sampler() {
    stop();
  }

  void stop() {
    worker_.stop();
  }

  /// The largest VmRSS seen, in KiB.
  uint64_t peak_kib() const {
    return peak_;
  }

private:
  pid_t pid_;
  std::atomic<uint64_t> peak_{0};
  std::atomic<bool> killed_{false};
  background_thread worker_;
};

/// The node's peak RSS, as `rss` saw it, stayed within `bound_kib` (and it
/// was not killed for its memory). Under a sanitizer the memory is the
/// sanitizer's: the bound is not checked, and the test says so.
inline void check_memory_bound(const rss_sampler& rss, uint64_t bound_kib) {
#ifdef CONNMGR_SANITIZE
  (void)rss;
  (void)bound_kib;
  MESSAGE("memory bound not checked: built with -fsanitize=" CONNMGR_SANITIZE);
#else
  CHECK_MESSAGE(rss.peak_kib() <= bound_kib,
                "killed for its memory: " << rss.killed());
#endif
}

} // namespace connmgr::attack
