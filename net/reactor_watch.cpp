// Peer-gone watches: a one-shot EPOLLRDHUP registration per connected
// socket nobody streams, reported through `connection::peer_gone`.
#include "connmgr/net/reactor_impl.hpp"

#include <algorithm>

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

/// Adds `fd` to `epfd` (or modifies its registration) for a one-shot report
/// of the peer going away under `token`.
bool register_watch(int epfd, int fd, uint64_t token, int op) {
  // One-shot: after it fires the registration goes quiet, and it vanishes
  // with the descriptor, so we never need EPOLL_CTL_DEL on a number that
  // may already belong to someone else.
  epoll_event ev{};
  ev.events = EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = token;
  return ::epoll_ctl(epfd, op, fd, &ev) == 0;
}

} // namespace

connection_ptr reactor::impl::adopt(int fd, std::string remote, bool watch,
                                    bool registered) {
  auto conn = std::make_shared<connection>(fd, std::move(remote));
  if (!watch)
    return conn;
  auto token = watch_bit | ++next_watch;
  if (registered) {
    if (!register_watch(epfd.get(), fd, token, EPOLL_CTL_MOD)) {
      // Unwatched then: the old registration must not fire any more.
      ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, fd, nullptr);
      return conn;
    }
  } else {
    auto due = clock::now() + watch_delay;
    if (watch_timer_armed || arm_watch_timer(due)) {
      deferred_watches.push_back(deferred_watch{due, token});
    } else if (!register_watch(epfd.get(), fd, token, EPOLL_CTL_ADD)) {
      return conn;
    }
  }
  watches.emplace(token, watch_entry{conn, conn.get()});
  conn->watch_token_ = token;
  if (watches.size() >= sweep_at)
    sweep();
  return conn;
}

bool reactor::impl::arm_watch_timer(clock::time_point at) {
  if (!watch_timer) {
    unique_fd fd{::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)};
    if (!fd)
      return false;
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = watch_timer_token;
    if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0)
      return false;
    watch_timer = std::move(fd);
  }
  // steady_clock is CLOCK_MONOTONIC on Linux.
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
              at.time_since_epoch())
              .count();
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0)
    spec.it_value.tv_nsec = 1; // zero would disarm it
  if (::timerfd_settime(watch_timer.get(), TFD_TIMER_ABSTIME, &spec, nullptr)
      != 0)
    return false;
  watch_timer_armed = true;
  return true;
}

void reactor::impl::register_due_watches(clock::time_point now) {
  while (!deferred_watches.empty() && deferred_watches.front().due <= now) {
    auto token = deferred_watches.front().token;
    deferred_watches.pop_front();
    auto i = watches.find(token);
    if (i == watches.end())
      continue; // a stream took it over, or the reactor stopped
    auto conn = i->second.conn.lock();
    bool added = false;
    if (conn)
      conn->with_fd([this, token, &added](int fd) {
        added = register_watch(epfd.get(), fd, token, EPOLL_CTL_ADD);
      });
    if (!added) {
      // Closed or released meanwhile: nothing to watch.
      watches.erase(i);
      if (conn)
        conn->watch_token_ = 0;
    }
  }
  if (!deferred_watches.empty()
      && !arm_watch_timer(deferred_watches.front().due)) {
    // Cannot wait: register the rest now.
    for (auto& d : deferred_watches)
      d.due = now;
    register_due_watches(now);
  }
}

void reactor::impl::unwatch(connection* conn) {
  auto token = conn->watch_token_;
  if (token == 0)
    return;
  conn->watch_token_ = 0;
  if (auto i = watches.find(token); i != watches.end() && i->second.key == conn)
    watches.erase(i);
}

void reactor::impl::sweep() {
  for (auto i = watches.begin(); i != watches.end();) {
    auto conn = i->second.conn.lock();
    if (!conn || conn->closed()) {
      i = watches.erase(i);
    } else {
      ++i;
    }
  }
  sweep_at = std::max<size_t>(1024, watches.size() * 2);
}

void reactor::impl::on_watch_event(uint64_t token, uint32_t events) {
  if (token == watch_timer_token) {
    uint64_t expirations = 0;
    [[maybe_unused]] auto n =
      ::read(watch_timer.get(), &expirations, sizeof(expirations));
    watch_timer_armed = false;
    register_due_watches(clock::now());
    return;
  }
  auto i = watches.find(token);
  if (i == watches.end())
    return;
  auto conn = i->second.conn.lock();
  watches.erase(i);
  if (conn)
    conn->peer_gone(make_error(errc::connection_closed,
                               (events & EPOLLERR) != 0
                                 ? "connection reset by peer"
                                 : "peer closed the connection"));
}

} // namespace connmgr
