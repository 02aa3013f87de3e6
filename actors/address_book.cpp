#include "actors/address_book.hpp"

#include <algorithm>
#include <limits>
#include <tuple>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <fmt/format.h>

#include "messages/error_code.hpp"
#include "messages/manager_config.hpp"

namespace connmgr {

caf::error validate(const address_book_config& cfg) {
  auto invalid = [](const char* field, const std::string& value,
                    const char* expected) {
    return make_error(errc::invalid_config,
                      fmt::format("{} = {}, expected {}", field, value,
                                  expected));
  };
  if (cfg.capacity < 1)
    return invalid("capacity", std::to_string(cfg.capacity), ">= 1");
  if (cfg.backoff_base <= caf::timespan{0})
    return invalid("backoff_base", to_string_duration(cfg.backoff_base),
                   "> 0");
  if (cfg.backoff_cap < cfg.backoff_base)
    return invalid("backoff_cap", to_string_duration(cfg.backoff_cap),
                   ">= backoff_base");
  return caf::none;
}

namespace {

address_book_config clamped(address_book_config cfg) {
  cfg.capacity = std::max<size_t>(cfg.capacity, 1);
  cfg.backoff_base = std::max(cfg.backoff_base, caf::timespan{1});
  cfg.backoff_cap = std::max(cfg.backoff_cap, cfg.backoff_base);
  return cfg;
}

} // namespace

address_book::address_book(address_book_config cfg)
  : cfg_(clamped(cfg)), rng_(cfg.seed) {
  // nop
}

caf::timespan address_book::backoff(uint32_t failures) const noexcept {
  if (failures == 0)
    return caf::timespan{0};
  auto delay = cfg_.backoff_base;
  const auto cap = cfg_.backoff_cap;
  // Doubling stops as soon as it would pass the cap, so at most ~63 rounds
  // run and `delay + delay` never overflows (delay <= cap - delay there).
  for (uint32_t i = 1; i < failures; ++i) {
    if (delay > cap - delay)
      return cap;
    delay += delay;
  }
  return std::min(delay, cap);
}

address_book::time_point address_book::retry_at(const record& r) const {
  if (r.failures == 0 || !r.last_failure)
    return r.added_at;
  return *r.last_failure + backoff(r.failures);
}

bool address_book::contains(const net_address& addr) const {
  return entries_.count(addr) > 0;
}

bool address_book::in_use(const net_address& addr) const {
  return in_use_.count(addr) > 0;
}

bool address_book::is_excluded(const net_address& addr) const {
  return excluded_.count(addr) > 0;
}

bool address_book::evict_one() {
  // True if `a` is worse than `b`: more consecutive failures; then never
  // connected; then added earlier; then the greater seeded rank.
  auto worse = [](const record& a, const record& b) {
    auto ka = std::make_tuple(a.failures, !a.last_success.has_value());
    auto kb = std::make_tuple(b.failures, !b.last_success.has_value());
    if (ka != kb)
      return ka > kb;
    if (a.added_at != b.added_at)
      return a.added_at < b.added_at;
    return a.rank > b.rank;
  };
  auto worst = entries_.end();
  for (auto i = entries_.begin(); i != entries_.end(); ++i) {
    if (in_use(i->first))
      continue;
    if (worst == entries_.end() || worse(i->second, worst->second))
      worst = i;
  }
  if (worst == entries_.end())
    return false;
  entries_.erase(worst);
  return true;
}

bool address_book::add(const net_address& addr, std::string source,
                       time_point now) {
  if (is_excluded(addr) || contains(addr))
    return false;
  if (entries_.size() >= cfg_.capacity && !evict_one())
    return false;
  record r;
  r.source = std::move(source);
  r.added_at = now;
  r.rank = rng_();
  entries_.emplace(addr, std::move(r));
  return true;
}

bool address_book::remove(const net_address& addr) {
  return entries_.erase(addr) > 0;
}

std::vector<address_entry> address_book::snapshot() const {
  std::vector<address_entry> result;
  result.reserve(entries_.size());
  for (const auto& [addr, r] : entries_) {
    address_entry e;
    e.address = addr;
    e.source = r.source;
    e.added_at = r.added_at;
    e.attempts = r.attempts;
    e.failures = r.failures;
    e.last_attempt = r.last_attempt;
    e.last_success = r.last_success;
    e.last_failure = r.last_failure;
    if (r.failures > 0)
      e.retry_at = retry_at(r);
    e.in_use = in_use(addr);
    result.push_back(std::move(e));
  }
  return result;
}

caf::expected<net_address> address_book::take(time_point now) {
  // Smaller is better: no consecutive failure first, then the oldest last
  // failure (never failed = oldest), then the seeded rank.
  auto key = [](const record& r) {
    return std::make_tuple(r.failures > 0,
                           r.last_failure.value_or(time_point::min()),
                           r.rank);
  };
  auto best = entries_.end();
  size_t busy = 0;
  size_t waiting = 0;
  std::optional<time_point> earliest;
  for (auto i = entries_.begin(); i != entries_.end(); ++i) {
    if (in_use(i->first)) {
      ++busy;
      continue;
    }
    const auto& r = i->second;
    if (r.failures > 0) {
      auto at = retry_at(r);
      if (now < at) {
        ++waiting;
        if (!earliest || at < *earliest)
          earliest = at;
        continue;
      }
    }
    if (best == entries_.end() || key(r) < key(best->second))
      best = i;
  }
  if (best == entries_.end()) {
    std::string context;
    if (entries_.empty()) {
      context = "the address book is empty";
    } else {
      context = fmt::format("{} known, {} in use, {} backing off", size(),
                            busy, waiting);
      if (earliest)
        context += fmt::format(" (next in {})",
                               to_string_duration(*earliest - now));
    }
    return make_error(errc::no_address, std::move(context));
  }
  auto& r = best->second;
  if (r.attempts < std::numeric_limits<uint32_t>::max())
    ++r.attempts;
  r.last_attempt = now;
  in_use_.insert(best->first);
  return best->first;
}

bool address_book::mark_connected(const net_address& addr, time_point now) {
  in_use_.insert(addr);
  auto i = entries_.find(addr);
  if (i == entries_.end())
    return false;
  i->second.failures = 0;
  i->second.last_success = now;
  return true;
}

bool address_book::mark_failed(const net_address& addr, time_point now) {
  in_use_.erase(addr);
  auto i = entries_.find(addr);
  if (i == entries_.end())
    return false;
  auto& r = i->second;
  if (r.failures < std::numeric_limits<uint32_t>::max())
    ++r.failures;
  r.last_failure = now;
  return true;
}

bool address_book::release(const net_address& addr) {
  return in_use_.erase(addr) > 0;
}

bool address_book::exclude(const net_address& addr) {
  excluded_.insert(addr);
  return entries_.erase(addr) > 0;
}

// -- the actor -------------------------------------------------------------------

namespace {

struct address_book_state {
  address_book book;
  static inline const char* name = "connmgr.address_book";
};

using book_pointer = address_book_actor::stateful_pointer<address_book_state>;

address_book_actor::behavior_type
address_book_impl(book_pointer self, address_book_config cfg) {
  self->state.book = address_book{cfg};
  // Parses `text` and applies `fn` to the book, or answers the parse error.
  auto with = [self](const std::string& text,
                     auto fn) -> caf::result<bool> {
    auto addr = net_address::parse(text);
    if (!addr)
      return std::move(addr.error());
    return fn(self->state.book, *addr);
  };
  return {
    [self](get_address_atom) -> caf::result<std::string> {
      auto addr = self->state.book.take(self->clock().now());
      if (!addr)
        return std::move(addr.error());
      return addr->to_string();
    },
    [self, with](add_address_atom, const std::string& text,
                 std::string& source) {
      return with(text, [&](address_book& book, const net_address& addr) {
        return book.add(addr, std::move(source), self->clock().now());
      });
    },
    [self, with](address_connected_atom, const std::string& text) {
      return with(text, [&](address_book& book, const net_address& addr) {
        return book.mark_connected(addr, self->clock().now());
      });
    },
    [self, with](address_failed_atom, const std::string& text) {
      return with(text, [&](address_book& book, const net_address& addr) {
        return book.mark_failed(addr, self->clock().now());
      });
    },
    [with](address_release_atom, const std::string& text) {
      return with(text, [](address_book& book, const net_address& addr) {
        return book.release(addr);
      });
    },
    [with](address_exclude_atom, const std::string& text) {
      return with(text, [](address_book& book, const net_address& addr) {
        return book.exclude(addr);
      });
    },
  };
}

} // namespace

caf::expected<address_book_actor>
spawn_address_book(caf::actor_system& sys, address_book_config cfg) {
  if (auto err = validate(cfg))
    return err;
  return sys.spawn(address_book_impl, cfg);
}

} // namespace connmgr
