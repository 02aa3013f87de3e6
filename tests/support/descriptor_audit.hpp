#pragma once

// One descriptor audit: what a process holds open, passing pipes aside.
//
// Two views: a list of the descriptors opened since a snapshot, or every
// descriptor of a process classified by kind.
//
// A sanitizer runtime opens a pipe for a moment whenever it probes memory,
// on any thread (connmgr::is_passing_pipe); both views below leave those
// out, so a count or a leak check never depends on one. `new_descriptors`
// lists what this process opened since a snapshot; `fds_of` classifies the
// descriptors of any process (a node under test) through /proc/<pid>/fd and
// its TCP table /proc/<pid>/net/tcp{,6}.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <sys/types.h>

#include "connmgr/net/socket_ops.hpp"

namespace connmgr::test {

/// `fds` without the passing pipes (is_passing_pipe).
std::vector<open_descriptor>
without_passing_pipes(std::vector<open_descriptor> fds);

/// The descriptors open now that were not in `before`, passing pipes aside.
/// No waiting: what is listed is open now.
std::vector<open_descriptor>
new_descriptors(const std::vector<open_descriptor>& before);

/// One TCP socket of a process, from /proc/<pid>/net/tcp{,6}.
struct tcp_entry {
  std::string local;
  std::string remote;
  /// "ESTABLISHED", "LISTEN", "CLOSE_WAIT", ...
  std::string state;
};

/// The kernel's name of TCP state `st` ("?" for one it does not have).
std::string tcp_state_name(unsigned st);

/// "0100007F:1F90" (or the 32-hex-digit IPv6 form) as "127.0.0.1:8080".
std::string proc_address(const std::string& hex);

/// Every TCP socket of `pid`'s network namespace, by inode.
std::map<uint64_t, tcp_entry> tcp_table(pid_t pid);

/// The descriptors of a process, classified.
struct fd_view {
  bool ok = false;
  size_t total = 0;
  /// Listening TCP sockets.
  size_t listening = 0;
  /// Established TCP connections, as "local -> remote".
  std::vector<std::string> established;
  /// TCP sockets in any other state ("CLOSE_WAIT local -> remote", ...),
  /// including ones not (yet) in the table, such as a fresh dial socket.
  std::vector<std::string> other_tcp;
  /// Everything that is not a TCP socket (pipes, epoll, eventfd, files).
  size_t non_tcp = 0;
  /// What those are ("0 -> /dev/null", "3 -> anon_inode:[eventpoll]", ...).
  std::vector<std::string> non_tcp_names;
  /// Every descriptor number.
  std::vector<int> numbers;

  /// How many descriptors are numbered `limit` or above (inherited ones
  /// an RLIMIT_NOFILE of `limit` does not count against new ones).
  size_t at_or_above(int limit) const;

  /// One line: the counts only.
  std::string summary() const;

  /// The counts, then every connection and what the other descriptors are.
  std::string to_string() const;
};

/// The descriptors a node holds whatever its connections: everything but
/// its TCP connections (stdio, epoll, eventfd, listening sockets).
size_t fixed_fds(const fd_view& v);

/// Reads /proc/<pid>/fd and classifies each descriptor, passing pipes aside.
/// `ok` is false when the process is gone or not ours to read.
fd_view fds_of(pid_t pid);

} // namespace connmgr::test
