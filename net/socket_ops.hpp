#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

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

/// Grows this process's descriptor table now to hold descriptors numbered
/// below `count` (at most the soft limit), so that opening them later never
/// waits. Linux grows the table of a multithreaded process by doubling it and
/// then waiting for an RCU grace period (about 10 ms), with the thread that
/// opened the descriptor asleep meanwhile: a ramp to 10 000 sockets would
/// stall eight times. The table never shrinks; a slot costs about 8 bytes.
/// Opens and closes two descriptors of its own; false if that failed.
bool reserve_descriptor_table(size_t count);

/// How many descriptors this process's table holds now (FDSize in
/// /proc/self/status); 0 if it cannot be read.
size_t descriptor_table_size();

/// Number of descriptors this process has open (from /proc/self/fd).
size_t open_fd_count();

/// One open descriptor of a process: its number and what it refers to (its
/// /proc/PID/fd link, e.g. "socket:[4711]", "pipe:[12]").
struct open_descriptor {
  int fd = -1;
  std::string target;
};

/// Every descriptor process `pid` has open (0: this process; then without
/// the one used to list them), by number. Empty if it cannot be read.
std::vector<open_descriptor> open_descriptors(int pid = 0);

/// Whether `d` is a pipe other than stdio. connmgr opens no pipes, while a
/// sanitizer runtime opens one for a moment whenever it probes memory, on
/// any thread: counts of a live process's descriptors leave these out.
bool is_passing_pipe(const open_descriptor& d);

/// How many descriptors process `pid` (0: this process) has open, passing
/// pipes aside.
size_t held_descriptor_count(int pid = 0);

/// The descriptors open now that were not open in `before` (same number and
/// target) and are still open after up to `grace`. Other threads of a live
/// process open and close descriptors of their own at any time (a
/// sanitizer's memory probe opens a pipe for a moment): those are not
/// leaks, and waiting for them to go tells them from real ones.
std::vector<open_descriptor>
descriptors_left_open(const std::vector<open_descriptor>& before,
                      std::chrono::milliseconds grace);

/// "fd 7 (socket:[4711]), fd 9 (pipe:[12])".
std::string describe(const std::vector<open_descriptor>& fds);

} // namespace connmgr
