// The small operating-system helpers under the reactor.

#include <doctest/doctest.h>

#include <cerrno>

#include <fcntl.h>
#include <unistd.h>

#include "messages/error_code.hpp"
#include "net/socket_ops.hpp"

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
