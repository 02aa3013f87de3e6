#include "connmgr/net/socket_ops.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string_view>
#include <thread>
#include <tuple>

#include <dirent.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

caf::error errno_error(int err, const std::string& what) {
  auto context = what + ": " + std::strerror(err);
  switch (err) {
    case ECONNREFUSED:
      return make_error(errc::refused, std::move(context));
    case ENETUNREACH:
    case EHOSTUNREACH:
      return make_error(errc::unreachable, std::move(context));
    case ETIMEDOUT:
      return make_error(errc::timed_out, std::move(context));
    default:
      return make_error(errc::dial_failed, std::move(context));
  }
}

caf::expected<int> open_tcp_listener(const sockaddr_storage& addr,
                                     socklen_t len, int backlog) {
  int fd =
    ::socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno_error(errno, "socket");
  int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0
      || ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0
      || ::listen(fd, backlog) != 0) {
    auto err = errno;
    ::close(fd);
    return errno_error(err, "listen");
  }
  return fd;
}

caf::expected<sockaddr_storage> local_sockaddr(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    return errno_error(errno, "getsockname");
  return addr;
}

size_t raise_fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
    ::getrlimit(RLIMIT_NOFILE, &lim);
  }
  return static_cast<size_t>(lim.rlim_cur);
}

size_t fd_limit() {
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) != 0)
    return 0;
  return static_cast<size_t>(lim.rlim_cur);
}

bool reserve_descriptor_table(size_t count) {
  count = std::min(count, fd_limit());
  if (count == 0 || descriptor_table_size() >= count)
    return true;
  // Any descriptor will do as the original: an eventfd needs no file system.
  int base = ::eventfd(0, EFD_CLOEXEC);
  if (base < 0)
    return false;
  // The lowest free number at or above count - 1: the table grows to hold
  // it in one step.
  int high = ::fcntl(base, F_DUPFD_CLOEXEC, static_cast<int>(count - 1));
  ::close(base);
  if (high < 0)
    return false;
  ::close(high);
  return true;
}

size_t descriptor_table_size() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("FDSize:", 0) == 0)
      return std::strtoull(line.c_str() + 7, nullptr, 10);
  return 0;
}

size_t open_fd_count() {
  size_t result = 0;
  if (auto dir = ::opendir("/proc/self/fd")) {
    while (auto entry = ::readdir(dir))
      if (entry->d_name[0] != '.')
        ++result;
    ::closedir(dir);
    --result; // the directory stream itself
  }
  return result;
}

std::vector<open_descriptor> open_descriptors(int pid) {
  std::vector<open_descriptor> result;
  auto path = pid == 0 ? std::string{"/proc/self/fd"}
                       : "/proc/" + std::to_string(pid) + "/fd";
  auto dir = ::opendir(path.c_str());
  if (dir == nullptr)
    return result;
  auto own = ::dirfd(dir);
  while (auto entry = ::readdir(dir)) {
    if (entry->d_name[0] == '.')
      continue;
    int fd = std::atoi(entry->d_name);
    if (pid == 0 && fd == own)
      continue;
    char target[PATH_MAX];
    auto len = ::readlinkat(own, entry->d_name, target, sizeof(target) - 1);
    // A descriptor closed between readdir and readlink is gone: skip it.
    if (len < 0)
      continue;
    result.push_back({fd, std::string(target, static_cast<size_t>(len))});
  }
  ::closedir(dir);
  std::sort(result.begin(), result.end(),
            [](auto& a, auto& b) { return a.fd < b.fd; });
  return result;
}

std::vector<open_descriptor>
descriptors_left_open(const std::vector<open_descriptor>& before,
                      std::chrono::milliseconds grace) {
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto order = [](const open_descriptor& a, const open_descriptor& b) {
    return std::tie(a.fd, a.target) < std::tie(b.fd, b.target);
  };
  // A file deleted while open keeps its descriptor; only its link gains
  // this suffix (an inherited log that someone rotated meanwhile), so both
  // sides are compared without it.
  static constexpr std::string_view deleted = " (deleted)";
  auto undeleted = [](open_descriptor d) {
    auto& t = d.target;
    if (t.size() > deleted.size()
        && t.compare(t.size() - deleted.size(), deleted.size(), deleted) == 0)
      t.resize(t.size() - deleted.size());
    return d;
  };
  std::vector<open_descriptor> known;
  known.reserve(before.size());
  for (auto& d : before)
    known.push_back(undeleted(d));
  std::sort(known.begin(), known.end(), order);
  for (;;) {
    std::vector<open_descriptor> extra;
    for (auto& d : open_descriptors())
      if (!std::binary_search(known.begin(), known.end(), undeleted(d), order))
        extra.push_back(std::move(d));
    if (extra.empty() || std::chrono::steady_clock::now() >= deadline)
      return extra;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
}

bool is_passing_pipe(const open_descriptor& d) {
  return d.fd > 2 && d.target.rfind("pipe:", 0) == 0;
}

size_t held_descriptor_count(int pid) {
  auto fds = open_descriptors(pid);
  return static_cast<size_t>(std::count_if(
    fds.begin(), fds.end(), [](auto& d) { return !is_passing_pipe(d); }));
}

std::string describe(const std::vector<open_descriptor>& fds) {
  std::string result;
  for (auto& d : fds) {
    if (!result.empty())
      result += ", ";
    result += "fd " + std::to_string(d.fd) + " (" + d.target + ")";
  }
  return result;
}

} // namespace connmgr
