// Outbound connects: a socket per address in turn until one answers, then
// the connect's handshake (if any), all within the connect's deadline.
#include "connmgr/net/reactor_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <netinet/in.h>
#include <sys/epoll.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

namespace {

socklen_t length_of(const sockaddr_storage& sa) {
  return sa.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

} // namespace

std::string reactor::impl::print(const sockaddr_storage& sa) {
  auto addr = net_address::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa),
                                         length_of(sa));
  return addr ? addr->to_string() : std::string{"<unprintable address>"};
}

void reactor::impl::add_connect(uint64_t token, connect_op op) {
  ++st.connects_started;
  if (closed) {
    ++st.connects_canceled;
    op.handler(make_error(errc::canceled, "reactor stopped"));
    return;
  }
  auto deadline = op.deadline;
  auto& ref = connects.emplace(token, std::move(op)).first->second;
  timers.push(timer{deadline, token});
  try_next_address(token, ref);
}

void reactor::impl::try_next_address(uint64_t token, connect_op& op) {
  while (op.next < op.addrs.size()) {
    auto& sa = op.addrs[op.next++];
    unique_fd fd{op.premade
                   ? op.premade.release()
                   : ::socket(sa.ss_family,
                              SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (!fd) {
      op.last_error = errno_error(errno, "socket for " + print(sa));
      continue;
    }
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&sa),
                       length_of(sa));
    if (rc == 0 || errno == EINPROGRESS) {
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 = token;
      if (::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd.get(), &ev) == 0) {
        op.fd = std::move(fd);
        return; // writable once the handshake with the peer is done
      }
    }
    op.last_error = errno_error(errno, "connect " + print(sa));
  }
  finish(token,
         op.last_error
           ? op.last_error
           : make_error(errc::dial_failed, "no address to connect to"));
}

void reactor::impl::on_connect_event(uint64_t token, connect_op& op,
                                     uint32_t events) {
  if (!op.handshaking) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(op.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err == 0 && (events & (EPOLLERR | EPOLLHUP)) != 0)
      err = ECONNRESET;
    if (err != 0) {
      op.last_error =
        errno_error(err, "connect " + print(op.addrs[op.next - 1]));
      drop_socket(op);
      try_next_address(token, op);
      return;
    }
    if (!op.handshake) {
      succeed(token, op);
      return;
    }
    op.handshaking = true;
    op.out = op.handshake->take_output();
    op.out_pos = 0;
  }
  if (!flush(token, op))
    return;
  if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !read_some(token, op))
    return;
  watch(token, op);
}

bool reactor::impl::flush(uint64_t token, connect_op& op) {
  while (op.out_pos < op.out.size()) {
    auto n = ::send(op.fd.get(), op.out.data() + op.out_pos,
                    op.out.size() - op.out_pos, MSG_NOSIGNAL);
    if (n < 0)
      return handshake_would_block(token, "handshake send");
    op.out_pos += static_cast<size_t>(n);
  }
  op.out.clear();
  op.out_pos = 0;
  return true;
}

bool reactor::impl::read_some(uint64_t token, connect_op& op) {
  uint8_t buf[512];
  for (;;) {
    auto want =
      std::min(sizeof(buf), std::max<size_t>(1, op.handshake->wanted()));
    auto n = ::recv(op.fd.get(), buf, want, 0);
    if (n == 0) {
      finish(token,
             make_error(errc::proxy_failed,
                        "peer closed the connection mid-handshake"));
      return false;
    }
    if (n < 0)
      return handshake_would_block(token, "handshake recv");
    caf::error err;
    auto status = op.handshake->feed(buf, static_cast<size_t>(n), err);
    if (status == stream_handshake::status::failed) {
      finish(token,
             err ? err : make_error(errc::proxy_failed, "handshake failed"));
      return false;
    }
    auto more = op.handshake->take_output();
    op.out.insert(op.out.end(), more.begin(), more.end());
    if (status == stream_handshake::status::done) {
      if (!op.out.empty() && !flush(token, op))
        return false;
      succeed(token, op);
      return false;
    }
    if (!flush(token, op))
      return false;
  }
}

bool reactor::impl::handshake_would_block(uint64_t token, const char* what) {
  auto err = errno;
  if (err == EAGAIN || err == EWOULDBLOCK)
    return true;
  finish(token,
         make_error(errc::proxy_failed,
                    std::string{what} + ": " + std::strerror(err)));
  return false;
}

void reactor::impl::watch(uint64_t token, connect_op& op) {
  epoll_event ev{};
  ev.events = EPOLLIN | (op.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
  ev.data.u64 = token;
  ::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, op.fd.get(), &ev);
}

void reactor::impl::drop_socket(connect_op& op) {
  if (op.fd) {
    ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, op.fd.get(), nullptr);
    op.fd.reset();
  }
}

void reactor::impl::succeed(uint64_t token, connect_op& op) {
  // The connect's registration becomes the watch (or goes): one syscall.
  if (!op.watch)
    ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, op.fd.get(), nullptr);
  auto conn = adopt(op.fd.release(), std::move(op.remote_name), op.watch, true);
  auto handler = std::move(op.handler);
  connects.erase(token);
  ++st.connects_succeeded;
  handler(std::move(conn));
}

void reactor::impl::finish(uint64_t token, caf::error err) {
  auto i = connects.find(token);
  if (i == connects.end())
    return;
  drop_socket(i->second);
  auto handler = std::move(i->second.handler);
  connects.erase(i);
  switch (errc_of(err)) {
    case errc::timed_out:
      ++st.connects_timed_out;
      break;
    case errc::canceled:
      ++st.connects_canceled;
      break;
    default:
      ++st.connects_failed;
  }
  handler(std::move(err));
}

} // namespace connmgr
