#include "connmgr/actors/state_writer.hpp"

#include <utility>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

/// Adds the changes of `x` to `j`, in order.
void record(state_journal& j, state_changes&& x) {
  for (auto& a : x.put_addresses)
    j.put(std::move(a));
  for (auto& a : x.erase_addresses)
    j.erase_address(a);
  for (auto& b : x.put_bans)
    j.put(std::move(b));
  for (auto& b : x.erase_bans)
    j.erase_ban(b);
  if (x.anchors)
    j.set_anchors(std::move(*x.anchors));
}

} // namespace

state_writer::state_writer(state_db db)
  // The journal only merges here: its timing is the submitters' business.
  : db_(std::move(db)), waiting_(caf::timespan{0}, 1) {
  thread_ = std::thread{[this] { run(); }};
}

state_writer::~state_writer() {
  stop();
}

void state_writer::submit(state_changes changes, callback done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!stopping_) {
      // A later submit's change to a key replaces an earlier one.
      record(waiting_, std::move(changes));
      if (done)
        waiting_done_.push_back(std::move(done));
      cv_.notify_one();
      return;
    }
  }
  if (done)
    done(make_error(errc::stopped, "state writer stopped"));
}

caf::error state_writer::stop() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable())
    thread_.join();
  std::lock_guard<std::mutex> guard{mtx_};
  // Closes the file (once): the WAL is checkpointed into it.
  db_.reset();
  return first_error_;
}

uint64_t state_writer::commits() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return commits_;
}

void state_writer::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    cv_.wait(lock, [this] {
      return stopping_ || waiting_.pending() > 0 || !waiting_done_.empty();
    });
    if (waiting_.pending() == 0 && waiting_done_.empty())
      return; // stopping, and everything is written
    auto batch = waiting_.take(state_journal::time_point{});
    auto done = std::move(waiting_done_);
    waiting_done_.clear();
    lock.unlock();
    auto err = db_->apply(batch);
    for (auto& f : done)
      f(err);
    lock.lock();
    if (!err)
      ++commits_;
    else if (!first_error_)
      first_error_ = err;
  }
}

} // namespace connmgr
