#include "connmgr/net/reactor.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <optional>
#include <queue>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <netinet/in.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

stream_handshake::~stream_handshake() {
  // nop
}

namespace {

constexpr uint64_t wake_token = 0;
constexpr int max_events = 256;
constexpr int accept_batch = 64;
constexpr auto min_accept_pause = std::chrono::milliseconds{10};
constexpr auto max_accept_pause = std::chrono::milliseconds{1000};
/// A stream reads at most this much per system call (into a buffer that
/// goes to on_data as it is; large reads mean few chunks, and so few
/// hand-offs to the consumer, per MiB)...
constexpr size_t read_chunk = 256 * 1024;
/// Read buffers are at least this large, and written-out send buffers this
/// large or larger (up to twice `read_chunk`) are kept for later reads.
constexpr size_t min_read_buf = 64 * 1024;
/// ... and this many times per wake-up, so one busy stream cannot starve
/// the others (level-triggered epoll reports the rest next round).
constexpr int reads_per_wakeup = 8;
/// Buffers handed to one sendmsg.
constexpr size_t max_iov = 64;
/// Written-out send buffers of about the read size kept for later reads,
/// so that bytes echoed back (or forwarded) cost no allocation (nor page
/// faults on fresh memory): at most this many, each of at most twice
/// `read_chunk`.
constexpr size_t max_spare_buffers = 64;
/// What a stream always listens for.
constexpr uint32_t stream_events = EPOLLIN | EPOLLRDHUP;

/// The mailbox whose lock this thread holds while it runs reactor work (the
/// reactor's last round and shutdown, or work run inline after the stop):
/// work it posts meanwhile is deferred instead of deadlocking on that lock.
thread_local const void* holding_box = nullptr;

caf::error closed_error(std::string why) {
  return make_error(errc::connection_closed, std::move(why));
}

/// The reason a stream ends after a failed recv or send.
caf::error io_error(int err, const char* what) {
  if (err == ECONNRESET)
    return closed_error("connection reset by peer");
  return closed_error(std::string{what} + ": " + std::strerror(err));
}

socklen_t length_of(const sockaddr_storage& sa);

std::string print(const sockaddr_storage& sa) {
  auto addr = net_address::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa),
                                         length_of(sa));
  return addr ? addr->to_string() : std::string{"<unprintable address>"};
}

socklen_t length_of(const sockaddr_storage& sa) {
  return sa.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

} // namespace

/// Shared by the reactor and the close hooks and handles of streamed
/// connections: they may use it on any thread, also after the reactor is gone.
struct reactor::mailbox {
  /// Sends refused by full send buffers (counted by the sending threads).
  std::atomic<uint64_t> sends_refused{0};
  std::mutex mtx;
  std::vector<std::function<void(impl&)>> inbox;
  /// Posted by the thread holding `mtx` while it runs work; drained by it.
  std::vector<std::function<void(impl&)>> deferred;
  /// The state the work runs on; null once the reactor is destroyed.
  impl* state = nullptr;
  int wake_fd = -1;

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
  void run_locked(const std::function<void(impl&)>& fn) {
    auto prev = holding_box;
    holding_box = this;
    if (fn)
      fn(*state);
    drain_deferred();
    holding_box = prev;
  }

  void drain_deferred() {
    while (!deferred.empty()) {
      std::vector<std::function<void(impl&)>> batch;
      batch.swap(deferred);
      for (auto& f : batch)
        f(*state);
    }
  }
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

struct reactor::impl {
  /// A descriptor closed with its holder unless taken first.
  struct owned_fd {
    int fd = -1;
    owned_fd() = default;
    explicit owned_fd(int x) : fd(x) {}
    owned_fd(owned_fd&& other) noexcept : fd(std::exchange(other.fd, -1)) {}
    owned_fd& operator=(owned_fd&& other) noexcept {
      if (this != &other) {
        reset();
        fd = std::exchange(other.fd, -1);
      }
      return *this;
    }
    ~owned_fd() {
      reset();
    }
    void reset() {
      if (fd >= 0)
        ::close(fd);
      fd = -1;
    }
    int take() {
      return std::exchange(fd, -1);
    }
  };

  struct connect_op {
    std::vector<sockaddr_storage> addrs;
    /// The socket for `addrs[next]`, made on the thread that asked for the
    /// connect (or none).
    owned_fd premade;
    std::string remote_name;
    bool watch = true;
    size_t next = 0;
    int fd = -1;
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
    int fd = -1;
    bool watch = true;
    accept_handler handler;
    std::chrono::milliseconds pause = min_accept_pause;
    bool paused = false;
    clock::time_point resume_at;
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
    const connection* key;
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

  int epfd = -1;
  bool closed = false;
  std::weak_ptr<mailbox> box;
  std::unordered_map<uint64_t, connect_op> connects;
  std::unordered_map<uint64_t, watch_entry> watches;
  std::unordered_map<uint64_t, stream_op> streams;
  /// Connections that carry a stream (each held by its stream_op).
  std::unordered_set<const connection*> streamed;
  /// The buffer the next read goes into (handed to on_data when the read
  /// fills at least half of it).
  std::vector<uint8_t> read_buf;
  /// Written-out send buffers for later reads (see `max_spare_buffers`).
  std::vector<std::vector<uint8_t>> spare_bufs;
  /// What `pull` swaps with a stream's pending sends (keeps its capacity).
  std::vector<std::vector<uint8_t>> pulled;
  size_t sweep_at = 1024;
  uint64_t next_watch = 0;
  std::unordered_map<uint64_t, listener_op> listeners;
  std::priority_queue<timer, std::vector<timer>, std::greater<timer>> timers;
  reactor_stats st;
  /// Streams whose reading is paused right now.
  uint64_t paused_streams = 0;

  ~impl() {
    if (epfd >= 0)
      ::close(epfd);
  }

  // -- connects ---------------------------------------------------------------

  void add_connect(uint64_t token, connect_op op) {
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

  void try_next_address(uint64_t token, connect_op& op) {
    while (op.next < op.addrs.size()) {
      auto& sa = op.addrs[op.next++];
      int fd = op.premade.fd >= 0
        ? op.premade.take()
        : ::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        op.last_error = errno_error(errno, "socket for " + print(sa));
        continue;
      }
      int rc =
        ::connect(fd, reinterpret_cast<const sockaddr*>(&sa), length_of(sa));
      if (rc == 0 || errno == EINPROGRESS) {
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = token;
        if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
          op.fd = fd;
          return; // writable once the handshake with the peer is done
        }
      }
      op.last_error = errno_error(errno, "connect " + print(sa));
      ::close(fd);
    }
    finish(token,
           op.last_error
             ? op.last_error
             : make_error(errc::dial_failed, "no address to connect to"));
  }

  void on_connect_event(uint64_t token, connect_op& op, uint32_t events) {
    if (!op.handshaking) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(op.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
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
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0
        && !read_some(token, op))
      return;
    watch(token, op);
  }

  // Writes pending handshake bytes; false if the op ended.
  bool flush(uint64_t token, connect_op& op) {
    while (op.out_pos < op.out.size()) {
      auto n = ::send(op.fd, op.out.data() + op.out_pos,
                      op.out.size() - op.out_pos, MSG_NOSIGNAL);
      if (n < 0)
        return handshake_would_block(token, "handshake send");
      op.out_pos += static_cast<size_t>(n);
    }
    op.out.clear();
    op.out_pos = 0;
    return true;
  }

  // Reads and feeds handshake bytes; false if the op ended.
  bool read_some(uint64_t token, connect_op& op) {
    uint8_t buf[512];
    for (;;) {
      auto want =
        std::min(sizeof(buf), std::max<size_t>(1, op.handshake->wanted()));
      auto n = ::recv(op.fd, buf, want, 0);
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

  // After a handshake send or recv failed (errno): true if it only would
  // block; otherwise ends the op with the error and returns false.
  bool handshake_would_block(uint64_t token, const char* what) {
    auto err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK)
      return true;
    finish(token,
           make_error(errc::proxy_failed,
                      std::string{what} + ": " + std::strerror(err)));
    return false;
  }

  void watch(uint64_t token, connect_op& op) {
    epoll_event ev{};
    ev.events =
      EPOLLIN | (op.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
    ev.data.u64 = token;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, op.fd, &ev);
  }

  void drop_socket(connect_op& op) {
    if (op.fd >= 0) {
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, op.fd, nullptr);
      ::close(op.fd);
      op.fd = -1;
    }
  }

  void succeed(uint64_t token, connect_op& op) {
    // The connect's registration becomes the watch (or goes): one syscall.
    if (!op.watch)
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, op.fd, nullptr);
    auto conn = adopt(op.fd, std::move(op.remote_name), op.watch, true);
    op.fd = -1;
    auto handler = std::move(op.handler);
    connects.erase(token);
    ++st.connects_succeeded;
    handler(std::move(conn));
  }

  void finish(uint64_t token, caf::error err) {
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

  // -- listeners --------------------------------------------------------------

  void add_listener(uint64_t token, listener_op op) {
    if (closed) {
      ::close(op.fd);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, op.fd, &ev) != 0) {
      ::close(op.fd);
      return;
    }
    listeners.emplace(token, std::move(op));
  }

  void on_listener_event(listener_op& l, uint64_t token) {
    std::vector<connection_ptr> batch;
    for (int i = 0; i < accept_batch; ++i) {
      sockaddr_storage addr{};
      socklen_t len = sizeof(addr);
      int fd = ::accept4(l.fd, reinterpret_cast<sockaddr*>(&addr), &len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) {
        batch.push_back(adopt(fd, print(addr), l.watch));
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        break;
      if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
        continue;
      // EMFILE, ENFILE, ENOBUFS, ENOMEM or worse: the pending connection
      // stays queued and a level-triggered epoll would report it again at
      // once, so stop listening for a while instead of spinning.
      pause(l, token);
      break;
    }
    if (!batch.empty()) {
      if (!l.paused)
        l.pause = min_accept_pause;
      st.accepted += batch.size();
      l.handler(batch);
    }
  }

  void pause(listener_op& l, uint64_t token) {
    epoll_event ev{};
    ev.events = 0;
    ev.data.u64 = token;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, l.fd, &ev);
    l.paused = true;
    l.resume_at = clock::now() + l.pause;
    timers.push(timer{l.resume_at, token});
    l.pause = std::min(l.pause * 2, max_accept_pause);
    ++st.accept_pauses;
  }

  void resume(listener_op& l, uint64_t token) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = token;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, l.fd, &ev);
    l.paused = false;
  }

  void remove_listener(uint64_t token) {
    auto i = listeners.find(token);
    if (i == listeners.end())
      return;
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, i->second.fd, nullptr);
    ::close(i->second.fd);
    listeners.erase(i);
  }

  // -- watches ----------------------------------------------------------------

  // Watch tokens live in their own space (top bit set) so they never clash
  // with connect and listener tokens.
  static constexpr uint64_t watch_bit = uint64_t{1} << 63;

  /// Wraps `fd` and, with `watch`, registers it for the peer going away.
  /// Runs on the reactor thread before anyone else sees the descriptor, so
  /// the number cannot have been closed and reused meanwhile.
  /// `registered`: `fd` is in the epoll set already (the watch takes over
  /// that registration).
  connection_ptr adopt(int fd, std::string remote, bool watch,
                       bool registered = false) {
    auto conn = std::make_shared<connection>(fd, std::move(remote));
    if (!watch)
      return conn;
    auto token = watch_bit | ++next_watch;
    // One-shot: after it fires the registration goes quiet, and it vanishes
    // with the descriptor, so we never need EPOLL_CTL_DEL on a number that
    // may already belong to someone else.
    epoll_event ev{};
    ev.events = EPOLLRDHUP | EPOLLONESHOT;
    ev.data.u64 = token;
    if (::epoll_ctl(epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, &ev)
        == 0) {
      watches.emplace(token, watch_entry{conn, conn.get()});
      conn->watch_token_ = token;
      if (watches.size() >= sweep_at)
        sweep();
    } else if (registered) {
      // Unwatched then: the old registration must not fire any more.
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr);
    }
    return conn;
  }

  /// Forgets the watch of `conn` (if any), whose registration a stream took
  /// over with EPOLL_CTL_MOD: its token can never fire again.
  void unwatch(connection* conn) {
    auto token = conn->watch_token_;
    if (token == 0)
      return;
    conn->watch_token_ = 0;
    if (auto i = watches.find(token);
        i != watches.end() && i->second.key == conn)
      watches.erase(i);
  }

  /// Drops entries of connections closed or gone (their registrations
  /// vanished with their descriptors). Amortized O(1) per watch.
  void sweep() {
    for (auto i = watches.begin(); i != watches.end();) {
      auto conn = i->second.conn.lock();
      if (!conn || conn->closed()) {
        i = watches.erase(i);
      } else {
        ++i;
      }
    }
    sweep_at = std::max<size_t>(1024, watches.size() * 2);
  }

  void on_watch_event(uint64_t token, uint32_t events) {
    auto i = watches.find(token);
    if (i == watches.end())
      return;
    auto conn = i->second.conn.lock();
    watches.erase(i);
    if (conn)
      conn->peer_gone(make_error(errc::connection_closed,
                                 (events & EPOLLERR) != 0
                                   ? "connection reset by peer"
                                   : "peer closed the connection"));
  }

  // -- streams ----------------------------------------------------------------

  void add_stream(uint64_t token, connection_ptr conn, stream_callbacks cb,
                  std::shared_ptr<stream_link> link) {
    auto end_now = [&cb, &link](caf::error reason) {
      link->ended.store(true);
      if (cb.on_end)
        cb.on_end(reason);
    };
    if (closed) {
      if (conn)
        conn->close();
      end_now(make_error(errc::canceled, "reactor stopped"));
      return;
    }
    if (!conn || conn->closed()) {
      end_now(closed_error("connection closed"));
      return;
    }
    if (conn->native_handle() < 0) {
      end_now(closed_error("connection has no descriptor"));
      return;
    }
    if (streamed.count(conn.get()) != 0) {
      end_now(
        make_error(errc::canceled, "the connection already carries a stream"));
      return;
    }
    auto& s = streams[token];
    s.conn = conn;
    s.cb = std::move(cb);
    s.link = link;
    streamed.insert(conn.get());
    // The hook comes first: a close racing with the registration below
    // either finds the hook or makes with_fd fail.
    conn->on_close(
      [wbox = box, link, token, wconn = std::weak_ptr<connection>{conn}] {
        auto mbox = wbox.lock();
        if (!mbox)
          return; // the reactor is gone, and with it every stream
        // A released descriptor stays open (it is being handed over right
        // now), so its registration would outlive the stream: drop it while
        // the number surely names it. A closed one left the epoll set by
        // itself, and its number may belong to another socket already.
        auto c = wconn.lock();
        if (c && was_released(*c)) {
          auto fd = link->fd.load();
          if (fd >= 0)
            mbox->run_now([fd](impl& m) {
              ::epoll_ctl(m.epfd, EPOLL_CTL_DEL, fd, nullptr);
            });
        }
        if (!link->ended.load())
          mbox->post([token](impl& m) {
            m.end_stream(token, closed_error("closed locally"), false);
          });
      });
    int err = 0;
    bool ran = conn->with_fd([&](int fd) {
      epoll_event ev{};
      ev.events = stream_events;
      ev.data.u64 = token;
      // Watched connections are in the set already, under a watch token.
      if (::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) != 0
          && (errno != ENOENT
              || ::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0))
        err = errno;
      else
        link->fd.store(fd);
    });
    if (!ran) {
      end_stream(token, closed_error("connection closed"), false);
      return;
    }
    unwatch(conn.get());
    if (err != 0) {
      end_stream(token,
                 closed_error(std::string{"epoll_ctl: "} + std::strerror(err)),
                 false);
      return;
    }
    // Sends made before the stream was registered wait in `pending`.
    pull(token);
  }

  /// Ends stream `token` (if it still runs): see `reactor::stream`.
  void end_stream(uint64_t token, caf::error reason, bool peer) {
    auto i = streams.find(token);
    if (i == streams.end())
      return;
    auto conn = std::move(i->second.conn);
    auto on_end = std::move(i->second.cb.on_end);
    auto link = std::move(i->second.link);
    if (i->second.read_paused)
      --paused_streams;
    link->ended.store(true);
    {
      // Nobody may queue more, and what was queued goes now.
      std::lock_guard<std::mutex> guard{link->send_mtx};
      std::vector<std::vector<uint8_t>>{}.swap(link->pending);
      link->unsent.store(0);
    }
    streamed.erase(conn.get());
    streams.erase(i);
    // Leave the epoll set while the number is surely ours: should the
    // descriptor live on elsewhere (a dup, a fork), close() alone would not.
    conn->with_fd(
      [this](int fd) { ::epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nullptr); });
    if (peer)
      conn->peer_gone(reason);
    conn->close();
    if (on_end)
      on_end(reason);
  }

  void on_stream_event(uint64_t token, uint32_t events) {
    auto i = streams.find(token);
    if (i == streams.end())
      return; // ended meanwhile
    auto& s = i->second;
    if (s.read_paused) {
      if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        // Not reading: an error or hang-up would keep a level-triggered
        // registration firing. The peer is gone; what it sent is lost.
        end_stream(token, socket_error(s), true);
        return;
      }
      if ((events & stream_events) != 0 && s.want_in) {
        // Input the window does not take: stop hearing about it until
        // the consumer catches up.
        s.want_in = false;
        update_events(token, s);
      }
    } else if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0
               && !read_stream(token, events)) {
      // Reads first: bytes that arrived before a failure go out before it.
      return;
    }
    if ((events & EPOLLOUT) != 0)
      if (auto j = streams.find(token); j != streams.end())
        flush(token, j->second);
  }

  /// The pending error of the socket of `s`, as the reason its stream ends.
  caf::error socket_error(stream_op& s) {
    int so_error = 0;
    s.conn->with_fd([&so_error](int fd) {
      socklen_t len = sizeof(so_error);
      if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
        so_error = errno;
    });
    return so_error != 0 ? io_error(so_error, "recv")
                         : closed_error("peer closed the connection");
  }

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

  /// Reads once from stream `token`, at most what its receive window
  /// allows, and hands what arrived to on_data; at the end of the byte
  /// stream or on a failed read, ends the stream.
  read_result read_once(uint64_t token) {
    // Look the stream up each time: on_data may have closed it.
    auto i = streams.find(token);
    if (i == streams.end())
      return read_result::gone;
    auto& s = i->second;
    auto window = s.link->opts.receive_window;
    auto outstanding = s.link->unconsumed.load();
    if (outstanding >= window) {
      pause_reading(token, s);
      if (s.read_paused)
        return read_result::paused;
      outstanding = s.link->unconsumed.load();
    }
    auto room = std::min(read_chunk, window - std::min(window, outstanding));
    prepare_read_buf(room);
    ssize_t n = -1;
    int err = 0;
    for (;;) {
      auto ran = s.conn->with_fd([&](int fd) {
        n = ::recv(fd, read_buf.data(), room, MSG_DONTWAIT);
        err = errno;
      });
      if (!ran)
        return read_result::gone; // closed locally: its hook ends the stream
      if (n >= 0 || err != EINTR)
        break;
    }
    if (n > 0) {
      auto len = static_cast<size_t>(n);
      st.stream_bytes_read += len;
      // Counted before the consumer can see (and report) the bytes.
      s.link->unconsumed.fetch_add(len);
      if (s.cb.on_data)
        s.cb.on_data(take_read(len));
      return read_result::data;
    }
    if (n == 0) {
      end_stream(token, closed_error("peer closed the connection"), true);
      return read_result::ended;
    }
    if (err == EAGAIN || err == EWOULDBLOCK)
      return read_result::drained;
    end_stream(token, io_error(err, "recv"), true);
    return read_result::ended;
  }

  /// Makes `read_buf` hold `size` bytes to read into: a spare (or new)
  /// buffer unless the current one is large enough.
  void prepare_read_buf(size_t size) {
    if (read_buf.capacity() < size) {
      // The smallest spare that fits; of equal ones the last written out,
      // whose bytes are likeliest still in the cache.
      auto best = spare_bufs.rend();
      for (auto i = spare_bufs.rbegin(); i != spare_bufs.rend(); ++i)
        if (i->capacity() >= size
            && (best == spare_bufs.rend() || i->capacity() < best->capacity()))
          best = i;
      if (best != spare_bufs.rend()) {
        read_buf = std::move(*best);
        *best = std::move(spare_bufs.back());
        spare_bufs.pop_back();
        ++st.stream_buffers_reused;
      } else {
        read_buf = std::vector<uint8_t>{};
        read_buf.reserve(std::max(size, min_read_buf));
      }
    }
    // Only bytes past the current size are zeroed: a reused buffer costs
    // next to nothing here.
    read_buf.resize(size);
  }

  /// The first `len` bytes of `read_buf`, for on_data: the buffer itself
  /// when they fill at least a quarter of it (the next read gets another),
  /// a copy otherwise, so that a buffer never takes more than four times
  /// the bytes handed over.
  std::vector<uint8_t> take_read(size_t len) {
    if (len >= read_buf.capacity() / 4) {
      read_buf.resize(len);
      return std::exchange(read_buf, std::vector<uint8_t>{});
    }
    return std::vector<uint8_t>(read_buf.begin(),
                                read_buf.begin() + static_cast<ptrdiff_t>(len));
  }

  /// Keeps a written-out send buffer of about the read size for a later
  /// read (its size stays: resizing it back costs nothing).
  void recycle(std::vector<uint8_t>&& buf) {
    auto cap = buf.capacity();
    if (cap < min_read_buf || cap > 2 * read_chunk)
      return;
    if (spare_bufs.size() < max_spare_buffers) {
      spare_bufs.push_back(std::move(buf));
      return;
    }
    // Full: keep the larger ones, which fit more reads.
    auto smallest = std::min_element(
      spare_bufs.begin(), spare_bufs.end(),
      [](const auto& x, const auto& y) { return x.capacity() < y.capacity(); });
    if (smallest->capacity() < cap)
      *smallest = std::move(buf);
  }

  /// Reads a bounded number of times; false if the stream ended or closed.
  bool read_stream(uint64_t token, uint32_t events) {
    for (int round = 0; round < reads_per_wakeup; ++round) {
      switch (read_once(token)) {
        case read_result::data:
          continue;
        case read_result::paused:
          return true;
        case read_result::drained:
          break;
        default:
          return false;
      }
      // Drained. An error or hang-up that recv does not report would keep
      // a level-triggered registration firing: end the stream on it.
      if ((events & (EPOLLERR | EPOLLHUP)) != 0) {
        end_stream(token, socket_error(streams.at(token)), true);
        return false;
      }
      return true;
    }
    return true; // more to read: level-triggered epoll reports it again
  }

  /// Stops reading `s` until its consumer catches up (see `try_resume`).
  void pause_reading(uint64_t token, stream_op& s) {
    if (s.read_paused)
      return;
    s.read_paused = true;
    ++paused_streams;
    ++st.stream_pauses;
    // The flag first, then the count: a consumer reporting meanwhile
    // either sees the flag (and asks to resume) or is seen here. The
    // registration stays as it is until epoll reports input (see
    // `stream_op::want_in`).
    s.link->read_paused.store(true);
    if (s.link->unconsumed.load() <= s.link->opts.receive_window / 2)
      resume_reading(token, s);
  }

  void resume_reading(uint64_t token, stream_op& s) {
    if (!s.read_paused)
      return;
    s.read_paused = false;
    --paused_streams;
    s.link->read_paused.store(false);
    if (!s.want_in) {
      s.want_in = true;
      update_events(token, s);
    }
  }

  /// A consumer caught up with stream `token`: read again if it did enough.
  void try_resume(uint64_t token) {
    auto i = streams.find(token);
    if (i == streams.end())
      return;
    auto& s = i->second;
    if (s.read_paused
        && s.link->unconsumed.load() <= s.link->opts.receive_window / 2)
      resume_reading(token, s);
  }

  /// Registers what stream `token` waits for now: input unless paused (see
  /// `stream_op::want_in`), output while bytes wait.
  void update_events(uint64_t token, stream_op& s) {
    s.conn->with_fd([&](int fd) { set_events(fd, token, s); });
  }

  void set_events(int fd, uint64_t token, stream_op& s) {
    epoll_event ev{};
    ev.events =
      (s.want_in ? stream_events : 0u) | (s.want_out ? uint32_t{EPOLLOUT} : 0u);
    ev.data.u64 = token;
    ::epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
  }

  /// Ends stream `token` after a failed write, but first hands on_data
  /// what the peer sent before (bounded by the window and a count, as the
  /// peer may go on).
  void fail_stream(uint64_t token, caf::error reason) {
    for (int round = 0; round < 4 * reads_per_wakeup; ++round) {
      auto res = read_once(token);
      if (res == read_result::ended || res == read_result::gone)
        return;
      if (res != read_result::data)
        break;
    }
    end_stream(token, std::move(reason), true);
  }

  /// Writes queued bytes of stream `token` and keeps EPOLLOUT in the
  /// registration exactly while some remain. False if the stream ended or
  /// its connection closed meanwhile.
  bool flush(uint64_t token, stream_op& s) {
    int err = 0;
    size_t written = 0;
    auto ran = s.conn->with_fd([&](int fd) {
      while (!s.out.empty()) {
        iovec iov[max_iov];
        size_t count = 0;
        for (auto i = s.out.begin(); i != s.out.end() && count < max_iov;
             ++i, ++count) {
          auto skip = count == 0 ? s.out_pos : 0;
          iov[count].iov_base = i->data() + skip;
          iov[count].iov_len = i->size() - skip;
        }
        msghdr msg{};
        msg.msg_iov = iov;
        msg.msg_iovlen = count;
        auto n = ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EINTR)
            continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK)
            err = errno;
          break;
        }
        auto left = static_cast<size_t>(n);
        written += left;
        s.queued -= left;
        while (left > 0) {
          auto in_front = s.out.front().size() - s.out_pos;
          if (left < in_front) {
            s.out_pos += left;
            break;
          }
          left -= in_front;
          recycle(std::move(s.out.front()));
          s.out.pop_front();
          s.out_pos = 0;
        }
      }
      bool want = !s.out.empty();
      if (err == 0 && want != s.want_out) {
        s.want_out = want;
        set_events(fd, token, s);
      }
    });
    if (written > 0) {
      st.stream_bytes_written += written;
      auto left = s.link->unsent.fetch_sub(written) - written;
      if (left <= s.link->opts.max_send_buffer / 2)
        s.link->full_since.store(0);
    }
    if (!ran)
      return false; // closed locally: the close hook ends the stream
    if (err != 0) {
      fail_stream(token, io_error(err, "send"));
      return false;
    }
    return true;
  }

  /// Takes the bytes the handles of stream `token` accepted and writes what
  /// the socket takes.
  void pull(uint64_t token) {
    auto i = streams.find(token);
    if (i == streams.end())
      return;
    auto& s = i->second;
    {
      std::lock_guard<std::mutex> guard{s.link->send_mtx};
      pulled.swap(s.link->pending);
      s.link->pull_posted = false;
    }
    if (pulled.empty())
      return;
    for (auto& chunk : pulled) {
      s.queued += chunk.size();
      s.out.push_back(std::move(chunk));
    }
    pulled.clear();
    flush(token, s);
  }

  /// A send to stream `token` was refused: check in time whether its peer
  /// reads again.
  void arm_slow_reader_check(uint64_t token) {
    auto i = streams.find(token);
    if (i == streams.end() || i->second.slow_check_at)
      return;
    schedule_slow_reader_check(token, i->second);
  }

  void schedule_slow_reader_check(uint64_t token, stream_op& s) {
    auto since = s.link->full_since.load();
    if (since == 0)
      return;
    auto at = clock::time_point{clock::duration{since}}
      + s.link->opts.slow_reader_timeout;
    s.slow_check_at = at;
    timers.push(timer{at, token});
  }

  /// The slow-reader timer of `s` fired at `now`.
  void check_slow_reader(uint64_t token, stream_op& s, clock::time_point now) {
    s.slow_check_at.reset();
    auto& link = *s.link;
    auto since = link.full_since.load();
    if (since == 0)
      return;
    if (link.unsent.load() <= link.opts.max_send_buffer / 2) {
      // Drained meanwhile (a refusal raced with the drain).
      link.full_since.store(0);
      return;
    }
    auto stalled = now - clock::time_point{clock::duration{since}};
    if (stalled < link.opts.slow_reader_timeout) {
      schedule_slow_reader_check(token, s);
      return;
    }
    ++st.slow_readers;
    auto waited = std::chrono::duration_cast<caf::timespan>(stalled);
    end_stream(token,
               make_error(errc::slow_reader,
                          std::to_string(link.unsent.load())
                            + " bytes unsent, send buffer full for "
                            + to_string_duration(waited)),
               true);
  }

  // -- dispatch ---------------------------------------------------------------

  void dispatch(uint64_t token, uint32_t events) {
    if (auto c = connects.find(token); c != connects.end()) {
      on_connect_event(token, c->second, events);
      return;
    }
    if ((token & watch_bit) != 0) {
      on_watch_event(token, events);
      return;
    }
    if (auto l = listeners.find(token); l != listeners.end()) {
      on_listener_event(l->second, token);
      return;
    }
    on_stream_event(token, events);
  }

  void expire(clock::time_point now) {
    while (!timers.empty() && timers.top().at <= now) {
      auto t = timers.top();
      timers.pop();
      if (auto c = connects.find(t.token);
          c != connects.end() && c->second.deadline == t.at) {
        auto waited = std::chrono::duration_cast<caf::timespan>(
          c->second.deadline - c->second.started);
        finish(
          t.token,
          make_error(errc::timed_out,
                     "no connection within " + to_string_duration(waited)));
      } else if (auto l = listeners.find(t.token); l != listeners.end()
                 && l->second.paused && l->second.resume_at == t.at) {
        resume(l->second, t.token);
      } else if (auto s = streams.find(t.token);
                 s != streams.end() && s->second.slow_check_at == t.at) {
        check_slow_reader(t.token, s->second, now);
      }
    }
  }

  int wait_ms(clock::time_point now) const {
    if (timers.empty())
      return -1;
    auto d = timers.top().at - now;
    if (d <= clock::duration::zero())
      return 0;
    // Round up so we never wake just before a deadline and spin.
    auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
    return static_cast<int>(std::min<int64_t>(ms, 60'000));
  }

  void shutdown() {
    closed = true;
    std::vector<uint64_t> tokens;
    for (auto& kvp : connects)
      tokens.push_back(kvp.first);
    for (auto token : tokens)
      finish(token, make_error(errc::canceled, "reactor stopped"));
    tokens.clear();
    for (auto& kvp : listeners)
      tokens.push_back(kvp.first);
    for (auto token : tokens)
      remove_listener(token);
    tokens.clear();
    for (auto& kvp : streams)
      tokens.push_back(kvp.first);
    for (auto token : tokens)
      end_stream(token, make_error(errc::canceled, "reactor stopped"), false);
    watches.clear();
  }
};

void reactor::mailbox::post(std::function<void(impl&)> fn) {
  if (holding_box == this) {
    // This thread runs work under the lock right now: run it after that.
    deferred.push_back(std::move(fn));
    return;
  }
  std::lock_guard<std::mutex> guard{mtx};
  if (state == nullptr)
    return; // the reactor is gone
  if (state->closed) {
    // Stopped: the lock serializes everyone touching the state now.
    run_locked(fn);
    return;
  }
  // Only the first work since the loop last took the inbox needs to wake
  // it: the loop takes everything queued by then at once.
  auto was_empty = inbox.empty();
  inbox.push_back(std::move(fn));
  if (!was_empty)
    return;
  uint64_t one = 1;
  // A full eventfd counter still wakes the loop: ignore EAGAIN.
  [[maybe_unused]] auto n = ::write(wake_fd, &one, sizeof(one));
}

bool reactor::was_released(connection& conn) {
  std::lock_guard<std::mutex> guard{conn.mtx_};
  return conn.released_;
}

caf::expected<std::shared_ptr<reactor>> reactor::start() {
  raise_fd_limit();
  std::shared_ptr<reactor> self{new reactor};
  self->impl_ = std::make_unique<impl>();
  self->box_ = std::make_shared<mailbox>();
  self->box_->state = self->impl_.get();
  self->impl_->box = self->box_;
  self->impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (self->impl_->epfd < 0)
    return errno_error(errno, "epoll_create1");
  self->box_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self->box_->wake_fd < 0)
    return errno_error(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_token;
  if (::epoll_ctl(self->impl_->epfd, EPOLL_CTL_ADD, self->box_->wake_fd, &ev)
      != 0)
    return errno_error(errno, "epoll_ctl(eventfd)");
  self->thread_ = std::thread{[ptr = self.get()] { ptr->run(); }};
  return self;
}

reactor::~reactor() {
  stop();
  if (box_) {
    // Close hooks may still hold the mailbox: from now on it drops work.
    // (Nothing is left in it after stop; were anything, it would die
    // outside the lock, as it may hold the last handle of a connection.)
    std::vector<std::function<void(impl&)>> leftover;
    std::lock_guard<std::mutex> guard{box_->mtx};
    box_->state = nullptr;
    leftover.swap(box_->inbox);
    if (box_->wake_fd >= 0)
      ::close(box_->wake_fd);
    box_->wake_fd = -1;
  }
}

void reactor::post(std::function<void(impl&)> fn) {
  box_->post(std::move(fn));
}

uint64_t reactor::connect(std::vector<sockaddr_storage> addrs,
                          clock::time_point deadline, std::string remote_name,
                          connect_handler handler,
                          std::shared_ptr<stream_handshake> handshake,
                          bool watch) {
  auto token = next_token_++;
  impl::connect_op op;
  op.addrs = std::move(addrs);
  op.remote_name = std::move(remote_name);
  op.watch = watch;
  // Made here rather than on the reactor thread, which is the one that runs
  // out first under many dials: a failure leaves it to the reactor to try
  // again and report.
  if (!op.addrs.empty())
    op.premade =
      impl::owned_fd{::socket(op.addrs.front().ss_family,
                              SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  op.started = clock::now();
  op.deadline = deadline;
  op.handler = std::move(handler);
  op.handshake = std::move(handshake);
  auto shared = std::make_shared<impl::connect_op>(std::move(op));
  post([token, shared](impl& m) { m.add_connect(token, std::move(*shared)); });
  return token;
}

void reactor::cancel(uint64_t token) {
  post([token](impl& m) {
    m.finish(token, make_error(errc::canceled, "dial canceled"));
  });
}

uint64_t reactor::listen(int fd, accept_handler handler, bool watch) {
  auto token = next_token_++;
  auto shared = std::make_shared<accept_handler>(std::move(handler));
  post([token, fd, shared, watch](impl& m) {
    impl::listener_op op;
    op.fd = fd;
    op.watch = watch;
    op.handler = std::move(*shared);
    m.add_listener(token, std::move(op));
  });
  return token;
}

stream_handle reactor::stream(connection_ptr conn, stream_callbacks cb,
                              stream_options opts) {
  auto link = std::make_shared<stream_link>();
  link->token = next_token_++;
  opts.receive_window = std::max(opts.receive_window, size_t{1});
  opts.max_send_buffer = std::max(opts.max_send_buffer, size_t{1});
  opts.slow_reader_timeout =
    std::max(opts.slow_reader_timeout, std::chrono::milliseconds{1});
  link->opts = opts;
  link->box = box_;
  auto shared = std::make_shared<stream_callbacks>(std::move(cb));
  post([link, conn, shared](impl& m) {
    m.add_stream(link->token, conn, std::move(*shared), link);
  });
  return stream_handle{link};
}

void reactor::unlisten(uint64_t token, std::function<void()> on_closed) {
  post([token, on_closed](impl& m) {
    m.remove_listener(token);
    if (on_closed)
      on_closed();
  });
}

void reactor::barrier(std::function<void()> fn) {
  post([fn](impl&) { fn(); });
}

reactor_stats reactor::stats() {
  std::promise<reactor_stats> result;
  auto future = result.get_future();
  post([&result](impl& m) {
    auto st = m.st;
    st.pending_connects = m.connects.size();
    st.listeners = m.listeners.size();
    st.watched = m.watches.size();
    st.streams = m.streams.size();
    st.streams_paused = m.paused_streams;
    if (auto b = m.box.lock())
      st.stream_sends_refused = b->sends_refused.load();
    result.set_value(st);
  });
  return future.get();
}

void reactor::stop() {
  if (stopping_.exchange(true)) {
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id())
      thread_.join();
    return;
  }
  if (box_) {
    uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(box_->wake_fd, &one, sizeof(one));
  }
  if (thread_.joinable())
    thread_.join();
}

void reactor::run() {
  // Named so that per-thread figures (top -H, perf) tell it apart.
  ::pthread_setname_np(::pthread_self(), "connmgr.reactor");
  auto& m = *impl_;
  auto& box = *box_;
  epoll_event events[max_events];
  std::vector<std::function<void(impl&)>> work;
  while (!stopping_.load()) {
    auto n = ::epoll_wait(m.epfd, events, max_events, m.wait_ms(clock::now()));
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == wake_token) {
        uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(box.wake_fd, &count, sizeof(count));
        continue;
      }
      m.dispatch(events[i].data.u64, events[i].events);
    }
    {
      std::lock_guard<std::mutex> guard{box.mtx};
      work.swap(box.inbox);
    }
    for (auto& fn : work)
      fn(m);
    work.clear();
    m.expire(clock::now());
  }
  // Work posted before the flag flipped still runs (and so still answers);
  // from here on `post` runs new work inline, under the same lock, and work
  // posted from this thread meanwhile (say, by a close hook) runs after.
  std::lock_guard<std::mutex> guard{box.mtx};
  m.closed = true;
  work.swap(box.inbox);
  box.run_locked([&work](impl& state) {
    for (auto& fn : work)
      fn(state);
    state.shutdown();
  });
}

// -- stream_handle --------------------------------------------------------------

const char* to_string(send_status x) {
  switch (x) {
    case send_status::queued:
      return "queued";
    case send_status::full:
      return "full";
    case send_status::ended:
      return "ended";
  }
  return "unknown";
}

namespace {

/// Sends up to this size share a pending chunk; larger ones keep their own.
constexpr size_t small_send = 4096;

} // namespace

send_status stream_handle::send(const uint8_t* data, size_t size) {
  if (size > small_send)
    return send(std::vector<uint8_t>(data, data + size));
  return enqueue(size, [data, size](std::vector<std::vector<uint8_t>>& q) {
    if (q.empty() || q.back().size() + size > small_send * 4)
      q.emplace_back().reserve(small_send * 4);
    q.back().insert(q.back().end(), data, data + size);
  });
}

send_status stream_handle::send(std::vector<uint8_t>&& bytes) {
  auto size = bytes.size();
  if (size <= small_send)
    return send(bytes.data(), size);
  return enqueue(size, [&bytes](std::vector<std::vector<uint8_t>>& q) {
    q.push_back(std::move(bytes));
  });
}

template <class Append>
send_status stream_handle::enqueue(size_t size, Append append) {
  if (!link_ || link_->ended.load())
    return send_status::ended;
  if (size == 0)
    return send_status::queued;
  auto& l = *link_;
  bool refused = false;
  bool post_work = false;
  {
    std::lock_guard<std::mutex> guard{l.send_mtx};
    if (l.ended.load())
      return send_status::ended;
    auto unsent = l.unsent.load();
    auto limit = l.opts.max_send_buffer;
    if (size > limit || unsent > limit - size) {
      refused = true;
      int64_t none = 0;
      auto now = reactor::clock::now().time_since_epoch().count();
      post_work = l.full_since.compare_exchange_strong(none, now);
    } else {
      append(l.pending);
      l.unsent.fetch_add(size);
      post_work = !std::exchange(l.pull_posted, true);
    }
  }
  auto box = l.box.lock();
  if (!box)
    return send_status::ended;
  if (refused)
    box->sends_refused.fetch_add(1);
  if (post_work) {
    auto token = l.token;
    if (refused)
      box->post([token](reactor::impl& m) { m.arm_slow_reader_check(token); });
    else
      box->post([token](reactor::impl& m) { m.pull(token); });
  }
  return refused ? send_status::full : send_status::queued;
}

void stream_handle::consumed(size_t size) {
  if (!link_ || size == 0)
    return;
  auto& l = *link_;
  auto prev = l.unconsumed.load();
  size_t next = 0;
  do {
    next = prev > size ? prev - size : 0;
  } while (!l.unconsumed.compare_exchange_weak(prev, next));
  if (!l.read_paused.load() || next > l.opts.receive_window / 2
      || l.resume_posted.exchange(true))
    return;
  if (auto box = l.box.lock()) {
    auto link = link_;
    box->post([link](reactor::impl& m) {
      link->resume_posted.store(false);
      m.try_resume(link->token);
    });
  }
}

size_t stream_handle::unsent() const noexcept {
  return link_ ? link_->unsent.load() : 0;
}

size_t stream_handle::unconsumed() const noexcept {
  return link_ ? link_->unconsumed.load() : 0;
}

uint64_t stream_handle::token() const noexcept {
  return link_ ? link_->token : 0;
}

bool stream_handle::ended() const noexcept {
  return !link_ || link_->ended.load();
}

} // namespace connmgr
