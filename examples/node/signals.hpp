#pragma once

#include <chrono>
#include <csignal>

namespace connmgr {

/// SIGINT and SIGTERM, blocked in every thread and taken synchronously:
/// construct it in `main` before any thread starts, so that every thread
/// inherits the mask and the signals wait for `wait_for`.
class stop_signals {
public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }

  /// Waits up to `timeout` for SIGINT or SIGTERM; returns the signal number,
  /// or 0 when the time ran out.
  int wait_for(std::chrono::milliseconds timeout) {
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1000000);
    int sig = sigtimedwait(&set_, nullptr, &ts);
    return sig > 0 ? sig : 0;
  }

  /// Waits for SIGINT or SIGTERM; returns the signal number.
  int wait() {
    int sig = 0;
    while (sigwait(&set_, &sig) != 0) {
      // retry
    }
    return sig;
  }

private:
  sigset_t set_;
};

} // namespace connmgr
