// Byte streams: reads bounded by each stream's receive window, queued sends
// written as the socket takes them, and the ends (peer gone, local close,
// slow reader, stop).
#include "connmgr/net/reactor_impl.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/epoll.h>
#include <sys/uio.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

namespace {

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
/// faults on fresh memory: glibc serves blocks this large with mmap): at
/// most this many, each of at most twice `read_chunk`. The pool takes only
/// buffers that were in flight and a read takes from it before allocating,
/// so pool and buffers in flight together never hold more than the most
/// that was in flight at once (itself bounded by the streams' windows and
/// send buffers); and `trim_spares` gives back what sat unused.
constexpr size_t max_spare_buffers = 1024;
/// Spare buffers that stayed unused for this long are freed: after a burst
/// the pool is empty again within twice this.
constexpr auto spare_trim_interval = std::chrono::milliseconds{500};
/// The steady clock now, in nanoseconds since its epoch (for the
/// connection's traffic counters).
int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

/// What a stream always listens for.
constexpr uint32_t stream_events = EPOLLIN | EPOLLRDHUP;

caf::error closed_error(std::string why) {
  return make_error(errc::connection_closed, std::move(why));
}

/// The reason a stream ends after a failed recv or send.
caf::error io_error(int err, const char* what) {
  if (err == ECONNRESET)
    return closed_error("connection reset by peer");
  return closed_error(std::string{what} + ": " + std::strerror(err));
}

} // namespace

void reactor::impl::add_stream(uint64_t token, connection_ptr conn,
                               stream_callbacks cb,
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
            ::epoll_ctl(m.epfd.get(), EPOLL_CTL_DEL, fd, nullptr);
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
    if (::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, fd, &ev) != 0
        && (errno != ENOENT
            || ::epoll_ctl(epfd.get(), EPOLL_CTL_ADD, fd, &ev) != 0))
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

void reactor::impl::end_stream(uint64_t token, caf::error reason, bool peer) {
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
    [this](int fd) { ::epoll_ctl(epfd.get(), EPOLL_CTL_DEL, fd, nullptr); });
  if (peer)
    conn->peer_gone(reason);
  conn->close();
  if (on_end)
    on_end(reason);
}

void reactor::impl::on_stream_event(uint64_t token, uint32_t events) {
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

caf::error reactor::impl::socket_error(stream_op& s) {
  int so_error = 0;
  s.conn->with_fd([&so_error](int fd) {
    socklen_t len = sizeof(so_error);
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
      so_error = errno;
  });
  return so_error != 0 ? io_error(so_error, "recv")
                       : closed_error("peer closed the connection");
}

// -- receiving ----------------------------------------------------------------

reactor::impl::read_result reactor::impl::read_once(uint64_t token) {
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
    s.conn->count_received(len, steady_ns());
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

void reactor::impl::prepare_read_buf(size_t size) {
  if (read_buf.capacity() < size) {
    // The smallest spare that fits; of equal ones the last written out,
    // whose bytes are likeliest still in the cache.
    auto best = spare_bufs.rend();
    for (auto i = spare_bufs.rbegin(); i != spare_bufs.rend(); ++i)
      if (i->capacity() >= size
          && (best == spare_bufs.rend() || i->capacity() < best->capacity())) {
        best = i;
        if (i->capacity() == size)
          break; // nothing fits better
      }
    if (best != spare_bufs.rend()) {
      read_buf = std::move(*best);
      *best = std::move(spare_bufs.back());
      spare_bufs.pop_back();
      spare_low = std::min(spare_low, spare_bufs.size());
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

std::vector<uint8_t> reactor::impl::take_read(size_t len) {
  if (len >= read_buf.capacity() / 4) {
    read_buf.resize(len);
    return std::exchange(read_buf, std::vector<uint8_t>{});
  }
  return std::vector<uint8_t>(read_buf.begin(),
                              read_buf.begin() + static_cast<ptrdiff_t>(len));
}

void reactor::impl::recycle(std::vector<uint8_t>&& buf) {
  auto cap = buf.capacity();
  if (cap < min_read_buf || cap > 2 * read_chunk)
    return;
  if (spare_bufs.size() < max_spare_buffers) {
    if (spare_bufs.empty() && !trim_at)
      trim_at = clock::now() + spare_trim_interval;
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

void reactor::impl::trim_spares(clock::time_point now) {
  if (!trim_at || now < *trim_at)
    return;
  // The oldest go: reads take the last written out first.
  auto idle = std::min(spare_low, spare_bufs.size());
  spare_bufs.erase(spare_bufs.begin(),
                   spare_bufs.begin() + static_cast<ptrdiff_t>(idle));
  spare_low = spare_bufs.size();
  if (spare_bufs.empty())
    trim_at.reset();
  else
    trim_at = now + spare_trim_interval;
}

bool reactor::impl::read_stream(uint64_t token, uint32_t events) {
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

void reactor::impl::pause_reading(uint64_t token, stream_op& s) {
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

void reactor::impl::resume_reading(uint64_t token, stream_op& s) {
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

void reactor::impl::try_resume(uint64_t token) {
  auto i = streams.find(token);
  if (i == streams.end())
    return;
  auto& s = i->second;
  if (s.read_paused
      && s.link->unconsumed.load() <= s.link->opts.receive_window / 2)
    resume_reading(token, s);
}

void reactor::impl::update_events(uint64_t token, stream_op& s) {
  s.conn->with_fd([&](int fd) { set_events(fd, token, s); });
}

void reactor::impl::set_events(int fd, uint64_t token, stream_op& s) {
  epoll_event ev{};
  ev.events =
    (s.want_in ? stream_events : 0u) | (s.want_out ? uint32_t{EPOLLOUT} : 0u);
  ev.data.u64 = token;
  ::epoll_ctl(epfd.get(), EPOLL_CTL_MOD, fd, &ev);
}

// -- sending ------------------------------------------------------------------

void reactor::impl::fail_stream(uint64_t token, caf::error reason) {
  for (int round = 0; round < 4 * reads_per_wakeup; ++round) {
    auto res = read_once(token);
    if (res == read_result::ended || res == read_result::gone)
      return;
    if (res != read_result::data)
      break;
  }
  end_stream(token, std::move(reason), true);
}

bool reactor::impl::flush(uint64_t token, stream_op& s) {
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
    s.conn->count_sent(written, steady_ns());
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

void reactor::impl::pull(uint64_t token) {
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

void reactor::impl::arm_slow_reader_check(uint64_t token) {
  auto i = streams.find(token);
  if (i == streams.end() || i->second.slow_check_at)
    return;
  schedule_slow_reader_check(token, i->second);
}

void reactor::impl::schedule_slow_reader_check(uint64_t token, stream_op& s) {
  auto since = s.link->full_since.load();
  if (since == 0)
    return;
  auto at = clock::time_point{clock::duration{since}}
    + s.link->opts.slow_reader_timeout;
  s.slow_check_at = at;
  timers.push(timer{at, token});
}

void reactor::impl::check_slow_reader(uint64_t token, stream_op& s,
                                      clock::time_point now) {
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

} // namespace connmgr
