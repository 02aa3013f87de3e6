#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <caf/error.hpp>

#include "connmgr/messages/connection_ptr.hpp"

namespace connmgr {

/// A connection handed out by the manager: owns one descriptor (or none, for
/// in-memory test connections) and closes it exactly once, on the first
/// `close()` or on destruction of the last reference.
/// All member functions are thread-safe.
class connection {
public:
  /// Wraps `fd` (may be -1 for a connection without a descriptor) that leads to
  /// `remote_address`. Takes ownership of `fd`.
  connection(int fd, std::string remote_address);

  /// Same, for a connection whose remote end is the IPv4 address
  /// `remote_ipv4` (host byte order), which `remote_address` prints.
  connection(int fd, std::string remote_address, uint32_t remote_ipv4);

  /// Same, accepted on a listener bound to the IPv4 address `local_ipv4`
  /// (not the wildcard) and `local_port` (host byte order): every such
  /// connection has that local end, so `local_address` needs no system call.
  connection(int fd, std::string remote_address, uint32_t remote_ipv4,
             uint32_t local_ipv4, uint16_t local_port);

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Closes the descriptor if `close()` was never called.
  ~connection();

  /// Closes the descriptor and runs every close hook. Only the first call has
  /// an effect; later calls return false.
  bool close();

  /// True once `close()` ran (or began running).
  bool closed() const noexcept {
    return closed_.load(std::memory_order_acquire);
  }

  /// The descriptor, or -1 once closed or for an in-memory connection.
  /// Ownership stays with this object: use `release()` to take it over.
  int native_handle() const noexcept;

  /// Hands the descriptor to the caller (e.g. CAF I/O's `add_scribe`): this
  /// object then counts as closed without closing the descriptor, and close
  /// hooks run at once. Returns -1 if already closed.
  int release();

  /// Runs `f(fd)` with the descriptor while holding this connection's lock,
  /// but only if the connection is open and has a descriptor; returns
  /// whether `f` ran. `close()` and `release()` take the descriptor out
  /// under the same lock, so it stays open, and its number cannot pass to
  /// another socket, while `f` runs. `f` must be quick (a non-blocking
  /// system call or two) and must not call back into this connection: the
  /// lock is not recursive.
  template <class F>
  bool with_fd(F&& f) {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_.load(std::memory_order_acquire) || fd_ < 0)
      return false;
    std::forward<F>(f)(fd_);
    return true;
  }

  /// The address this connection was dialed to or accepted from.
  const std::string& remote_address() const noexcept {
    return remote_address_;
  }

  /// The remote IPv4 address (host byte order) when the connection was made
  /// knowing it in binary (the reactor's accepted IPv4 connections): a key
  /// for bookkeeping that needs no parsing of `remote_address`. None
  /// otherwise (IPv6, in-memory connections, ...).
  std::optional<uint32_t> remote_ipv4() const noexcept {
    if (!has_remote_ipv4_)
      return std::nullopt;
    return remote_ipv4_;
  }

  /// Bytes moved and when, as whoever reads and writes the socket reports
  /// them (the reactor's byte streams do); all zero otherwise.
  struct traffic_counters {
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
    /// Steady-clock instants in nanoseconds since its epoch; 0 for never.
    int64_t last_recv_ns = 0;
    int64_t last_send_ns = 0;
  };

  /// A snapshot of the counters (each field read atomically on its own).
  traffic_counters traffic() const noexcept;

  /// Reports `n` bytes received at `now_ns` (steady clock).
  void count_received(uint64_t n, int64_t now_ns) noexcept {
    bytes_in_.fetch_add(n, std::memory_order_relaxed);
    last_recv_ns_.store(now_ns, std::memory_order_relaxed);
  }

  /// Reports `n` bytes sent at `now_ns` (steady clock).
  void count_sent(uint64_t n, int64_t now_ns) noexcept {
    bytes_out_.fetch_add(n, std::memory_order_relaxed);
    last_send_ns_.store(now_ns, std::memory_order_relaxed);
  }

  /// Our end of it ("127.0.0.1:41234", "[::1]:41234"), asked of the socket;
  /// empty once closed, or for a connection without a descriptor.
  std::string local_address() const;

  /// Registers `hook` to run once when the connection closes (or is released).
  /// If it is already closed, runs `hook` at once on the calling thread.
  void on_close(std::function<void()> hook);

  /// Registers `hook` to run once if the peer closes or resets the
  /// connection while it is open (reported by whoever watches the socket,
  /// e.g. the reactor). If that was reported already, runs `hook` at once.
  void on_peer_gone(std::function<void(const caf::error&)> hook);

  /// Reports that the peer closed or reset the connection: runs the
  /// peer-gone hooks once. Ignored once the connection is closed.
  void peer_gone(const caf::error& reason);

private:
  // The reactor asks `released_` from a close hook: a released descriptor is
  // still open while the hooks run, so it can leave the reactor's epoll set.
  // It also keeps its watch token here.
  friend class reactor;

  /// Hooks of one kind: the first one inline, later ones in a vector. Most
  /// connections get exactly one hook of each kind (the manager's), so
  /// registering it allocates nothing beyond what the callable needs.
  template <class Fn>
  struct hook_list {
    Fn first;
    std::vector<Fn> rest;

    void add(Fn&& f) {
      if (!first)
        first = std::move(f);
      else
        rest.push_back(std::move(f));
    }

    /// Calls each hook in the order they were added.
    template <class... Ts>
    void run(const Ts&... xs) {
      if (first)
        first(xs...);
      for (auto& f : rest)
        f(xs...);
    }
  };

  /// Marks the connection closed and moves out its descriptor and hooks;
  /// false if it was closed before.
  bool mark_closed(int& fd, hook_list<std::function<void()>>& hooks);

  std::atomic<bool> closed_{false};
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<int64_t> last_recv_ns_{0};
  std::atomic<int64_t> last_send_ns_{0};
  mutable std::mutex mtx_;
  int fd_;
  std::string remote_address_;
  uint32_t remote_ipv4_ = 0;
  bool has_remote_ipv4_ = false;
  bool has_local_ipv4_ = false;
  uint16_t local_port_ = 0;
  uint32_t local_ipv4_ = 0;
  hook_list<std::function<void()>> hooks_;
  hook_list<std::function<void(const caf::error&)>> peer_hooks_;
  bool peer_gone_ = false;
  bool released_ = false;
  caf::error peer_reason_;
  /// The reactor's watch of this connection (0: none); read and written on
  /// the reactor thread only.
  uint64_t watch_token_ = 0;
};

/// Creates a connection without a descriptor, for tests and in-memory dialers;
/// one to an IPv4 literal carries its `remote_ipv4` as an accepted one does.
connection_ptr make_memory_connection(std::string remote_address);

} // namespace connmgr
