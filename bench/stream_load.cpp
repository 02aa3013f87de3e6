// connmgr-bench-stream-load: the load process of scenario g (byte streams),
// in its own process so that the server's CPU figures never include it.
//
//   connmgr-bench-stream-load --port=P --conns=K --bytes=B --mode=echo|flood
//
// Opens K connections to 127.0.0.1:P and prints "ready". On a line on stdin
// ("go") it pushes B bytes in total, split evenly over the K connections,
// 64 KiB per send, from one thread with one level-triggered epoll set:
// - echo: reads everything back on the same connection and checks every
//   byte (byte i of a connection is i mod 251, so a lost, duplicated or
//   reordered chunk shows); done once all B bytes came back.
// - flood: never reads; done once all B bytes were written (the server
//   decides how fast that can go).
// Then it prints "done <ms> <bytes> <mismatched reads> <errors> <cpu µs>"
// (bytes read back in echo mode, written in flood mode; ms and its own CPU
// from "go": whether the load itself was the limit) and waits
// for stdin to close; then it resets every connection (no TIME_WAIT left
// behind) and exits. It also exits when stdin closes earlier, and gives up
// (printing "done" with what it has and the error count raised) when a
// connection ends early.

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench/common.hpp"
#include "connmgr/net/socket_ops.hpp"

using namespace connmgr::bench;

namespace {

constexpr size_t send_chunk = 64 * 1024;
constexpr size_t recv_chunk = 256 * 1024;
constexpr size_t period = 251;
constexpr uint64_t stdin_tag = ~uint64_t{0};

struct conn_state {
  int fd = -1;
  uint64_t quota = 0;
  uint64_t sent = 0;
  uint64_t received = 0;
};

/// Bytes 0, 1, ..., 250, 0, 1, ...: long enough to send or compare any
/// chunk starting at any offset of the period.
std::vector<uint8_t> make_pattern() {
  std::vector<uint8_t> p(recv_chunk + period);
  for (size_t i = 0; i < p.size(); ++i)
    p[i] = static_cast<uint8_t>(i % period);
  return p;
}

void set_events(int ep, size_t index, int fd, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = index;
  ::epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

} // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  connmgr::raise_fd_limit();
  long port = 0;
  size_t k = 1;
  uint64_t total = 0;
  std::string mode = "echo";
  option_table opts;
  opts.number("port", port, 1);
  opts.number("conns", k, 1);
  opts.number("bytes", total, 1);
  opts.choice("mode", mode, {"echo", "flood"});
  opts.parse(argc, argv);
  bool echo = mode == "echo";
  if (port <= 0 || port > 65535 || total == 0)
    die("connmgr-bench-stream-load: needs --port and --bytes");
  auto sa = loopback(static_cast<uint16_t>(port));
  std::vector<conn_state> conns(k);
  for (size_t i = 0; i < k; ++i) {
    auto& c = conns[i];
    c.quota = total / k + (i < total % k ? 1 : 0);
    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c.fd < 0
        || ::connect(c.fd, reinterpret_cast<const sockaddr*>(&sa), sizeof(sa))
          != 0)
      die(std::string{"connmgr-bench-stream-load: connect: "}
          + std::strerror(errno));
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("connmgr-bench-stream-load: epoll_create1 failed");
  ready_then_wait_for_go();
  auto t0 = steady::now();
  auto ru0 = self_usage();
  for (size_t i = 0; i < k; ++i) {
    auto& c = conns[i];
    epoll_event ev{};
    ev.events = EPOLLOUT | (echo ? uint32_t{EPOLLIN} : 0u);
    ev.data.u64 = i;
    if (c.quota == 0)
      ev.events &= ~uint32_t{EPOLLOUT};
    ::fcntl(c.fd, F_SETFL, O_NONBLOCK);
    ::epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
  }
  {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = stdin_tag;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev);
  }
  auto pattern = make_pattern();
  std::vector<uint8_t> buf(recv_chunk);
  size_t finished = 0; // connections whose whole quota is done
  for (auto& c : conns)
    if (c.quota == 0)
      ++finished;
  uint64_t moved = 0; // bytes read back (echo) or written (flood)
  size_t mismatches = 0;
  size_t errors = 0;
  epoll_event events[256];
  while (finished < k && errors == 0) {
    int n = ::epoll_wait(ep, events, 256, 1000);
    for (int e = 0; e < n && errors == 0; ++e) {
      auto tag = events[e].data.u64;
      if (tag == stdin_tag)
        std::_Exit(0); // the server gave up on us
      auto& c = conns[tag];
      auto ev = events[e].events;
      if ((ev & EPOLLOUT) != 0) {
        while (c.sent < c.quota) {
          auto len = static_cast<size_t>(
            std::min<uint64_t>(send_chunk, c.quota - c.sent));
          auto w = ::send(c.fd, pattern.data() + c.sent % period, len,
                          MSG_NOSIGNAL | MSG_DONTWAIT);
          if (w < 0) {
            if (errno == EINTR)
              continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
              ++errors;
            break;
          }
          c.sent += static_cast<uint64_t>(w);
          if (!echo)
            moved += static_cast<uint64_t>(w);
        }
        if (c.sent == c.quota) {
          if (echo) {
            set_events(ep, tag, c.fd, EPOLLIN);
          } else {
            ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
            ++finished;
          }
        }
      }
      if (echo && (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0) {
        auto r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r > 0) {
          auto len = static_cast<size_t>(r);
          if (c.received + len > c.quota
              || std::memcmp(buf.data(), pattern.data() + c.received % period,
                             len)
                != 0)
            ++mismatches;
          c.received += len;
          moved += len;
          if (c.received >= c.quota) {
            ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
            ++finished;
          }
        } else if (r == 0
                   || (errno != EAGAIN && errno != EWOULDBLOCK
                       && errno != EINTR)) {
          ++errors; // the server closed or reset before echoing everything
        }
      }
    }
  }
  auto ms = ms_between(t0, steady::now());
  auto cpu = cpu_us(self_usage()) - cpu_us(ru0);
  std::printf("done %.3f %llu %zu %zu %.0f\n", ms,
              static_cast<unsigned long long>(moved), mismatches, errors, cpu);
  std::fflush(stdout);
  wait_for_stdin_eof();
  for (auto& c : conns)
    reset_and_close(c.fd);
  return 0;
}
