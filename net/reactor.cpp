#include "net/reactor.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <queue>
#include <unordered_map>

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "messages/error_code.hpp"
#include "messages/manager_config.hpp"
#include "net/net_address.hpp"
#include "net/socket_ops.hpp"

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

socklen_t length_of(const sockaddr_storage& sa);

std::string print(const sockaddr_storage& sa) {
  auto addr = net_address::from_sockaddr(
    reinterpret_cast<const sockaddr*>(&sa), length_of(sa));
  return addr ? addr->to_string() : std::string{"<unprintable address>"};
}

socklen_t length_of(const sockaddr_storage& sa) {
  return sa.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
}

} // namespace

struct reactor::impl {
  struct connect_op {
    std::vector<sockaddr_storage> addrs;
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

  int epfd = -1;
  bool closed = false;
  std::unordered_map<uint64_t, connect_op> connects;
  std::unordered_map<uint64_t, std::weak_ptr<connection>> watches;
  size_t sweep_at = 1024;
  uint64_t next_watch = 0;
  std::unordered_map<uint64_t, listener_op> listeners;
  std::priority_queue<timer, std::vector<timer>, std::greater<timer>> timers;
  reactor_stats st;

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
      int fd = ::socket(sa.ss_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        op.last_error = errno_error(errno, "socket for " + print(sa));
        continue;
      }
      int rc = ::connect(fd, reinterpret_cast<const sockaddr*>(&sa),
                         length_of(sa));
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
    finish(token, op.last_error ? op.last_error
                                : make_error(errc::dial_failed,
                                             "no address to connect to"));
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
        op.last_error = errno_error(err, "connect "
                                           + print(op.addrs[op.next - 1]));
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
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0 && !read_some(token, op))
      return;
    watch(token, op);
  }

  // Writes pending handshake bytes; false if the op ended.
  bool flush(uint64_t token, connect_op& op) {
    while (op.out_pos < op.out.size()) {
      auto n = ::send(op.fd, op.out.data() + op.out_pos,
                      op.out.size() - op.out_pos, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return true;
        finish(token, make_error(errc::proxy_failed,
                                 std::string{"handshake send: "}
                                   + std::strerror(errno)));
        return false;
      }
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
      auto want = std::min(sizeof(buf), std::max<size_t>(1, op.handshake->wanted()));
      auto n = ::recv(op.fd, buf, want, 0);
      if (n == 0) {
        finish(token, make_error(errc::proxy_failed,
                                 "peer closed the connection mid-handshake"));
        return false;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return true;
        finish(token, make_error(errc::proxy_failed,
                                 std::string{"handshake recv: "}
                                   + std::strerror(errno)));
        return false;
      }
      caf::error err;
      auto status = op.handshake->feed(buf, static_cast<size_t>(n), err);
      if (status == stream_handshake::status::failed) {
        finish(token, err ? err
                          : make_error(errc::proxy_failed, "handshake failed"));
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

  void watch(uint64_t token, connect_op& op) {
    epoll_event ev{};
    ev.events = EPOLLIN | (op.out.empty() ? 0u : static_cast<uint32_t>(EPOLLOUT));
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
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, op.fd, nullptr);
    auto conn = adopt(op.fd, std::move(op.remote_name), op.watch);
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
  connection_ptr adopt(int fd, std::string remote, bool watch) {
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
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
      watches.emplace(token, conn);
      if (watches.size() >= sweep_at)
        sweep();
    }
    return conn;
  }

  /// Drops entries of connections closed or gone (their registrations
  /// vanished with their descriptors). Amortized O(1) per watch.
  void sweep() {
    for (auto i = watches.begin(); i != watches.end();) {
      auto conn = i->second.lock();
      if (!conn || conn->closed())
        i = watches.erase(i);
      else
        ++i;
    }
    sweep_at = std::max<size_t>(1024, watches.size() * 2);
  }

  void on_watch_event(uint64_t token, uint32_t events) {
    auto i = watches.find(token);
    if (i == watches.end())
      return;
    auto conn = i->second.lock();
    watches.erase(i);
    if (conn)
      conn->peer_gone(make_error(errc::connection_closed,
                                 (events & EPOLLERR) != 0
                                   ? "connection reset by peer"
                                   : "peer closed the connection"));
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
    if (auto l = listeners.find(token); l != listeners.end())
      on_listener_event(l->second, token);
  }

  void expire(clock::time_point now) {
    while (!timers.empty() && timers.top().at <= now) {
      auto t = timers.top();
      timers.pop();
      if (auto c = connects.find(t.token);
          c != connects.end() && c->second.deadline == t.at) {
        auto waited = std::chrono::duration_cast<caf::timespan>(
          c->second.deadline - c->second.started);
        finish(t.token, make_error(errc::timed_out,
                                   "no connection within "
                                     + to_string_duration(waited)));
      } else if (auto l = listeners.find(t.token);
                 l != listeners.end() && l->second.paused
                 && l->second.resume_at == t.at) {
        resume(l->second, t.token);
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
    watches.clear();
  }
};

caf::expected<std::shared_ptr<reactor>> reactor::start() {
  raise_fd_limit();
  std::shared_ptr<reactor> self{new reactor};
  self->impl_ = std::make_unique<impl>();
  self->impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  if (self->impl_->epfd < 0)
    return errno_error(errno, "epoll_create1");
  self->wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self->wake_fd_ < 0)
    return errno_error(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_token;
  if (::epoll_ctl(self->impl_->epfd, EPOLL_CTL_ADD, self->wake_fd_, &ev) != 0)
    return errno_error(errno, "epoll_ctl(eventfd)");
  self->thread_ = std::thread{[ptr = self.get()] { ptr->run(); }};
  return self;
}

reactor::~reactor() {
  stop();
  if (wake_fd_ >= 0)
    ::close(wake_fd_);
}

void reactor::post(std::function<void(impl&)> fn) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (impl_->closed) {
    // Stopped: the lock serializes everyone touching the state now.
    fn(*impl_);
    return;
  }
  inbox_.push_back(std::move(fn));
  uint64_t one = 1;
  // A full eventfd counter still wakes the loop: ignore EAGAIN.
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
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
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
  if (thread_.joinable())
    thread_.join();
}

void reactor::run() {
  auto& m = *impl_;
  epoll_event events[max_events];
  std::vector<std::function<void(impl&)>> work;
  while (!stopping_.load()) {
    auto n = ::epoll_wait(m.epfd, events, max_events, m.wait_ms(clock::now()));
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == wake_token) {
        uint64_t count = 0;
        [[maybe_unused]] auto r = ::read(wake_fd_, &count, sizeof(count));
        continue;
      }
      m.dispatch(events[i].data.u64, events[i].events);
    }
    {
      std::lock_guard<std::mutex> guard{mtx_};
      work.swap(inbox_);
    }
    for (auto& fn : work)
      fn(m);
    work.clear();
    m.expire(clock::now());
  }
  // Work posted before the flag flipped still runs (and so still answers);
  // from here on `post` runs new work inline, under the same lock.
  std::lock_guard<std::mutex> guard{mtx_};
  m.closed = true;
  for (auto& fn : inbox_)
    fn(m);
  inbox_.clear();
  m.shutdown();
}

} // namespace connmgr
