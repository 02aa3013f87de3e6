#include "actors/inbound_admission.hpp"

#include <algorithm>
#include <tuple>
#include <utility>

#include <fmt/format.h>

#include "messages/error_code.hpp"
#include "net/address_class.hpp"
#include "net/net_address.hpp"
#include "net/siphash.hpp"

namespace connmgr {

// -- free functions -------------------------------------------------------------

const char* to_string(admission_reason x) noexcept {
  switch (x) {
    case admission_reason::admitted: return "admitted";
    case admission_reason::inbound_limit: return "inbound_limit";
    case admission_reason::per_ip_limit: return "per_ip_limit";
    case admission_reason::per_netgroup_limit: return "per_netgroup_limit";
    case admission_reason::pending_limit: return "pending_limit";
    case admission_reason::rate_limit: return "rate_limit";
    case admission_reason::evicted_for_newcomer: return "evicted_for_newcomer";
    case admission_reason::evicted_slow_handshake:
      return "evicted_slow_handshake";
  }
  return "unknown";
}

const char* to_string(admission_verdict x) noexcept {
  switch (x) {
    case admission_verdict::admit: return "admit";
    case admission_verdict::reject: return "reject";
    case admission_verdict::evict_then_admit: return "evict_then_admit";
  }
  return "unknown";
}

caf::error admission_decision::error() const {
  if (verdict != admission_verdict::reject)
    return caf::none;
  return make_error(errc::inbound_limit,
                    fmt::format("{}: {}", connmgr::to_string(reason), context));
}

std::string to_string(const admission_decision& x) {
  switch (x.verdict) {
    case admission_verdict::admit:
      return "admit";
    case admission_verdict::reject:
      return fmt::format("reject {} ({})", to_string(x.reason), x.context);
    case admission_verdict::evict_then_admit:
      return fmt::format("evict_then_admit {} {} ({})", x.victim,
                         to_string(x.reason), x.context);
  }
  return "unknown";
}

// -- construction ---------------------------------------------------------------

namespace {

/// Derives independent keys from the one secret, so knowing how one table
/// hashes tells nothing about the others.
uint64_t derive(uint64_t secret, uint8_t purpose) {
  return siphasher{secret, 0x696e626f756e64ULL}.write_u8(purpose).finish();
}

} // namespace

inbound_admission::inbound_admission(inbound_limits limits, uint64_t secret)
  : limits_(std::move(limits)),
    table_hash_{derive(secret, 1), derive(secret, 2)},
    rank_hash_{derive(secret, 3), derive(secret, 4)},
    peers_(),
    per_ip_(0, table_hash_),
    per_group_(0, table_hash_),
    rate_index_(0, table_hash_) {
  // nop
}

size_t inbound_admission::keyed_hash::operator()(
  std::string_view x) const noexcept {
  return static_cast<size_t>(siphasher{k0, k1}.write_str(x).finish());
}

// -- decisions --------------------------------------------------------------------

admission_decision inbound_admission::admit(uint64_t slot,
                                            std::string_view remote_address,
                                            time_point now) {
  if (peers_.count(slot) != 0)
    closed(slot);
  auto src = source_of(remote_address);
  // Every arrival costs a token, rejected ones too: a source hammering a
  // full node is throttled like any other.
  if (limits_.inbound_rate_per_ip && !take_token(src.ip, now))
    return reject(admission_reason::rate_limit,
                  fmt::format("inbound_rate_per_ip = {}/s, "
                              "inbound_burst_per_ip = {} for {}",
                              *limits_.inbound_rate_per_ip,
                              limits_.inbound_burst_per_ip, src.ip));
  if (limits_.max_inbound_per_ip) {
    auto i = per_ip_.find(src.ip);
    if (i != per_ip_.end() && i->second >= *limits_.max_inbound_per_ip)
      return reject(admission_reason::per_ip_limit,
                    fmt::format("max_inbound_per_ip = {} for {}",
                                *limits_.max_inbound_per_ip, src.ip));
  }
  if (limits_.max_inbound_per_netgroup) {
    auto i = per_group_.find(src.group);
    if (i != per_group_.end() && i->second >= *limits_.max_inbound_per_netgroup)
      return reject(admission_reason::per_netgroup_limit,
                    fmt::format("max_inbound_per_netgroup = {} for {}",
                                *limits_.max_inbound_per_netgroup, src.group));
  }
  if (limits_.max_inbound && *limits_.max_inbound == 0)
    return reject(admission_reason::inbound_limit, "max_inbound = 0");
  admission_decision result;
  if (limits_.max_pending_inbound && pending_ >= *limits_.max_pending_inbound) {
    // Evicting the oldest pending connection, not refusing the newcomer: an
    // attacker who refills pending slots as they free would otherwise keep
    // honest peers out for good, while an honest handshake finishes long
    // before it becomes the oldest pending one.
    auto victim = limits_.evict_when_full ? oldest_pending() : std::nullopt;
    if (!victim)
      return reject(admission_reason::pending_limit,
                    fmt::format("max_pending_inbound = {}{}",
                                *limits_.max_pending_inbound,
                                limits_.evict_when_full
                                  ? ", every pending peer protected"
                                  : ""));
    result.verdict = admission_verdict::evict_then_admit;
    result.reason = admission_reason::evicted_slow_handshake;
    result.victim = *victim;
    result.context = peers_.at(*victim).group;
    evict(*victim, admission_reason::evicted_slow_handshake);
  } else if (limits_.max_inbound && peers_.size() >= *limits_.max_inbound) {
    if (!limits_.evict_when_full)
      return reject(admission_reason::inbound_limit,
                    fmt::format("max_inbound = {}", *limits_.max_inbound));
    auto victim = select_victim();
    if (!victim)
      return reject(admission_reason::inbound_limit,
                    fmt::format("max_inbound = {}, every peer protected",
                                *limits_.max_inbound));
    auto& group = peers_.at(*victim).group;
    // Eviction only moves a slot from a netgroup to a smaller one, so no
    // netgroup grows by it (not even one whose peers are all protected) and
    // the biggest one cannot churn its own slots.
    auto held = per_group_.find(src.group);
    auto newcomer_group_size = held == per_group_.end() ? 0u : held->second;
    if (newcomer_group_size >= per_group_.at(group))
      return reject(admission_reason::inbound_limit,
                    fmt::format("max_inbound = {}, netgroup {} holds {}, "
                                "no fewer than the victim's {}",
                                *limits_.max_inbound, src.group,
                                newcomer_group_size, group));
    result.verdict = admission_verdict::evict_then_admit;
    result.reason = admission_reason::evicted_for_newcomer;
    result.victim = *victim;
    result.context = group;
    evict(*victim, admission_reason::evicted_for_newcomer);
  }
  ++per_ip_[src.ip];
  ++per_group_[src.group];
  peer p;
  p.group_rank = rank_hash_(src.group);
  p.ip = std::move(src.ip);
  p.group = std::move(src.group);
  p.connected_at = now;
  peers_.emplace(slot, std::move(p));
  ++pending_;
  ++counts_[static_cast<size_t>(admission_reason::admitted)];
  return result;
}

// -- reports from the embedder ----------------------------------------------------

void inbound_admission::ready(uint64_t slot, time_point) {
  auto i = peers_.find(slot);
  if (i == peers_.end() || i->second.ready)
    return;
  i->second.ready = true;
  --pending_;
}

void inbound_admission::ping(uint64_t slot, caf::timespan rtt) {
  auto i = peers_.find(slot);
  if (i == peers_.end())
    return;
  auto& best = i->second.min_ping;
  if (!best || rtt < *best)
    best = rtt;
}

void inbound_admission::useful(uint64_t slot, time_point now) {
  auto i = peers_.find(slot);
  if (i == peers_.end())
    return;
  auto& last = i->second.last_useful;
  if (!last || now > *last)
    last = now;
}

void inbound_admission::protect(uint64_t slot) {
  auto i = peers_.find(slot);
  if (i != peers_.end())
    i->second.is_protected = true;
}

void inbound_admission::closed(uint64_t slot) {
  auto i = peers_.find(slot);
  if (i == peers_.end())
    return;
  dec(per_ip_, i->second.ip);
  dec(per_group_, i->second.group);
  if (!i->second.ready)
    --pending_;
  peers_.erase(i);
}

// -- helpers ------------------------------------------------------------------------

inbound_admission::source
inbound_admission::source_of(std::string_view remote_address) const {
  std::optional<net_address> addr;
  if (auto x = net_address::parse(remote_address))
    addr = std::move(*x);
  if (!addr) {
    // Bare IP literals, as some embedders print them (not bare names).
    std::string text{remote_address};
    for (auto& form : {text + ":0", "[" + text + "]:0"}) {
      if (auto x = net_address::parse(form, true); x && x->is_ip()) {
        addr = std::move(*x);
        break;
      }
    }
  }
  if (addr) {
    auto ip = netgroup_of(*addr, 32, 64);
    auto group = netgroup_of(*addr, limits_.netgroup_bits_ipv4,
                             limits_.netgroup_bits_ipv6);
    if (ip && group)
      return {ip->to_string(), group->to_string()};
  }
  // "text:" cannot start a printed netgroup (host names have no colon).
  std::string key = "text:";
  key += remote_address;
  return {key, key};
}

bool inbound_admission::bucket_full(rate_entry& e, time_point now) const {
  e.bucket.take_up_to(0, now); // refills to `now`, takes nothing
  return e.bucket.tokens() >= limits_.inbound_burst_per_ip;
}

bool inbound_admission::take_token(const std::string& key, time_point now) {
  // Forget buckets that refilled: the least recently used come first, and
  // two per call outpace the one entry a call can add.
  for (int i = 0; i < 2 && !rate_lru_.empty(); ++i) {
    auto& last = rate_lru_.back();
    if (last.key == key || !bucket_full(last, now))
      break;
    rate_index_.erase(last.key);
    rate_lru_.pop_back();
  }
  auto i = rate_index_.find(key);
  if (i != rate_index_.end()) {
    rate_lru_.splice(rate_lru_.begin(), rate_lru_, i->second);
    return i->second->bucket.take(1, now);
  }
  if (rate_index_.size() >= limits_.max_rate_tracked_ips) {
    // Full of buckets still refilling: forget the least recently used one.
    // Its source gets a fresh burst if it comes back; failing closed instead
    // would let many sources lock out every new one.
    auto& last = rate_lru_.back();
    if (!bucket_full(last, now))
      ++rate_dropped_;
    rate_index_.erase(last.key);
    rate_lru_.pop_back();
  }
  rate_lru_.push_front(rate_entry{
    key, token_bucket{*limits_.inbound_rate_per_ip,
                      limits_.inbound_burst_per_ip, now}});
  auto it = rate_lru_.begin();
  rate_index_.emplace(std::string_view{it->key}, it);
  return it->bucket.take(1, now);
}

std::optional<uint64_t> inbound_admission::oldest_pending() const {
  std::optional<uint64_t> best;
  time_point best_at;
  for (auto& [slot, p] : peers_) {
    if (p.ready || p.is_protected)
      continue;
    if (!best || std::tie(p.connected_at, slot) < std::tie(best_at, *best)) {
      best = slot;
      best_at = p.connected_at;
    }
  }
  return best;
}

std::optional<uint64_t> inbound_admission::select_victim() const {
  struct candidate {
    uint64_t slot;
    const peer* p;
  };
  std::vector<candidate> cs;
  cs.reserve(peers_.size());
  for (auto& [slot, p] : peers_)
    if (!p.is_protected)
      cs.push_back(candidate{slot, &p});
  if (cs.empty())
    return std::nullopt;
  auto cap = static_cast<size_t>(cs.size() / protection_share);
  // Older first; the slot breaks ties so every choice is deterministic.
  auto older = [](const candidate& x, const candidate& y) {
    return std::tie(x.p->connected_at, x.slot)
           < std::tie(y.p->connected_at, y.slot);
  };
  // Sorts the eligible candidates first (by `less`), then drops up to `k`
  // of them from the front: they are protected.
  auto keep = [&cs](size_t k, auto eligible, auto less) {
    auto mid = std::stable_partition(cs.begin(), cs.end(), eligible);
    std::sort(cs.begin(), mid, less);
    auto n = std::min(k, static_cast<size_t>(mid - cs.begin()));
    cs.erase(cs.begin(), cs.begin() + static_cast<std::ptrdiff_t>(n));
  };
  // 1. One peer, the longest-connected, of each of the netgroups ranking
  // highest by keyed hash.
  if (auto k = std::min<size_t>(limits_.protect_netgroups, cap); k > 0) {
    std::sort(cs.begin(), cs.end(),
              [&older](const candidate& x, const candidate& y) {
                if (x.p->group_rank != y.p->group_rank)
                  return x.p->group_rank > y.p->group_rank;
                if (x.p->group != y.p->group)
                  return x.p->group < y.p->group;
                return older(x, y);
              });
    std::vector<candidate> rest;
    rest.reserve(cs.size());
    const std::string* last_group = nullptr;
    size_t taken = 0;
    for (auto& c : cs) {
      if (taken < k && (last_group == nullptr || *last_group != c.p->group)) {
        last_group = &c.p->group;
        ++taken;
        continue;
      }
      rest.push_back(c);
    }
    cs.swap(rest);
  }
  // 2. The lowest pings.
  keep(
    std::min<size_t>(limits_.protect_lowest_ping, cap),
    [](const candidate& c) { return c.p->min_ping.has_value(); },
    [&older](const candidate& x, const candidate& y) {
      if (*x.p->min_ping != *y.p->min_ping)
        return *x.p->min_ping < *y.p->min_ping;
      return older(x, y);
    });
  // 3. The most recently useful.
  keep(
    std::min<size_t>(limits_.protect_recently_useful, cap),
    [](const candidate& c) { return c.p->last_useful.has_value(); },
    [&older](const candidate& x, const candidate& y) {
      if (*x.p->last_useful != *y.p->last_useful)
        return *x.p->last_useful > *y.p->last_useful;
      return older(x, y);
    });
  // 4. Half of the rest by longest connection, ready peers only.
  keep(
    cs.size() / 2, [](const candidate& c) { return c.p->ready; }, older);
  if (cs.empty())
    return std::nullopt;
  // A connection that has not finished its handshake goes before any peer
  // that has (Core's "prefer evict" class): silent connections cannot push
  // out proven peers while a silent one is left.
  if (std::any_of(cs.begin(), cs.end(),
                  [](const candidate& c) { return !c.p->ready; }))
    cs.erase(std::remove_if(cs.begin(), cs.end(),
                            [](const candidate& c) { return c.p->ready; }),
             cs.end());
  // The netgroup with the most candidates; ties go to the netgroup whose
  // youngest is the youngest. Its youngest is the victim.
  struct group_stat {
    size_t count = 0;
    const candidate* youngest = nullptr;
  };
  std::unordered_map<std::string_view, group_stat, keyed_hash> groups(
    cs.size(), table_hash_);
  for (auto& c : cs) {
    auto& g = groups[c.p->group];
    ++g.count;
    if (g.youngest == nullptr || older(*g.youngest, c))
      g.youngest = &c;
  }
  const group_stat* best = nullptr;
  for (auto& [name, g] : groups) {
    if (best == nullptr || g.count > best->count
        || (g.count == best->count && older(*best->youngest, *g.youngest)))
      best = &g;
  }
  return best->youngest->slot;
}

void inbound_admission::evict(uint64_t slot, admission_reason why) {
  closed(slot);
  ++counts_[static_cast<size_t>(why)];
}

admission_decision inbound_admission::reject(admission_reason why,
                                             std::string context) {
  ++counts_[static_cast<size_t>(why)];
  admission_decision result;
  result.verdict = admission_verdict::reject;
  result.reason = why;
  result.context = std::move(context);
  return result;
}

void inbound_admission::dec(count_map& m, const std::string& key) {
  auto i = m.find(key);
  if (i == m.end())
    return;
  if (--i->second == 0)
    m.erase(i);
}

} // namespace connmgr
