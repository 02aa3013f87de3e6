#pragma once

#include <utility>

#include <caf/actor_control_block.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/make_message.hpp>
#include <caf/response_promise.hpp>

namespace connmgr {

/// The answer to one request, taken out of the actor that received it:
/// `deliver` may run on any thread (an I/O thread's completion handler),
/// and the answer then goes straight to the requester instead of hopping
/// through the receiving actor's mailbox first. Delivers at most once; a
/// reply dropped without `deliver` answers nothing (CAF 0.17 has no broken
/// promises), so the requester must bound its wait itself.
class detached_reply {
public:
  detached_reply() = default;

  /// Takes over `promise`, which must be pending and is not used again.
  detached_reply(const caf::response_promise& promise,
                 caf::strong_actor_ptr from)
    : from_(std::move(from)), source_(promise.source()),
      stages_(promise.stages()), id_(promise.id()) {}

  template <class... Ts>
  void deliver(Ts&&... xs) {
    auto msg = caf::make_message(std::forward<Ts>(xs)...);
    if (stages_.empty()) {
      if (source_)
        source_->enqueue(std::move(from_), id_.response_id(), std::move(msg),
                         nullptr);
    } else {
      // A forwarding chain: the next stage gets the answer as a request.
      auto next = std::move(stages_.back());
      stages_.pop_back();
      next->enqueue(caf::make_mailbox_element(std::move(source_), id_,
                                              std::move(stages_),
                                              std::move(msg)),
                    nullptr);
    }
    source_.reset();
    stages_.clear();
  }

private:
  caf::strong_actor_ptr from_;
  caf::strong_actor_ptr source_;
  caf::response_promise::forwarding_stack stages_;
  caf::message_id id_;
};

} // namespace connmgr
