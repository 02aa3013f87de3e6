// Peer-gone watches: a one-shot EPOLLRDHUP registration per connected
// socket nobody streams, reported through `connection::peer_gone`.
#include "connmgr/net/reactor_impl.hpp"

#include <algorithm>

#include <sys/epoll.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

connection_ptr reactor::impl::adopt(int fd, std::string remote, bool watch,
                                    bool registered) {
  auto conn = std::make_shared<connection>(fd, std::move(remote));
  if (!watch)
    return conn;
  auto token = watch_bit | ++next_watch;
  // One-shot: after it fires the registration goes quiet, and it vanishes
  // with the descriptor, so we never need EPOLL_CTL_DEL on a number that
  // may already belong to someone else.
  epoll_event ev{};
  ev.events = EPOLLRDHUP | EPOLLONESHOT;
  ev.data.u64 = token;
  if (::epoll_ctl(epfd.get(), registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
                  &ev)
      == 0) {
    watches.emplace(token, watch_entry{conn, conn.get()});
    conn->watch_token_ = token;
    if (watches.size() >= sweep_at)
      sweep();
  } else if (registered) {
    // Unwatched then: the old registration must not fire any more.
    ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, fd, nullptr);
  }
  return conn;
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
