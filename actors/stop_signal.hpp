#pragma once

#include <atomic>
#include <future>
#include <utility>

namespace connmgr {

/// The "stopped" side of an awaitable shutdown: fired once, from whichever
/// thread sees the last piece go; every copy of `future` then becomes ready
/// (with the final `T`, e.g. the last counters, unless `T` is void).
template <class T = void>
struct basic_stop_signal {
  std::promise<T> promise;
  std::shared_future<T> future{promise.get_future().share()};
  std::atomic<bool> fired{false};

  /// Makes `future` ready with `xs` (nothing for void); later calls do
  /// nothing.
  template <class... Ts>
  void fire(Ts&&... xs) {
    if (!fired.exchange(true))
      promise.set_value(std::forward<Ts>(xs)...);
  }
};

/// A stop signal that carries no value.
using stop_signal = basic_stop_signal<>;

} // namespace connmgr
