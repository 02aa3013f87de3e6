#pragma once

#include <cstddef>
#include <string>

#include <sys/socket.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

namespace connmgr {

/// Turns an errno value into one of our errors: ECONNREFUSED → refused,
/// ENETUNREACH / EHOSTUNREACH → unreachable, ETIMEDOUT → timed_out, anything
/// else → dial_failed. The context is "<what>: <strerror>".
caf::error errno_error(int err, const std::string& what);

/// Opens a non-blocking, close-on-exec TCP socket bound to `addr` with
/// SO_REUSEADDR and listening with `backlog`.
caf::expected<int> open_tcp_listener(const sockaddr_storage& addr,
                                     socklen_t len, int backlog);

/// The local address of socket `fd`, e.g. to learn an ephemeral port.
caf::expected<sockaddr_storage> local_sockaddr(int fd);

/// Raises the soft RLIMIT_NOFILE to the hard limit (once per process is
/// enough; later calls are cheap) and returns the soft limit now in force.
size_t raise_fd_limit();

/// The soft RLIMIT_NOFILE in force.
size_t fd_limit();

/// Number of descriptors this process has open (from /proc/self/fd).
size_t open_fd_count();

} // namespace connmgr
