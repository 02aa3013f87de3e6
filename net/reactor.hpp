#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "net/connection.hpp"
#include "net/stream_handshake.hpp"

namespace connmgr {

/// Counters of a reactor, for tests and metrics.
struct reactor_stats {
  uint64_t connects_started = 0;
  uint64_t connects_succeeded = 0;
  uint64_t connects_failed = 0;
  uint64_t connects_timed_out = 0;
  uint64_t connects_canceled = 0;
  uint64_t accepted = 0;
  /// Times a listener paused because descriptors ran out (EMFILE/ENFILE).
  uint64_t accept_pauses = 0;
  uint64_t pending_connects = 0;
  uint64_t listeners = 0;
  /// Connected sockets watched for their peer going away.
  uint64_t watched = 0;
};

/// One non-blocking I/O thread (epoll, an eventfd for wake-ups, a deadline
/// heap) that serves every outbound connect and every listening socket given
/// to it: the thread count stays the same whether 10 or 10 000 connects are
/// in flight. All member functions are thread-safe; handlers run on the
/// reactor thread (or, after stop, on the caller's) and must be quick and
/// must not call back into the reactor: send a message and return.
///
/// This is operating-system plumbing with real time (steady_clock):
/// decisions about what to dial and when live in the connection handler.
class reactor {
public:
  using clock = std::chrono::steady_clock;

  /// Called once per connect: with the connection (owning its descriptor)
  /// or with an error (refused, unreachable, timed_out, canceled,
  /// dial_failed, or a handshake's error).
  using connect_handler = std::function<void(caf::expected<connection_ptr>)>;

  /// Called with each batch of accepted connections.
  using accept_handler = std::function<void(std::vector<connection_ptr>&)>;

  /// Starts the reactor thread. Also raises the soft descriptor limit to
  /// the hard one, since a reactor exists to hold many sockets.
  static caf::expected<std::shared_ptr<reactor>> start();

  /// Stops the thread (see `stop`).
  ~reactor();

  reactor(const reactor&) = delete;
  reactor& operator=(const reactor&) = delete;

  /// Connects to `addrs` in turn until one answers, all within `deadline`;
  /// then runs `handshake` (if any) on the socket within the same deadline.
  /// The connection's remote address reads `remote_name`. With `watch`, the
  /// reactor reports the peer closing or resetting it through
  /// `connection::peer_gone` for as long as it stays open.
  /// Returns a token for `cancel`. The handler runs exactly once.
  uint64_t connect(std::vector<sockaddr_storage> addrs,
                   clock::time_point deadline, std::string remote_name,
                   connect_handler handler,
                   std::shared_ptr<stream_handshake> handshake = nullptr,
                   bool watch = true);

  /// Abandons connect `token`: its socket closes at once and its handler
  /// runs with `errc::canceled` (unless it already ran).
  void cancel(uint64_t token);

  /// Serves listening socket `fd` (ownership passes): accepts in batches and
  /// hands each batch to `handler`. When descriptors run out it pauses
  /// accepting (10 ms, doubling up to 1 s) instead of spinning, and resumes
  /// by itself. With `watch`, accepted connections are watched like
  /// connected ones. Returns a token for `unlisten`.
  uint64_t listen(int fd, accept_handler handler, bool watch = true);

  /// Stops serving listener `token` and closes its socket. `on_closed` (if
  /// any) runs on the reactor thread once the socket is closed.
  void unlisten(uint64_t token, std::function<void()> on_closed = nullptr);

  /// Runs `fn` on the reactor thread once everything posted before it (a
  /// cancel, an unlisten) has taken effect.
  void barrier(std::function<void()> fn);

  /// Counters (a consistent snapshot taken on the reactor thread; blocks
  /// briefly). Never call it from a handler.
  reactor_stats stats();

  /// Ends the thread: every pending connect fails with `errc::canceled`,
  /// every socket the reactor still owns is closed. Idempotent; never call
  /// it from a handler.
  void stop();

private:
  reactor() = default;

  struct impl;

  void post(std::function<void(impl&)> fn);
  void run();

  std::unique_ptr<impl> impl_;
  std::mutex mtx_;
  std::vector<std::function<void(impl&)>> inbox_;
  std::atomic<uint64_t> next_token_{1};
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;
  std::thread thread_;
};

} // namespace connmgr
