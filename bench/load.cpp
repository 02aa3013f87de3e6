// connmgr-bench-load: the load dialer of scenario c, in its own process.
//
//   connmgr-bench-load --port=P --n=N [--workers=50] [--threads=2]
//                      [--sources=S]
//
// Like 50 goroutines each dialing in a loop under GOMAXPROCS = 2 (the
// reference's load): --workers connects are in flight at any time, each
// worker starting its next connect as soon as its previous one completed,
// multiplexed over --threads OS threads with non-blocking connects and one
// epoll set per thread. (50 OS threads blocked in connect() would instead
// take 50/51 of the CPU from a single-threaded server under CFS, so the
// server would fall behind, overflow its accept queue and stall for the 1 s
// SYN retransmission.)
//
// Prints "ready" once its threads wait, starts on a line on stdin ("go"),
// makes N connections to 127.0.0.1:P in total (a failed connect is counted
// and retried from the same source; at most N failures) and holds its ends.
// With --sources=S > 0, connection k comes from source address k mod S
// (`loopback_source`: 127.10.x.y), so each of S sources opens N / S
// connections, spread over the run as many peers would; a server with a
// per-IP cap and rate sees distinct peers. 0 (default): every connection
// from 127.0.0.1, the kernel's choice. Then it prints
// "done <ms> <connected> <errors>" and waits for stdin to close; then it
// closes every connection with a reset (no TIME_WAIT left behind) and exits.
// It also exits when stdin closes earlier.

#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/common.hpp"
#include "connmgr/net/socket_ops.hpp"

using namespace connmgr::bench;

namespace {

struct shared_state {
  sockaddr_in sa{};
  size_t n = 0;
  size_t sources = 0;
  std::atomic<size_t> next{0};
  std::atomic<size_t> errors{0};
  std::mutex mtx;
  std::condition_variable cv;
  bool go = false;
};

/// Binds `fd` to the loopback source `index`; the port is chosen at
/// connect time (IP_BIND_ADDRESS_NO_PORT), per destination, so 10 000
/// binds do not exhaust or scan the ephemeral range.
bool bind_source(int fd, size_t index) {
  int one = 1;
  ::setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
  auto src = loopback_source(index);
  return ::bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof(src)) == 0;
}

/// One OS thread driving `workers` connect loops; returns the held fds.
void run_thread(shared_state& st, size_t workers, std::vector<int>& held) {
  {
    std::unique_lock<std::mutex> guard{st.mtx};
    st.cv.wait(guard, [&] { return st.go; });
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("connmgr-bench-load: epoll_create1 failed");
  size_t in_flight = 0;
  // Starts connection number k (from its source); false once too many
  // failed.
  auto start_one = [&](size_t k) -> bool {
    for (;;) {
      if (st.errors.load() >= st.n)
        return false;
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) {
        st.errors.fetch_add(1);
        continue;
      }
      if (st.sources > 0 && !bind_source(fd, k % st.sources)) {
        ::close(fd);
        st.errors.fetch_add(1);
        continue;
      }
      if (::connect(fd, reinterpret_cast<const sockaddr*>(&st.sa),
                    sizeof(st.sa))
          == 0) {
        held.push_back(fd);
        return true; // done at once: the caller starts the next
      }
      if (errno != EINPROGRESS) {
        ::close(fd);
        st.errors.fetch_add(1);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.u64 =
        (static_cast<uint64_t>(k) << 32) | static_cast<uint32_t>(fd);
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      ++in_flight;
      return true;
    }
  };
  // Each worker: take a number, connect, repeat.
  auto next_for_worker = [&]() {
    for (;;) {
      auto k = st.next.fetch_add(1);
      if (k >= st.n)
        return;
      auto before = in_flight;
      if (!start_one(k))
        return;
      if (in_flight > before)
        return; // in flight: its completion starts the next
      // connected at once: loop to take the next number
    }
  };
  for (size_t w = 0; w < workers; ++w)
    next_for_worker();
  epoll_event events[64];
  while (in_flight > 0) {
    int k = epoll_wait(ep, events, 64, 1000);
    for (int i = 0; i < k; ++i) {
      auto num = static_cast<size_t>(events[i].data.u64 >> 32);
      auto fd = static_cast<int>(events[i].data.u64 & 0xffffffffu);
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      --in_flight;
      if (err == 0) {
        held.push_back(fd);
        next_for_worker();
        continue;
      }
      ::close(fd);
      st.errors.fetch_add(1);
      // Retry this worker's connection (its number is already taken).
      auto before = in_flight;
      if (start_one(num) && in_flight == before)
        next_for_worker(); // connected at once: on to the next number
    }
  }
  ::close(ep);
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  connmgr::raise_fd_limit();
  shared_state st;
  long port = 0;
  size_t workers = 50;
  size_t threads = 2;
  option_table opts;
  opts.number("port", port, 1);
  opts.number("n", st.n, 1);
  opts.number("workers", workers, 1);
  opts.number("threads", threads, 1);
  opts.number("sources", st.sources, 0);
  opts.parse(argc, argv);
  if (port <= 0 || port > 65535 || st.n == 0)
    die("connmgr-bench-load: needs --port and --n");
  if (st.sources > max_loopback_sources)
    die("connmgr-bench-load: --sources must be at most "
        + std::to_string(max_loopback_sources));
  if (threads > workers)
    threads = workers;
  st.sa = loopback(static_cast<uint16_t>(port));

  std::vector<std::vector<int>> held(threads);
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) {
    auto share = workers / threads + (t < workers % threads ? 1 : 0);
    held[t].reserve(st.n / threads + 64);
    pool.emplace_back(
      [&st, share, &mine = held[t]] { run_thread(st, share, mine); });
  }
  ready_then_wait_for_go();
  auto t0 = steady::now();
  {
    std::lock_guard<std::mutex> guard{st.mtx};
    st.go = true;
  }
  st.cv.notify_all();
  for (auto& t : pool)
    t.join();
  auto ms = ms_between(t0, steady::now());
  size_t connected = 0;
  for (auto& v : held)
    connected += v.size();
  std::printf("done %.3f %zu %zu\n", ms, connected, st.errors.load());
  std::fflush(stdout);
  wait_for_stdin_eof();
  for (auto& v : held)
    for (int fd : v)
      reset_and_close(fd);
  return 0;
}
