// Inbound admission: per-source and per-netgroup caps, the pending cap,
// the per-source rate and eviction when full, all plain code on the
// caller's clock. Over 500 lines because eviction reads the same per-peer
// records and per-source counts that admission keeps; the two cannot be
// told apart without exposing those tables.
#include "connmgr/actors/inbound_admission.hpp"

#include <algorithm>
#include <array>
#include <tuple>
#include <utility>

#include <arpa/inet.h>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/address_class.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/siphash.hpp"

namespace connmgr {

// -- free functions -------------------------------------------------------------

const char* to_string(admission_reason x) noexcept {
  switch (x) {
    case admission_reason::admitted:
      return "admitted";
    case admission_reason::inbound_limit:
      return "inbound_limit";
    case admission_reason::per_ip_limit:
      return "per_ip_limit";
    case admission_reason::per_netgroup_limit:
      return "per_netgroup_limit";
    case admission_reason::pending_limit:
      return "pending_limit";
    case admission_reason::rate_limit:
      return "rate_limit";
    case admission_reason::evicted_for_newcomer:
      return "evicted_for_newcomer";
    case admission_reason::evicted_slow_handshake:
      return "evicted_slow_handshake";
  }
  return "unknown";
}

const char* to_string(admission_verdict x) noexcept {
  switch (x) {
    case admission_verdict::admit:
      return "admit";
    case admission_verdict::reject:
      return "reject";
    case admission_verdict::evict_then_admit:
      return "evict_then_admit";
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

/// Family codes of `source_key::meta`.
constexpr uint32_t family_ipv4 = 4;
constexpr uint32_t family_ipv6 = 6;
constexpr uint32_t family_text = 3;

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

/// Reads a decimal number of 1 to `max_digits` digits without a leading
/// zero (a lone "0" included) from `p` (before `end`); false if there is
/// none, it has more digits or it exceeds `max`.
bool read_decimal(const char*& p, const char* end, int max_digits,
                  uint32_t max, uint32_t& out) {
  if (p == end || !is_digit(*p))
    return false;
  uint32_t v = static_cast<uint32_t>(*p++ - '0');
  if (v != 0)
    for (int n = 1; n < max_digits && p != end && is_digit(*p); ++n)
      v = v * 10 + static_cast<uint32_t>(*p++ - '0');
  if (v > max || (p != end && is_digit(*p)))
    return false;
  out = v;
  return true;
}

/// Parses "a.b.c.d" or "a.b.c.d:port" (port 1..65535), each number in its
/// shortest form: the form connections print, and one that
/// `net_address::parse` reads as the same IPv4 address. Anything else is
/// left to the full parser.
bool parse_dotted_quad(std::string_view s, uint32_t& out) {
  const char* p = s.data();
  const char* end = p + s.size();
  uint32_t ip = 0;
  for (int i = 0; i < 4; ++i) {
    uint32_t octet = 0;
    if (!read_decimal(p, end, 3, 255, octet))
      return false;
    ip = (ip << 8) | octet;
    if (i < 3) {
      if (p == end || *p != '.')
        return false;
      ++p;
    }
  }
  if (p != end) {
    uint32_t port = 0;
    if (*p != ':')
      return false;
    ++p;
    if (!read_decimal(p, end, 5, 65535, port) || port == 0 || p != end)
      return false;
  }
  out = ip;
  return true;
}

uint64_t load_be64(const uint8_t* p) noexcept {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | p[i];
  return x;
}

} // namespace

inbound_admission::inbound_admission(inbound_limits limits, uint64_t secret)
  : limits_(std::move(limits)), table_k0_(derive(secret, 1)),
    table_k1_(derive(secret, 2)), rank_k0_(derive(secret, 3)),
    rank_k1_(derive(secret, 4)), text_k0_(derive(secret, 5)),
    text_k1_(derive(secret, 6)) {
  if (limits_.max_inbound) {
    // Room for every slot up front (as the descriptor table is): growing a
    // table while connections arrive moves every entry and faults in fresh
    // pages. Past 65 536 slots the tables grow as they fill.
    auto n = std::min<size_t>(*limits_.max_inbound, 65'536);
    peers_.reserve(n);
    per_ip_.reserve(n);
    per_group_.reserve(n);
  }
  if (limits_.inbound_rate_per_ip) {
    auto n = std::min<size_t>(limits_.max_rate_tracked_ips, 65'536);
    rate_nodes_.reserve(n);
    rate_index_.reserve(n);
  }
}

// -- decisions --------------------------------------------------------------------

admission_decision inbound_admission::admit(uint64_t slot,
                                            std::string_view remote_address,
                                            time_point now) {
  if (peers_.find(slot) != nullptr)
    closed(slot);
  return admit_source(slot, source_of(remote_address), now);
}

admission_decision inbound_admission::admit(uint64_t slot,
                                            std::optional<uint32_t> ipv4,
                                            std::string_view remote_address,
                                            time_point now) {
  if (peers_.find(slot) != nullptr)
    closed(slot);
  return admit_source(slot,
                      ipv4 ? source_of_ipv4(*ipv4) : source_of(remote_address),
                      now);
}

admission_decision inbound_admission::admit_source(uint64_t slot, source src,
                                                   time_point now) {
  // Every arrival costs a token, rejected ones too: a source hammering a
  // full node is throttled like any other.
  if (limits_.inbound_rate_per_ip && !take_token(src.ip, now))
    return reject(admission_reason::rate_limit,
                  fmt::format("inbound_rate_per_ip = {}/s, "
                              "inbound_burst_per_ip = {} for {}",
                              *limits_.inbound_rate_per_ip,
                              limits_.inbound_burst_per_ip,
                              print(src.ip, src.text)));
  if (limits_.max_inbound_per_ip) {
    auto held = per_ip_.find(src.ip);
    if (held != nullptr && *held >= *limits_.max_inbound_per_ip)
      return reject(admission_reason::per_ip_limit,
                    fmt::format("max_inbound_per_ip = {} for {}",
                                *limits_.max_inbound_per_ip,
                                print(src.ip, src.text)));
  }
  if (limits_.max_inbound_per_netgroup) {
    auto held = per_group_.find(src.group);
    if (held != nullptr && *held >= *limits_.max_inbound_per_netgroup)
      return reject(admission_reason::per_netgroup_limit,
                    fmt::format("max_inbound_per_netgroup = {} for {}",
                                *limits_.max_inbound_per_netgroup,
                                print(src.group, src.text)));
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
      return reject(
        admission_reason::pending_limit,
        fmt::format("max_pending_inbound = {}{}", *limits_.max_pending_inbound,
                    limits_.evict_when_full ? ", every pending peer protected"
                                            : ""));
    auto* v = peers_.find(*victim);
    result.verdict = admission_verdict::evict_then_admit;
    result.reason = admission_reason::evicted_slow_handshake;
    result.victim = *victim;
    result.context = print(v->group, v->text);
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
    auto* v = peers_.find(*victim);
    auto group = print(v->group, v->text);
    // Eviction only moves a slot from a netgroup to a smaller one, so no
    // netgroup grows by it (not even one whose peers are all protected) and
    // the biggest one cannot churn its own slots.
    auto held = per_group_.find(src.group);
    auto newcomer_group_size = held == nullptr ? 0u : *held;
    if (newcomer_group_size >= *per_group_.find(v->group))
      return reject(admission_reason::inbound_limit,
                    fmt::format("max_inbound = {}, netgroup {} holds {}, "
                                "no fewer than the victim's {}",
                                *limits_.max_inbound,
                                print(src.group, src.text), newcomer_group_size,
                                group));
    result.verdict = admission_verdict::evict_then_admit;
    result.reason = admission_reason::evicted_for_newcomer;
    result.victim = *victim;
    result.context = std::move(group);
    evict(*victim, admission_reason::evicted_for_newcomer);
  }
  ++*per_ip_.try_emplace(src.ip).first;
  ++*per_group_.try_emplace(src.group).first;
  auto& p = *peers_.try_emplace(slot).first;
  p = peer{};
  p.ip = src.ip;
  p.group = src.group;
  p.text = std::move(src.text);
  p.connected_at = now;
  p.seq = ++next_seq_;
  ++pending_;
  if (limits_.max_pending_inbound) {
    // Only the pending cap asks for the oldest pending peer.
    pending_order_.push_back(pending_mark{now, slot, p.seq});
    std::push_heap(pending_order_.begin(), pending_order_.end(), later_mark);
    if (pending_order_.size() > 2 * pending_ + 64)
      compact_pending_order();
  }
  ++counts_[static_cast<size_t>(admission_reason::admitted)];
  return result;
}

std::optional<uint64_t> inbound_admission::slow_handshake_victim() {
  if (!limits_.max_pending_inbound || !limits_.evict_when_full
      || pending_ < *limits_.max_pending_inbound)
    return std::nullopt;
  return oldest_pending();
}

// -- reports from the embedder ----------------------------------------------------

void inbound_admission::ready(uint64_t slot, time_point) {
  auto p = peers_.find(slot);
  if (p == nullptr || p->ready)
    return;
  p->ready = true;
  --pending_;
}

void inbound_admission::ping(uint64_t slot, caf::timespan rtt) {
  auto p = peers_.find(slot);
  if (p == nullptr)
    return;
  auto& best = p->min_ping;
  if (!best || rtt < *best)
    best = rtt;
}

void inbound_admission::useful(uint64_t slot, time_point now) {
  auto p = peers_.find(slot);
  if (p == nullptr)
    return;
  auto& last = p->last_useful;
  if (!last || now > *last)
    last = now;
}

void inbound_admission::protect(uint64_t slot) {
  if (auto p = peers_.find(slot))
    p->is_protected = true;
}

void inbound_admission::unprotect(uint64_t slot) {
  auto p = peers_.find(slot);
  if (p == nullptr || !p->is_protected)
    return;
  p->is_protected = false;
  // Its mark may have been dropped while it was protected.
  if (!p->ready) {
    pending_order_.push_back(pending_mark{p->connected_at, slot, p->seq});
    std::push_heap(pending_order_.begin(), pending_order_.end(), later_mark);
  }
}

void inbound_admission::set_limits(inbound_limits limits) {
  limits_ = std::move(limits);
}

void inbound_admission::closed(uint64_t slot) {
  auto p = peers_.find(slot);
  if (p == nullptr)
    return;
  dec(per_ip_, p->ip);
  dec(per_group_, p->group);
  if (!p->ready)
    --pending_;
  peers_.erase(slot);
}

// -- helpers ------------------------------------------------------------------------

inbound_admission::source_key inbound_admission::hashed(source_key k) const {
  // IPv4 keys (and IPv6 /32 netgroups) fit in one word with their meta:
  // one compression instead of three. The input lengths differ (8 or 24
  // bytes, which SipHash mixes in), so the two encodings never meet, and
  // each is injective on the keys that take it.
  if (k.lo == 0 && (k.hi & 0xffff'ffffULL) == 0)
    k.hash = siphasher{table_k0_, table_k1_}.write_u64(k.hi | k.meta).finish();
  else
    k.hash = siphasher{table_k0_, table_k1_}
               .write_u64(k.hi)
               .write_u64(k.lo)
               .write_u64(k.meta)
               .finish();
  return k;
}

inbound_admission::source_key
inbound_admission::text_key(std::string_view text) const {
  // 128 keyed bits: two texts share a key with negligible probability, and
  // a peer cannot pick texts that do.
  source_key k;
  k.hi = siphasher{text_k0_, text_k1_}.write_u8(1).write_str(text).finish();
  k.lo = siphasher{text_k0_, text_k1_}.write_u8(2).write_str(text).finish();
  k.meta = family_text << 8;
  return hashed(k);
}

std::string inbound_admission::print(const source_key& k,
                                     const std::string& text) {
  auto bits = k.meta & 0xffu;
  switch (k.meta >> 8) {
    case family_ipv4:
      return fmt::format("{}.{}.{}.{}/{}", (k.hi >> 56) & 0xff,
                         (k.hi >> 48) & 0xff, (k.hi >> 40) & 0xff,
                         (k.hi >> 32) & 0xff, bits);
    case family_ipv6: {
      std::array<uint8_t, 16> bytes{};
      for (int i = 0; i < 8; ++i) {
        bytes[static_cast<size_t>(i)] =
          static_cast<uint8_t>(k.hi >> (56 - 8 * i));
        bytes[static_cast<size_t>(8 + i)] =
          static_cast<uint8_t>(k.lo >> (56 - 8 * i));
      }
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf));
      return fmt::format("{}/{}", buf, bits);
    }
    default:
      return text;
  }
}

inbound_admission::source
inbound_admission::source_of(std::string_view remote_address) const {
  // The form every accepted IPv4 connection prints: no parser, no string.
  if (uint32_t v4 = 0; parse_dotted_quad(remote_address, v4))
    return source_of_ipv4(v4);
  source result;
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
    if (ip && group) {
      if (ip->type() == netgroup::family::hostname) {
        result.text = ip->name();
        result.ip = text_key(result.text);
        result.group = result.ip;
        return result;
      }
      auto key_of = [this](const netgroup& g) {
        source_key k;
        k.hi = load_be64(g.prefix().data());
        k.lo = load_be64(g.prefix().data() + 8);
        auto family =
          g.type() == netgroup::family::ipv4 ? family_ipv4 : family_ipv6;
        k.meta = family << 8 | g.bits();
        return hashed(k);
      };
      result.ip = key_of(*ip);
      result.group = key_of(*group);
      return result;
    }
  }
  // "text:" cannot start a printed netgroup (host names have no colon).
  result.text = "text:";
  result.text += remote_address;
  result.ip = text_key(result.text);
  result.group = result.ip;
  return result;
}

inbound_admission::source inbound_admission::source_of_ipv4(uint32_t v4) const {
  auto gbits = limits_.netgroup_bits_ipv4;
  auto mask = gbits >= 32 ? ~uint32_t{0} : ~(~uint32_t{0} >> gbits);
  source result;
  source_key ip;
  ip.hi = uint64_t{v4} << 32;
  ip.meta = family_ipv4 << 8 | 32;
  source_key group;
  group.hi = uint64_t{v4 & mask} << 32;
  group.meta = family_ipv4 << 8 | gbits;
  result.ip = hashed(ip);
  result.group = hashed(group);
  return result;
}

bool inbound_admission::bucket_full(rate_entry& e, time_point now) const {
  e.bucket.take_up_to(0, now); // refills to `now`, takes nothing
  return e.bucket.tokens() >= limits_.inbound_burst_per_ip;
}

void inbound_admission::rate_unlink(uint32_t i) noexcept {
  auto& e = rate_nodes_[i];
  if (e.prev != none)
    rate_nodes_[e.prev].next = e.next;
  else
    rate_head_ = e.next;
  if (e.next != none)
    rate_nodes_[e.next].prev = e.prev;
  else
    rate_tail_ = e.prev;
  e.prev = e.next = none;
}

void inbound_admission::rate_push_front(uint32_t i) noexcept {
  auto& e = rate_nodes_[i];
  e.prev = none;
  e.next = rate_head_;
  if (rate_head_ != none)
    rate_nodes_[rate_head_].prev = i;
  else
    rate_tail_ = i;
  rate_head_ = i;
}

void inbound_admission::rate_drop_tail() {
  auto i = rate_tail_;
  rate_index_.erase(rate_nodes_[i].key);
  rate_unlink(i);
  rate_nodes_[i].next = rate_free_;
  rate_free_ = i;
}

bool inbound_admission::take_token(const source_key& key, time_point now) {
  // Forget buckets that refilled: the least recently used come first, and
  // two per call outpace the one entry a call can add.
  for (int i = 0; i < 2 && rate_tail_ != none; ++i) {
    auto& last = rate_nodes_[rate_tail_];
    if (last.key == key || !bucket_full(last, now))
      break;
    rate_drop_tail();
  }
  if (auto i = rate_index_.find(key)) {
    auto idx = *i;
    if (idx != rate_head_) {
      rate_unlink(idx);
      rate_push_front(idx);
    }
    return rate_nodes_[idx].bucket.take(1, now);
  }
  if (rate_index_.size() >= limits_.max_rate_tracked_ips
      && rate_tail_ != none) {
    // Full of buckets still refilling: forget the least recently used one.
    // Its source gets a fresh burst if it comes back; failing closed instead
    // would let many sources lock out every new one.
    if (!bucket_full(rate_nodes_[rate_tail_], now))
      ++rate_dropped_;
    rate_drop_tail();
  }
  uint32_t idx;
  if (rate_free_ != none) {
    idx = rate_free_;
    rate_free_ = rate_nodes_[idx].next;
  } else {
    idx = static_cast<uint32_t>(rate_nodes_.size());
    rate_nodes_.emplace_back();
  }
  auto& e = rate_nodes_[idx];
  e.key = key;
  e.bucket = token_bucket{*limits_.inbound_rate_per_ip,
                          limits_.inbound_burst_per_ip, now};
  rate_push_front(idx);
  *rate_index_.try_emplace(key).first = idx;
  return e.bucket.take(1, now);
}

bool inbound_admission::later_mark(const pending_mark& x,
                                   const pending_mark& y) noexcept {
  return std::tie(x.at, x.slot) > std::tie(y.at, y.slot);
}

bool inbound_admission::mark_valid(const pending_mark& m) const noexcept {
  auto p = peers_.find(m.slot);
  return p != nullptr && p->seq == m.seq && !p->ready && !p->is_protected;
}

void inbound_admission::compact_pending_order() {
  pending_order_.erase(
    std::remove_if(pending_order_.begin(), pending_order_.end(),
                   [this](const pending_mark& m) { return !mark_valid(m); }),
    pending_order_.end());
  std::make_heap(pending_order_.begin(), pending_order_.end(), later_mark);
}

std::optional<uint64_t> inbound_admission::oldest_pending() {
  // A mark popped here never turns valid again: ready is for good, and
  // `unprotect` pushes a fresh mark.
  while (!pending_order_.empty()) {
    auto& top = pending_order_.front();
    if (mark_valid(top))
      return top.slot;
    std::pop_heap(pending_order_.begin(), pending_order_.end(), later_mark);
    pending_order_.pop_back();
  }
  return std::nullopt;
}

std::optional<uint64_t> inbound_admission::select_victim() const {
  struct candidate {
    uint64_t slot;
    const peer* p;
    uint64_t rank;
  };
  std::vector<candidate> cs;
  cs.reserve(peers_.size());
  peers_.for_each([&cs](uint64_t slot, const peer& p) {
    if (!p.is_protected)
      cs.push_back(candidate{slot, &p, 0});
  });
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
    for (auto& c : cs)
      c.rank = siphasher{rank_k0_, rank_k1_}
                 .write_u64(c.p->group.hi)
                 .write_u64(c.p->group.lo)
                 .write_u64(c.p->group.meta)
                 .finish();
    std::sort(cs.begin(), cs.end(),
              [&older](const candidate& x, const candidate& y) {
                if (x.rank != y.rank)
                  return x.rank > y.rank;
                if (x.p->group != y.p->group)
                  return x.p->group < y.p->group;
                return older(x, y);
              });
    std::vector<candidate> rest;
    rest.reserve(cs.size());
    const source_key* last_group = nullptr;
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
  flat_table<source_key, group_stat, key_hash> groups;
  groups.reserve(cs.size());
  for (auto& c : cs) {
    auto& g = *groups.try_emplace(c.p->group).first;
    ++g.count;
    if (g.youngest == nullptr || older(*g.youngest, c))
      g.youngest = &c;
  }
  const group_stat* best = nullptr;
  groups.for_each([&](const source_key&, const group_stat& g) {
    if (best == nullptr || g.count > best->count
        || (g.count == best->count && older(*best->youngest, *g.youngest)))
      best = &g;
  });
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

void inbound_admission::dec(count_map& m, const source_key& key) {
  auto n = m.find(key);
  if (n == nullptr)
    return;
  if (--*n == 0)
    m.erase(key);
}

} // namespace connmgr
