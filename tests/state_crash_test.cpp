// The state file's durability promise, tested the hard way: a process
// writing batches without pause is killed with SIGKILL at a random instant,
// a hundred times over the same file, and every time the file opens as it
// is (never moved aside) and holds every batch whose commit was reported
// before the kill.

#include <doctest/doctest.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connmgr/actors/state_db.hpp"
#include "connmgr/messages/error_code.hpp"
#include "tests/support/temp_dir.hpp"

#ifndef CONNMGR_STATE_CRASH_CHILD
#error                                                                         \
  "CONNMGR_STATE_CRASH_CHILD must name the connmgr_state_crash_child executable"
#endif

extern char** environ;

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

/// The writing process of one round: its pid and the read end of its
/// stdout.
struct child {
  pid_t pid = -1;
  int out = -1;
};

child spawn_writer(const std::string& path, int seed) {
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  std::string exe = CONNMGR_STATE_CRASH_CHILD;
  std::string file = path;
  std::string seed_text = std::to_string(seed);
  char* argv[] = {exe.data(), file.data(), seed_text.data(), nullptr};
  child c;
  auto rc =
    ::posix_spawn(&c.pid, exe.c_str(), &actions, nullptr, argv, environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  c.out = fds[0];
  REQUIRE_MESSAGE(rc == 0, "posix_spawn " << exe << ": " << rc);
  return c;
}

/// Reads what is there (waiting up to `bound` for the first bytes) and
/// appends it to `buf`; false at end of file.
bool read_some(int fd, std::string& buf, std::chrono::milliseconds bound) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(bound.count())) <= 0)
    return true;
  char tmp[4096];
  auto n = ::read(fd, tmp, sizeof(tmp));
  if (n <= 0)
    return false;
  buf.append(tmp, static_cast<size_t>(n));
  return true;
}

/// The last complete line's number in `buf`, or -1 for none.
long last_acked(const std::string& buf) {
  auto end = buf.rfind('\n');
  if (end == std::string::npos)
    return -1;
  auto start = buf.rfind('\n', end - 1);
  start = start == std::string::npos || end == 0 ? 0 : start + 1;
  return std::stol(buf.substr(start, end - start));
}

bool ends_with(const std::string& x, const std::string& suffix) {
  return x.size() >= suffix.size()
    && x.compare(x.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string host_of(long n) {
  return "10." + std::to_string(n / 65536 % 256) + "."
    + std::to_string(n / 256 % 256) + "." + std::to_string(n % 256);
}

} // namespace

TEST_CASE("state file: a writer killed at random instants 100 times loses "
          "nothing it reported committed, and the file always opens") {
  test::temp_dir dir{"connmgr-crash"};
  auto path = dir.path("state.db");
  std::random_device rd;
  auto seed = rd();
  CAPTURE(seed);
  std::mt19937 rng{seed};
  std::uniform_int_distribution<int> delay_us{0, 20000};
  for (int round = 1; round <= 100; ++round) {
    CAPTURE(round);
    auto c = spawn_writer(path, round);
    // At least one commit, then the kill at a random instant after it.
    std::string acks;
    for (int i = 0; i < 100 && last_acked(acks) < 0; ++i)
      if (!read_some(c.out, acks, 100ms))
        break;
    REQUIRE_MESSAGE(last_acked(acks) >= 0, "the writer committed nothing");
    std::this_thread::sleep_for(std::chrono::microseconds{delay_us(rng)});
    ::kill(c.pid, SIGKILL);
    int status = 0;
    REQUIRE(::waitpid(c.pid, &status, 0) == c.pid);
    CHECK(WIFSIGNALED(status));
    while (read_some(c.out, acks, 1000ms))
      ; // the rest of what it printed before it died
    ::close(c.out);
    auto last = last_acked(acks);
    auto opened = state_db::open(path);
    REQUIRE_MESSAGE(opened, describe(opened.error()));
    REQUIRE_MESSAGE(opened->moved_aside.empty(), opened->moved_aside);
    auto snap = opened->db.load();
    REQUIRE(snap);
    // Every batch up to the last reported one: its address, failures and
    // ban; the anchors of the last committed batch or a later one.
    auto port = ":" + std::to_string(round);
    long found = 0;
    bool last_found = false;
    for (auto& a : snap->addresses) {
      if (!ends_with(a.address, port))
        continue;
      ++found;
      if (a.address == host_of(last) + port)
        last_found = a.failures == static_cast<uint32_t>(last);
    }
    CHECK(found >= last + 1);
    CHECK(last_found);
    bool banned = false;
    for (auto& b : snap->bans)
      banned = banned || b.subnet == host_of(last) + "/32";
    CHECK(banned);
    REQUIRE(snap->anchors.size() == 1);
    CHECK(ends_with(snap->anchors[0], port));
  }
}
