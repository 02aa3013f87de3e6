// Inbound flood against a real connmgr-node: 20 000 connection attempts from
// one source (127.0.0.1) against a node with max-inbound=8 that holds two
// outbound peers and one inbound peer, all pinged every second. The node
// must keep those three, keep its memory bounded, close every connection it
// rejects at once, give back every descriptor afterwards and still admit a
// legitimate peer. See fault_support.hpp for the harness.

#include <doctest/doctest.h>

#ifdef CONNMGR_NODE_BINARY

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/epoll.h>
#include <sys/socket.h>

#include "tests/fault/fault_support.hpp"

using namespace connmgr::fault;

namespace {

/// What a flood saw.
struct flood_result {
  size_t attempted = 0;
  /// Closed by the node (EOF or RST) without a byte: rejected.
  size_t rejected = 0;
  /// Got bytes (the node's hello): admitted; left open in `admitted_fds`.
  std::vector<int> admitted_fds;
  /// connect() failed outright or the handshake failed.
  size_t connect_failed = 0;
  /// Still open after `stuck_after`: closed by us.
  size_t stuck = 0;
  /// Per rejected connection: ms from the handshake's completion (as seen
  /// here) to the node's close; and from our connect() call.
  std::vector<double> close_ms;
  std::vector<double> total_ms;
  double seconds = 0;
};

double percentile(std::vector<double> xs, double p) {
  if (xs.empty())
    return 0;
  std::sort(xs.begin(), xs.end());
  auto k = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  return xs[k];
}

/// Opens `total` connections to 127.0.0.1:`port`, at most `concurrency` at
/// once, and waits on each for the node's verdict: a close (counted as
/// rejected, closed here at once) or bytes (admitted, kept open).
flood_result flood(uint16_t port, size_t total, size_t concurrency,
                   clock_type::duration stuck_after = 10s) {
  flood_result res;
  int ep = ::epoll_create1(EPOLL_CLOEXEC);
  REQUIRE(ep >= 0);
  struct conn {
    clock_type::time_point started;
    clock_type::time_point established;
    bool up = false;
  };
  std::unordered_map<int, conn> live;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  auto ms_since = [](clock_type::time_point t, clock_type::time_point now) {
    return std::chrono::duration<double, std::milli>(now - t).count();
  };
  auto finish = [&](int fd) {
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    ::close(fd);
    live.erase(fd);
  };
  auto launch = [&] {
    ++res.attempted;
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ++res.connect_failed;
      return;
    }
    auto now = clock_type::now();
    auto r = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
    if (r != 0 && errno != EINPROGRESS) {
      ++res.connect_failed;
      ::close(fd);
      return;
    }
    conn c;
    c.started = now;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    if (r == 0) {
      c.up = true;
      c.established = now;
    } else {
      ev.events |= EPOLLOUT;
    }
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    live.emplace(fd, c);
  };
  auto start = clock_type::now();
  auto next_sweep = start + 100ms;
  std::vector<epoll_event> events(512);
  while (res.attempted < total || !live.empty()) {
    while (res.attempted < total && live.size() < concurrency)
      launch();
    auto n =
      ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), 20);
    auto now = clock_type::now();
    for (int k = 0; k < n; ++k) {
      auto fd = events[static_cast<size_t>(k)].data.fd;
      auto flags = events[static_cast<size_t>(k)].events;
      auto i = live.find(fd);
      if (i == live.end())
        continue;
      auto& c = i->second;
      if (!c.up && (flags & EPOLLOUT) != 0) {
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 && err != ECONNRESET) {
          ++res.connect_failed;
          finish(fd);
          continue;
        }
        c.up = true;
        c.established = now;
        if (err == ECONNRESET) {
          // Reset before we even saw it up: closed at once.
          ++res.rejected;
          res.close_ms.push_back(0);
          res.total_ms.push_back(ms_since(c.started, now));
          finish(fd);
          continue;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.fd = fd;
        ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
      }
      if ((flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) == 0)
        continue;
      char buf[256];
      auto got = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (got > 0) {
        // The node's hello: this one was admitted. Keep it open (it holds
        // an inbound slot) and stop watching it.
        ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
        res.admitted_fds.push_back(fd);
        live.erase(i);
        continue;
      }
      if (got < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      ++res.rejected;
      res.close_ms.push_back(ms_since(c.up ? c.established : c.started, now));
      res.total_ms.push_back(ms_since(c.started, now));
      finish(fd);
    }
    if (now >= next_sweep) {
      next_sweep = now + 100ms;
      std::vector<int> old;
      for (auto& [fd, c] : live)
        if (now - c.started > stuck_after)
          old.push_back(fd);
      for (auto fd : old) {
        ++res.stuck;
        finish(fd);
      }
    }
  }
  res.seconds =
    std::chrono::duration<double>(clock_type::now() - start).count();
  ::close(ep);
  return res;
}

/// Samples a process's RSS and descriptor count on its own thread until
/// destroyed; keeps the maxima.
class sampler {
public:
  explicit sampler(pid_t pid) : pid_(pid) {
    worker_.start([this] {
      while (!worker_.stopping()) {
        auto rss = rss_kib(pid_);
        auto fds = connmgr::held_descriptor_count(pid_);
        max_rss_ = std::max<uint64_t>(max_rss_, rss);
        max_fds_ = std::max<size_t>(max_fds_, fds);
        std::this_thread::sleep_for(10ms);
      }
    });
  }
  ~sampler() {
    worker_.stop();
  }

  uint64_t max_rss_kib() const {
    return max_rss_;
  }
  size_t max_fds() const {
    return max_fds_;
  }

private:
  pid_t pid_;
  std::atomic<uint64_t> max_rss_{0};
  std::atomic<size_t> max_fds_{0};
  background_thread worker_;
};

} // namespace

TEST_CASE("fault: inbound flood of 20 000 connections from one source") {
  constexpr size_t flood_size = 20000;
  constexpr size_t concurrency = 256;
  constexpr int64_t max_inbound = 8;
  [[maybe_unused]] constexpr uint64_t rss_bound_kib = 20 * 1024;
  constexpr double close_bound_ms = 2000;
  auto keepalive = opt("ping-interval", "1s");
  // F: the node under attack, with two outbound peers (O1, O2) and one
  // inbound peer (L1), all pinged every second, so a node too busy to serve
  // them would drop them (or be dropped) during the flood.
  node_process o1{{opt("listen", list({"127.0.0.1:0"})),
                   opt("target-outbound", "0"), keepalive}};
  node_process o2{{opt("listen", list({"127.0.0.1:0"})),
                   opt("target-outbound", "0"), keepalive}};
  o1.boot();
  o2.boot();
  node_process f{
    {opt("listen", list({"127.0.0.1:0"})),
     opt("peers", list({o1.addr, o2.addr})), opt("target-outbound", "2"),
     opt("max-inbound", std::to_string(max_inbound)), keepalive,
     // Admitted flood connections keep their slot (never saying
     // hello) for the whole flood.
     opt("handshake-timeout", "2min"), opt("status-interval", "1s")}};
  f.boot();
  node_process l1{
    {opt("connect", list({f.addr})), opt("target-outbound", "0"), keepalive}};
  l1.boot(false);
  for (auto* peer : {&o1, &o2, &l1}) {
    f.seek(0);
    expect_event(f, "peer_ready", {{"peer_node", peer->id}});
  }
  auto fixed = fixed_fds(fds_of(f.pid()));
  auto before = settle_fds(f.pid(), [&](const fd_view& v) {
    return v.established.size() == 3 && v.other_tcp.empty();
  });
  REQUIRE_MESSAGE(before.established.size() == 3, before.to_string());
  // Let the allocator settle with the connections up and a few pings done.
  std::this_thread::sleep_for(1500ms);
  auto rss_before = rss_kib(f.pid());
  auto cpu_before = cpu_ms(f.pid());
  auto lines_before = f.texts().size();
  auto flood_start_ms = unix_ms();

  // The flood.
  flood_result res;
  uint64_t peak_rss = 0;
  size_t peak_fds = 0;
  {
    sampler watch{f.pid()};
    res = flood(f.port, flood_size, concurrency);
    peak_rss = watch.max_rss_kib();
    peak_fds = watch.max_fds();
  }
  auto flood_end_ms = unix_ms();
  auto cpu = cpu_ms(f.pid()) - cpu_before;
  auto rss_after_flood = rss_kib(f.pid());
  auto rate = static_cast<double>(res.attempted) / res.seconds;
  MESSAGE("flood: " << res.attempted << " attempts in " << res.seconds
                    << " s = " << static_cast<int64_t>(rate) << " conn/s ("
                    << concurrency << " in flight); rejected " << res.rejected
                    << ", admitted " << res.admitted_fds.size()
                    << ", connect failed " << res.connect_failed << ", stuck "
                    << res.stuck);
  MESSAGE("close after handshake: p50 "
          << percentile(res.close_ms, 0.5) << " ms, p99 "
          << percentile(res.close_ms, 0.99) << " ms, max "
          << percentile(res.close_ms, 1.0) << " ms; from connect(): max "
          << percentile(res.total_ms, 1.0) << " ms");
  MESSAGE("node: RSS " << rss_before << " KiB before, peak " << peak_rss
                       << " KiB, " << rss_after_flood << " KiB after; fds "
                       << before.total << " before, peak " << peak_fds
                       << "; CPU " << cpu << " ms over the flood");

  // Every attempt got a verdict: the free slots (8 minus L1) admitted, all
  // others closed by the node, each promptly.
  CHECK(res.attempted == flood_size);
  CHECK(res.connect_failed == 0);
  CHECK(res.stuck == 0);
  CHECK(res.admitted_fds.size() == static_cast<size_t>(max_inbound - 1));
  CHECK(res.rejected + res.admitted_fds.size() == flood_size);
  CHECK(percentile(res.close_ms, 1.0) <= close_bound_ms);
  // Memory stayed bounded (checked in builds without a sanitizer).
#ifdef CONNMGR_SANITIZE
  MESSAGE("memory bound not checked: built with -fsanitize=" CONNMGR_SANITIZE);
#else
  CHECK(peak_rss <= rss_before + rss_bound_kib);
  CHECK(hwm_kib(f.pid()) <= rss_before + rss_bound_kib);
#endif
  // Descriptors never grew beyond what is in flight.
  CHECK(peak_fds <= before.total + max_inbound + concurrency);
  // One "rejected" line per rejected connection, each naming the limit.
  std::string odd_rejection;
  auto rejected_lines = [&] {
    size_t n = 0;
    auto all = f.texts();
    for (size_t i = lines_before; i < all.size(); ++i)
      if (json_event(all[i]) == "rejected") {
        ++n;
        if (json_get(all[i], "reason_code") != "inbound_limit")
          odd_rejection = all[i];
      }
    return n;
  };
  auto deadline = clock_type::now() + eventually;
  while (rejected_lines() < res.rejected && clock_type::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(rejected_lines() == res.rejected);
  CHECK_MESSAGE(odd_rejection.empty(), odd_rejection);
  CHECK(f.events("accepted").size() == 1 + res.admitted_fds.size());
  // The peers F had before kept their connections throughout.
  CHECK_MESSAGE(f.events("disconnected").empty(), f.tail(20));
  for (auto* peer : {&o1, &o2, &l1}) {
    CHECK_MESSAGE(f.events("peer_dropped", {{"peer_node", peer->id}}).empty(),
                  f.tail(20));
    CHECK_MESSAGE(f.events("peer_closed", {{"peer_node", peer->id}}).empty(),
                  f.tail(20));
    for (auto ev : {"peer_dropped", "peer_closed", "disconnected"})
      CHECK_MESSAGE(peer->events(ev).empty(), peer->tail(20));
  }
  // The inbound limit held at every status line, and the outbound
  // connections never dipped.
  for (auto& l : f.events("status")) {
    CHECK_MESSAGE(int_of(l, "inbound") <= max_inbound, l);
    if (int_of(l, "ts") >= flood_start_ms)
      CHECK_MESSAGE(int_of(l, "outbound") == 2, l);
  }
  // A status line from after the flood: both outbound connections held.
  f.seek(f.texts().size());
  auto st = expect_event(f, "status");
  CHECK(int_of(st, "outbound") == 2);
  CHECK(int_of(st, "inbound") == max_inbound);

  // The squatters leave: F is back to its descriptors from before.
  for (auto fd : res.admitted_fds)
    ::close(fd);
  auto after = settle_fds(f.pid(), [&](const fd_view& v) {
    return v.established.size() == 3 && v.other_tcp.empty()
      && fixed_fds(v) == fixed;
  });
  MESSAGE("fds before the flood: " << before.summary()
                                   << "; after: " << after.summary());
  CHECK_MESSAGE(after.total == before.total, after.to_string());
  CHECK_MESSAGE(after.other_tcp.empty(), after.to_string());

  // And a legitimate peer gets in and completes the handshake.
  node_process l2{
    {opt("connect", list({f.addr})), opt("target-outbound", "0"), keepalive}};
  l2.boot(false);
  f.seek(lines_before);
  auto ready = expect_event(f, "peer_ready", {{"peer_node", l2.id}});
  expect_event(l2, "peer_ready", {{"peer_node", f.id}});
  MESSAGE("legitimate peer ready "
          << int_of(ready, "ts") - flood_end_ms << " ms after the flood ended ("
          << flood_end_ms - flood_start_ms << " ms long); RSS now "
          << rss_kib(f.pid()) << " KiB");
  f.seek(f.texts().size());
  auto st2 = f.wait_for(
    [](const std::string& l) {
      return json_event(l) == "status" && json_int(l, "peers_ready") == 4;
    },
    eventually);
  CHECK_MESSAGE(st2, f.tail(10));
  stop_all_ok({&l2, &l1, &f, &o1, &o2});
}

#endif // CONNMGR_NODE_BINARY
