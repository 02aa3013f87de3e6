// connmgr_emfile_child: a helper process for tests/emfile_test.cpp.
//
// It serves one loopback listener with a reactor under a tiny descriptor
// limit and keeps every socket it accepts, so descriptors run out. Running
// it in its own process means the lowered limit cannot disturb the test
// runner.
//
// Usage: connmgr_emfile_child [soft-fd-limit]   (default 64)
//
// On start it prints the listener's port (one line). Then it answers one
// line per command read from stdin:
//   stats   -> "accepted A pauses P cpu_us C held H"
//   free N  -> closes up to N held sockets, answers "freed K"
//   quit    -> stops the reactor, closes everything, answers "bye", exits 0
// End of input counts as `quit`.

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/net/connection.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"

using namespace connmgr;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::cerr << "connmgr_emfile_child: " << what << std::endl;
  std::exit(2);
}

/// The accepted connections we keep open on purpose (each holds one
/// descriptor until closed).
struct held_connections {
  std::mutex mtx;
  std::vector<connection_ptr> conns;

  void add(std::vector<connection_ptr>& batch) {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& conn : batch)
      conns.push_back(std::move(conn));
  }

  /// Closes up to `n` of them; returns how many.
  size_t release(size_t n) {
    std::lock_guard<std::mutex> guard{mtx};
    size_t freed = 0;
    for (; freed < n && !conns.empty(); ++freed) {
      conns.back()->close();
      conns.pop_back();
    }
    return freed;
  }

  size_t size() {
    std::lock_guard<std::mutex> guard{mtx};
    return conns.size();
  }
};

/// User plus system CPU time of this process (all threads), microseconds.
int64_t cpu_micros() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  auto us = [](const timeval& tv) {
    return static_cast<int64_t>(tv.tv_sec) * 1'000'000 + tv.tv_usec;
  };
  return us(ru.ru_utime) + us(ru.ru_stime);
}

} // namespace

int main(int argc, char** argv) {
  rlim_t limit = 64;
  if (argc > 1) {
    auto n = std::strtoul(argv[1], nullptr, 10);
    if (n < 16 || n > 65536)
      die("the descriptor limit must be 16..65536");
    limit = static_cast<rlim_t>(n);
  }

  // reactor::start raises the soft limit to the hard one, so lower it after.
  auto started = reactor::start();
  if (!started)
    die("cannot start the reactor");
  auto io = *started;
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = limit;
  if (::setrlimit(RLIMIT_NOFILE, &lim) != 0)
    die("setrlimit failed");

  sockaddr_storage sa{};
  auto len = net_address::parse("127.0.0.1:0", true)->to_sockaddr(sa);
  auto fd = open_tcp_listener(sa, *len, 1024);
  if (!fd)
    die("cannot open the listener");
  auto bound = local_sockaddr(*fd);
  if (!bound)
    die("getsockname failed");
  auto port = ntohs(reinterpret_cast<sockaddr_in&>(*bound).sin_port);

  // Same listen call as the TCP acceptor's (peer watching included).
  held_connections held;
  io->listen(*fd,
             [&held](std::vector<connection_ptr>& batch) { held.add(batch); });
  std::cout << port << std::endl;

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in{line};
    std::string cmd;
    in >> cmd;
    if (cmd == "stats") {
      auto st = io->stats();
      std::cout << "accepted " << st.accepted << " pauses " << st.accept_pauses
                << " cpu_us " << cpu_micros() << " held " << held.size()
                << std::endl;
    } else if (cmd == "free") {
      size_t n = 0;
      in >> n;
      std::cout << "freed " << held.release(n) << std::endl;
    } else if (cmd == "quit") {
      break;
    } else {
      std::cout << "error: unknown command '" << cmd << "'" << std::endl;
    }
  }
  // The reactor closes the listener; the handler (and its `held`) is no
  // longer called once stop returns.
  io->stop();
  held.release(held.size());
  std::cout << "bye" << std::endl;
  return 0;
}
