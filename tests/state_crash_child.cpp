// Writes state batches to the file named by argv[1] without end, as fast as
// the writer commits them, printing "<n>\n" once batch n is committed; the
// state file test kills it with SIGKILL at a random instant. Batch n puts
// the address "10.<n / 65536 % 256>.<n / 256 % 256>.<n % 256>:<seed>" with
// failures = n and the ban "<same address>/32", and sets the anchors to it.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <unistd.h>

#include "connmgr/actors/state_writer.hpp"
#include "connmgr/messages/error_code.hpp"

using namespace connmgr;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s <state file> <seed>\n", argv[0]);
    return 2;
  }
  auto opened = state_db::open(argv[1]);
  if (!opened) {
    std::fprintf(stderr, "%s\n", describe(opened.error()).c_str());
    return 1;
  }
  if (!opened->moved_aside.empty()) {
    std::fprintf(stderr, "moved aside: %s\n", opened->moved_aside.c_str());
    return 1;
  }
  state_writer w{std::move(opened->db)};
  std::atomic<uint32_t> acked{0};
  std::string seed = argv[2];
  for (uint32_t n = 0;; ++n) {
    auto host = "10." + std::to_string(n / 65536 % 256) + "."
      + std::to_string(n / 256 % 256) + "." + std::to_string(n % 256);
    state_changes c;
    stored_address a;
    a.address = host + ":" + seed;
    a.failures = n;
    c.put_addresses.push_back(a);
    c.put_bans.push_back(stored_ban{host + "/32", 1, "crash test " + seed});
    c.anchors = std::vector<std::string>{a.address};
    w.submit(std::move(c), [n, &acked](const caf::error& err) {
      if (err) {
        std::fprintf(stderr, "%s\n", describe(err).c_str());
        std::_Exit(1);
      }
      // One write(2) per line: what the test reads was committed.
      auto line = std::to_string(n) + "\n";
      if (::write(STDOUT_FILENO, line.data(), line.size()) < 0)
        std::_Exit(1);
      acked = n + 1;
    });
    // A few hundred batches in flight at most, not an unbounded backlog.
    while (n - acked.load() > 256)
      ::usleep(100);
  }
}
