// The address manager's decisions: bucket placement, the entry
// bookkeeping, the contents queries and handing out addresses to dial.
// Over 500 lines because all of it works on one entry layout and one set of
// tables whose invariants (each entry in exactly one slot, counts per group
// and source) every section must keep; split apart, each file would need
// the others' internals. The storage primitives are in
// address_manager_tables.cpp.
#include "connmgr/actors/address_manager.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/siphash.hpp"

namespace connmgr {

namespace {

// Most slots of one table: keeps ids and slot indexes far below `npos`, and
// the empty tables (4 bytes a slot) below 64 MB.
constexpr size_t max_table_slots = size_t{1} << 24;

// An address whose new slot is taken tries this many slots in all (its own
// and the ones after it, wrapping) for a free one.
constexpr uint32_t new_slot_probes = 4;

// Domain tags: each use of the key hashes differently shaped input, and a
// leading tag keeps any two uses from ever hashing the same bytes.
enum hash_tag : uint8_t {
  tag_address = 'A',
  tag_group = 'G',
  tag_new_inner = 'n',
  tag_new_outer = 'N',
  tag_tried_inner = 't',
  tag_tried_outer = 'T',
  tag_slot = 'S',
};

__extension__ typedef unsigned __int128 uint128;

// A uniform 64-bit value mapped into 0..n-1: the high half of x * n, which
// is as even as `x % n` (bias below n / 2^64) and spares a division.
uint64_t scale(uint64_t x, uint64_t n) noexcept {
  return static_cast<uint64_t>((static_cast<uint128>(x) * n) >> 64);
}

// `scale` for a table index, which always fits 32 bits (see
// max_table_slots).
uint32_t reduce(uint64_t hash, size_t n) noexcept {
  return static_cast<uint32_t>(scale(hash, n));
}

uint64_t load_le(const uint8_t* p, size_t n) noexcept {
  uint64_t x = 0;
  for (size_t i = 0; i < n; ++i)
    x |= uint64_t{p[i]} << (8 * i);
  return x;
}

// Reads four decimal numbers 0..255 separated by dots into `out`.
bool parse_dotted(const std::string& text, uint8_t* out) noexcept {
  size_t part = 0;
  unsigned value = 0;
  size_t digits = 0;
  for (char c : text) {
    if (c == '.') {
      if (digits == 0 || part == 3 || value > 255)
        return false;
      out[part++] = static_cast<uint8_t>(value);
      value = 0;
      digits = 0;
    } else if (c >= '0' && c <= '9' && digits < 3) {
      value = value * 10 + static_cast<unsigned>(c - '0');
      ++digits;
    } else {
      return false;
    }
  }
  if (part != 3 || digits == 0 || value > 255)
    return false;
  out[3] = static_cast<uint8_t>(value);
  return true;
}

// What `ip_bytes` gives, faster for IPv4: its canonical text is dotted
// decimal, read directly instead of through a sockaddr (the per-add cost
// of that was measurable). Anything else takes the general way.
bool address_bytes(const net_address& a,
                   std::array<uint8_t, 16>& out) noexcept {
  if (a.type() == net_address::kind::ipv4) {
    out.fill(0);
    if (parse_dotted(a.host(), out.data()))
      return true;
  }
  return ip_bytes(a, out);
}

// Every input starts with a word whose low byte is the tag and whose next
// byte is the family, so inputs of different uses or families never equal.
// IP addresses and groups hash their bytes as whole words (one word for
// IPv4): no text, no byte-by-byte feeding.
uint64_t hash_address(uint64_t k0, uint64_t k1, const net_address& a, bool ip,
                      const std::array<uint8_t, 16>& b) noexcept {
  auto head = uint64_t{tag_address}
    | uint64_t{static_cast<uint8_t>(a.type())} << 8 | uint64_t{a.port()} << 16;
  siphasher h{k0, k1};
  if (!ip) {
    // The host text is canonical (see net_address), so it identifies the
    // host.
    h.write_u64(head);
    h.write_str(a.host());
    return h.finish();
  }
  if (a.type() == net_address::kind::ipv4)
    return h.write_u64(head | load_le(b.data(), 4) << 32).finish();
  h.write_u64(head);
  h.write_u64(load_le(b.data(), 8));
  h.write_u64(load_le(b.data() + 8, 8));
  return h.finish();
}

uint64_t hash_address(uint64_t k0, uint64_t k1, const net_address& a) noexcept {
  std::array<uint8_t, 16> b;
  bool ip = address_bytes(a, b);
  return hash_address(k0, k1, a, ip, b);
}

uint64_t group_head(const netgroup& g) noexcept {
  return uint64_t{tag_group} | uint64_t{static_cast<uint8_t>(g.type())} << 8
    | uint64_t{static_cast<uint8_t>(g.bits())} << 16;
}

// An IPv4 group as one word (tag, family, bits, prefix; never 0), equal
// for two groups exactly when they are equal; 0 for other families.
uint64_t ipv4_key(const netgroup& g) noexcept {
  if (g.type() != netgroup::family::ipv4)
    return 0;
  return group_head(g) | load_le(g.prefix().data(), 4) << 24;
}

// `ipv4_key(netgroup_of(a, bits_ipv4, ...))` computed from the address's
// bytes `b` without building the netgroup: IPv4 and IPv4-mapped IPv6
// addresses group by their first `bits_ipv4` bits (1..32); 0 for others.
uint64_t ipv4_key_of(const net_address& a, bool ip,
                     const std::array<uint8_t, 16>& b,
                     uint32_t bits_ipv4) noexcept {
  if (!ip)
    return 0;
  const uint8_t* v4 = b.data();
  if (a.type() != net_address::kind::ipv4) {
    for (size_t i = 0; i < 10; ++i)
      if (b[i] != 0)
        return 0;
    if (b[10] != 0xff || b[11] != 0xff)
      return 0;
    v4 = b.data() + 12;
  }
  uint32_t prefix = uint32_t{v4[0]} << 24 | uint32_t{v4[1]} << 16
    | uint32_t{v4[2]} << 8 | uint32_t{v4[3]};
  if (bits_ipv4 < 32)
    prefix &= ~(UINT32_MAX >> bits_ipv4);
  // The bytes in address order, as `load_le` reads the netgroup's prefix.
  uint64_t le = uint64_t{prefix >> 24} | uint64_t{(prefix >> 16) & 0xff} << 8
    | uint64_t{(prefix >> 8) & 0xff} << 16 | uint64_t{prefix & 0xff} << 24;
  return uint64_t{tag_group}
  | uint64_t{static_cast<uint8_t>(netgroup::family::ipv4)} << 8
    | uint64_t{static_cast<uint8_t>(bits_ipv4)} << 16 | le << 24;
}

// The keyed hash of an IPv4 group has its lowest bit set, that of any other
// group clear: two groups with equal hashes are of the same kind, so that an
// IPv4 group is identified by its hash and its prefix (see `find_group`).
uint64_t hash_ipv4_key(uint64_t k0, uint64_t k1, uint64_t key) noexcept {
  return siphasher{k0, k1}.write_u64(key).finish() | 1;
}

// The part of an IPv4 key that differs between groups of one manager (tag,
// family and bit count are the same for all).
uint32_t ipv4_prefix(uint64_t key) noexcept {
  return static_cast<uint32_t>(key >> 24);
}

uint64_t hash_group(uint64_t k0, uint64_t k1, const netgroup& g) noexcept {
  siphasher h{k0, k1};
  switch (g.type()) {
    case netgroup::family::ipv4:
      return hash_ipv4_key(k0, k1, ipv4_key(g));
    case netgroup::family::ipv6:
      h.write_u64(group_head(g));
      h.write_u64(load_le(g.prefix().data(), 8));
      h.write_u64(load_le(g.prefix().data() + 8, 8));
      return h.finish() & ~uint64_t{1};
    case netgroup::family::hostname:
      break;
  }
  h.write_u64(group_head(g));
  h.write_str(g.name());
  return h.finish() & ~uint64_t{1};
}

// The keyed hash of a tag word and one or two earlier keyed hashes. The
// earlier hashes stand for their inputs: two different inputs give equal
// hashes with chance 2^-64, and without the key nobody can tell which.
uint64_t hash_words(uint64_t k0, uint64_t k1, uint64_t head,
                    uint64_t x) noexcept {
  return siphasher{k0, k1}.write_u64(head).write_u64(x).finish();
}

uint64_t hash_words(uint64_t k0, uint64_t k1, uint64_t head, uint64_t x,
                    uint64_t y) noexcept {
  return siphasher{k0, k1}.write_u64(head).write_u64(x).write_u64(y).finish();
}

uint64_t splitmix64(uint64_t& state) noexcept {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

caf::error invalid(const char* field, const std::string& value,
                   const std::string& expected) {
  return make_error(
    errc::invalid_config,
    fmt::format("{} = {}, expected {}", field, value, expected));
}

address_manager_config clamped(address_manager_config cfg) {
  auto clamp_table = [](size_t& count, size_t& size, size_t& per_group) {
    count = std::clamp<size_t>(count, 1, max_table_slots);
    size = std::clamp<size_t>(size, 1, max_table_slots / count);
    per_group = std::clamp<size_t>(per_group, 1, count);
  };
  clamp_table(cfg.new_bucket_count, cfg.new_bucket_size,
              cfg.new_buckets_per_source_group);
  clamp_table(cfg.tried_bucket_count, cfg.tried_bucket_size,
              cfg.tried_buckets_per_group);
  cfg.netgroup_bits_ipv4 = std::clamp<uint32_t>(cfg.netgroup_bits_ipv4, 1, 32);
  cfg.netgroup_bits_ipv6 = std::clamp<uint32_t>(cfg.netgroup_bits_ipv6, 1, 128);
  cfg.backoff_base = std::max(cfg.backoff_base, caf::timespan{1});
  cfg.backoff_cap = std::max(cfg.backoff_cap, cfg.backoff_base);
  cfg.max_failures = std::max<uint32_t>(cfg.max_failures, 1);
  cfg.max_failures_never_connected =
    std::clamp<uint32_t>(cfg.max_failures_never_connected, 1, cfg.max_failures);
  cfg.horizon = std::max(cfg.horizon, caf::timespan{1});
  cfg.tried_replace_failures =
    std::max<uint32_t>(cfg.tried_replace_failures, 1);
  return cfg;
}

} // namespace

caf::error validate(const address_manager_config& cfg) {
  auto check_table = [](const char* count_name, size_t count,
                        const char* size_name, size_t size,
                        const char* per_name, size_t per) -> caf::error {
    if (count < 1 || count > max_table_slots)
      return invalid(count_name, std::to_string(count),
                     fmt::format("1..{}", max_table_slots));
    if (size < 1 || size > max_table_slots / count)
      return invalid(size_name, std::to_string(size),
                     fmt::format("1..{} (at most {} slots per table)",
                                 max_table_slots / count, max_table_slots));
    if (per < 1 || per > count)
      return invalid(per_name, std::to_string(per),
                     fmt::format("1..{} ({})", count, count_name));
    return caf::none;
  };
  if (auto err =
        check_table("new_bucket_count", cfg.new_bucket_count, "new_bucket_size",
                    cfg.new_bucket_size, "new_buckets_per_source_group",
                    cfg.new_buckets_per_source_group))
    return err;
  if (auto err =
        check_table("tried_bucket_count", cfg.tried_bucket_count,
                    "tried_bucket_size", cfg.tried_bucket_size,
                    "tried_buckets_per_group", cfg.tried_buckets_per_group))
    return err;
  if (cfg.netgroup_bits_ipv4 < 1 || cfg.netgroup_bits_ipv4 > 32)
    return invalid("netgroup_bits_ipv4", std::to_string(cfg.netgroup_bits_ipv4),
                   "1..32");
  if (cfg.netgroup_bits_ipv6 < 1 || cfg.netgroup_bits_ipv6 > 128)
    return invalid("netgroup_bits_ipv6", std::to_string(cfg.netgroup_bits_ipv6),
                   "1..128");
  if (cfg.backoff_base <= caf::timespan{0})
    return invalid("backoff_base", to_string_duration(cfg.backoff_base), "> 0");
  if (cfg.backoff_cap < cfg.backoff_base)
    return invalid("backoff_cap", to_string_duration(cfg.backoff_cap),
                   ">= backoff_base");
  if (cfg.max_failures < 1)
    return invalid("max_failures", std::to_string(cfg.max_failures), ">= 1");
  if (cfg.max_failures_never_connected < 1
      || cfg.max_failures_never_connected > cfg.max_failures)
    return invalid("max_failures_never_connected",
                   std::to_string(cfg.max_failures_never_connected),
                   fmt::format("1..{} (max_failures)", cfg.max_failures));
  if (cfg.horizon <= caf::timespan{0})
    return invalid("horizon", to_string_duration(cfg.horizon), "> 0");
  if (cfg.tried_replace_failures < 1)
    return invalid("tried_replace_failures",
                   std::to_string(cfg.tried_replace_failures), ">= 1");
  return caf::none;
}

const char* to_string(add_result x) noexcept {
  switch (x) {
    case add_result::added:
      return "added";
    case add_result::replaced:
      return "replaced";
    case add_result::known:
      return "known";
    case add_result::excluded:
      return "excluded";
    case add_result::slot_taken:
      return "slot_taken";
  }
  return "unknown";
}

// -- construction and hashing ----------------------------------------------------

address_manager::address_manager(address_manager_config cfg)
  : cfg_(clamped(cfg)) {
  uint64_t seed_state = cfg_.seed;
  key0_ = splitmix64(seed_state);
  key1_ = splitmix64(seed_state);
  rng_state_ = splitmix64(seed_state);
  in_use_unstored_ = decltype(in_use_unstored_)(0, address_hash{key0_, key1_});
  excluded_ = decltype(excluded_)(0, address_hash{key0_, key1_});
  new_slots_.assign(cfg_.new_bucket_count * cfg_.new_bucket_size, slot_cell{});
  tried_slots_.assign(cfg_.tried_bucket_count * cfg_.tried_bucket_size,
                      slot_cell{});
  if (cfg_.netgroup_bits_ipv4 <= 16)
    v4_groups_.assign(size_t{1} << cfg_.netgroup_bits_ipv4, npos);
  // The common paths rely on these being one cache line each.
  static_assert(sizeof(entry) == 64);
  static_assert(sizeof(group_info) == 64);
}

size_t
address_manager::address_hash::operator()(const net_address& x) const noexcept {
  return static_cast<size_t>(hash_address(k0, k1, x));
}

uint64_t address_manager::hash_of(const net_address& addr) const noexcept {
  return hash_address(key0_, key1_, addr);
}

uint64_t address_manager::hash_of(const netgroup& group) const noexcept {
  return hash_group(key0_, key1_, group);
}

uint32_t address_manager::find(const net_address& addr) const {
  return index_.find(hash_of(addr), [&](uint32_t id, uint32_t) {
    return infos_[id].address == addr;
  });
}

// The prefix's bits in address order, as a number below 2^bits.
uint32_t address_manager::v4_index(uint64_t v4_key) const noexcept {
  auto le = ipv4_prefix(v4_key);
  uint32_t prefix = (le & 0xff) << 24 | ((le >> 8) & 0xff) << 16
    | ((le >> 16) & 0xff) << 8 | le >> 24;
  return prefix >> (32 - cfg_.netgroup_bits_ipv4);
}

// `hash` is not needed (may be 0) when `direct(v4_key)`.
uint32_t address_manager::find_group(const netgroup* group, uint64_t h,
                                     uint64_t v4_key) const {
  if (direct(v4_key))
    return v4_groups_[v4_index(v4_key)];
  // Equal hashes mean groups of the same kind (see `hash_ipv4_key`).
  return group_ids_.find(h, [&](uint32_t gid, uint32_t check) {
    if (v4_key != 0)
      return check == ipv4_prefix(v4_key);
    return group_names_[gid] == *group;
  });
}

netgroup address_manager::group_of(const net_address& addr) const {
  // The bit counts are clamped into range, so this cannot fail.
  auto g = netgroup_of(addr, cfg_.netgroup_bits_ipv4, cfg_.netgroup_bits_ipv6);
  return g ? std::move(*g) : netgroup{};
}

// Two steps, as in Core: the address's group picks one of the source's
// `new_buckets_per_source_group` "lanes", and only the lane number and the
// source group pick the bucket, so one source group can never name more
// buckets than it has lanes. Sourceless entries (config, DNS, hello) form
// one source group of their own, which no network group can equal: their
// tag words differ.
//
// The tag words say which words are raw IPv4 keys and whether there is a
// source, so that no two different inputs hash the same words. The outer
// hash sees nothing of the address's group.
uint32_t address_manager::new_bucket_of(group_word group,
                                        const group_word* source) const {
  uint64_t source_flags = 0;
  if (source != nullptr)
    source_flags = source->raw ? 6 : 2;
  auto inner_head =
    uint64_t{tag_new_inner} | (source_flags | (group.raw ? 1 : 0)) << 8;
  uint64_t lane;
  uint64_t bucket;
  if (source != nullptr) {
    lane =
      reduce(hash_words(key0_, key1_, inner_head, group.word, source->word),
             cfg_.new_buckets_per_source_group);
    bucket = hash_words(
      key0_, key1_, uint64_t{tag_new_outer} | source_flags << 8 | lane << 16,
      source->word);
  } else {
    lane = reduce(hash_words(key0_, key1_, inner_head, group.word),
                  cfg_.new_buckets_per_source_group);
    bucket = siphasher{key0_, key1_}
               .write_u64(uint64_t{tag_new_outer} | lane << 16)
               .finish();
  }
  return reduce(bucket, cfg_.new_bucket_count);
}

// Same shape: the address picks one of its group's lanes, the group and the
// lane pick the bucket.
uint32_t address_manager::tried_bucket_of(uint64_t addr_hash,
                                          uint64_t group_hash) const {
  uint64_t lane = reduce(hash_words(key0_, key1_, tag_tried_inner, addr_hash),
                         cfg_.tried_buckets_per_group);
  return reduce(hash_words(key0_, key1_, uint64_t{tag_tried_outer} | lane << 16,
                           group_hash),
                cfg_.tried_bucket_count);
}

uint32_t address_manager::slot_of(bool tried, uint32_t bucket,
                                  uint64_t addr_hash) const {
  auto head = uint64_t{tag_slot} | uint64_t{tried ? 1u : 0u} << 8
    | uint64_t{bucket} << 16;
  auto size = tried ? cfg_.tried_bucket_size : cfg_.new_bucket_size;
  return reduce(hash_words(key0_, key1_, head, addr_hash), size);
}

address_manager::slot_cell&
address_manager::slot_ref(bool tried, uint32_t bucket, uint32_t slot) {
  if (tried)
    return tried_slots_[size_t{bucket} * cfg_.tried_bucket_size + slot];
  return new_slots_[size_t{bucket} * cfg_.new_bucket_size + slot];
}

void address_manager::occupy(slot_cell& cell, uint32_t id) {
  const auto& e = entries_[id];
  cell.id = id;
  cell.group = e.group;
  cell.hash_lo = static_cast<uint32_t>(e.hash);
  cell.st = e.st;
  cell.failing = failing(e);
  cell.last_seen = e.last_seen;
}

// After any change of the entry's state, failures or last_seen, while it
// is in its slot. Writes without reading the cell, which is likely not in
// the cache.
void address_manager::refresh_cell(uint32_t id) {
  const auto& e = entries_[id];
  auto& cell = slot_ref(e.tried, e.bucket, e.slot);
  cell.st = e.st;
  cell.failing = failing(e);
  cell.last_seen = e.last_seen;
}

uint64_t address_manager::next_random() noexcept {
  return splitmix64(rng_state_);
}

// The bias (as for a modulo) is below n / 2^64, far too small to matter here.
uint64_t address_manager::below(uint64_t n) noexcept {
  return scale(next_random(), n);
}

caf::timespan address_manager::backoff(uint32_t failures) const noexcept {
  if (failures == 0)
    return caf::timespan{0};
  auto delay = cfg_.backoff_base;
  const auto cap = cfg_.backoff_cap;
  // Doubling stops as soon as it would pass the cap, so `delay + delay`
  // never overflows.
  for (uint32_t i = 1; i < failures; ++i) {
    if (delay > cap - delay)
      return cap;
    delay += delay;
  }
  return std::min(delay, cap);
}

// -- entry bookkeeping -------------------------------------------------------------

uint32_t address_manager::intern(const net_address& addr, const netgroup* group,
                                 uint64_t h, uint64_t v4_key) {
  if (auto found = find_group(group, h, v4_key); found != npos) {
    ++groups_[found].refs;
    return found;
  }
  uint32_t gid;
  if (!free_groups_.empty()) {
    gid = free_groups_.back();
    free_groups_.pop_back();
  } else {
    gid = static_cast<uint32_t>(groups_.size());
    groups_.emplace_back();
    group_names_.emplace_back();
    ready_pos_[0].push_back(npos);
    ready_pos_[1].push_back(npos);
  }
  auto& g = groups_[gid];
  g.refs = 1;
  group_names_[gid] = group != nullptr ? *group : group_of(addr);
  if (direct(v4_key)) {
    g.hash = hash_ipv4_key(key0_, key1_, v4_key);
    g.v4_index = v4_index(v4_key);
    v4_groups_[g.v4_index] = gid;
  } else {
    g.hash = h;
    g.v4_index = npos;
    group_ids_.insert(h, gid, v4_key != 0 ? ipv4_prefix(v4_key) : 0);
  }
  ++group_epoch_;
  return gid;
}

void address_manager::unref(uint32_t gid) {
  auto& g = groups_[gid];
  if (--g.refs > 0)
    return;
  // Every entry of the group is gone, so its pools are empty (their
  // capacity stays for the next group that gets this id).
  if (g.v4_index != npos)
    v4_groups_[g.v4_index] = npos;
  else
    group_ids_.erase(g.hash, gid);
  free_groups_.push_back(gid);
  ++group_epoch_;
}

void address_manager::make_ready(uint32_t id) {
  auto& e = entries_[id];
  auto t = e.tried ? 1 : 0;
  auto& pool = groups_[e.group].pool[t];
  pool_pos_[id] = pool.size();
  pool.push_back(id);
  auto& pos = ready_pos_[t][e.group];
  if (pos == npos) {
    pos = static_cast<uint32_t>(ready_groups_[t].size());
    ready_groups_[t].push_back(ready_group{e.group, 1, {{id, npos}}});
  } else {
    mirror_pool(t, e.group);
  }
}

// Copies the size and the first ids of a group's nonempty pool to its
// `ready_groups_` element.
void address_manager::mirror_pool(int t, uint32_t gid) {
  const auto& pool = groups_[gid].pool[t];
  auto& rg = ready_groups_[t][ready_pos_[t][gid]];
  rg.size = pool.size();
  for (uint32_t i = 0; i < 2 && i < pool.size(); ++i)
    rg.ids[i] = pool[i];
}

// Takes the entry's table and group from the caller, so that eviction need
// not read the entry.
void address_manager::unready(uint32_t id, int t, uint32_t gid) {
  auto pos_in_pool = pool_pos_[id];
  if (pos_in_pool == npos)
    return;
  auto& pool = groups_[gid].pool[t];
  auto moved = pool[pool.size() - 1];
  pool[pos_in_pool] = moved;
  pool_pos_[moved] = pos_in_pool;
  pool.pop_back();
  pool_pos_[id] = npos;
  if (!pool.empty()) {
    mirror_pool(t, gid);
    return;
  }
  auto& rg = ready_groups_[t];
  auto& ready_pos = ready_pos_[t];
  auto pos = ready_pos[gid];
  auto moved_group = rg.back();
  rg[pos] = moved_group;
  ready_pos[moved_group.group] = pos;
  rg.pop_back();
  ready_pos[gid] = npos;
}

void address_manager::leave_state(uint32_t id) {
  auto& e = entries_[id];
  switch (e.st) {
    case state::ready:
      unready(id, e.tried ? 1 : 0, e.group);
      break;
    case state::in_use:
      --in_use_stored_;
      break;
    case state::backing_off:
      backoff_.erase({e.retry_at, id});
      break;
  }
}

void address_manager::enter_state(uint32_t id, state st) {
  auto& e = entries_[id];
  e.st = st;
  refresh_cell(id);
  switch (st) {
    case state::ready:
      make_ready(id);
      break;
    case state::in_use:
      ++in_use_stored_;
      break;
    case state::backing_off:
      backoff_.emplace(e.retry_at, id);
      break;
  }
}

// Leaves `infos_[id]` as it is: the next entry of this id overwrites every
// field of it.
void address_manager::erase_entry(uint32_t id) {
  auto& e = entries_[id];
  if (e.st == state::in_use)
    in_use_unstored_.insert(infos_[id].address);
  leave_state(id);
  slot_ref(e.tried, e.bucket, e.slot) = slot_cell{};
  if (e.tried)
    --tried_count_;
  index_.erase(e.hash, id);
  unref(e.group);
  e.group = npos;
  free_ids_.push_back(id);
}

bool address_manager::failing(const entry& e) const {
  return e.failures >= cfg_.max_failures
    || (!e.connected && e.failures >= cfg_.max_failures_never_connected);
}

bool address_manager::terrible(const entry& e, time_point now) const {
  if (e.st == state::in_use)
    return false;
  return failing(e) || now - e.last_seen > cfg_.horizon;
}

// Same answer as for the entry (see `refresh_cell`).
bool address_manager::terrible(const slot_cell& c, time_point now) const {
  if (c.st == state::in_use)
    return false;
  return c.failing || now - c.last_seen > cfg_.horizon;
}

// `erase_entry` for the occupant of a new-table cell that is not in use,
// from the cell alone: the entry's own line is only written.
void address_manager::evict_new(slot_cell& cell) {
  auto id = cell.id;
  switch (cell.st) {
    case state::ready:
      unready(id, 0, cell.group);
      break;
    case state::in_use:
      // Never evicted (see `terrible`); handled for completeness.
      erase_entry(id);
      return;
    case state::backing_off:
      backoff_.erase({entries_[id].retry_at, id});
      break;
  }
  index_.erase(cell.hash_lo, id);
  unref(cell.group);
  entries_[id].group = npos;
  free_ids_.push_back(id);
  cell = slot_cell{};
}

void address_manager::drain_backoff(time_point now) {
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    auto id = backoff_.begin()->second;
    leave_state(id);
    enter_state(id, state::ready);
  }
}

// -- contents ------------------------------------------------------------------------

add_result address_manager::add(const net_address& addr,
                                const std::optional<net_address>& source,
                                time_point now) {
  auto done = [this](add_result r) {
    ++stats_.adds[static_cast<size_t>(r)];
    return r;
  };
  if (!excluded_.empty() && excluded_.count(addr) > 0)
    return done(add_result::excluded);
  // At 100 000 entries each table touched below is a likely cache miss:
  // every line is fetched as soon as its position is known, so that the
  // misses overlap with each other and with the hashing. IPv4 groups (and
  // IPv4-mapped ones) come straight from the address's bytes.
  std::array<uint8_t, 16> bytes;
  bool ip = address_bytes(addr, bytes);
  auto h = hash_address(key0_, key1_, addr, ip, bytes);
  index_.prefetch(h);
  auto v4_key = ipv4_key_of(addr, ip, bytes, cfg_.netgroup_bits_ipv4);
  std::optional<netgroup> group; // only for groups other than IPv4
  uint64_t group_h = 0; // not needed for a direct IPv4 group
  if (direct(v4_key)) {
    __builtin_prefetch(&v4_groups_[v4_index(v4_key)]);
  } else {
    if (v4_key != 0) {
      group_h = hash_ipv4_key(key0_, key1_, v4_key);
    } else {
      group = group_of(addr);
      group_h = hash_of(*group);
    }
    group_ids_.prefetch(group_h);
  }
  group_word source_word{0, false};
  if (source) {
    ip = address_bytes(*source, bytes);
    if (auto k = ipv4_key_of(*source, ip, bytes, cfg_.netgroup_bits_ipv4))
      source_word = group_word{k, true};
    else
      source_word = group_word{hash_of(group_of(*source)), false};
  }
  auto bucket = new_bucket_of(v4_key != 0 ? group_word{v4_key, true}
                                          : group_word{group_h, false},
                              source ? &source_word : nullptr);
  auto slot = slot_of(false, bucket, h);
  auto* cell = &slot_ref(false, bucket, slot);
  __builtin_prefetch(cell);
  auto gid = find_group(group ? &*group : nullptr, group_h, v4_key);
  if (gid != npos)
    __builtin_prefetch(&groups_[gid]);
  auto known = index_.find(
    h, [&](uint32_t id, uint32_t) { return infos_[id].address == addr; });
  if (known != npos) {
    auto& e = entries_[known];
    e.last_seen = std::max(e.last_seen, now);
    refresh_cell(known);
    return done(add_result::known);
  }
  auto result = add_result::added;
  if (cell->id != npos) {
    // A free slot among the next few keeps both: in a sparse bucket (a
    // small network, or every peer on one host) two addresses must not
    // shadow each other. A full run of them leaves the hashed slot's
    // occupant to decide, as below.
    auto size = static_cast<uint32_t>(cfg_.new_bucket_size);
    auto probes = std::min<uint32_t>(size, new_slot_probes);
    for (uint32_t i = 1; i < probes; ++i) {
      auto next = (slot + i) % size;
      if (slot_ref(false, bucket, next).id == npos) {
        slot = next;
        cell = &slot_ref(false, bucket, next);
        break;
      }
    }
  }
  if (auto occupant = cell->id; occupant != npos) {
    if (!terrible(*cell, now))
      return done(add_result::slot_taken);
    // All that evicting it reads, at once.
    __builtin_prefetch(&groups_[cell->group]);
    __builtin_prefetch(&pool_pos_[occupant]);
    index_.prefetch(cell->hash_lo);
    __builtin_prefetch(&infos_[occupant], 1);
    evict_new(*cell);
    result = add_result::replaced;
  }
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
    infos_.emplace_back();
    pool_pos_.push_back(npos);
  }
  auto& e = entries_[id];
  e = entry{};
  e.hash = h;
  e.last_seen = now;
  // The group found above is still valid unless evicting emptied it.
  if (gid != npos && groups_[gid].refs > 0)
    ++groups_[gid].refs;
  else
    gid = intern(addr, group ? &*group : nullptr, group_h, v4_key);
  e.group = gid;
  e.home_bucket = bucket;
  e.bucket = bucket;
  e.slot = slot;
  auto& info = infos_[id];
  info.address = addr;
  info.source = source;
  info.added_at = now;
  info.attempts = 0;
  info.last_attempt.reset();
  info.last_success.reset();
  info.last_failure.reset();
  occupy(*cell, id);
  index_.insert(h, id);
  bool busy = !in_use_unstored_.empty() && in_use_unstored_.erase(addr) > 0;
  enter_state(id, busy ? state::in_use : state::ready);
  return done(result);
}

bool address_manager::remove(const net_address& addr) {
  auto id = find(addr);
  if (id == npos)
    return false;
  erase_entry(id);
  return true;
}

bool address_manager::contains(const net_address& addr) const {
  return find(addr) != npos;
}

std::vector<managed_address> address_manager::snapshot() const {
  std::vector<managed_address> result;
  result.reserve(index_.size());
  for (size_t id = 0; id < entries_.size(); ++id) {
    const auto& e = entries_[id];
    if (e.group == npos)
      continue; // a free id
    const auto& info = infos_[id];
    managed_address m;
    m.address = info.address;
    m.source = info.source;
    m.group = group_names_[e.group];
    m.tried = e.tried;
    m.bucket = e.bucket;
    m.slot = e.slot;
    m.added_at = info.added_at;
    m.last_seen = e.last_seen;
    m.attempts = info.attempts;
    m.failures = e.failures;
    m.last_attempt = info.last_attempt;
    m.last_success = info.last_success;
    m.last_failure = info.last_failure;
    if (e.failures > 0)
      m.retry_at = e.retry_at;
    m.in_use = e.st == state::in_use;
    result.push_back(std::move(m));
  }
  std::sort(result.begin(), result.end(),
            [](const managed_address& x, const managed_address& y) {
              return x.address < y.address;
            });
  return result;
}

// -- handing out -------------------------------------------------------------------

uint32_t address_manager::pick(int table, const std::vector<uint32_t>& avoid) {
  auto& rg = ready_groups_[table];
  if (rg.empty())
    return npos;
  // Positions of the avoided groups among this table's candidate groups;
  // the r-th group that is not avoided is found by stepping r over them.
  auto& skipped = skipped_;
  skipped.clear();
  for (auto gid : avoid)
    if (auto pos = ready_pos_[table][gid]; pos != npos)
      skipped.push_back(pos);
  if (skipped.size() == rg.size())
    return npos;
  std::sort(skipped.begin(), skipped.end());
  auto r = below(rg.size() - skipped.size());
  for (auto pos : skipped)
    if (pos <= r)
      ++r;
  const auto& g = rg[r];
  // Taking the entry out of the pool reads the group's line.
  __builtin_prefetch(&groups_[g.group]);
  if (g.size == 1)
    return g.ids[0];
  auto i = below(g.size);
  if (i < g.ids.size())
    return g.ids[i];
  return groups_[g.group].pool[table][i];
}

caf::expected<net_address>
address_manager::take(time_point now, const std::vector<netgroup>& avoid) {
  drain_backoff(now);
  auto& avoided = avoided_;
  if (avoided_epoch_ != group_epoch_ || avoid != avoid_groups_) {
    avoided.clear();
    for (const auto& g : avoid) {
      auto gid = find_group(&g, hash_of(g), ipv4_key(g));
      if (gid != npos
          && std::find(avoided.begin(), avoided.end(), gid) == avoided.end())
        avoided.push_back(gid);
    }
    avoid_groups_ = avoid;
    avoided_epoch_ = group_epoch_;
  }
  int first = 0;
  if (!ready_groups_[0].empty() && !ready_groups_[1].empty())
    first = static_cast<int>(below(2));
  auto id = pick(first, avoided);
  if (id == npos)
    id = pick(1 - first, avoided);
  if (id == npos) {
    if (index_.size() == 0)
      return make_error(errc::no_address, "the address manager is empty");
    size_t in_avoided = 0;
    for (auto gid : avoided)
      in_avoided += groups_[gid].pool[0].size() + groups_[gid].pool[1].size();
    auto context = fmt::format("{} known ({} tried), {} in use, {} backing"
                               " off, {} in avoided network groups",
                               size(), tried_count_, in_use_stored_,
                               backoff_.size(), in_avoided);
    if (!backoff_.empty())
      context += fmt::format(" (next in {})",
                             to_string_duration(backoff_.begin()->first - now));
    return make_error(errc::no_address, std::move(context));
  }
  // Both lines are likely misses: fetch them together.
  __builtin_prefetch(&entries_[id]);
  auto& info = infos_[id];
  if (info.attempts < std::numeric_limits<uint32_t>::max())
    ++info.attempts;
  info.last_attempt = now;
  leave_state(id);
  enter_state(id, state::in_use);
  return info.address;
}

bool address_manager::mark_connected(const net_address& addr, time_point now) {
  auto id = find(addr);
  if (id == npos) {
    in_use_unstored_.insert(addr);
    return false;
  }
  auto& e = entries_[id];
  leave_state(id);
  e.failures = 0;
  e.connected = true;
  infos_[id].last_success = now;
  e.last_seen = std::max(e.last_seen, now);
  enter_state(id, state::in_use);
  if (e.tried)
    return true;
  auto bucket = tried_bucket_of(e.hash, groups_[e.group].hash);
  auto slot = slot_of(true, bucket, e.hash);
  auto occupant = slot_ref(true, bucket, slot).id;
  if (occupant != npos) {
    const auto& o = entries_[occupant];
    if (o.st == state::in_use || o.failures < cfg_.tried_replace_failures) {
      ++stats_.tried_slot_kept;
      return true;
    }
  }
  // Leave the new table first: the occupant's way back may be this slot.
  slot_ref(false, e.bucket, e.slot) = slot_cell{};
  if (occupant != npos)
    demote(occupant, now);
  e.tried = true;
  e.bucket = bucket;
  e.slot = slot;
  occupy(slot_ref(true, bucket, slot), id);
  ++tried_count_;
  ++stats_.promoted;
  return true;
}

bool address_manager::mark_in_use(const net_address& addr) {
  auto id = find(addr);
  if (id == npos) {
    in_use_unstored_.insert(addr);
    return false;
  }
  leave_state(id);
  enter_state(id, state::in_use);
  return true;
}

void address_manager::demote(uint32_t id, time_point now) {
  auto& o = entries_[id];
  auto home = o.home_bucket;
  auto slot = slot_of(false, home, o.hash);
  auto occupant = slot_ref(false, home, slot).id;
  if (occupant != npos) {
    const auto& q = entries_[occupant];
    bool better = o.connected && !q.connected;
    if (q.st == state::in_use || (!terrible(q, now) && !better)) {
      ++stats_.demoted_dropped;
      erase_entry(id);
      return;
    }
    erase_entry(occupant);
  }
  bool was_ready = o.st == state::ready;
  if (was_ready)
    unready(id, 1, o.group);
  slot_ref(true, o.bucket, o.slot) = slot_cell{};
  --tried_count_;
  o.tried = false;
  o.bucket = home;
  o.slot = slot;
  occupy(slot_ref(false, home, slot), id);
  if (was_ready)
    make_ready(id);
  ++stats_.demoted;
}

bool address_manager::mark_failed(const net_address& addr, time_point now) {
  auto id = find(addr);
  if (id == npos) {
    in_use_unstored_.erase(addr);
    return false;
  }
  auto& e = entries_[id];
  leave_state(id);
  if (e.failures < std::numeric_limits<uint32_t>::max())
    ++e.failures;
  infos_[id].last_failure = now;
  e.retry_at = now + backoff(e.failures);
  enter_state(id, state::backing_off);
  return true;
}

bool address_manager::release(const net_address& addr) {
  auto id = find(addr);
  if (id == npos)
    return in_use_unstored_.erase(addr) > 0;
  if (entries_[id].st != state::in_use)
    return false;
  leave_state(id);
  // Past backoffs are moved to ready by the next take.
  enter_state(id,
              entries_[id].failures > 0 ? state::backing_off : state::ready);
  return true;
}

bool address_manager::in_use(const net_address& addr) const {
  auto id = find(addr);
  if (id != npos)
    return entries_[id].st == state::in_use;
  return in_use_unstored_.count(addr) > 0;
}

bool address_manager::exclude(const net_address& addr) {
  excluded_.insert(addr);
  return remove(addr);
}

bool address_manager::is_excluded(const net_address& addr) const {
  return excluded_.count(addr) > 0;
}

} // namespace connmgr
