#include "tests/support/loopback_listener.hpp"

#include <cerrno>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

namespace connmgr::test {

namespace {

uint16_t port_of(const sockaddr_in& sa) {
  return ntohs(sa.sin_port);
}

uint16_t port_of(const sockaddr_in6& sa) {
  return ntohs(sa.sin6_port);
}

/// Binds `fd` to `sa` and reads back the port it got (the one asked for, or
/// the kernel's choice for port 0).
template <class Address>
bool bind_to(int fd, Address sa, uint16_t& port) {
  socklen_t len = sizeof(sa);
  auto* raw = reinterpret_cast<sockaddr*>(&sa);
  if (::bind(fd, raw, len) != 0 || ::getsockname(fd, raw, &len) != 0)
    return false;
  port = port_of(sa);
  return true;
}

/// [::1]:`port`.
sockaddr_in6 loopback_v6(uint16_t port) {
  // In the order of the fields: family, port, flow info, address, scope.
  return sockaddr_in6{static_cast<sa_family_t>(AF_INET6), htons(port), 0,
                      in6addr_loopback, 0};
}

} // namespace

loopback_socket open_loopback(const loopback_options& opts) {
  int type = SOCK_STREAM;
  if (opts.nonblocking)
    type |= SOCK_NONBLOCK;
  if (opts.close_on_exec)
    type |= SOCK_CLOEXEC;
  loopback_socket result;
  int fd = ::socket(opts.ipv6 ? AF_INET6 : AF_INET, type, 0);
  if (fd < 0)
    return result;
  int on = 1;
  if (opts.reuse_address)
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  uint16_t port = 0;
  auto bound = opts.ipv6 ? bind_to(fd, loopback_v6(opts.port), port)
                         : bind_to(fd, loopback_v4(opts.port), port);
  if (!bound || (opts.listening && ::listen(fd, opts.backlog) != 0)) {
    auto err = errno;
    ::close(fd);
    errno = err;
    return result;
  }
  result.fd = fd;
  result.port = port;
  return result;
}

loopback_options like_connmgr(int backlog) {
  loopback_options o;
  o.backlog = backlog;
  o.nonblocking = true;
  o.reuse_address = true;
  return o;
}

int listen_like_connmgr(int backlog) {
  auto s = open_loopback(like_connmgr(backlog));
  REQUIRE(s.fd >= 0);
  return s.fd;
}

sockaddr_in loopback_v4(uint16_t port) {
  // In the order of the fields: family, port, address, padding.
  return sockaddr_in{static_cast<sa_family_t>(AF_INET),
                     htons(port),
                     in_addr{htonl(INADDR_LOOPBACK)},
                     {}};
}

loopback_listener::loopback_listener(const loopback_options& opts)
  : socket_(open_loopback(opts)) {
  // nop
}

loopback_listener::~loopback_listener() {
  close();
}

void loopback_listener::close() {
  if (socket_.fd >= 0)
    ::close(socket_.fd);
  socket_.fd = -1;
}

} // namespace connmgr::test
