// One owner type for the descriptors net/ code holds itself, so that no path
// (an early return, an erase, the stop) needs a ::close of its own.
#pragma once

#include <utility>

#include <unistd.h>

namespace connmgr {

/// Sole owner of a descriptor: closes it when destroyed or reset, unless it
/// was released first. Move-only; -1 means none.
class unique_fd {
public:
  unique_fd() noexcept = default;

  explicit unique_fd(int fd) noexcept : fd_(fd) {
    // nop
  }

  unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {
    // nop
  }

  unique_fd& operator=(unique_fd&& other) noexcept {
    reset(other.release());
    return *this;
  }

  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;

  ~unique_fd() {
    reset();
  }

  /// The descriptor, still owned; -1 if none.
  int get() const noexcept {
    return fd_;
  }

  /// Whether a descriptor is owned.
  explicit operator bool() const noexcept {
    return fd_ >= 0;
  }

  /// Gives the descriptor up without closing it.
  int release() noexcept {
    return std::exchange(fd_, -1);
  }

  /// Closes the owned descriptor (if any) and owns `fd` instead.
  void reset(int fd = -1) noexcept {
    if (auto old = std::exchange(fd_, fd); old >= 0)
      ::close(old);
  }

private:
  int fd_ = -1;
};

} // namespace connmgr
