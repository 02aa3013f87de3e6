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
  if (watch)
    watch_adopted(conn, fd, registered);
  return conn;
}

connection_ptr reactor::impl::adopt(connection_ptr conn, int fd, bool watch) {
  if (watch)
    watch_adopted(conn, fd, false);
  return conn;
}

void reactor::impl::watch_adopted(const connection_ptr& conn, int fd,
                                  bool registered) {
  auto token = watch_bit | ++next_watch;
  if (registered) {
    if (!register_watch(epfd.get(), fd, token, EPOLL_CTL_MOD)) {
      // Unwatched then: the old registration must not fire any more.
      ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, fd, nullptr);
      return;
    }
  } else if (watch_timer || start_watch_timer()) {
    deferred_watches.push_back(
      deferred_watch{clock::now() + watch_delay, token});
  } else if (!register_watch(epfd.get(), fd, token, EPOLL_CTL_ADD)) {
    return;
  }
  *watches.try_emplace(token).first = watch_entry{conn, conn.get()};
  conn->watch_token_ = token;
  if (watches.size() >= sweep_at)
    sweep();
}

bool reactor::impl::start_watch_timer() {
  unique_fd fd{::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)};
  if (!fd)
    return false;
  static_assert(watch_tick < std::chrono::seconds{1});
  constexpr auto tick_ns =
    std::chrono::duration_cast<std::chrono::nanoseconds>(watch_tick).count();
  itimerspec spec{};
  spec.it_value.tv_nsec = tick_ns;
  spec.it_interval.tv_nsec = tick_ns;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = watch_timer_token;
  if (::timerfd_settime(fd.get(), 0, &spec, nullptr) != 0
      || ::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd.get(), &ev) != 0)
    return false;
  watch_timer = std::move(fd);
  return true;
}

void reactor::impl::register_due_watches(clock::time_point now) {
  while (!deferred_watches.empty() && deferred_watches.front().due <= now) {
    auto token = deferred_watches.front().token;
    deferred_watches.pop_front();
    auto entry = watches.find(token);
    if (entry == nullptr)
      continue; // a stream took it over, or the reactor stopped
    auto conn = entry->conn.lock();
    bool added = false;
    if (conn)
      conn->with_fd([this, token, &added](int fd) {
        added = register_watch(epfd.get(), fd, token, EPOLL_CTL_ADD);
      });
    if (!added) {
      // Closed or released meanwhile: nothing to watch.
      watches.erase(token);
      if (conn)
        conn->watch_token_ = 0;
    }
  }
}

void reactor::impl::on_watch_tick() {
  uint64_t expirations = 0;
  [[maybe_unused]] auto n =
    ::read(watch_timer.get(), &expirations, sizeof(expirations));
  register_due_watches(clock::now());
  // Idle: no descriptor of ours stays open for nothing (closing it also
  // takes it out of the epoll set).
  if (deferred_watches.empty())
    watch_timer = unique_fd{};
}

void reactor::impl::unwatch(connection* conn) {
  auto token = conn->watch_token_;
  if (token == 0)
    return;
  conn->watch_token_ = 0;
  if (auto entry = watches.find(token); entry != nullptr && entry->key == conn)
    watches.erase(token);
}

void reactor::impl::sweep() {
  swept.clear();
  watches.for_each([this](uint64_t token, const watch_entry& entry) {
    auto conn = entry.conn.lock();
    if (!conn || conn->closed())
      swept.push_back(token);
  });
  for (auto token : swept)
    watches.erase(token);
  sweep_at = std::max<size_t>(1024, watches.size() * 2);
}

void reactor::impl::on_watch_event(uint64_t token, uint32_t events) {
  if (token == watch_timer_token) {
    on_watch_tick();
    return;
  }
  auto entry = watches.find(token);
  if (entry == nullptr)
    return;
  auto conn = entry->conn.lock();
  watches.erase(token);
  if (!conn)
    return;
  if ((events & EPOLLERR) != 0) {
    if (!peer_reset_reason)
      peer_reset_reason =
        make_error(errc::connection_closed, "connection reset by peer");
    conn->peer_gone(peer_reset_reason);
  } else {
    if (!peer_closed_reason)
      peer_closed_reason =
        make_error(errc::connection_closed, "peer closed the connection");
    conn->peer_gone(peer_closed_reason);
  }
}

} // namespace connmgr
