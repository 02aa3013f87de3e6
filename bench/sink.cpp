// connmgr-bench-sink: the peer of the outbound benchmarks, in its own process.
//
// Listens on 127.0.0.1:0, prints the bound port on stdout (one line,
// flushed), then accepts and holds every connection in a non-blocking epoll
// loop. Exits when stdin closes (or reads EOF) or on SIGTERM/SIGINT; on exit
// it prints the number of connections it accepted on stderr.

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/net/socket_ops.hpp"

namespace {

int die(const char* what) {
  std::fprintf(stderr, "connmgr-bench-sink: %s: %s\n", what,
               std::strerror(errno));
  return 1;
}

} // namespace

int main() {
  connmgr::raise_fd_limit();
  // SIGTERM and SIGINT arrive through a signalfd, like any other event.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  int sig_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sig_fd < 0)
    return die("signalfd");

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lfd < 0)
    return die("socket");
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  if (::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
    return die("bind");
  if (::listen(lfd, SOMAXCONN) != 0)
    return die("listen");
  socklen_t len = sizeof(sa);
  if (::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return die("getsockname");

  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    return die("epoll_create1");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  ev.data.fd = sig_fd;
  epoll_ctl(ep, EPOLL_CTL_ADD, sig_fd, &ev);
  ev.events = EPOLLIN | EPOLLRDHUP;
  ev.data.fd = STDIN_FILENO;
  bool watch_stdin = epoll_ctl(ep, EPOLL_CTL_ADD, STDIN_FILENO, &ev) == 0;
  if (!watch_stdin)
    std::fprintf(stderr,
                 "connmgr-bench-sink: stdin not pollable; "
                 "only SIGTERM stops it\n");

  std::printf("%u\n", static_cast<unsigned>(ntohs(sa.sin_port)));
  std::fflush(stdout);

  std::vector<int> held;
  held.reserve(20000);
  size_t emfile = 0;
  bool running = true;
  epoll_event events[64];
  while (running) {
    int n = epoll_wait(ep, events, 64, emfile > 0 ? 10 : -1);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return die("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == lfd) {
        for (;;) {
          int c =
            ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (c >= 0) {
            held.push_back(c);
            continue;
          }
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          if (errno == EMFILE || errno == ENFILE) {
            // Out of descriptors: say so once and stop accepting for now
            // (the 10 ms epoll timeout above keeps us from spinning hard).
            if (emfile++ == 0)
              std::fprintf(stderr,
                           "connmgr-bench-sink: out of descriptors "
                           "at %zu held\n",
                           held.size());
          }
          break;
        }
      } else if (fd == sig_fd) {
        running = false;
      } else if (fd == STDIN_FILENO) {
        char buf[256];
        auto r = ::read(STDIN_FILENO, buf, sizeof(buf));
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
          running = false;
      }
    }
  }
  std::fprintf(stderr, "connmgr-bench-sink: accepted %zu\n", held.size());
  for (int c : held)
    ::close(c);
  ::close(lfd);
  ::close(ep);
  ::close(sig_fd);
  return 0;
}
