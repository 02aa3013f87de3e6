#pragma once

// Support for the admission tests (tests/fault/admission_test.cpp): peers
// that hold a node's inbound slots the way an attacker would, and an honest
// peer's single try, on top of attack_support.hpp's `wire_peer`:
//
// - `squatter_pool`: N handshaked connections from chosen 127.0.0.0/8
//   sources that answer every ping, reopened (from the next source) as soon
//   as the node closes one, on a thread of their own;
// - `honest_try`: one connection that says hello, waits for the node's and
//   then stays a while answering pings, reporting what happened;
// - `held_by_log`: how many connections of a set of addresses the node held
//   at most, by its own accepted / evicted / peer_closed / peer_dropped
//   events.
//
// Every socket made here connects to 127.0.0.1 only.

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <poll.h>
#include <sys/socket.h>

#include "tests/fault/eclipse_support.hpp"

namespace connmgr::admission {

using namespace connmgr::eclipse;

/// The "addr" of every line of `n` that is event `name` (optionally with
/// `fields`).
inline std::set<std::string>
addrs_of(const node_process& n, const std::string& name,
         std::vector<std::pair<std::string, std::string>> fields = {}) {
  std::set<std::string> out;
  for (auto& l : n.events(name, std::move(fields)))
    out.insert(json_get(l, "addr").value_or(""));
  return out;
}

/// The most connections from `addrs` the node held at once by its own
/// account: "accepted" takes a slot, "evicted", "peer_closed" and
/// "peer_dropped" give it back, read in the order the node wrote them. The manager reports an
/// eviction before the newcomer it made room for, so a node that never
/// holds more than k of them never shows more than k here.
inline size_t held_by_log(const node_process& n,
                          const std::set<std::string>& addrs) {
  std::set<std::string> held;
  size_t peak = 0;
  for (auto& l : n.texts()) {
    auto ev = json_event(l);
    if (ev != "accepted" && ev != "evicted" && ev != "peer_closed"
        && ev != "peer_dropped")
      continue;
    auto addr = json_get(l, "addr").value_or("");
    if (addrs.count(addr) == 0)
      continue;
    if (ev == "accepted")
      held.insert(addr);
    else
      held.erase(addr);
    peak = std::max(peak, held.size());
  }
  return peak;
}

// -- an honest peer ------------------------------------------------------------

/// What one honest try did.
struct try_result {
  /// How the node names the connection ("127.0.x.y:port"); empty when the
  /// connect itself failed.
  std::string local;
  /// The node's hello arrived.
  bool hello = false;
  /// Still connected when the stay ended (the node did not close it).
  bool stayed = false;
  /// Pings the node sent and the peer answered during the stay.
  size_t pongs = 0;
};

/// One honest peer from `source`: connects to 127.0.0.1:`port`, sends its
/// hello, waits up to `timeout` for the node's, then stays `stay` answering
/// pings; closes when done.
inline try_result honest_try(uint16_t port, const std::string& source,
                             clock_type::duration stay,
                             clock_type::duration timeout = 5s) {
  try_result out;
  wire_peer p{port, source, 0, timeout};
  if (!p.ok())
    return out;
  out.local = p.local();
  if (!p.send_all(hello_frame(fresh_id()), timeout))
    return out;
  auto deadline = clock_type::now() + timeout;
  while (!out.hello) {
    auto f = p.read_frame(deadline - clock_type::now());
    if (!f)
      return out;
    if (std::holds_alternative<frames::hello>(*f))
      out.hello = true;
    else if (auto ping = std::get_if<frames::ping>(&*f))
      p.send_all(frames::encode(frames::pong{ping->nonce}));
  }
  auto until = clock_type::now() + stay;
  for (;;) {
    auto f = p.read_frame(until - clock_type::now());
    if (f) {
      if (auto ping = std::get_if<frames::ping>(&*f)) {
        if (!p.send_all(frames::encode(frames::pong{ping->nonce})))
          return out;
        ++out.pongs;
      }
      continue;
    }
    // Nothing: the stay ended (read_frame gives up within a millisecond of
    // the deadline), the node closed, or it sent garbage.
    out.stayed = clock_type::now() + 5ms >= until && p.drain();
    return out;
  }
}

// -- squatters -----------------------------------------------------------------

/// `target` inbound connections to 127.0.0.1:`port`, each from the next of
/// `sources` (round robin), that complete the hello and answer every ping:
/// to the node, peers as good as any honest one. Whenever the node closes
/// one, another is opened (at most one attempt per `retry` while short),
/// so every slot that frees is taken again. Runs on its own thread until
/// destroyed; the destructor closes every connection.
class squatter_pool {
public:
  squatter_pool(uint16_t port, std::vector<std::string> sources, size_t target,
                clock_type::duration retry = 50ms)
    : port_(port), sources_(std::move(sources)), target_(target),
      retry_(retry) {
    REQUIRE(!sources_.empty());
    worker_.start([this] { loop(); });
  }

  ~squatter_pool() {
    worker_.stop();
  }

  /// How the node names each open connection that received the node's
  /// hello.
  std::vector<std::string> greeted() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::string> out;
    for (auto& c : conns_)
      if (c.hello)
        out.push_back(c.peer->local());
    return out;
  }

  /// How the node names each open connection that answered at least one
  /// ping.
  std::vector<std::string> pinged() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::string> out;
    for (auto& c : conns_)
      if (c.pongs > 0)
        out.push_back(c.peer->local());
    return out;
  }

  /// Every address a connection of the pool ever had.
  std::set<std::string> ever() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return ever_;
  }

  /// Connections the node closed after sending its hello (evictions, drops).
  size_t lost_after_hello() const {
    return lost_after_hello_;
  }

  /// Connections opened so far.
  size_t opened() const {
    return opened_;
  }

private:
  struct conn {
    std::unique_ptr<wire_peer> peer;
    std::vector<uint8_t> in;
    bool hello = false;
    size_t pongs = 0;
  };

  void loop() {
    auto next_attempt = clock_type::now();
    size_t next_source = 0;
    while (!worker_.stopping()) {
      auto now = clock_type::now();
      if (size() < target_ && now >= next_attempt) {
        next_attempt = now + retry_;
        auto& src = sources_[next_source++ % sources_.size()];
        auto p = std::make_unique<wire_peer>(port_, src, 0, 2s);
        if (p->ok() && p->send_all(hello_frame(fresh_id()), 2s)) {
          ++opened_;
          std::lock_guard<std::mutex> guard{mtx_};
          ever_.insert(p->local());
          conns_.push_back(conn{std::move(p), {}, false, 0});
        }
      }
      std::vector<pollfd> fds;
      {
        std::lock_guard<std::mutex> guard{mtx_};
        for (auto& c : conns_)
          fds.push_back(pollfd{c.peer->fd(), POLLIN, 0});
      }
      if (fds.empty()) {
        std::this_thread::sleep_for(10ms);
        continue;
      }
      ::poll(fds.data(), fds.size(), 10);
      std::lock_guard<std::mutex> guard{mtx_};
      for (size_t i = 0; i < conns_.size();) {
        if (fds.size() > i && fds[i].revents != 0 && !serve(conns_[i])) {
          if (conns_[i].hello)
            ++lost_after_hello_;
          conns_.erase(conns_.begin() + static_cast<ptrdiff_t>(i));
          fds.erase(fds.begin() + static_cast<ptrdiff_t>(i));
          continue;
        }
        ++i;
      }
    }
    std::lock_guard<std::mutex> guard{mtx_};
    conns_.clear();
  }

  size_t size() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return conns_.size();
  }

  /// Reads what arrived on `c`, answering pings; false once it closed.
  bool serve(conn& c) {
    if (!read_available(c.peer->fd(), c.in))
      return false;
    for (;;) {
      auto res = frames::decode(c.in.data(), c.in.size());
      if (res.status == parse_status::failed)
        return false;
      if (res.status != parse_status::done)
        return true;
      c.in.erase(c.in.begin(),
                 c.in.begin() + static_cast<ptrdiff_t>(res.consumed));
      if (std::holds_alternative<frames::hello>(res.value)) {
        c.hello = true;
      } else if (auto p = std::get_if<frames::ping>(&res.value)) {
        if (!c.peer->send_all(frames::encode(frames::pong{p->nonce}), 1s))
          return false;
        ++c.pongs;
      }
    }
  }

  uint16_t port_;
  std::vector<std::string> sources_;
  size_t target_;
  clock_type::duration retry_;
  mutable std::mutex mtx_;
  std::vector<conn> conns_;
  std::set<std::string> ever_;
  std::atomic<size_t> lost_after_hello_{0};
  std::atomic<size_t> opened_{0};
  background_thread worker_;
};

} // namespace connmgr::admission
