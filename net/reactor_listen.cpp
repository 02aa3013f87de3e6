// Listening sockets: accepts in batches, and pauses a listener while
// descriptors run out instead of spinning on a connection it cannot take.
#include "connmgr/net/reactor_impl.hpp"

#include <algorithm>
#include <cerrno>

#include <sys/epoll.h>

namespace connmgr {

namespace {

constexpr int accept_batch = 64;

} // namespace

void reactor::impl::add_listener(uint64_t token, listener_op op) {
  // An early return drops `op`, and with it closes the socket.
  if (closed)
    return;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, op.fd.get(), &ev) != 0)
    return;
  listeners.emplace(token, std::move(op));
}

void reactor::impl::on_listener_event(listener_op& l, uint64_t token) {
  std::vector<connection_ptr> batch;
  for (int i = 0; i < accept_batch; ++i) {
    sockaddr_storage addr{};
    socklen_t len = sizeof(addr);
    int fd = ::accept4(l.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      batch.push_back(adopt(fd, print(addr), l.watch));
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      break;
    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
      continue;
    // EMFILE, ENFILE, ENOBUFS, ENOMEM or worse: the pending connection
    // stays queued and a level-triggered epoll would report it again at
    // once, so stop listening for a while instead of spinning.
    pause(l, token);
    break;
  }
  if (!batch.empty()) {
    if (!l.paused)
      l.pause = min_accept_pause;
    st.accepted += batch.size();
    l.handler(batch);
  }
}

void reactor::impl::pause(listener_op& l, uint64_t token) {
  epoll_event ev{};
  ev.events = 0;
  ev.data.u64 = token;
  ::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
  l.paused = true;
  l.resume_at = clock::now() + l.pause;
  timers.push(timer{l.resume_at, token});
  l.pause = std::min(l.pause * 2, max_accept_pause);
  ++st.accept_pauses;
}

void reactor::impl::resume(listener_op& l, uint64_t token) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = token;
  ::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, l.fd.get(), &ev);
  l.paused = false;
}

void reactor::impl::remove_listener(uint64_t token) {
  auto i = listeners.find(token);
  if (i == listeners.end())
    return;
  ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, i->second.fd.get(), nullptr);
  listeners.erase(i); // closes the socket
}

} // namespace connmgr
