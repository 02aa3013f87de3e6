// Byte streams on the reactor, over real sockets on 127.0.0.1: data in
// order, every way a stream can end, and descriptor numbers reused after a
// close never reaching an old stream.
//
// Over 500 lines: one scenario per way a stream can start, carry data and
// end, sharing one loopback harness.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/support/descriptor_audit.hpp"
#include "tests/support/loopback_listener.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// Generous: must hold on a loaded two-core machine.
constexpr auto bound = 10s;

using bytes = std::vector<uint8_t>;

bytes to_bytes(const std::string& str) {
  return bytes(str.begin(), str.end());
}

std::string to_string(const bytes& buf) {
  return std::string(buf.begin(), buf.end());
}

bool fd_open(int fd) {
  return ::fcntl(fd, F_GETFD) != -1;
}

/// Deterministic pseudo-random bytes.
bytes pattern(size_t size, uint32_t seed) {
  bytes out(size);
  auto x = seed;
  for (auto& b : out) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return out;
}

/// What one stream reported, and a way to wait for it.
struct recorder {
  std::mutex mtx;
  std::condition_variable cv;
  bytes data;
  size_t chunks = 0;
  bool empty_chunk = false;
  int ends = 0;
  caf::error reason;
  size_t data_at_end = 0;
  bool data_after_end = false;
  std::thread::id end_thread;
  /// If set, on_end takes a tick from it (to order it against other hooks).
  std::shared_ptr<std::atomic<int>> clock;
  int end_tick = -1;

  stream_callbacks callbacks(std::function<void(const bytes&)> also = {}) {
    stream_callbacks cb;
    cb.on_data = [this, also](bytes buf) {
      if (also)
        also(buf);
      std::lock_guard<std::mutex> guard{mtx};
      empty_chunk = empty_chunk || buf.empty();
      data_after_end = data_after_end || ends > 0;
      ++chunks;
      data.insert(data.end(), buf.begin(), buf.end());
      cv.notify_all();
    };
    cb.on_end = [this](const caf::error& err) {
      std::lock_guard<std::mutex> guard{mtx};
      if (clock)
        end_tick = (*clock)++;
      ++ends;
      reason = err;
      data_at_end = data.size();
      end_thread = std::this_thread::get_id();
      cv.notify_all();
    };
    return cb;
  }

  bool await_bytes(size_t n) {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, bound, [&] { return data.size() >= n; });
  }

  bool await_end() {
    std::unique_lock<std::mutex> guard{mtx};
    return cv.wait_for(guard, bound, [&] { return ends > 0; });
  }

  int end_count() {
    std::lock_guard<std::mutex> guard{mtx};
    return ends;
  }

  std::string text() {
    std::lock_guard<std::mutex> guard{mtx};
    return to_string(data);
  }

  std::string why() {
    std::lock_guard<std::mutex> guard{mtx};
    return describe(reason);
  }

  errc code() {
    std::lock_guard<std::mutex> guard{mtx};
    return errc_of(reason);
  }
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// A reactor and a raw listening socket on 127.0.0.1.
struct fixture {
  std::shared_ptr<reactor> io;
  int lfd = -1;
  sockaddr_storage target{};
  /// Outlive the reactor: streams still running end when it stops.
  std::deque<recorder> recorders;

  recorder& make_recorder() {
    return recorders.emplace_back();
  }

  fixture() {
    auto r = reactor::start();
    REQUIRE(r);
    io = *r;
    lfd = test::listen_like_connmgr(64);
    auto bound_addr = local_sockaddr(lfd);
    REQUIRE(bound_addr);
    target = *bound_addr;
  }

  ~fixture() {
    io->stop();
    if (lfd >= 0)
      ::close(lfd);
  }

  /// Waits until reactor work posted before has run.
  void sync() {
    std::promise<void> done;
    auto f = done.get_future();
    io->barrier([&done] { done.set_value(); });
    REQUIRE(f.wait_for(bound) == std::future_status::ready);
  }

  /// Dials the listener through the reactor.
  connection_ptr dial(bool watch = true) {
    std::promise<caf::expected<connection_ptr>> p;
    auto f = p.get_future();
    io->connect(
      {target}, reactor::clock::now() + bound, "peer",
      [&p](caf::expected<connection_ptr> c) { p.set_value(std::move(c)); },
      nullptr, watch);
    REQUIRE(f.wait_for(bound) == std::future_status::ready);
    auto c = f.get();
    REQUIRE(c);
    return *c;
  }

  /// Accepts one pending connection as a plain blocking socket.
  int accept_raw() {
    pollfd p{lfd, POLLIN, 0};
    REQUIRE(::poll(&p, 1, 10'000) == 1);
    int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(fd >= 0);
    return fd;
  }

  /// A blocking socket connected to the listener.
  int connect_raw() {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    REQUIRE(::connect(fd, reinterpret_cast<const sockaddr*>(&target),
                      sizeof(sockaddr_in))
            == 0);
    return fd;
  }

  /// A dialed connection (reactor) and its accepted peer (raw socket).
  std::pair<connection_ptr, int> dial_with_raw_peer(bool watch = true) {
    auto c = dial(watch);
    return {c, accept_raw()};
  }

  /// A dialed and an accepted connection, both through the reactor.
  std::pair<connection_ptr, connection_ptr> reactor_pair(bool dial_watch,
                                                         bool accept_watch) {
    int dup_fd = ::dup(lfd);
    REQUIRE(dup_fd >= 0);
    std::promise<connection_ptr> accepted;
    auto f = accepted.get_future();
    auto once = std::make_shared<std::once_flag>();
    auto token = io->listen(
      dup_fd,
      [&accepted, once](std::vector<connection_ptr>& batch) {
        std::call_once(*once, [&] { accepted.set_value(batch.front()); });
      },
      accept_watch);
    auto dialed = dial(dial_watch);
    REQUIRE(f.wait_for(bound) == std::future_status::ready);
    auto acc = f.get();
    std::promise<void> gone;
    io->unlisten(token, [&gone] { gone.set_value(); });
    REQUIRE(gone.get_future().wait_for(bound) == std::future_status::ready);
    return {dialed, acc};
  }
};

/// Reads exactly `n` bytes from blocking socket `fd` within the bound.
std::string read_raw(int fd, size_t n) {
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) != 1)
      continue;
    char buf[4096];
    auto got = ::recv(fd, buf, std::min(sizeof(buf), n - out.size()), 0);
    if (got <= 0)
      break;
    out.append(buf, static_cast<size_t>(got));
  }
  return out;
}

void write_raw(int fd, const std::string& str) {
  REQUIRE(::send(fd, str.data(), str.size(), MSG_NOSIGNAL)
          == static_cast<ssize_t>(str.size()));
}

/// Descriptors registered in any epoll instance of this process.
std::vector<int> epoll_registered() {
  std::vector<int> result;
  auto* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr)
    return result;
  while (auto* entry = ::readdir(dir)) {
    std::string name = entry->d_name;
    if (name == "." || name == "..")
      continue;
    char link[256] = {};
    auto path = "/proc/self/fd/" + name;
    if (::readlink(path.c_str(), link, sizeof(link) - 1) < 0
        || std::string{link} != "anon_inode:[eventpoll]")
      continue;
    std::ifstream info{"/proc/self/fdinfo/" + name};
    std::string line;
    while (std::getline(info, line))
      if (line.rfind("tfd:", 0) == 0)
        result.push_back(std::stoi(line.substr(4)));
  }
  ::closedir(dir);
  return result;
}

bool registered(int fd) {
  for (auto x : epoll_registered())
    if (x == fd)
      return true;
  return false;
}

} // namespace

TEST_CASE("stream: bytes echo between a dialed and an accepted connection") {
  fixture fx;
  // The dialed side is not watched (the stream adds its descriptor), the
  // accepted side is (the stream takes its watch registration over).
  auto [client, server] = fx.reactor_pair(false, true);
  // Set before any byte flows (fx.sync() orders it before the reads).
  auto echo = std::make_shared<stream_handle>();
  auto& at_server = fx.make_recorder();
  *echo = fx.io->stream(server, at_server.callbacks([echo](const bytes& buf) {
    CHECK(echo->send(buf) == send_status::queued);
    echo->consumed(buf.size());
  }));
  auto& at_client = fx.make_recorder();
  auto token = fx.io->stream(client, at_client.callbacks());
  fx.sync();
  std::string sent;
  for (int i = 0; i < 100; ++i) {
    auto msg = "message " + std::to_string(i) + ";";
    sent += msg;
    CHECK(token.send(to_bytes(msg)) == send_status::queued);
  }
  REQUIRE(at_client.await_bytes(sent.size()));
  CHECK(at_client.text() == sent);
  CHECK(at_server.text() == sent);
  CHECK_FALSE(at_client.empty_chunk);
  CHECK_FALSE(at_server.empty_chunk);
  auto st = fx.io->stats();
  CHECK(st.streams == 2);
  CHECK(st.watched == 0);
  CHECK(st.stream_bytes_read == 2 * sent.size());
  CHECK(st.stream_bytes_written == 2 * sent.size());
  CHECK(at_client.end_count() == 0);
  CHECK(at_server.end_count() == 0);
}

TEST_CASE("stream: 8 MiB each way arrive intact and in order") {
  fixture fx;
  auto [a, b] = fx.reactor_pair(true, true);
  constexpr size_t total = 8 << 20;
  constexpr size_t chunk = 64 << 10;
  auto from_a = pattern(total, 1);
  auto from_b = pattern(total, 2);
  auto& at_a = fx.make_recorder();
  auto& at_b = fx.make_recorder();
  // The whole transfer may wait in the send buffer: the peer reads as fast
  // as it can, but the test posts everything at once.
  // The recorders never report consumption: the window holds it all.
  stream_options opts;
  opts.max_send_buffer = 2 * total;
  opts.receive_window = 2 * total;
  auto ta = fx.io->stream(a, at_a.callbacks(), opts);
  auto tb = fx.io->stream(b, at_b.callbacks(), opts);
  std::thread sender_b{[&] {
    for (size_t off = 0; off < total; off += chunk)
      tb.send(bytes(from_b.begin() + static_cast<ptrdiff_t>(off),
                    from_b.begin() + static_cast<ptrdiff_t>(off + chunk)));
  }};
  for (size_t off = 0; off < total; off += chunk)
    ta.send(bytes(from_a.begin() + static_cast<ptrdiff_t>(off),
                  from_a.begin() + static_cast<ptrdiff_t>(off + chunk)));
  sender_b.join();
  REQUIRE(at_b.await_bytes(total));
  REQUIRE(at_a.await_bytes(total));
  {
    std::lock_guard<std::mutex> g1{at_a.mtx};
    std::lock_guard<std::mutex> g2{at_b.mtx};
    CHECK(at_b.data.size() == total);
    CHECK(at_a.data.size() == total);
    CHECK(at_b.data == from_a);
    CHECK(at_a.data == from_b);
    CHECK_FALSE(at_a.empty_chunk);
    CHECK(at_a.chunks > 1);
  }
  CHECK(at_a.end_count() == 0);
  CHECK(at_b.end_count() == 0);
}

TEST_CASE("stream: chunks moved back into send echo intact, and their "
          "buffers are read into again") {
  fixture fx;
  auto [client, server] = fx.reactor_pair(true, true);
  constexpr size_t total = 16 << 20;
  constexpr size_t chunk = 64 << 10;
  auto sent = pattern(total, 3);
  // The echo hands every chunk back as it is, as a relay or the node does:
  // the reactor writes that very buffer and later reads into it again, so
  // a buffer reused before it was written out would garble the echo.
  auto echo = std::make_shared<stream_handle>();
  auto refused = std::make_shared<std::atomic<size_t>>(0);
  stream_callbacks cb;
  cb.on_data = [echo, refused](std::vector<uint8_t> buf) {
    auto n = buf.size();
    if (echo->send(std::move(buf)) != send_status::queued)
      ++*refused;
    echo->consumed(n);
  };
  stream_options echo_opts;
  echo_opts.max_send_buffer = 2 * total;
  *echo = fx.io->stream(server, std::move(cb), echo_opts);
  auto& at_client = fx.make_recorder();
  // The recorder never reports consumption: its window holds it all.
  stream_options opts;
  opts.max_send_buffer = 2 * total;
  opts.receive_window = 2 * total;
  auto token = fx.io->stream(client, at_client.callbacks(), opts);
  fx.sync();
  for (size_t off = 0; off < total; off += chunk)
    REQUIRE(
      token.send(bytes(sent.begin() + static_cast<ptrdiff_t>(off),
                       sent.begin() + static_cast<ptrdiff_t>(off + chunk)))
      == send_status::queued);
  REQUIRE(at_client.await_bytes(total));
  {
    std::lock_guard<std::mutex> guard{at_client.mtx};
    CHECK(at_client.data.size() == total);
    CHECK(at_client.data == sent);
  }
  CHECK(refused->load() == 0);
  auto st = fx.io->stats();
  CHECK(st.stream_bytes_written == 2 * total);
  CHECK(st.stream_buffers_reused > 0);
  CHECK(at_client.end_count() == 0);
}

TEST_CASE("stream: the peer closing ends the stream after its last bytes, "
          "peer_gone first") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto clock = std::make_shared<std::atomic<int>>(0);
  auto& rec = fx.make_recorder();
  rec.clock = clock;
  std::atomic<int> gone_runs{0};
  std::atomic<int> gone_tick{-1};
  std::string gone_reason;
  conn->on_peer_gone([&](const caf::error& err) {
    gone_tick = (*clock)++;
    gone_reason = describe(err);
    ++gone_runs;
  });
  std::atomic<bool> closed_in_hook{false};
  conn->on_close([&] { closed_in_hook = true; });
  fx.io->stream(conn, rec.callbacks());
  fx.sync();
  std::string words;
  for (int i = 0; i < 1000; ++i)
    words += "last words " + std::to_string(i) + "\n";
  write_raw(peer, words);
  ::close(peer);
  REQUIRE(rec.await_end());
  CHECK(rec.text() == words);
  CHECK(rec.data_at_end == words.size());
  CHECK(rec.code() == errc::connection_closed);
  CHECK(contains(rec.why(), "peer closed the connection"));
  CHECK(rec.end_thread != std::this_thread::get_id());
  CHECK(gone_runs == 1);
  CHECK(gone_tick >= 0);
  CHECK(gone_tick < rec.end_tick);
  CHECK(contains(gone_reason, "peer closed the connection"));
  CHECK(conn->closed());
  CHECK(closed_in_hook);
  fx.sync();
  CHECK(rec.end_count() == 1);
  CHECK(fx.io->stats().streams == 0);
}

TEST_CASE("stream: a reset by the peer ends the stream with "
          "'connection reset by peer'") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(false);
  auto& rec = fx.make_recorder();
  fx.io->stream(conn, rec.callbacks());
  fx.sync();
  write_raw(peer, "bye");
  REQUIRE(rec.await_bytes(3));
  linger lg{1, 0}; // close with RST
  REQUIRE(::setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
  ::close(peer);
  REQUIRE(rec.await_end());
  CHECK(rec.code() == errc::connection_closed);
  CHECK(contains(rec.why(), "connection reset by peer"));
  CHECK(conn->closed());
}

TEST_CASE("stream: a watched connection hears of its peer only from the "
          "stream, once") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  CHECK(fx.io->stats().watched == 1);
  auto& rec = fx.make_recorder();
  std::atomic<int> gone_runs{0};
  std::atomic<size_t> bytes_at_gone{0};
  conn->on_peer_gone([&](const caf::error&) {
    std::lock_guard<std::mutex> guard{rec.mtx};
    bytes_at_gone = rec.data.size();
    ++gone_runs;
  });
  stream_options opts;
  opts.receive_window = 1 << 20; // the burst below, unconsumed
  auto token = fx.io->stream(conn, rec.callbacks(), opts);
  auto st = fx.io->stats();
  CHECK(st.watched == 0);
  CHECK(st.streams == 1);
  // Traffic both ways, a half-close of ours: nothing reports the peer gone.
  for (int i = 0; i < 10; ++i) {
    write_raw(peer, "ping");
    REQUIRE(rec.await_bytes(4 * static_cast<size_t>(i + 1)));
    token.send(to_bytes("pong"));
    CHECK(read_raw(peer, 4) == "pong");
  }
  fx.sync();
  CHECK(gone_runs == 0);
  CHECK_FALSE(conn->closed());
  // The peer sends a last burst and leaves: peer_gone comes once, after
  // every byte (a stale watch would fire on the hang-up before them).
  std::string burst(256 * 1024, 'x');
  write_raw(peer, burst);
  ::shutdown(peer, SHUT_WR);
  REQUIRE(rec.await_end());
  CHECK(gone_runs == 1);
  CHECK(bytes_at_gone == 40 + burst.size());
  CHECK(rec.data_at_end == 40 + burst.size());
  CHECK(contains(rec.why(), "peer closed the connection"));
  CHECK(conn->closed());
  CHECK(fx.io->stats().watched == 0);
  ::close(peer);
}

TEST_CASE("stream: closing locally from another thread ends the stream "
          "once") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  std::atomic<int> gone_runs{0};
  conn->on_peer_gone([&](const caf::error&) { ++gone_runs; });
  auto& rec = fx.make_recorder();
  auto token = fx.io->stream(conn, rec.callbacks());
  write_raw(peer, "hello");
  REQUIRE(rec.await_bytes(5));
  int fd = conn->native_handle();
  REQUIRE(fd >= 0);
  REQUIRE(registered(fd));
  std::thread closer{[conn = conn] { conn->close(); }};
  auto closer_id = closer.get_id();
  closer.join();
  REQUIRE(rec.await_end());
  CHECK(rec.code() == errc::connection_closed);
  CHECK(contains(rec.why(), "closed locally"));
  CHECK(rec.end_thread != std::this_thread::get_id());
  CHECK(rec.end_thread != closer_id);
  CHECK_FALSE(fd_open(fd));
  CHECK(gone_runs == 0);
  CHECK(token.send(to_bytes("too late")) == send_status::ended);
  fx.sync();
  CHECK(rec.end_count() == 1);
  CHECK(fx.io->stats().streams == 0);
  // The peer sees our end.
  CHECK(read_raw(peer, 1).empty());
  ::close(peer);
}

TEST_CASE("stream: a connection closed from its own on_data ends once") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  std::weak_ptr<connection> weak = conn;
  fx.io->stream(conn, rec.callbacks([weak](const bytes&) {
    if (auto c = weak.lock())
      c->close();
  }));
  conn.reset(); // the stream holds the connection
  write_raw(peer, "x");
  REQUIRE(rec.await_end());
  CHECK(contains(rec.why(), "closed locally"));
  fx.sync();
  CHECK(rec.end_count() == 1);
  CHECK(weak.expired());
  ::close(peer);
}

TEST_CASE("stream: releasing a streamed connection ends the stream and "
          "leaves the descriptor alone") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  fx.io->stream(conn, rec.callbacks());
  fx.sync();
  int fd = conn->native_handle();
  REQUIRE(registered(fd));
  int taken = conn->release();
  REQUIRE(taken == fd);
  CHECK_FALSE(registered(fd));
  REQUIRE(rec.await_end());
  CHECK(contains(rec.why(), "closed locally"));
  // The new owner gets the bytes; the reactor never reads them.
  write_raw(peer, "yours");
  CHECK(read_raw(taken, 5) == "yours");
  fx.sync();
  CHECK(rec.text().empty());
  CHECK(fd_open(taken));
  ::close(taken);
  ::close(peer);
}

TEST_CASE("stream: a peer that never reads is refused, then dropped as a "
          "slow reader") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  int small = 4096;
  REQUIRE(::setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small))
          == 0);
  REQUIRE(conn->with_fd([small](int fd) {
    ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
  }));
  std::atomic<int> gone_runs{0};
  std::string gone_reason;
  conn->on_peer_gone([&](const caf::error& err) {
    gone_reason = describe(err);
    ++gone_runs;
  });
  auto& rec = fx.make_recorder();
  stream_options opts;
  opts.max_send_buffer = 64 * 1024;
  opts.slow_reader_timeout = std::chrono::milliseconds{300};
  auto token = fx.io->stream(conn, rec.callbacks(), opts);
  bytes chunk(16 * 1024, 0x5a);
  // Keeps sending, as a node keeps gossiping, until the stream ends: what
  // is held for the peer stays within the limit, and the peer is dropped.
  size_t accepted = 0;
  size_t refused = 0;
  auto started = std::chrono::steady_clock::now();
  while (rec.end_count() == 0
         && std::chrono::steady_clock::now() - started < bound) {
    auto res = token.send(chunk);
    if (res == send_status::queued)
      accepted += chunk.size();
    else if (res == send_status::full)
      ++refused;
    CHECK(token.unsent() <= opts.max_send_buffer);
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  REQUIRE(rec.await_end());
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK(refused > 0);
  CHECK(fx.io->stats().stream_sends_refused == refused);
  // Far less than the loop offered.
  CHECK(accepted < size_t{4} << 20);
  CHECK(rec.code() == errc::slow_reader);
  CHECK(contains(rec.why(), "send buffer full for"));
  CHECK(waited >= opts.slow_reader_timeout);
  CHECK(gone_runs == 1);
  CHECK(contains(gone_reason, "slow_reader"));
  CHECK(conn->closed());
  CHECK(token.send(chunk) == send_status::ended);
  CHECK(token.unsent() == 0);
  fx.sync();
  CHECK(rec.end_count() == 1);
  CHECK(fx.io->stats().slow_readers == 1);
  ::close(peer);
}

TEST_CASE("stream: a peer that reads slowly but catches up is not dropped") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  stream_options opts;
  opts.max_send_buffer = 32 * 1024;
  opts.slow_reader_timeout = std::chrono::milliseconds{500};
  auto token = fx.io->stream(conn, rec.callbacks(), opts);
  bytes chunk(8 * 1024, 0x11);
  size_t sent = 0;
  size_t refused = 0;
  std::string got;
  // Fill until refused, then let the peer drain everything; repeat. The
  // buffer drains below half each time, so the stall clock restarts.
  for (int round = 0; round < 5; ++round) {
    while (token.send(chunk) == send_status::queued)
      sent += chunk.size();
    ++refused;
    while (got.size() < sent) {
      auto part = read_raw(peer, std::min<size_t>(sent - got.size(), 65536));
      REQUIRE_FALSE(part.empty());
      got += part;
    }
    fx.sync();
  }
  CHECK(refused == 5);
  CHECK(got.size() == sent);
  fx.sync();
  CHECK(rec.end_count() == 0);
  CHECK(fx.io->stats().slow_readers == 0);
  ::close(peer);
  REQUIRE(rec.await_end());
}

TEST_CASE("stream: reading stops at the receive window and resumes once "
          "the consumer catches up") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  stream_options opts;
  opts.receive_window = 32 * 1024;
  auto token = fx.io->stream(conn, rec.callbacks(), opts);
  fx.sync();
  // The peer sends far more than the window; the reactor takes no more
  // than the window until told it was consumed.
  constexpr size_t total = 512 * 1024;
  std::thread writer{
    [peer = peer] { write_raw(peer, std::string(total, 'w')); }};
  REQUIRE(rec.await_bytes(opts.receive_window));
  fx.sync();
  CHECK(rec.text().size() == opts.receive_window);
  auto st = fx.io->stats();
  CHECK(st.streams_paused == 1);
  CHECK(st.stream_pauses == 1);
  CHECK(st.stream_bytes_read == opts.receive_window);
  CHECK(token.unconsumed() == opts.receive_window);
  // Consuming less than half of the window does not resume reading.
  token.consumed(opts.receive_window / 4);
  fx.sync();
  CHECK(fx.io->stats().stream_bytes_read == opts.receive_window);
  // Consuming everything as it comes lets the whole transfer through.
  size_t reported = opts.receive_window / 4;
  while (reported < total) {
    REQUIRE(rec.await_bytes(std::min(total, reported + 1)));
    auto have = rec.text().size();
    token.consumed(have - reported);
    reported = have;
    CHECK(token.unconsumed() <= opts.receive_window);
  }
  writer.join();
  CHECK(rec.text() == std::string(total, 'w'));
  fx.sync();
  CHECK(fx.io->stats().streams_paused == 0);
  CHECK(fx.io->stats().stream_pauses >= 2);
  ::close(peer);
  REQUIRE(rec.await_end());
  CHECK(contains(rec.why(), "peer closed the connection"));
}

TEST_CASE("stream: a paused stream whose peer resets ends at once") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  stream_options opts;
  opts.receive_window = 4096;
  fx.io->stream(conn, rec.callbacks(), opts);
  write_raw(peer, std::string(64 * 1024, 'r'));
  REQUIRE(rec.await_bytes(4096));
  fx.sync();
  REQUIRE(fx.io->stats().streams_paused == 1);
  // An abortive close: the reactor is not reading, but must not spin on the
  // error nor keep the socket.
  linger lg{1, 0};
  ::setsockopt(peer, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::close(peer);
  REQUIRE(rec.await_end());
  CHECK(conn->closed());
  fx.sync();
  CHECK(fx.io->stats().streams == 0);
  CHECK(fx.io->stats().streams_paused == 0);
}

TEST_CASE("stream: a memory or closed connection ends at once") {
  fixture fx;
  SUBCASE("memory connection") {
    auto conn = make_memory_connection("127.0.0.1:1");
    auto& rec = fx.make_recorder();
    fx.io->stream(conn, rec.callbacks());
    REQUIRE(rec.await_end());
    CHECK(rec.code() == errc::connection_closed);
    CHECK(rec.end_thread != std::this_thread::get_id());
    CHECK_FALSE(conn->closed()); // nothing else happens
    CHECK(fx.io->stats().streams == 0);
  }
  SUBCASE("closed connection") {
    auto [conn, peer] = fx.dial_with_raw_peer(true);
    conn->close();
    auto& rec = fx.make_recorder();
    auto token = fx.io->stream(conn, rec.callbacks());
    REQUIRE(rec.await_end());
    CHECK(rec.code() == errc::connection_closed);
    CHECK(token.send(to_bytes("ignored")) == send_status::ended);
    fx.sync();
    CHECK(rec.end_count() == 1);
    CHECK(fx.io->stats().streams == 0);
    ::close(peer);
  }
  SUBCASE("second stream on one connection") {
    auto [conn, peer] = fx.dial_with_raw_peer(true);
    auto& first = fx.make_recorder();
    auto& second = fx.make_recorder();
    fx.io->stream(conn, first.callbacks());
    fx.io->stream(conn, second.callbacks());
    REQUIRE(second.await_end());
    CHECK(second.code() == errc::canceled);
    write_raw(peer, "still first");
    REQUIRE(first.await_bytes(11));
    CHECK(first.text() == "still first");
    CHECK(first.end_count() == 0);
    CHECK(second.text().empty());
    ::close(peer);
  }
}

TEST_CASE("stream: stopping the reactor ends every stream and closes every "
          "descriptor") {
  auto baseline = open_descriptors();
  {
    fixture fx;
    constexpr size_t n = 3;
    std::vector<connection_ptr> conns;
    for (size_t i = 0; i < n; ++i) {
      auto [a, b] = fx.reactor_pair(i % 2 == 0, true);
      conns.push_back(a);
      conns.push_back(b);
    }
    std::vector<std::unique_ptr<recorder>> recs;
    std::vector<int> fds;
    for (auto& c : conns) {
      recs.push_back(std::make_unique<recorder>());
      fds.push_back(c->native_handle());
      fx.io->stream(c, recs.back()->callbacks());
    }
    fx.sync();
    CHECK(fx.io->stats().streams == 2 * n);
    fx.io->stop();
    for (size_t i = 0; i < conns.size(); ++i) {
      CHECK(recs[i]->end_count() == 1);
      CHECK(recs[i]->code() == errc::canceled);
      CHECK(contains(recs[i]->why(), "reactor stopped"));
      CHECK(conns[i]->closed());
      CHECK_FALSE(fd_open(fds[i]));
    }
    // After the stop a stream ends at once, on the caller's thread, and
    // its connection closes.
    auto late = std::make_shared<connection>(fx.connect_raw(), "late");
    int peer = fx.accept_raw();
    auto& rec = fx.make_recorder();
    auto token = fx.io->stream(late, rec.callbacks());
    CHECK(rec.end_count() == 1);
    CHECK(rec.end_thread == std::this_thread::get_id());
    CHECK(rec.code() == errc::canceled);
    CHECK(late->closed());
    CHECK(token.send(to_bytes("ignored")) == send_status::ended);
    CHECK(rec.end_count() == 1);
    ::close(peer);
  }
  auto left = test::new_descriptors(baseline);
  CHECK_MESSAGE(left.empty(), describe(left));
}

TEST_CASE("stream: a descriptor number reused after a local close never "
          "reaches the old stream") {
  fixture fx;
  int reused = 0;
  for (int round = 0; round < 20; ++round) {
    CAPTURE(round);
    auto [old_conn, old_peer] = fx.dial_with_raw_peer(round % 2 == 0);
    auto& old_rec = fx.make_recorder();
    auto old_token = fx.io->stream(old_conn, old_rec.callbacks());
    fx.sync();
    int old_fd = old_conn->native_handle();
    // Keep the old stream busy, so events for it are in flight.
    write_raw(old_peer, std::string(64 * 1024, 'o'));
    // Hold the reactor thread while a send for the old stream waits in
    // line, the old connection closes and a new socket takes the lowest
    // free number, most likely the old one.
    std::promise<void> hold;
    std::promise<void> holding;
    auto held = hold.get_future().share();
    fx.io->barrier([held, &holding] {
      holding.set_value();
      held.wait();
    });
    REQUIRE(holding.get_future().wait_for(bound) == std::future_status::ready);
    old_token.send(to_bytes("stale"));
    old_conn->close();
    int fresh = fx.connect_raw();
    int fresh_peer = fx.accept_raw();
    if (fresh == old_fd)
      ++reused;
    hold.set_value();
    fx.sync();
    write_raw(fresh_peer, "for the new socket");
    if (round % 2 == 0) {
      // Read directly.
      CHECK(read_raw(fresh, 18) == "for the new socket");
      write_raw(fresh, "end");
      ::close(fresh);
    } else {
      // Streamed on its own.
      auto fresh_conn = std::make_shared<connection>(fresh, "fresh");
      auto& fresh_rec = fx.make_recorder();
      auto fresh_token = fx.io->stream(fresh_conn, fresh_rec.callbacks());
      REQUIRE(fresh_rec.await_bytes(18));
      CHECK(fresh_rec.text() == "for the new socket");
      fresh_token.send(to_bytes("end"));
      fx.sync();
      fresh_conn->close();
      REQUIRE(fresh_rec.await_end());
    }
    // The old stream's send never reached the new socket.
    CHECK(read_raw(fresh_peer, 3) == "end");
    REQUIRE(old_rec.await_end());
    CHECK(contains(old_rec.why(), "closed locally"));
    CHECK_FALSE(contains(old_rec.text(), "for"));
    CHECK(old_rec.text().find_first_not_of('o') == std::string::npos);
    ::close(fresh_peer);
    ::close(old_peer);
  }
  // The number is the lowest free one: reuse is the rule, not luck.
  CHECK(reused > 0);
  fx.sync();
  CHECK(fx.io->stats().streams == 0);
}

TEST_CASE("stream: sends after the end are ignored") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  auto token = fx.io->stream(conn, rec.callbacks());
  fx.sync();
  ::close(peer);
  REQUIRE(rec.await_end());
  for (int i = 0; i < 100; ++i)
    CHECK(token.send(to_bytes("nobody listens")) == send_status::ended);
  CHECK(stream_handle{}.send(to_bytes("no stream")) == send_status::ended);
  token.send(bytes{});
  fx.sync();
  CHECK(rec.end_count() == 1);
  CHECK_FALSE(rec.data_after_end);
  CHECK(fx.io->stats().streams == 0);
}

TEST_CASE("stream: small and large sends, copied or moved, keep their order") {
  fixture fx;
  auto [conn, peer] = fx.dial_with_raw_peer(true);
  auto& rec = fx.make_recorder();
  auto token = fx.io->stream(conn, rec.callbacks());
  std::string expected;
  for (int i = 0; i < 200; ++i) {
    // Sizes around the point where sends stop sharing a chunk.
    auto size = static_cast<size_t>(1 + (i * 997) % 9000);
    std::string part(size, static_cast<char>('a' + i % 26));
    expected += part;
    auto buf = to_bytes(part);
    auto res = i % 2 == 0 ? token.send(buf) : token.send(std::move(buf));
    REQUIRE(res == send_status::queued);
  }
  std::string got;
  while (got.size() < expected.size()) {
    auto part =
      read_raw(peer, std::min<size_t>(expected.size() - got.size(), 65536));
    REQUIRE_FALSE(part.empty());
    got += part;
  }
  CHECK(got == expected);
  ::close(peer);
  REQUIRE(rec.await_end());
}

namespace {

/// A stream on `server` that sends back every chunk it receives.
std::shared_ptr<stream_handle> start_echo(fixture& fx,
                                          const connection_ptr& server,
                                          const stream_options& opts) {
  auto echo = std::make_shared<stream_handle>();
  stream_callbacks cb;
  cb.on_data = [echo](std::vector<uint8_t> buf) {
    auto n = buf.size();
    echo->send(std::move(buf));
    echo->consumed(n);
  };
  *echo = fx.io->stream(server, std::move(cb), opts);
  return echo;
}

} // namespace

TEST_CASE("stream: spare read buffers are freed once streams go idle") {
  // The pool keeps echoed buffers for later reads; after a burst it must
  // not hold them for ever.
  fixture fx;
  auto [client, server] = fx.reactor_pair(true, true);
  constexpr size_t burst = 16 << 20;
  constexpr size_t chunk = 256 << 10;
  constexpr int max_bursts = 20;
  auto sent = pattern(burst, 5);
  stream_options echo_opts;
  echo_opts.max_send_buffer = 2 * burst;
  auto echo = start_echo(fx, server, echo_opts);
  auto& at_client = fx.make_recorder();
  stream_options opts;
  opts.max_send_buffer = 2 * burst;
  opts.receive_window = 2 * burst * max_bursts;
  auto token = fx.io->stream(client, at_client.callbacks(), opts);
  fx.sync();
  // Only an echo that had to wait for the socket goes to the pool (one
  // written at once is freed there and then), and whether any had to wait
  // depends on the scheduler: burst until the pool holds something.
  size_t held = 0;
  int bursts = 0;
  while (held == 0 && bursts < max_bursts) {
    for (size_t off = 0; off < burst; off += chunk)
      REQUIRE(
        token.send(bytes(sent.begin() + static_cast<ptrdiff_t>(off),
                         sent.begin() + static_cast<ptrdiff_t>(off + chunk)))
        == send_status::queued);
    ++bursts;
    REQUIRE(at_client.await_bytes(burst * static_cast<size_t>(bursts)));
    held = fx.io->stats().stream_spare_bytes;
  }
  MESSAGE("spare bytes after " << bursts << " bursts: " << held);
  REQUIRE(held > 0);
  auto deadline = std::chrono::steady_clock::now() + bound;
  while (fx.io->stats().stream_spare_bytes > 0
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK(fx.io->stats().stream_spare_bytes == 0);
}

TEST_CASE("stream: a connection counts the bytes its stream moved") {
  // `peers` shows these counters: they must match what went over the wire.
  fixture fx;
  auto [client, server] = fx.reactor_pair(true, true);
  constexpr size_t total = 1 << 20;
  auto sent = pattern(total, 7);
  stream_options roomy;
  roomy.max_send_buffer = 2 * total;
  roomy.receive_window = 2 * total; // the recorder never reports consumed
  auto echo = start_echo(fx, server, roomy);
  auto& at_client = fx.make_recorder();
  auto token = fx.io->stream(client, at_client.callbacks(), roomy);
  fx.sync();
  CHECK(client->traffic().last_send_ns == 0);
  REQUIRE(token.send(bytes(sent.begin(), sent.end())) == send_status::queued);
  REQUIRE(at_client.await_bytes(total));
  fx.sync();
  auto c = client->traffic();
  auto s = server->traffic();
  CHECK(c.bytes_out == total);
  CHECK(c.bytes_in == total);
  CHECK(s.bytes_in == total);
  CHECK(s.bytes_out == total);
  CHECK(c.last_send_ns > 0);
  CHECK(c.last_recv_ns >= c.last_send_ns);
  CHECK(s.last_recv_ns > 0);
}
