#pragma once

// TCP sockets of the tests on 127.0.0.1 or ::1 and nowhere else.
//
// Bound to a free (or given) port, listening or only bound, closed by their
// owner. Tests never send traffic beyond the loopback interface, so there is
// no way to name another address here. A socket bound without listen() makes
// connects to its port fail with ECONNREFUSED while no other process can take
// the port: a closed port that stays closed.

#include <cstdint>
#include <string>

#include <netinet/in.h>

namespace connmgr::test {

/// How to open a loopback socket.
struct loopback_options {
  /// ::1 instead of 127.0.0.1.
  bool ipv6 = false;
  /// 0: any free port.
  uint16_t port = 0;
  /// Whether to listen(); a socket only bound refuses connects.
  bool listening = true;
  /// The listen() backlog (0 is a valid one: a queue of one at most).
  int backlog = 16;
  bool nonblocking = false;
  bool close_on_exec = true;
  /// SO_REUSEADDR, to take a port again that a closed socket left in
  /// TIME_WAIT.
  bool reuse_address = false;
};

/// A descriptor and the port it is bound to; `fd` is -1 (errno says why)
/// when the socket could not be opened, bound or put to listen.
struct loopback_socket {
  int fd = -1;
  uint16_t port = 0;
};

/// Opens a TCP socket on the loopback address as `opts` says. The caller
/// owns the descriptor.
loopback_socket open_loopback(const loopback_options& opts = {});

/// What connmgr's own listeners are (open_tcp_listener): non-blocking,
/// close-on-exec, SO_REUSEADDR, listening with `backlog`.
loopback_options like_connmgr(int backlog);

/// open_loopback(like_connmgr(backlog)) on a free port, which must open:
/// the descriptor, the caller's to close.
int listen_like_connmgr(int backlog);

/// 127.0.0.1:`port`, to connect() to.
sockaddr_in loopback_v4(uint16_t port);

/// An open_loopback socket owned for the object's life.
class loopback_listener {
public:
  explicit loopback_listener(const loopback_options& opts = {});
  ~loopback_listener();
  loopback_listener(const loopback_listener&) = delete;
  loopback_listener& operator=(const loopback_listener&) = delete;

  bool ok() const {
    return socket_.fd >= 0;
  }
  int fd() const {
    return socket_.fd;
  }
  uint16_t port() const {
    return socket_.port;
  }

  /// Closes the socket now (its queued connections get an RST).
  void close();

private:
  loopback_socket socket_;
};

} // namespace connmgr::test
