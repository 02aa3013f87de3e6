#include "examples/node/soak.hpp"

#include <algorithm>
#include <fstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

resource_usage read_resource_usage() {
  resource_usage r;
  // A sanitizer's passing pipe would read as growth.
  r.descriptors = held_descriptor_count();
  std::ifstream in{"/proc/self/status"};
  std::string line;
  auto number = [](const std::string& l) {
    auto pos = l.find_first_of("0123456789");
    return pos == std::string::npos ? size_t{0} : std::stoul(l.substr(pos));
  };
  while (std::getline(in, line)) {
    if (line.rfind("Threads:", 0) == 0)
      r.threads = number(line);
    else if (line.rfind("VmRSS:", 0) == 0)
      r.rss_kib = number(line); // "VmRSS:   12345 kB"
  }
  return r;
}

resource_usage max_of(const resource_usage& a, const resource_usage& b) {
  return {std::max(a.descriptors, b.descriptors),
          std::max(a.threads, b.threads), std::max(a.rss_kib, b.rss_kib)};
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool under_sanitizer = true;
#else
constexpr bool under_sanitizer = false;
#endif

std::vector<flatness> judge(const resource_usage& steady,
                            const resource_usage& end,
                            const resource_usage& max) {
  return {
    {"descriptors", steady.descriptors, end.descriptors, max.descriptors,
     steady.descriptors / 100},
    {"threads", steady.threads, end.threads, max.threads, steady.threads / 100},
    {"resident KiB", steady.rss_kib, end.rss_kib, max.rss_kib,
     std::max<size_t>(steady.rss_kib / 100, 1024), !under_sanitizer},
  };
}

std::vector<std::string> format_table(const std::vector<flatness>& rows) {
  std::vector<std::string> out;
  auto fmt_row = [](auto&& a, auto&& b, auto&& c, auto&& d, auto&& e,
                    auto&& f) {
    return fmt::format("{:<12}  {:>9}  {:>9}  {:>9}  {:>9}  {}", a, b, c, d, e,
                       f);
  };
  out.push_back(
    fmt_row("resource", "steady", "end", "max", "tolerance", "verdict"));
  for (auto& r : rows) {
    auto diff =
      static_cast<long long>(r.end) - static_cast<long long>(r.steady);
    out.push_back(fmt_row(r.resource, r.steady, r.end, r.max, r.tolerance,
                          fmt::format("{} ({:+})",
                                      !r.judged    ? "not judged (sanitizer)"
                                        : r.flat() ? "flat"
                                                   : "GREW",
                                      diff)));
  }
  return out;
}

refusing_ports::refusing_ports(size_t n) {
  for (size_t i = 0; i < n; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
      continue;
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    auto* p = reinterpret_cast<sockaddr*>(&sa);
    if (::bind(fd, p, len) != 0 || ::getsockname(fd, p, &len) != 0) {
      ::close(fd);
      continue;
    }
    fds_.push_back(fd);
    if (auto addr = net_address::from_sockaddr(p, len))
      addresses_.push_back(std::move(*addr));
  }
}

refusing_ports::~refusing_ports() {
  for (auto fd : fds_)
    ::close(fd);
}

} // namespace connmgr
