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

#include "connmgr/net/connection.hpp"
#include "connmgr/net/stream_handle.hpp"
#include "connmgr/net/stream_handshake.hpp"

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
  /// Connected sockets watched for their peer going away (a stream takes
  /// its connection out of this count: it reports the peer itself).
  uint64_t watched = 0;
  /// Live byte streams (see `reactor::stream`).
  uint64_t streams = 0;
  /// Bytes read from all streams and handed to their `on_data`, ever.
  uint64_t stream_bytes_read = 0;
  /// Bytes of all streams written to their sockets, ever.
  uint64_t stream_bytes_written = 0;
  /// Streams not read right now because their receive window is full.
  uint64_t streams_paused = 0;
  /// Times a stream stopped reading because its receive window was full.
  uint64_t stream_pauses = 0;
  /// Sends refused because a stream's send buffer was full.
  uint64_t stream_sends_refused = 0;
  /// Streams ended with `errc::slow_reader`.
  uint64_t slow_readers = 0;
  /// Reads that went into a buffer some stream had sent and written out
  /// (bytes moved back into `stream_handle::send` cost no allocation).
  uint64_t stream_buffers_reused = 0;
  /// Bytes held right now by written-out buffers kept for later reads;
  /// back to 0 within a second once no stream sends.
  uint64_t stream_spare_bytes = 0;
};

/// Callbacks of a byte stream (see `reactor::stream`); both run on the
/// reactor thread, one at a time, and must be quick like every handler.
struct stream_callbacks {
  /// Bytes as they arrive, in order, never empty. Never runs after `on_end`.
  std::function<void(std::vector<uint8_t>)> on_data;
  /// Runs exactly once, last: the stream ended. Its connection is closed by
  /// then (unless it never had a descriptor). The reason is
  /// `errc::connection_closed` with a context saying why ("peer closed the
  /// connection", "connection reset by peer", "recv: ...", "send: ...",
  /// "closed locally"), `errc::slow_reader` (the peer does not read what we
  /// send), or `errc::canceled` ("reactor stopped", or the connection
  /// already carries a stream).
  std::function<void(const caf::error&)> on_end;
};

/// One non-blocking I/O thread (epoll, an eventfd for wake-ups, a deadline
/// heap) that serves every outbound connect, every listening socket and
/// every byte stream given to it: the thread count stays the same whether
/// 10 or 10 000 connects or streams are in flight. All member functions are
/// thread-safe; handlers run on the reactor thread (or, after stop, on the
/// caller's) and must be quick. They may call `stream`, `connect`,
/// `cancel`, `listen`, `unlisten` and `barrier` and use stream handles (the
/// work then runs after the handler returns), and may close connections,
/// but must never call `stats` or `stop`, which wait for the reactor thread.
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
  /// `connection::peer_gone` for as long as it stays open (a `stream` on it
  /// takes that over).
  /// The socket for the first address is opened here, on the calling
  /// thread: many dials then spread that part of their cost over the threads
  /// asking for them instead of adding it all to the reactor thread.
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
  /// connected ones, from up to 10 ms after the accept on (a connection
  /// closed sooner costs no registration; a peer gone by then is reported
  /// at once). Returns a token for `unlisten`.
  uint64_t listen(int fd, accept_handler handler, bool watch = true);

  /// Starts reading and writing `conn` on the reactor thread; returns the
  /// handle to send on it and to report consumed bytes. The reactor holds
  /// `conn` until the stream ends and takes over watching it (a watch from
  /// `connect`/`listen` never reports for it again). Every byte read goes
  /// to `cb.on_data`, in order, but never more than `opts.receive_window`
  /// bytes beyond what the handle reported consumed (flow control: see
  /// `stream_options`); then `cb.on_end` runs exactly once:
  /// - the peer closes or resets the connection, or a read or write fails:
  ///   `conn->peer_gone(reason)` runs first (its hooks see the peer leave),
  ///   then `conn->close()`, then `on_end(reason)`. Bytes that arrived
  ///   before the end are delivered first while the window allows.
  /// - a send was refused as the send buffer was full, and the buffer has
  ///   not drained to half of `opts.max_send_buffer` within
  ///   `opts.slow_reader_timeout` (a peer that does not read): handled like
  ///   the peer leaving, with `errc::slow_reader`.
  /// - anybody closes (or releases) `conn`, from any thread: `on_end` with
  ///   "closed locally".
  /// - the reactor stops: `conn` closes and `on_end` gets `errc::canceled`
  ///   "reactor stopped". After `stop`, `stream` closes `conn` and runs
  ///   `on_end` so at once.
  /// - `conn` is closed already or has no descriptor: `on_end` with
  ///   `errc::connection_closed` and nothing else happens; `conn` already
  ///   carries a stream: `on_end` with `errc::canceled`, the first stream
  ///   goes on.
  /// All reads and writes happen under `connection::with_fd`, so a
  /// descriptor number reused after a close never reaches this stream.
  /// Options out of range are raised to their minimum.
  stream_handle stream(connection_ptr conn, stream_callbacks cb,
                       stream_options opts = {});

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
  /// every stream ends (see `stream`), every socket the reactor still owns
  /// is closed. Idempotent; never call it from a handler.
  void stop();

private:
  friend class stream_handle;
  friend struct stream_link;

  reactor() = default;

  struct impl;
  struct mailbox;

  /// True if `conn` was closed by `release()`.
  static bool was_released(connection& conn);

  void post(std::function<void(impl&)> fn);
  void run();

  std::unique_ptr<impl> impl_;
  /// Work for the reactor thread; shared with close hooks of streamed
  /// connections, which may outlive the reactor.
  std::shared_ptr<mailbox> box_;
  std::atomic<uint64_t> next_token_{1};
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

} // namespace connmgr
