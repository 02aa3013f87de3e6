#include "connmgr/actors/state_journal.hpp"

#include <algorithm>
#include <utility>

namespace connmgr {

state_journal::state_journal(caf::timespan interval, size_t max_pending)
  : interval_(interval), max_pending_(std::max<size_t>(max_pending, 1)) {
  // nop
}

void state_journal::put(stored_address x) {
  auto key = x.address;
  addresses_[std::move(key)] = std::move(x);
}

void state_journal::erase_address(const std::string& address) {
  addresses_[address] = std::nullopt;
}

void state_journal::put(stored_ban x) {
  auto key = x.subnet;
  bans_[std::move(key)] = std::move(x);
}

void state_journal::erase_ban(const std::string& subnet) {
  bans_[subnet] = std::nullopt;
}

void state_journal::set_anchors(std::vector<std::string> anchors) {
  anchors_ = std::move(anchors);
}

size_t state_journal::pending() const noexcept {
  return addresses_.size() + bans_.size() + (anchors_ ? 1 : 0);
}

bool state_journal::flush_due(time_point now) const noexcept {
  auto n = pending();
  return n > 0 && (n >= max_pending_ || now >= last_take_ + interval_);
}

std::optional<state_journal::time_point>
state_journal::next_flush() const noexcept {
  if (pending() == 0)
    return std::nullopt;
  return last_take_ + interval_;
}

state_changes state_journal::take(time_point now) {
  state_changes result;
  for (auto& [key, value] : addresses_) {
    if (value)
      result.put_addresses.push_back(std::move(*value));
    else
      result.erase_addresses.push_back(key);
  }
  for (auto& [key, value] : bans_) {
    if (value)
      result.put_bans.push_back(std::move(*value));
    else
      result.erase_bans.push_back(key);
  }
  result.anchors = std::move(anchors_);
  addresses_.clear();
  bans_.clear();
  anchors_.reset();
  last_take_ = now;
  return result;
}

} // namespace connmgr
