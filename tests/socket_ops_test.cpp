// The small operating-system helpers under the reactor.

#include <doctest/doctest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include <fcntl.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/support/descriptor_audit.hpp"

using namespace connmgr;

TEST_CASE("socket ops: errno values map to distinct, named errors") {
  CHECK(errc_of(errno_error(ECONNREFUSED, "connect x")) == errc::refused);
  CHECK(errc_of(errno_error(ENETUNREACH, "connect x")) == errc::unreachable);
  CHECK(errc_of(errno_error(EHOSTUNREACH, "connect x")) == errc::unreachable);
  CHECK(errc_of(errno_error(ETIMEDOUT, "connect x")) == errc::timed_out);
  CHECK(errc_of(errno_error(EMFILE, "socket")) == errc::dial_failed);
  auto text = describe(errno_error(ECONNREFUSED, "connect 127.0.0.1:9"));
  CHECK(text == "refused: connect 127.0.0.1:9: Connection refused");
}

TEST_CASE("socket ops: open_fd_count follows descriptors opened and closed") {
  auto before = open_fd_count();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  CHECK(open_fd_count() == before + 2);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(open_fd_count() == before);
}

TEST_CASE("socket ops: descriptors left open are named, ones closed within "
          "the grace period are not") {
  auto before = open_descriptors();
  int kept[2];
  int passing[2];
  REQUIRE(::pipe(kept) == 0);
  REQUIRE(::pipe(passing) == 0);
  // Another thread closes its pipe a moment later, as a sanitizer's memory
  // probe does; only the pipe still open at the end is a leak.
  std::thread closer{[&] {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
    ::close(passing[0]);
    ::close(passing[1]);
  }};
  auto left = descriptors_left_open(before, std::chrono::seconds{2});
  closer.join();
  REQUIRE(left.size() == 2);
  CHECK(left[0].fd == kept[0]);
  CHECK(left[1].fd == kept[1]);
  CHECK(left[0].target.rfind("pipe:[", 0) == 0);
  CHECK(describe(left)
        == "fd " + std::to_string(kept[0]) + " (" + left[0].target + "), fd "
          + std::to_string(kept[1]) + " (" + left[1].target + ")");
  ::close(kept[0]);
  ::close(kept[1]);
  CHECK(descriptors_left_open(before, std::chrono::milliseconds{0}).empty());
}

TEST_CASE("socket ops: a descriptor open before whose file was deleted "
          "since is no leak; a new one to the same path is") {
  char path[] = "/tmp/connmgr-socket-ops-XXXXXX";
  int inherited = ::mkstemp(path);
  REQUIRE(inherited >= 0);
  auto before = open_descriptors();
  // Someone else removes the file (a log rotated under us): its link now
  // ends in " (deleted)", but it is the same open file.
  REQUIRE(::unlink(path) == 0);
  CHECK(descriptors_left_open(before, std::chrono::milliseconds{0}).empty());
  int fresh = ::open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  REQUIRE(fresh >= 0);
  auto left = descriptors_left_open(before, std::chrono::milliseconds{0});
  REQUIRE(left.size() == 1);
  CHECK(left[0].fd == fresh);
  ::close(fresh);
  ::unlink(path);
  ::close(inherited);
}

TEST_CASE("socket ops: reserve_descriptor_table grows the table at once and "
          "leaves nothing open") {
  auto before = descriptor_table_size();
  REQUIRE(before > 0);
  auto want = std::max<size_t>(before * 2, 4096);
  REQUIRE(want <= raise_fd_limit());
  auto fds = open_descriptors();
  CHECK(reserve_descriptor_table(want));
  CHECK(descriptor_table_size() >= want);
  CHECK(test::new_descriptors(fds).empty());
  // Beyond the open-file limit: grown to the limit, not refused.
  CHECK(reserve_descriptor_table(fd_limit() * 4));
  CHECK(descriptor_table_size() >= fd_limit());
  CHECK(test::new_descriptors(fds).empty());
}
