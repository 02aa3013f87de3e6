// The reactor thread's state and what it shares with other threads. Private
// (not installed): reactor.cpp runs the loop on it, each reactor_*.cpp file
// one kind of operation.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <sys/socket.h>

#include <caf/error.hpp>

#include "connmgr/net/flat_table.hpp"
#include "connmgr/net/connection.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/stream_handle.hpp"
#include "connmgr/net/stream_handshake.hpp"
#include "connmgr/net/unique_fd.hpp"

namespace connmgr {

/// Shared by the reactor and the close hooks and handles of streamed
/// connections: they may use it on any thread, also after the reactor is gone.
struct reactor::mailbox {
  /// The mailbox whose lock this thread holds while it runs reactor work
  /// (the reactor's last round and shutdown, or work run inline after the
  /// stop): work it posts meanwhile is deferred instead of deadlocking on
  /// that lock.
  static inline thread_local const void* holding_box = nullptr;

  /// Sends refused by full send buffers (counted by the sending threads).
  std::atomic<uint64_t> sends_refused{0};
  std::mutex mtx;
  std::vector<std::function<void(impl&)>> inbox;
  /// Whether `inbox` may hold work: lets the loop look between two events
  /// without taking the lock.
  std::atomic<bool> has_work{false};
  /// Posted by the thread holding `mtx` while it runs work; drained by it.
  std::vector<std::function<void(impl&)>> deferred;
  /// The state the work runs on; null once the reactor is destroyed.
  impl* state = nullptr;
  unique_fd wake_fd;

  /// Queues `fn` for the reactor thread (or, once the reactor is closed,
  /// runs it right here under the lock); drops it once the reactor is gone.
  void post(std::function<void(impl&)> fn);

  /// Runs `fn` on the state now, under the lock (unless this thread holds
  /// it already); does nothing once the reactor is gone.
  template <class F>
  void run_now(F&& fn) {
    if (holding_box == this) {
      if (state != nullptr)
        fn(*state);
      return;
    }
    std::lock_guard<std::mutex> guard{mtx};
    if (state != nullptr)
      fn(*state);
  }

  /// Runs `fn` and then everything it deferred; `mtx` is held.
  void run_locked(const std::function<void(impl&)>& fn);

  void drain_deferred();
};

/// The state one stream shares between the reactor thread, its handles
/// (any thread) and the close hook of its connection (any thread).
struct stream_link {
  uint64_t token = 0;
  stream_options opts;
  std::weak_ptr<reactor::mailbox> box;
  /// The descriptor number, set under `with_fd` when registered.
  std::atomic<int> fd{-1};
  /// Set once the reactor ends the stream: handles and the hook have
  /// nothing to do then.
  std::atomic<bool> ended{false};

  // -- receiving ----------------------------------------------------------------

  /// Delivered to on_data and not yet reported consumed.
  std::atomic<size_t> unconsumed{0};
  /// Mirrors `stream_op::read_paused` for the consuming threads.
  std::atomic<bool> read_paused{false};
  /// Whether a resume check waits for the reactor thread.
  std::atomic<bool> resume_posted{false};

  // -- sending ------------------------------------------------------------------

  /// Bytes accepted by `send` and not yet written (pending + the reactor's
  /// queue).
  std::atomic<size_t> unsent{0};
  /// When a send was first refused since the queue last drained to half
  /// (steady clock, nanoseconds); 0 when none was.
  std::atomic<int64_t> full_since{0};
  std::mutex send_mtx;
  /// Accepted bytes the reactor thread has not taken yet (send_mtx): small
  /// sends share a chunk, large ones keep their own buffer.
  std::vector<std::vector<uint8_t>> pending;
  /// Whether work to take `pending` waits for the reactor thread (send_mtx).
  bool pull_posted = false;
};

/// Everything the reactor thread works on. Only that thread touches it
/// while it runs; after the stop, whoever holds the mailbox's lock.
struct reactor::impl {
  /// A listener that ran out of descriptors stops accepting this long,
  /// doubling each time it runs out again, up to `max_accept_pause`.
  static constexpr auto min_accept_pause = std::chrono::milliseconds{10};
  static constexpr auto max_accept_pause = std::chrono::milliseconds{1000};

  // Watch tokens live in their own space (top bit set) so they never clash
  // with connect and listener tokens.
  static constexpr uint64_t watch_bit = uint64_t{1} << 63;

  /// The token of `watch_timer` in the epoll set: a watch token no watch
  /// gets (their numbers start at 1).
  static constexpr uint64_t watch_timer_token = watch_bit;

  /// How long an accepted connection stays unregistered for its peer going
  /// away, at least. Many connections are closed within that time (refused
  /// by admission or by the application); they then cost no registration,
  /// and their close no removal. A peer that left meanwhile is reported as
  /// soon as the registration is made, so a watched peer's leaving is
  /// reported at most `watch_delay + watch_tick` later.
  static constexpr auto watch_delay = std::chrono::milliseconds{5};

  /// The period of `watch_timer` while registrations wait. A periodic timer
  /// is set once per busy spell, not once per registration round: setting
  /// a timer is a costly system call (a VM exit on virtual machines).
  static constexpr auto watch_tick = std::chrono::milliseconds{5};

  struct connect_op {
    std::vector<sockaddr_storage> addrs;
    /// The socket for `addrs[next]`, made on the thread that asked for the
    /// connect (or none).
    unique_fd premade;
    std::string remote_name;
    bool watch = true;
    size_t next = 0;
    unique_fd fd;
    clock::time_point started;
    clock::time_point deadline;
    connect_handler handler;
    std::shared_ptr<stream_handshake> handshake;
    bool handshaking = false;
    std::vector<uint8_t> out;
    size_t out_pos = 0;
    caf::error last_error;
  };

  struct listener_op {
    unique_fd fd;
    bool watch = true;
    accept_handler handler;
    std::chrono::milliseconds pause = min_accept_pause;
    bool paused = false;
    clock::time_point resume_at;
    /// Bound to one IPv4 address (not the wildcard): the local end of
    /// every connection it accepts.
    bool has_local_ipv4 = false;
    uint16_t local_port = 0;
    uint32_t local_ipv4 = 0;
  };

  struct timer {
    clock::time_point at;
    uint64_t token;
    bool operator>(const timer& other) const {
      return at > other.at;
    }
  };

  struct watch_entry {
    std::weak_ptr<connection> conn;
    /// The connection, only compared, never dereferenced: an entry whose
    /// connection is gone must not be taken for a new one at the same
    /// address.
    const connection* key = nullptr;
  };

  /// Watches by token, in one array: no allocation per watch.
  struct watch_table : flat_table<uint64_t, watch_entry, int_hash> {
    using base = flat_table<uint64_t, watch_entry, int_hash>;

    void clear() {
      static_cast<base&>(*this) = base{int_hash{}};
    }
  };

  /// An accepted connection whose watch waits for `watch_delay`.
  struct deferred_watch {
    clock::time_point due;
    uint64_t token;
  };

  struct stream_op {
    connection_ptr conn;
    stream_callbacks cb;
    /// Shared with the stream's handles and the close hook.
    std::shared_ptr<stream_link> link;
    std::deque<std::vector<uint8_t>> out;
    /// Bytes of `out.front()` already written.
    size_t out_pos = 0;
    /// Unsent bytes in `out`.
    size_t queued = 0;
    /// Whether EPOLLOUT is part of the registration.
    bool want_out = false;
    /// Whether reading stopped because the receive window is full.
    bool read_paused = false;
    /// Whether input is part of the registration. Pausing leaves it in
    /// until epoll reports input the stream does not take: a consumer that
    /// catches up before then costs no epoll_ctl at all.
    bool want_in = true;
    /// When the pending slow-reader check runs (timers at other instants
    /// for this stream are stale).
    std::optional<clock::time_point> slow_check_at;
  };

  enum class read_result {
    /// Some bytes went to on_data.
    data,
    /// Nothing to read now.
    drained,
    /// The receive window is full: reading paused.
    paused,
    /// The stream ended (the peer left, or a read failed).
    ended,
    /// The stream is gone or its connection closed meanwhile.
    gone,
  };

  unique_fd epfd;
  bool closed = false;
  std::weak_ptr<mailbox> box;
  std::unordered_map<uint64_t, connect_op> connects;
  watch_table watches;
  std::unordered_map<uint64_t, stream_op> streams;
  /// Connections that carry a stream (each held by its stream_op).
  std::unordered_set<const connection*> streamed;
  /// The buffer the next read goes into (handed to on_data when the read
  /// fills at least half of it).
  std::vector<uint8_t> read_buf;
  /// Written-out send buffers for later reads (see `max_spare_buffers`),
  /// the last written out at the back.
  std::vector<std::vector<uint8_t>> spare_bufs;
  /// The fewest `spare_bufs` held since the last trim: that many sat unused
  /// all along.
  size_t spare_low = 0;
  /// When `trim_spares` next frees the unused ones (none while the pool is
  /// empty).
  std::optional<clock::time_point> trim_at;
  /// What `pull` swaps with a stream's pending sends (keeps its capacity).
  std::vector<std::vector<uint8_t>> pulled;
  size_t sweep_at = 1024;
  /// The reasons `on_watch_event` reports, made once: copies share their
  /// message instead of building one per departing peer.
  caf::error peer_closed_reason;
  caf::error peer_reset_reason;
  /// Tokens `sweep` drops (kept for its capacity).
  std::vector<uint64_t> swept;
  uint64_t next_watch = 0;
  /// Watches not registered yet, by due time (see `watch_delay`).
  std::deque<deferred_watch> deferred_watches;
  /// A timerfd in the epoll set that ticks every `watch_tick`, open only
  /// while `deferred_watches` holds some.
  unique_fd watch_timer;
  std::unordered_map<uint64_t, listener_op> listeners;
  std::priority_queue<timer, std::vector<timer>, std::greater<timer>> timers;
  reactor_stats st;
  /// Streams whose reading is paused right now.
  uint64_t paused_streams = 0;

  /// `sa` as "ip:port", for errors and remote names.
  static std::string print(const sockaddr_storage& sa);

  // -- loop, timers and dispatch (reactor.cpp) --------------------------------

  /// Hands an event of the epoll set to whatever registered `token`.
  void dispatch(uint64_t token, uint32_t events);

  /// Runs the timers due at `now`.
  void expire(clock::time_point now);

  /// How long epoll_wait may sleep at `now` (-1: until an event).
  int wait_ms(clock::time_point now) const;

  /// Ends everything (see `reactor::stop`).
  void shutdown();

  // -- connects (reactor_connect.cpp) -----------------------------------------

  void add_connect(uint64_t token, connect_op op);

  void try_next_address(uint64_t token, connect_op& op);

  void on_connect_event(uint64_t token, connect_op& op, uint32_t events);

  /// Writes pending handshake bytes; false if the op ended.
  bool flush(uint64_t token, connect_op& op);

  /// Reads and feeds handshake bytes; false if the op ended.
  bool read_some(uint64_t token, connect_op& op);

  /// After a handshake send or recv failed (errno): true if it only would
  /// block; otherwise ends the op with the error and returns false.
  bool handshake_would_block(uint64_t token, const char* what);

  void watch(uint64_t token, connect_op& op);

  void drop_socket(connect_op& op);

  void succeed(uint64_t token, connect_op& op);

  void finish(uint64_t token, caf::error err);

  // -- listeners (reactor_listen.cpp) -----------------------------------------

  void add_listener(uint64_t token, listener_op op);

  void on_listener_event(listener_op& l, uint64_t token);

  void pause(listener_op& l, uint64_t token);

  void resume(listener_op& l, uint64_t token);

  void remove_listener(uint64_t token);

  // -- watches (reactor_watch.cpp) --------------------------------------------

  /// Wraps `fd` and, with `watch`, registers it for the peer going away.
  /// Runs on the reactor thread before anyone else sees the descriptor, so
  /// the number cannot have been closed and reused meanwhile.
  /// `registered`: `fd` is in the epoll set already (the watch takes over
  /// that registration at once). Otherwise the registration waits for
  /// `watch_delay` (see `register_due_watches`).
  connection_ptr adopt(int fd, std::string remote, bool watch,
                       bool registered = false);

  /// Same as `adopt(fd, remote, watch)` for the accepted connection `conn`
  /// (descriptor `fd`), made by the caller with what it knows in binary.
  connection_ptr adopt(connection_ptr conn, int fd, bool watch);

  /// Registers the watch of `conn` (descriptor `fd`), now when
  /// `registered`, else after `watch_delay`.
  void watch_adopted(const connection_ptr& conn, int fd, bool registered);

  /// Registers the deferred watches due at `now` whose connections are
  /// still open (under the connection's lock, so the descriptor is still
  /// theirs).
  void register_due_watches(clock::time_point now);

  /// A tick of `watch_timer`: registers what is due and closes the timer
  /// once nothing waits.
  void on_watch_tick();

  /// Opens `watch_timer`, ticking; false if it cannot.
  bool start_watch_timer();

  /// Forgets the watch of `conn` (if any), whose registration a stream took
  /// over with EPOLL_CTL_MOD: its token can never fire again.
  void unwatch(connection* conn);

  /// Drops entries of connections closed or gone (their registrations
  /// vanished with their descriptors). Amortized O(1) per watch.
  void sweep();

  void on_watch_event(uint64_t token, uint32_t events);

  // -- streams (reactor_stream.cpp) -------------------------------------------

  void add_stream(uint64_t token, connection_ptr conn, stream_callbacks cb,
                  std::shared_ptr<stream_link> link);

  /// Ends stream `token` (if it still runs): see `reactor::stream`.
  void end_stream(uint64_t token, caf::error reason, bool peer);

  void on_stream_event(uint64_t token, uint32_t events);

  /// The pending error of the socket of `s`, as the reason its stream ends.
  caf::error socket_error(stream_op& s);

  // -- receiving --------------------------------------------------------------

  /// Reads once from stream `token`, at most what its receive window
  /// allows, and hands what arrived to on_data; at the end of the byte
  /// stream or on a failed read, ends the stream.
  read_result read_once(uint64_t token);

  /// Makes `read_buf` hold `size` bytes to read into: a spare (or new)
  /// buffer unless the current one is large enough.
  void prepare_read_buf(size_t size);

  /// The first `len` bytes of `read_buf`, for on_data: the buffer itself
  /// when they fill at least a quarter of it (the next read gets another),
  /// a copy otherwise, so that a buffer never takes more than four times
  /// the bytes handed over.
  std::vector<uint8_t> take_read(size_t len);

  /// Keeps a written-out send buffer of about the read size for a later
  /// read (its size stays: resizing it back costs nothing).
  void recycle(std::vector<uint8_t>&& buf);

  /// Frees the spare buffers that no read took since the last trim, once
  /// `trim_at` is due at `now`, so that a burst leaves nothing behind.
  void trim_spares(clock::time_point now);

  /// Reads a bounded number of times; false if the stream ended or closed.
  bool read_stream(uint64_t token, uint32_t events);

  /// Stops reading `s` until its consumer catches up (see `try_resume`).
  void pause_reading(uint64_t token, stream_op& s);

  void resume_reading(uint64_t token, stream_op& s);

  /// A consumer caught up with stream `token`: read again if it did enough.
  void try_resume(uint64_t token);

  /// Registers what stream `token` waits for now: input unless paused (see
  /// `stream_op::want_in`), output while bytes wait.
  void update_events(uint64_t token, stream_op& s);

  void set_events(int fd, uint64_t token, stream_op& s);

  // -- sending ----------------------------------------------------------------

  /// Ends stream `token` after a failed write, but first hands on_data
  /// what the peer sent before (bounded by the window and a count, as the
  /// peer may go on).
  void fail_stream(uint64_t token, caf::error reason);

  /// Writes queued bytes of stream `token` and keeps EPOLLOUT in the
  /// registration exactly while some remain. False if the stream ended or
  /// its connection closed meanwhile.
  bool flush(uint64_t token, stream_op& s);

  /// Takes the bytes the handles of stream `token` accepted and writes what
  /// the socket takes.
  void pull(uint64_t token);

  /// A send to stream `token` was refused: check in time whether its peer
  /// reads again.
  void arm_slow_reader_check(uint64_t token);

  void schedule_slow_reader_check(uint64_t token, stream_op& s);

  /// The slow-reader timer of `s` fired at `now`.
  void check_slow_reader(uint64_t token, stream_op& s, clock::time_point now);
};

} // namespace connmgr
