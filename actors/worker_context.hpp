#pragma once

#include <utility>

#include <caf/abstract_actor.hpp>
#include <caf/actor_cast.hpp>
#include <caf/execution_unit.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>

namespace connmgr {

/// The CAF worker (execution unit) of the actor whose handler runs on this
/// thread right now and has declared it with `worker_scope`, or null. Code
/// that runs inside that handler (a user callback calling the manager, a
/// close hook) may then schedule the actors it messages on that same worker:
/// no other worker has to be woken (a futex call, and often a context
/// switch) for each message.
inline caf::execution_unit*& current_worker() noexcept {
  static thread_local caf::execution_unit* unit = nullptr;
  return unit;
}

/// Declares `unit` as this thread's `current_worker` until the scope ends
/// (restoring what was there: scopes nest).
class worker_scope {
public:
  explicit worker_scope(caf::execution_unit* unit) noexcept
    : saved_(current_worker()) {
    current_worker() = unit;
  }

  worker_scope(const worker_scope&) = delete;
  worker_scope& operator=(const worker_scope&) = delete;

  ~worker_scope() {
    current_worker() = saved_;
  }

private:
  caf::execution_unit* saved_;
};

/// Sends `xs...` to `dest` without a sender, as `caf::anon_send` does, but
/// on `current_worker()` when this thread is inside a declared handler.
/// Does nothing for an invalid `dest`.
template <class Handle, class... Ts>
void send_here(const Handle& dest, Ts&&... xs) {
  if (auto ptr = caf::actor_cast<caf::abstract_actor*>(dest))
    ptr->enqueue(nullptr, caf::make_message_id(),
                 caf::make_message(std::forward<Ts>(xs)...), current_worker());
}

} // namespace connmgr
