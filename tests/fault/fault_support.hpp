#pragma once

// Support for the fault tests (tests/fault/): real connmgr-node processes
// (`node_process` of tests/node/node_process.hpp), optionally started through
// a wrapper (`prlimit` for a low descriptor limit, `ip netns exec` for a
// network namespace), and everything a test needs to inject faults and to
// prove nothing leaked:
//
// - `fd_view` / `settle_fds`: the node's descriptors read from /proc/<pid>/fd,
//   its TCP sockets classified through /proc/<pid>/net/tcp{,6} (listening,
//   established, anything else such as CLOSE_WAIT);
// - `rss_kib`, `hwm_kib`, `cpu_ms`: the node's memory and CPU from /proc;
// - `misbehaving_server`: an in-test TCP server on 127.0.0.1 that accepts and
//   then either never speaks (a slow peer) or resets (close with SO_LINGER 0);
// - `netns_pair` and `nft_blackhole`: a veth-linked pair of network
//   namespaces and an nftables drop-everything table inside one, both
//   removed by their destructors (and stale ones of dead runs at start).
//
// No traffic leaves the loopback interface or the namespaces made here.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connmgr/net/socket_ops.hpp"
#include "tests/node/node_process.hpp"
#include "tests/support/descriptor_audit.hpp"
#include "tests/support/loopback_listener.hpp"

namespace connmgr::fault {

using namespace connmgr::e2e;

/// Slack on top of a configured delay for a loaded machine (upper bounds).
constexpr int64_t late_ms = 1500;

/// Slack below a configured delay (timer granularity and clock reads).
/// Events are timestamped when the node logs them; under a sanitizer the
/// logging can lag the decision by more (one retry of the descriptor-
/// exhaustion run under UBSan, amid its report stream, looked 51 ms early).
#ifdef CONNMGR_SANITIZE
constexpr int64_t early_ms = 150;
#else
constexpr int64_t early_ms = 50;
#endif

// -- addresses and commands ------------------------------------------------------

inline std::string loopback(uint16_t port) {
  return "127.0.0.1:" + std::to_string(port);
}

// -- waiting -------------------------------------------------------------------

/// Polls `pred` every 20 ms until it holds or `timeout` passes; whether it
/// held.
inline bool poll_until(const std::function<bool()>& pred,
                       clock_type::duration timeout) {
  auto deadline = clock_type::now() + timeout;
  for (;;) {
    if (pred())
      return true;
    if (clock_type::now() >= deadline)
      return false;
    std::this_thread::sleep_for(20ms);
  }
}

// -- /proc -----------------------------------------------------------------------

// The descriptor audit (fd_view, fds_of, tcp_table) is the one of
// tests/support/descriptor_audit.hpp.
using connmgr::test::fd_view;
using connmgr::test::fds_of;
using connmgr::test::fixed_fds;
using connmgr::test::proc_address;

/// Polls the node's descriptors until they match `pred` for three reads in a
/// row (so a dial or close in progress does not decide), or `timeout`
/// passes; returns the last view either way.
template <class Pred>
fd_view settle_fds(pid_t pid, Pred pred, clock_type::duration timeout = 15s) {
  auto deadline = clock_type::now() + timeout;
  int good = 0;
  fd_view v;
  for (;;) {
    v = fds_of(pid);
    good = v.ok && pred(v) ? good + 1 : 0;
    if (good >= 3 || clock_type::now() >= deadline)
      return v;
    std::this_thread::sleep_for(50ms);
  }
}

/// A field of /proc/<pid>/status in KiB (VmRSS, VmHWM); 0 if unreadable.
inline uint64_t status_kib(pid_t pid, const std::string& field) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0)
      return std::stoull(line.substr(field.size() + 1));
  return 0;
}

inline uint64_t rss_kib(pid_t pid) {
  return status_kib(pid, "VmRSS");
}

inline uint64_t hwm_kib(pid_t pid) {
  return status_kib(pid, "VmHWM");
}

/// User plus system CPU time of `pid`, in milliseconds.
inline int64_t cpu_ms(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text;
  std::getline(in, text);
  auto close_paren = text.rfind(')');
  if (close_paren == std::string::npos)
    return 0;
  std::istringstream rest{text.substr(close_paren + 2)};
  std::string field;
  // Fields 3.. of stat(5); utime and stime are fields 14 and 15.
  int64_t utime = 0;
  int64_t stime = 0;
  for (int k = 3; k <= 15 && rest >> field; ++k) {
    if (k == 14)
      utime = std::stoll(field);
    if (k == 15)
      stime = std::stoll(field);
  }
  auto hz = ::sysconf(_SC_CLK_TCK);
  return (utime + stime) * 1000 / (hz > 0 ? hz : 100);
}

// -- in-test peers ---------------------------------------------------------------

/// The thread of an in-test peer or probe: runs its loop until the owner
/// stops it, then is joined. `stop()` (also the destructor) raises the flag
/// the loop polls through `stopping()` and waits for the loop to end.
/// Owners are not copyable through it, as their thread refers to them.
class background_thread {
public:
  background_thread() = default;
  background_thread(const background_thread&) = delete;
  background_thread& operator=(const background_thread&) = delete;

  ~background_thread() {
    stop();
  }

  /// Runs `loop` on a new thread.
  template <class F>
  void start(F loop) {
    thread_ = std::thread{std::move(loop)};
  }

  /// Whether the loop was asked to end.
  bool stopping() const {
    return stop_;
  }

  void stop() {
    stop_ = true;
    if (thread_.joinable())
      thread_.join();
  }

private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A TCP server on 127.0.0.1 (port 0 or a given one) that misbehaves:
/// `silent` accepts and never sends a byte (and notices when the other end
/// closes), `reset` accepts and at once closes with SO_LINGER 0, so the
/// other end gets an RST. Runs on its own thread; the destructor (or
/// `shut()`) closes everything it holds, which resets held connections.
class misbehaving_server {
public:
  enum class mode { silent, reset };

  explicit misbehaving_server(mode m, uint16_t port = 0) : mode_(m) {
    auto o = test::like_connmgr(128);
    o.port = port;
    auto s = test::open_loopback(o);
    if (s.fd < 0)
      return;
    fd_ = s.fd;
    port_ = s.port;
    worker_.start([this] { loop(); });
  }

  ~misbehaving_server() {
    shut();
  }

  /// Stops accepting and closes every connection held (with an RST).
  void shut() {
    worker_.stop();
  }

  bool ok() const {
    return port_ != 0;
  }

  uint16_t port() const {
    return port_;
  }

  std::string addr() const {
    return loopback(port_);
  }

  /// Connections accepted so far.
  size_t accepted() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return accepted_at_.size();
  }

  /// For each connection a silent server accepted: how long the other end
  /// kept it before closing it (nothing while still open), in ms.
  std::vector<std::optional<int64_t>> held_ms() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::optional<int64_t>> out;
    for (size_t i = 0; i < accepted_at_.size(); ++i) {
      if (i < closed_at_.size() && closed_at_[i])
        out.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(
                        *closed_at_[i] - accepted_at_[i])
                        .count());
      else
        out.push_back(std::nullopt);
    }
    return out;
  }

private:
  void loop() {
    std::vector<std::pair<int, size_t>> held; // fd, index
    while (!worker_.stopping()) {
      std::vector<pollfd> fds;
      fds.push_back({fd_, POLLIN, 0});
      for (auto& h : held)
        fds.push_back({h.first, POLLIN, 0});
      ::poll(fds.data(), fds.size(), 20);
      if (fds[0].revents & POLLIN) {
        for (;;) {
          int c =
            ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c < 0)
            break;
          size_t index = 0;
          {
            std::lock_guard<std::mutex> guard{mtx_};
            index = accepted_at_.size();
            accepted_at_.push_back(clock_type::now());
            closed_at_.emplace_back();
          }
          if (mode_ == mode::reset) {
            linger lg{1, 0};
            ::setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
            ::close(c);
          } else {
            held.emplace_back(c, index);
          }
        }
      }
      for (size_t k = 1; k < fds.size(); ++k) {
        if (fds[k].revents == 0)
          continue;
        char buf[4096];
        auto n = ::read(fds[k].fd, buf, sizeof(buf));
        if (n > 0 || (n < 0 && errno == EAGAIN))
          continue; // whatever it says, we never answer
        std::lock_guard<std::mutex> guard{mtx_};
        for (auto& h : held)
          if (h.first == fds[k].fd) {
            closed_at_[h.second] = clock_type::now();
            ::close(h.first);
            h.first = -1;
          }
      }
      held.erase(std::remove_if(held.begin(), held.end(),
                                [](auto& h) { return h.first < 0; }),
                 held.end());
    }
    for (auto& h : held) {
      linger lg{1, 0};
      ::setsockopt(h.first, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
      ::close(h.first);
    }
    ::close(fd_);
  }

  mode mode_;
  int fd_ = -1;
  uint16_t port_ = 0;
  background_thread worker_;
  mutable std::mutex mtx_;
  std::vector<clock_type::time_point> accepted_at_;
  std::vector<std::optional<clock_type::time_point>> closed_at_;
};

// -- network namespaces ----------------------------------------------------------

/// Why namespaces or nftables cannot be used here; empty when they can.
inline std::string netns_unavailable() {
  if (::geteuid() != 0)
    return "not root";
  if (run_command("command -v ip >/dev/null 2>&1").second != 0)
    return "no `ip` (Debian package iproute2)";
  if (run_command("command -v nft >/dev/null 2>&1").second != 0)
    return "no `nft` (Debian package nftables)";
  auto probe = "cmfault-" + std::to_string(::getpid()) + "-probe";
  auto [out, rc] = run_command("ip netns add " + probe + " 2>&1");
  if (rc != 0)
    return "`ip netns add` fails: " + out;
  auto [nout, nrc] =
    run_command("ip netns exec " + probe + " nft list tables 2>&1");
  run_command("ip netns del " + probe + " 2>&1");
  if (nrc != 0)
    return "`nft` fails inside a namespace: " + nout;
  return {};
}

/// Whether process `pid` still exists.
inline bool alive(long pid) {
  return pid > 0 && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

/// Deletes namespaces named cmfault-<pid>-... and veth links named
/// cmf<pid>a/b whose test runner is gone (a run killed before its
/// destructors ran).
inline void remove_stale_namespaces() {
  auto [out, rc] = run_command("ip netns list 2>/dev/null");
  if (rc == 0) {
    std::istringstream in{out};
    std::string line;
    while (std::getline(in, line)) {
      auto name = line.substr(0, line.find(' '));
      if (name.rfind("cmfault-", 0) != 0)
        continue;
      auto rest = name.substr(8);
      if (!alive(std::atol(rest.substr(0, rest.find('-')).c_str())))
        run_command("ip netns del " + name + " 2>&1");
    }
  }
  auto [links, lrc] = run_command("ip -o link show 2>/dev/null");
  if (lrc != 0)
    return;
  std::istringstream in{links};
  std::string line;
  while (std::getline(in, line)) {
    // "12: cmf1234a@cmf1234b: <...>"
    auto start = line.find(": ");
    if (start == std::string::npos)
      continue;
    auto name = line.substr(start + 2);
    name = name.substr(0, name.find_first_of("@:"));
    if (name.size() < 5 || name.rfind("cmf", 0) != 0
        || (name.back() != 'a' && name.back() != 'b'))
      continue;
    auto digits = name.substr(3, name.size() - 4);
    if (digits.find_first_not_of("0123456789") != std::string::npos)
      continue;
    if (!alive(std::atol(digits.c_str())))
      run_command("ip link del " + name + " 2>&1");
  }
}

/// Two network namespaces joined by a veth pair: `a` holds 10.201.0.1/30,
/// `b` 10.201.0.2/30 (both with loopback up). These addresses exist only
/// inside the two namespaces. The destructor deletes both namespaces, which
/// removes the veth pair and any nftables table inside them.
class netns_pair {
public:
  netns_pair() {
    remove_stale_namespaces();
    auto tag = std::to_string(::getpid());
    a = "cmfault-" + tag + "-a";
    b = "cmfault-" + tag + "-b";
    va_ = "cmf" + tag + "a";
    auto& va = va_;
    auto vb = "cmf" + tag + "b";
    std::vector<std::string> steps{
      "ip netns add " + a,
      "ip netns add " + b,
      "ip link add " + va + " type veth peer name " + vb,
      "ip link set " + va + " netns " + a,
      "ip link set " + vb + " netns " + b,
      "ip -n " + a + " addr add " + addr_a + "/30 dev " + va,
      "ip -n " + b + " addr add " + addr_b + "/30 dev " + vb,
      "ip -n " + a + " link set lo up",
      "ip -n " + b + " link set lo up",
      "ip -n " + a + " link set " + va + " up",
      "ip -n " + b + " link set " + vb + " up",
    };
    for (auto& s : steps) {
      auto [out, rc] = run_command(s + " 2>&1");
      if (rc != 0) {
        error = s + ": " + out;
        return;
      }
    }
    made_ = true;
  }

  ~netns_pair() {
    run_command("ip netns del " + a + " 2>/dev/null");
    run_command("ip netns del " + b + " 2>/dev/null");
    // Only left when setup failed before moving it into a namespace.
    run_command("ip link del " + va_ + " 2>/dev/null");
  }

  netns_pair(const netns_pair&) = delete;
  netns_pair& operator=(const netns_pair&) = delete;

  bool ok() const {
    return made_;
  }

  /// The wrapper that runs a program inside namespace `ns`.
  static std::vector<std::string> exec_in(const std::string& ns) {
    return {tool("ip"), "netns", "exec", ns};
  }

  std::string a;
  std::string b;
  const std::string addr_a = "10.201.0.1";
  const std::string addr_b = "10.201.0.2";
  std::string error;

private:
  bool made_ = false;
  std::string va_;
};

/// An nftables table in namespace `ns` whose input hook drops every packet:
/// the host stays up but hears nothing (connections become half-open, dials
/// time out). The destructor (or `lift()`) deletes the table.
class nft_blackhole {
public:
  explicit nft_blackhole(std::string ns) : ns_(std::move(ns)) {
    auto pre = "ip netns exec " + ns_ + " nft ";
    auto [o1, r1] = run_command(pre + "add table inet cmfault 2>&1");
    requested_ms = unix_ms();
    auto [o2, r2] = run_command(
      pre
      + "'add chain inet cmfault in { type filter hook input priority 0; "
        "policy drop; }' 2>&1");
    active_ = r1 == 0 && r2 == 0;
    if (!active_)
      error = o1 + o2;
    at_ms = unix_ms();
  }

  ~nft_blackhole() {
    lift();
  }

  nft_blackhole(const nft_blackhole&) = delete;
  nft_blackhole& operator=(const nft_blackhole&) = delete;

  /// Removes the rule; returns when it is gone.
  void lift() {
    if (!active_)
      return;
    active_ = false;
    run_command("ip netns exec " + ns_ + " nft delete table inet cmfault 2>&1");
    lifted_ms = unix_ms();
  }

  bool active() const {
    return active_;
  }

  /// When the drop rule was requested, when it was surely in place and when
  /// it was removed (Unix ms, like the nodes' ts).
  int64_t requested_ms = 0;
  int64_t at_ms = 0;
  int64_t lifted_ms = 0;
  std::string error;

private:
  std::string ns_;
  bool active_ = false;
};

} // namespace connmgr::fault
