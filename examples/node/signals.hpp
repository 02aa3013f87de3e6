#pragma once

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>

#include <unistd.h>

namespace connmgr {

/// SIGINT and SIGTERM, blocked in every thread and taken synchronously:
/// construct it in `main` before any thread starts, so that every thread
/// inherits the mask and the signals wait for `wait_for`.
///
/// Start-up (reading the config, starting CAF's scheduler, binding
/// listeners) cannot stop half-way, so the signals would wait for it: with
/// `watch_startup`, a signal that arrives before `startup_done` ends the
/// process at once instead.
class stop_signals {
public:
  stop_signals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }

  ~stop_signals() {
    startup_done();
  }

  stop_signals(const stop_signals&) = delete;
  stop_signals& operator=(const stop_signals&) = delete;

  /// Until `startup_done`, SIGINT or SIGTERM ends the process within about
  /// 20 ms with status 0 (the status of a stop on request) and one line on
  /// stderr, whatever the start-up is doing: nothing has connected yet, and
  /// exiting closes every descriptor. Call at most once.
  void watch_startup() {
    watcher_ = std::thread{[this] {
      while (!startup_over_.load()) {
        int sig = wait_for(std::chrono::milliseconds{20});
        if (sig == 0)
          continue;
        if (!startup_over_.load()) {
          // Only async-signal-safe calls: other threads run on.
          const char* msg = sig == SIGINT
            ? "connmgr-node: SIGINT during start-up, "
              "exiting\n"
            : "connmgr-node: SIGTERM during start-up, "
              "exiting\n";
          size_t len = 0;
          while (msg[len] != '\0')
            ++len;
          auto written = ::write(STDERR_FILENO, msg, len);
          static_cast<void>(written);
          ::_exit(0);
        }
        // Taken just as start-up ended: the next wait returns it.
        pending_.store(sig);
        return;
      }
    }};
  }

  /// Ends the start-up watch; from now on the signals wait for `wait` or
  /// `wait_for` (one the watch took meanwhile included).
  void startup_done() {
    startup_over_.store(true);
    if (watcher_.joinable())
      watcher_.join();
  }

  /// Waits up to `timeout` for SIGINT or SIGTERM; returns the signal number,
  /// or 0 when the time ran out.
  int wait_for(std::chrono::milliseconds timeout) {
    if (int sig = pending_.exchange(0); sig != 0)
      return sig;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1000000);
    int sig = sigtimedwait(&set_, nullptr, &ts);
    return sig > 0 ? sig : 0;
  }

  /// Waits for SIGINT or SIGTERM; returns the signal number.
  int wait() {
    if (int sig = pending_.exchange(0); sig != 0)
      return sig;
    int sig = 0;
    while (sigwait(&set_, &sig) != 0) {
      // retry
    }
    return sig;
  }

private:
  sigset_t set_;
  std::atomic<bool> startup_over_{false};
  std::atomic<int> pending_{0};
  std::thread watcher_;
};

} // namespace connmgr
