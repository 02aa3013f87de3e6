#include "connmgr/actors/ban_list.hpp"

#include <algorithm>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/siphash.hpp"

namespace connmgr {

namespace {

constexpr uint32_t family_v4 = 4;
constexpr uint32_t family_v6 = 6;

uint64_t load_be64(const uint8_t* p) noexcept {
  uint64_t x = 0;
  for (int i = 0; i < 8; ++i)
    x = (x << 8) | p[i];
  return x;
}

// Clears every bit of `hi:lo` (a 128-bit prefix, IPv4 in the top 32 bits)
// past the first `bits`.
void mask(uint64_t& hi, uint64_t& lo, unsigned bits) noexcept {
  if (bits < 64) {
    hi = bits == 0 ? 0 : hi & ~(~uint64_t{0} >> bits);
    lo = 0;
  } else if (bits < 128) {
    lo = bits == 64 ? 0 : lo & ~(~uint64_t{0} >> (bits - 64));
  }
}

// The heap order of `expiries_`: the earliest end on top.
constexpr auto later_expiry = [](const auto& x, const auto& y) {
  return x.until > y.until;
};

} // namespace

size_t ban_list::keyed_hash::operator()(const key& k) const noexcept {
  return static_cast<size_t>(siphasher{k0, k1}
                               .write_u64(k.hi)
                               .write_u64(k.lo)
                               .write_u64(k.meta)
                               .finish());
}

ban_list::ban_list(uint64_t secret)
  : table_(keyed_hash{siphasher{secret, 0x62616e73ULL}.write_u64(1).finish(),
                      siphasher{secret, 0x62616e73ULL}.write_u64(2).finish()}) {
  // nop
}

ban_list::key ban_list::key_of(const std::array<uint8_t, 16>& prefix, bool v4,
                               unsigned bits) noexcept {
  // `prefix` comes from a netgroup: every bit past `bits` is zero already.
  key k;
  k.hi = load_be64(prefix.data());
  k.lo = load_be64(prefix.data() + 8);
  k.meta = (v4 ? family_v4 : family_v6) << 8 | bits;
  return k;
}

void ban_list::count_length(bool v4, unsigned bits, int delta) {
  auto& count = v4 ? v4_counts_[bits] : v6_counts_[bits];
  auto& lengths = v4 ? v4_lengths_ : v6_lengths_;
  bool was_used = count > 0;
  count = static_cast<uint32_t>(static_cast<int64_t>(count) + delta);
  if (was_used == (count > 0))
    return;
  if (count > 0)
    lengths.push_back(static_cast<uint8_t>(bits));
  else
    lengths.erase(std::find(lengths.begin(), lengths.end(), bits));
  std::sort(lengths.begin(), lengths.end(), std::greater<>{});
}

caf::error ban_list::add(const netgroup& subnet, time_point until,
                         std::string reason) {
  if (subnet.type() == netgroup::family::hostname)
    return make_error(errc::invalid_address,
                      "\"" + subnet.to_string()
                        + "\": expected an IP prefix, not a host name");
  bool v4 = subnet.type() == netgroup::family::ipv4;
  auto k = key_of(subnet.prefix(), v4, subnet.bits());
  auto [entry, added] = table_.try_emplace(k);
  if (added)
    count_length(v4, subnet.bits(), 1);
  entry->subnet = subnet;
  entry->until = until;
  entry->reason = std::move(reason);
  expiries_.push_back(expiry{until, k});
  std::push_heap(expiries_.begin(), expiries_.end(), later_expiry);
  // Replaced expiries stay in the heap until they surface; rebuild when
  // they outnumber the bans, so the heap stays O(bans).
  if (expiries_.size() > 2 * table_.size() + 64) {
    std::vector<expiry> live;
    table_.for_each([&live](const key& k2, const ban_entry& e) {
      live.push_back(expiry{e.until, k2});
    });
    std::make_heap(live.begin(), live.end(), later_expiry);
    expiries_.swap(live);
  }
  return caf::none;
}

bool ban_list::remove(const netgroup& subnet) {
  if (subnet.type() == netgroup::family::hostname)
    return false;
  bool v4 = subnet.type() == netgroup::family::ipv4;
  if (!table_.erase(key_of(subnet.prefix(), v4, subnet.bits())))
    return false;
  count_length(v4, subnet.bits(), -1);
  return true;
}

bool ban_list::holds(const netgroup& subnet) const {
  if (subnet.type() == netgroup::family::hostname)
    return false;
  bool v4 = subnet.type() == netgroup::family::ipv4;
  return table_.find(key_of(subnet.prefix(), v4, subnet.bits())) != nullptr;
}

const ban_entry* ban_list::find(const net_address& addr, time_point now) const {
  if (table_.empty())
    return nullptr;
  // The whole address as a group: an IPv4-mapped one comes out as the IPv4
  // address it carries, a host name as no IP at all.
  auto host = netgroup_of(addr, 32, 128);
  if (!host || host->type() == netgroup::family::hostname)
    return nullptr;
  return find_longest(host->type() == netgroup::family::ipv4,
                      load_be64(host->prefix().data()),
                      load_be64(host->prefix().data() + 8), now);
}

const ban_entry* ban_list::find_ipv4(uint32_t addr, time_point now) const {
  if (table_.empty())
    return nullptr;
  // As `key_of` lays out an IPv4 prefix: the address in the first 4 bytes.
  return find_longest(true, uint64_t{addr} << 32, 0, now);
}

const ban_entry* ban_list::find_longest(bool v4, uint64_t hi, uint64_t lo,
                                        time_point now) const {
  for (auto bits : v4 ? v4_lengths_ : v6_lengths_) {
    key k{hi, lo, (v4 ? family_v4 : family_v6) << 8 | bits};
    mask(k.hi, k.lo, bits);
    if (auto e = table_.find(k); e != nullptr && e->until > now)
      return e;
  }
  return nullptr;
}

size_t ban_list::expire(time_point now) {
  size_t forgotten = 0;
  while (!expiries_.empty() && expiries_.front().until <= now) {
    auto top = expiries_.front();
    std::pop_heap(expiries_.begin(), expiries_.end(), later_expiry);
    expiries_.pop_back();
    auto e = table_.find(top.k);
    // Skipped: a ban lifted meanwhile, or renewed to a later end.
    if (e == nullptr || e->until != top.until)
      continue;
    auto subnet = e->subnet;
    remove(subnet);
    ++forgotten;
  }
  return forgotten;
}

std::vector<ban_entry> ban_list::list(time_point now) const {
  std::vector<ban_entry> result;
  table_.for_each([&](const key&, const ban_entry& e) {
    if (e.until > now)
      result.push_back(e);
  });
  std::sort(result.begin(), result.end(),
            [](const auto& x, const auto& y) { return x.subnet < y.subnet; });
  return result;
}

std::optional<ban_list::time_point> ban_list::next_expiry() const {
  // The heap's top may be stale (lifted or renewed); the earliest live end
  // is never earlier than it, so a timer set for it fires early at worst.
  if (table_.empty() || expiries_.empty())
    return std::nullopt;
  return expiries_.front().until;
}

} // namespace connmgr
