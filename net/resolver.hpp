#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>

#include <caf/expected.hpp>

namespace connmgr {

/// Resolves host names on a small fixed pool of threads, so that neither the
/// reactor nor any actor scheduler thread ever blocks in getaddrinfo, and the
/// thread count stays the same however many names are looked up.
class resolver {
public:
  /// Every address `host` resolved to (IPv4 and IPv6, in the system's
  /// preferred order) with `port` filled in, or `errc::resolve_failed`.
  using handler =
    std::function<void(caf::expected<std::vector<sockaddr_storage>>)>;

  /// Starts `threads` (at least 1) lookup threads.
  explicit resolver(size_t threads = 2);

  /// Stops the threads; lookups not yet started get `errc::canceled`.
  ~resolver();

  resolver(const resolver&) = delete;
  resolver& operator=(const resolver&) = delete;

  /// Queues a lookup; `done` runs once, on a lookup thread.
  void resolve(std::string host, uint16_t port, handler done);

private:
  struct job {
    std::string host;
    uint16_t port;
    handler done;
  };

  void run();

  std::mutex mtx_;
  std::condition_variable cv_;
  std::deque<job> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace connmgr
