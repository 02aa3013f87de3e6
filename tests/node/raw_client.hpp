#pragma once

// A plain TCP client of a server on 127.0.0.1, for requests a real HTTP
// client cannot make (idle, partial or malformed ones): the metrics tests'
// attacker.

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace connmgr::test {

/// Connected to 127.0.0.1:`port` on construction; closes its socket when
/// destroyed.
class raw_client {
public:
  using clock = std::chrono::steady_clock;

  explicit raw_client(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0);
  }

  raw_client(const raw_client&) = delete;
  raw_client& operator=(const raw_client&) = delete;

  ~raw_client() {
    ::close(fd_);
  }

  void send_text(const std::string& text) {
    REQUIRE(::send(fd_, text.data(), text.size(), MSG_NOSIGNAL)
            == static_cast<ssize_t>(text.size()));
  }

  /// Everything the server sends until it closes the connection, or nothing
  /// when it is still open after `timeout` (or resets it).
  std::optional<std::string> read_to_end(clock::duration timeout) {
    std::string out;
    if (read_until_closed(timeout, &out) != end::closed)
      return std::nullopt;
    return out;
  }

  /// Whether the server closed the connection within `timeout`: an end of
  /// stream, or a reset (a close with our request still unread).
  bool closed_within(clock::duration timeout) {
    auto res = read_until_closed(timeout, nullptr);
    return res == end::closed || res == end::reset;
  }

private:
  enum class end { closed, reset, failed, timed_out };

  /// Reads (appending to `out`, if any) until the connection ends or
  /// `timeout` passes.
  end read_until_closed(clock::duration timeout, std::string* out) {
    auto deadline = clock::now() + timeout;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - clock::now());
      if (left.count() <= 0)
        return end::timed_out;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
        continue;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0)
        return end::closed;
      if (n < 0)
        return errno == ECONNRESET ? end::reset : end::failed;
      if (out != nullptr)
        out->append(buf, static_cast<size_t>(n));
    }
  }

  int fd_ = -1;
};

} // namespace connmgr::test
