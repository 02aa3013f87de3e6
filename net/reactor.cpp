// The reactor's public face (the reactor and its stream handles) and its
// thread: the loop, the mailbox that hands it work, timers, dispatch of
// events to the kind of operation that registered them, and the stop.
#include "connmgr/net/reactor.hpp"

#include <algorithm>
#include <cerrno>
#include <future>
#include <utility>

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/reactor_impl.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

stream_handshake::~stream_handshake() {
  // nop
}

namespace {

constexpr uint64_t wake_token = 0;
constexpr int max_events = 256;

} // namespace

// -- mailbox ------------------------------------------------------------------

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
  has_work.store(true, std::memory_order_relaxed);
  uint64_t one = 1;
  // A full eventfd counter still wakes the loop: ignore EAGAIN.
  [[maybe_unused]] auto n = ::write(wake_fd.get(), &one, sizeof(one));
}

void reactor::mailbox::run_locked(const std::function<void(impl&)>& fn) {
  auto prev = holding_box;
  holding_box = this;
  if (fn)
    fn(*state);
  drain_deferred();
  holding_box = prev;
}

void reactor::mailbox::drain_deferred() {
  while (!deferred.empty()) {
    std::vector<std::function<void(impl&)>> batch;
    batch.swap(deferred);
    for (auto& f : batch)
      f(*state);
  }
}

// -- loop, timers and dispatch ------------------------------------------------

void reactor::impl::dispatch(uint64_t token, uint32_t events) {
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

void reactor::impl::expire(clock::time_point now) {
  while (!timers.empty() && timers.top().at <= now) {
    auto t = timers.top();
    timers.pop();
    if (auto c = connects.find(t.token);
        c != connects.end() && c->second.deadline == t.at) {
      auto waited = std::chrono::duration_cast<caf::timespan>(
        c->second.deadline - c->second.started);
      finish(t.token,
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

int reactor::impl::wait_ms(clock::time_point now) const {
  std::optional<clock::time_point> next = trim_at;
  if (!timers.empty() && (!next || timers.top().at < *next))
    next = timers.top().at;
  if (!next)
    return -1;
  auto d = *next - now;
  if (d <= clock::duration::zero())
    return 0;
  // Round up so we never wake just before a deadline and spin.
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(d).count();
  return static_cast<int>(std::min<int64_t>(ms, 60'000));
}

void reactor::impl::shutdown() {
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

// -- reactor ------------------------------------------------------------------

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
  self->impl_->epfd.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!self->impl_->epfd)
    return errno_error(errno, "epoll_create1");
  self->box_->wake_fd.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!self->box_->wake_fd)
    return errno_error(errno, "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = wake_token;
  if (::epoll_ctl(self->impl_->epfd.get(), EPOLL_CTL_ADD,
                  self->box_->wake_fd.get(), &ev)
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
    box_->wake_fd.reset();
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
      unique_fd{::socket(op.addrs.front().ss_family,
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
  // Owned from here on: work the reactor drops (it is gone) closes it.
  auto owned = std::make_shared<unique_fd>(fd);
  post([token, owned, shared, watch](impl& m) {
    impl::listener_op op;
    op.fd = std::move(*owned);
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
    for (auto& buf : m.spare_bufs)
      st.stream_spare_bytes += buf.capacity();
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
    [[maybe_unused]] auto n = ::write(box_->wake_fd.get(), &one, sizeof(one));
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
  auto run_inbox = [&] {
    {
      std::lock_guard<std::mutex> guard{box.mtx};
      work.swap(box.inbox);
      box.has_work.store(false, std::memory_order_relaxed);
    }
    for (auto& fn : work)
      fn(m);
    work.clear();
  };
  while (!stopping_.load()) {
    auto n =
      ::epoll_wait(m.epfd.get(), events, max_events, m.wait_ms(clock::now()));
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == wake_token) {
        uint64_t count = 0;
        [[maybe_unused]] auto r =
          ::read(box.wake_fd.get(), &count, sizeof(count));
        continue;
      }
      m.dispatch(events[i].data.u64, events[i].events);
      // Work that arrived meanwhile (sends of bytes just read, above all)
      // runs now rather than after the whole batch: bytes echoed or
      // forwarded leave while still in the cache, and a batch of many
      // busy streams holds back less.
      if (box.has_work.load(std::memory_order_relaxed))
        run_inbox();
    }
    run_inbox();
    auto now = clock::now();
    m.expire(now);
    m.trim_spares(now);
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
