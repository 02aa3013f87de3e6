#pragma once

// Support for the eclipse tests (tests/fault/eclipse_test.cpp): what an
// attacker on the peer protocol controls besides its own inbound connection
// (attack_support.hpp's `wire_peer`):
//
// - `hello_listeners`: many listening sockets on chosen 127.0.0.x addresses
//   (optionally inside a network namespace) that answer the node's hello
//   and pings like a real peer, and count the connections they hold;
// - `dead_ports`: addresses on 127.0.0.x that refuse every connection;
// - `lo_namespace`: a network namespace with nothing but `lo`, in which a
//   node may dial whatever gossip told it without anything leaving;
// - `eclipse_node`: a node process of the binary under attack; for another
//   build (CONNMGR_ATTACK_NODE_BINARY) the keys it does not know are left
//   out (an older one refuses unknown keys), so the same scenario runs
//   against it.
//
// Every socket made here is bound to 127.0.0.0/8, in this namespace or in
// one the tests made.

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/fault/attack_support.hpp"

namespace connmgr::eclipse {

using namespace connmgr::attack;

/// Enters network namespace `name` (made by `ip netns add`) on the calling
/// thread only; true on success. Sockets made afterwards on this thread
/// belong to that namespace for good.
inline bool enter_namespace(const std::string& name) {
  auto fd = ::open(("/run/netns/" + name).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return false;
  auto rc = ::setns(fd, CLONE_NEWNET);
  ::close(fd);
  return rc == 0;
}

// -- listeners ----------------------------------------------------------------

/// Listening sockets on `ports_per_ip` system-chosen ports of each of `ips`
/// (127.0.0.x), each a peer with its own node id: it sends its hello on
/// accepting, answers pings, ignores everything else. Runs on its own
/// thread (inside namespace `netns` when one is named); the destructor
/// closes every socket.
class hello_listeners {
public:
  hello_listeners(std::vector<std::string> ips, size_t ports_per_ip,
                  std::string netns = {})
    : netns_(std::move(netns)) {
    std::promise<std::string> made;
    auto result = made.get_future();
    worker_.start([this, ips = std::move(ips), ports_per_ip,
                   made = std::move(made)]() mutable {
      // `error` belongs to the constructing thread once the value is set.
      auto err = setup(ips, ports_per_ip);
      bool fine = err.empty();
      made.set_value(std::move(err));
      if (fine)
        loop();
      cleanup();
    });
    error = result.get();
  }

  ~hello_listeners() {
    worker_.stop();
  }

  /// Whether every socket is listening (else `error` says why).
  bool ok() const {
    return error.empty();
  }

  /// Every listening address, "127.0.0.x:port".
  const std::vector<std::string>& addresses() const {
    return addresses_;
  }

  /// Connections held open right now, per listening IP.
  std::map<std::string, size_t> open_by_ip() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::map<std::string, size_t> out;
    for (auto& [fd, c] : conns_)
      ++out[c.ip];
    return out;
  }

  /// Connections held open right now.
  size_t open_total() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return conns_.size();
  }

  /// Connections accepted so far.
  size_t accepted() const {
    return accepted_;
  }

  /// Connections whose other end sent a hello (a node dialing us).
  size_t hellos() const {
    return hellos_;
  }

  /// Closes every connection held (an orderly close: the node sees its
  /// peers leave); returns once they are closed.
  void churn() {
    auto want = ++churn_asked_;
    while (churn_done_ < want && !worker_.stopping())
      std::this_thread::sleep_for(5ms);
  }

  /// Why the listeners could not be set up; empty when they were.
  std::string error;

private:
  struct conn {
    std::string ip;
    std::vector<uint8_t> in;
    uint64_t id = 0;
  };

  std::string setup(const std::vector<std::string>& ips, size_t per_ip) {
    if (!netns_.empty() && !enter_namespace(netns_))
      return "cannot enter namespace " + netns_;
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    if (ep_ < 0)
      return "epoll_create1 failed";
    for (auto& ip : ips) {
      for (size_t k = 0; k < per_ip; ++k) {
        auto fd =
          ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
          return "socket failed: " + std::string{std::strerror(errno)};
        listeners_[fd] = {ip, fresh_id()};
        sockaddr_in sa{};
        sa.sin_family = AF_INET;
        if (::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1
            || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0
            || ::listen(fd, 64) != 0)
          return "cannot listen on " + ip + ": " + std::strerror(errno);
        socklen_t len = sizeof(sa);
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
        auto port = ntohs(sa.sin_port);
        listeners_[fd].port = port;
        addresses_.push_back(ip + ":" + std::to_string(port));
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
      }
    }
    return {};
  }

  void loop() {
    std::vector<epoll_event> evs(256);
    while (!worker_.stopping()) {
      if (churn_asked_ > churn_done_) {
        auto asked = churn_asked_.load();
        std::lock_guard<std::mutex> guard{mtx_};
        for (auto& [fd, c] : conns_)
          ::close(fd);
        conns_.clear();
        churn_done_ = asked;
      }
      auto n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), 10);
      for (int i = 0; i < n; ++i) {
        auto fd = evs[static_cast<size_t>(i)].data.fd;
        if (auto l = listeners_.find(fd); l != listeners_.end())
          accept_all(fd, l->second);
        else
          readable(fd);
      }
    }
  }

  struct listener {
    std::string ip;
    uint64_t id = 0;
    uint16_t port = 0;
  };

  void accept_all(int fd, const listener& l) {
    for (;;) {
      auto c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c < 0)
        return;
      ++accepted_;
      auto hello = hello_frame(l.id, l.port);
      // A fresh socket takes a few bytes at once.
      ::send(c, hello.data(), hello.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = c;
      ::epoll_ctl(ep_, EPOLL_CTL_ADD, c, &ev);
      std::lock_guard<std::mutex> guard{mtx_};
      conns_[c] = conn{l.ip, {}, l.id};
    }
  }

  void readable(int fd) {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = conns_.find(fd);
    if (i == conns_.end())
      return;
    auto& c = i->second;
    if (!read_available(fd, c.in)) {
      ::close(fd);
      conns_.erase(i);
      return;
    }
    for (;;) {
      auto res = frames::decode(c.in.data(), c.in.size());
      if (res.status != parse_status::done)
        break;
      c.in.erase(c.in.begin(),
                 c.in.begin() + static_cast<ptrdiff_t>(res.consumed));
      if (std::holds_alternative<frames::hello>(res.value)) {
        ++hellos_;
      } else if (auto p = std::get_if<frames::ping>(&res.value)) {
        auto pong = frames::encode(frames::pong{p->nonce});
        ::send(fd, pong.data(), pong.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      }
    }
  }

  void cleanup() {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& [fd, c] : conns_)
      ::close(fd);
    conns_.clear();
    for (auto& [fd, l] : listeners_)
      ::close(fd);
    listeners_.clear();
    if (ep_ >= 0)
      ::close(ep_);
    ep_ = -1;
  }

  std::string netns_;
  int ep_ = -1;
  std::map<int, listener> listeners_;
  std::vector<std::string> addresses_;
  mutable std::mutex mtx_;
  std::map<int, conn> conns_;
  std::atomic<size_t> accepted_{0};
  std::atomic<size_t> hellos_{0};
  std::atomic<uint64_t> churn_asked_{0};
  std::atomic<uint64_t> churn_done_{0};
  background_thread worker_;
};

// -- dead addresses -----------------------------------------------------------

/// `count` addresses spread round robin over `ips` (127.0.0.x) that refuse
/// every connection: each port is held by a bound socket that never listens
/// (so nobody else takes it, and a SYN to it gets a reset).
class dead_ports {
public:
  dead_ports(const std::vector<std::string>& ips, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      auto& ip = ips[i % ips.size()];
      auto fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      if (fd < 0 || ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1
          || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
        if (fd >= 0)
          ::close(fd);
        error = "cannot bind on " + ip + ": " + std::strerror(errno);
        return;
      }
      socklen_t len = sizeof(sa);
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
      fds_.push_back(fd);
      addresses_.push_back(ip + ":" + std::to_string(ntohs(sa.sin_port)));
    }
  }

  ~dead_ports() {
    for (auto fd : fds_)
      ::close(fd);
  }

  dead_ports(const dead_ports&) = delete;
  dead_ports& operator=(const dead_ports&) = delete;

  /// Whether every port is held (else `error` says why).
  bool ok() const {
    return error.empty();
  }

  /// The refusing addresses, "127.0.0.x:port".
  const std::vector<std::string>& addresses() const {
    return addresses_;
  }

  /// Why a port could not be held; empty when all were.
  std::string error;

private:
  std::vector<int> fds_;
  std::vector<std::string> addresses_;
};

// -- a namespace with only lo -------------------------------------------------

/// A network namespace holding nothing but `lo` (up): a node inside can
/// reach only itself and what the test runs in there, whatever it dials.
/// Named cmfault-<pid>-eclipse, so `remove_stale_namespaces` clears it after
/// a killed run; the destructor deletes it.
class lo_namespace {
public:
  lo_namespace() {
    remove_stale_namespaces();
    name = "cmfault-" + std::to_string(::getpid()) + "-eclipse";
    for (auto step :
         {"ip netns add " + name, "ip -n " + name + " link set lo up"}) {
      auto [out, rc] = run_command(step + " 2>&1");
      if (rc != 0) {
        error = step + ": " + out;
        return;
      }
    }
    made_ = true;
    // Nothing but lo: else the test would not be safe to run.
    auto [links, rc] = run_command("ip -n " + name + " -o link show 2>&1");
    std::istringstream in{links};
    std::string line;
    size_t count = 0;
    while (std::getline(in, line))
      if (!line.empty())
        ++count;
    if (rc != 0 || count != 1 || links.find(": lo:") == std::string::npos)
      error = "namespace " + name + " has more than lo: " + links;
  }

  ~lo_namespace() {
    if (made_)
      run_command("ip netns del " + name + " 2>/dev/null");
  }

  lo_namespace(const lo_namespace&) = delete;
  lo_namespace& operator=(const lo_namespace&) = delete;

  /// Whether the namespace exists and holds nothing but lo.
  bool ok() const {
    return made_ && error.empty();
  }

  /// The wrapper that runs a program inside.
  std::vector<std::string> exec_in() const {
    return {tool("ip"), "netns", "exec", name};
  }

  /// Runs `f` on a thread inside the namespace; false (and `f` not run)
  /// when the thread could not enter it. Sockets `f` makes stay inside.
  template <class F>
  bool run_in(F f) {
    bool entered = false;
    std::thread t{[&] {
      entered = enter_namespace(name);
      if (entered)
        f();
    }};
    t.join();
    return entered;
  }

  /// cmfault-<pid>-eclipse.
  std::string name;
  /// Why the namespace could not be made or is unsafe; empty when fine.
  std::string error;

private:
  bool made_ = false;
};

// -- the node -----------------------------------------------------------------

/// The `connmgr` keys the node under attack knows, from its `--long-help`.
inline const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> out;
    auto [text, rc] = run_command("'" + attack_binary() + "' --long-help 2>&1");
    const std::string prefix = "--connmgr.";
    for (size_t pos = text.find(prefix); pos != std::string::npos;
         pos = text.find(prefix, pos + 1)) {
      auto start = pos + prefix.size();
      auto end = text.find_first_of("= \n", start);
      out.insert(text.substr(start, end - start));
    }
    return out;
  }();
  return keys;
}

/// A shell wrapper that runs the rest of its command line without the
/// `connmgr` keys the node under attack does not know (an older build
/// refuses unknown keys and would not start), so the same scenario shows
/// what an older node does.
inline std::vector<std::string> without_unknown_keys() {
  std::string known;
  for (auto& k : known_keys())
    known += (known.empty() ? "" : "|") + ("--connmgr." + k) + "|--connmgr." + k
      + "=*";
  return {"/bin/sh", "-c",
          "for a; do shift; case \"$a\" in " + known
            + ") set -- \"$@\" \"$a\" ;; --connmgr.*) ;; "
              "*) set -- \"$@\" \"$a\" ;; esac; done; exec \"$@\"",
          "sh"};
}

/// A node of the binary under attack with `args`, behind `wrapper` (e.g.
/// `lo_namespace::exec_in`), booted.
inline std::unique_ptr<node_process>
eclipse_node(std::vector<std::string> args,
             std::vector<std::string> wrapper = {}) {
  if (attack_binary() != node_binary() && !known_keys().empty()) {
    auto strip = without_unknown_keys();
    if (wrapper.empty())
      wrapper = strip;
    else
      wrapper.insert(wrapper.end(), strip.begin(), strip.end());
  }
  auto n = std::make_unique<node_process>(std::move(args), std::move(wrapper),
                                          process_options{}, attack_binary());
  n->boot();
  return n;
}

/// The known_addresses of the node's last status line (-1 before any).
inline int64_t known_addresses(const node_process& n) {
  auto lines = n.events("status");
  if (lines.empty())
    return -1;
  return json_int(lines.back(), "known_addresses").value_or(-1);
}

/// `text` as the node prints the address (its canonical form).
inline std::string canonical(const std::string& text) {
  auto a = net_address::parse(text);
  REQUIRE_MESSAGE(a, text);
  return a->to_string();
}

/// Sends `texts` as addr frames of at most 1000 entries; whether all went.
inline bool gossip(wire_peer& p, const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); i += frames::max_addresses) {
    auto end = std::min(texts.size(), i + frames::max_addresses);
    std::vector<std::string> part(texts.begin() + static_cast<ptrdiff_t>(i),
                                  texts.begin() + static_cast<ptrdiff_t>(end));
    if (!p.send_all(addr_frame(part)))
      return false;
  }
  return true;
}

} // namespace connmgr::eclipse
