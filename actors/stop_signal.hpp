#pragma once

#include <atomic>
#include <future>

namespace connmgr {

/// The "stopped" side of an awaitable shutdown: fired once, from whichever
/// thread sees the last piece go; every copy of `future` then becomes ready.
struct stop_signal {
  std::promise<void> promise;
  std::shared_future<void> future{promise.get_future().share()};
  std::atomic<bool> fired{false};

  /// Makes `future` ready; later calls do nothing.
  void fire() {
    if (!fired.exchange(true))
      promise.set_value();
  }
};

} // namespace connmgr
