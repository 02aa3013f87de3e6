// Listening sockets: accepts in batches, and pauses a listener while
// descriptors run out instead of spinning on a connection it cannot take.
#include "connmgr/net/reactor_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>

#include "connmgr/net/net_address.hpp"

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
  sockaddr_in bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(op.fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0
      && bound.sin_family == AF_INET && bound.sin_addr.s_addr != INADDR_ANY) {
    op.has_local_ipv4 = true;
    op.local_ipv4 = ntohl(bound.sin_addr.s_addr);
    op.local_port = ntohs(bound.sin_port);
  }
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
      if (batch.empty())
        batch.reserve(accept_batch); // one allocation per batch
      if (addr.ss_family == AF_INET) {
        sockaddr_in in{};
        std::memcpy(&in, &addr, sizeof(in));
        auto ip = ntohl(in.sin_addr.s_addr);
        auto remote = ipv4_to_string(ip, ntohs(in.sin_port));
        auto conn = l.has_local_ipv4
          ? std::make_shared<connection>(fd, std::move(remote), ip,
                                         l.local_ipv4, l.local_port)
          : std::make_shared<connection>(fd, std::move(remote), ip);
        batch.push_back(adopt(std::move(conn), fd, l.watch));
      } else {
        batch.push_back(adopt(fd, print(addr), l.watch));
      }
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
  // Under steady arrivals the watches come due here, between ticks.
  if (!deferred_watches.empty())
    register_due_watches(clock::now());
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
