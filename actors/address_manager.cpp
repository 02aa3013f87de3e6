#include "actors/address_manager.hpp"

#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "messages/error_code.hpp"
#include "messages/manager_config.hpp"
#include "net/siphash.hpp"

namespace connmgr {

namespace {

// Most slots of one table: keeps ids and slot indexes far below `npos`, and
// the empty tables (4 bytes a slot) below 64 MB.
constexpr size_t max_table_slots = size_t{1} << 24;

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

void feed(siphasher& h, const netgroup& g) {
  h.write_u8(static_cast<uint8_t>(g.type()));
  if (g.type() == netgroup::family::hostname) {
    h.write_str(g.name());
    return;
  }
  h.write_u8(static_cast<uint8_t>(g.bits()));
  h.write(g.prefix().data(), g.type() == netgroup::family::ipv4 ? 4 : 16);
}

// The host text is canonical (see net_address), so it identifies the host.
void feed(siphasher& h, const net_address& a) {
  h.write_u8(static_cast<uint8_t>(a.type()));
  h.write_str(a.host());
  uint8_t port[2] = {static_cast<uint8_t>(a.port() >> 8),
                     static_cast<uint8_t>(a.port() & 0xff)};
  h.write(port, 2);
}

// Sourceless entries (config, DNS, hello) form one source group of their
// own, which no network group can equal: it hashes a different marker.
void feed_source(siphasher& h, const std::optional<netgroup>& source_group) {
  if (!source_group) {
    h.write_u8(0);
    return;
  }
  h.write_u8(1);
  feed(h, *source_group);
}

uint64_t splitmix64(uint64_t& state) noexcept {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

caf::error invalid(const char* field, const std::string& value,
                   const std::string& expected) {
  return make_error(errc::invalid_config,
                    fmt::format("{} = {}, expected {}", field, value,
                                expected));
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
  cfg.netgroup_bits_ipv6 = std::clamp<uint32_t>(cfg.netgroup_bits_ipv6, 1,
                                                128);
  cfg.backoff_base = std::max(cfg.backoff_base, caf::timespan{1});
  cfg.backoff_cap = std::max(cfg.backoff_cap, cfg.backoff_base);
  cfg.max_failures = std::max<uint32_t>(cfg.max_failures, 1);
  cfg.max_failures_never_connected = std::clamp<uint32_t>(
    cfg.max_failures_never_connected, 1, cfg.max_failures);
  cfg.horizon = std::max(cfg.horizon, caf::timespan{1});
  cfg.tried_replace_failures = std::max<uint32_t>(cfg.tried_replace_failures,
                                                  1);
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
  if (auto err = check_table("new_bucket_count", cfg.new_bucket_count,
                             "new_bucket_size", cfg.new_bucket_size,
                             "new_buckets_per_source_group",
                             cfg.new_buckets_per_source_group))
    return err;
  if (auto err = check_table("tried_bucket_count", cfg.tried_bucket_count,
                             "tried_bucket_size", cfg.tried_bucket_size,
                             "tried_buckets_per_group",
                             cfg.tried_buckets_per_group))
    return err;
  if (cfg.netgroup_bits_ipv4 < 1 || cfg.netgroup_bits_ipv4 > 32)
    return invalid("netgroup_bits_ipv4", std::to_string(cfg.netgroup_bits_ipv4),
                   "1..32");
  if (cfg.netgroup_bits_ipv6 < 1 || cfg.netgroup_bits_ipv6 > 128)
    return invalid("netgroup_bits_ipv6", std::to_string(cfg.netgroup_bits_ipv6),
                   "1..128");
  if (cfg.backoff_base <= caf::timespan{0})
    return invalid("backoff_base", to_string_duration(cfg.backoff_base),
                   "> 0");
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
  in_use_unstored_ = decltype(in_use_unstored_)(0,
                                                address_hash{key0_, key1_});
  excluded_ = decltype(excluded_)(0, address_hash{key0_, key1_});
  new_slots_.assign(cfg_.new_bucket_count * cfg_.new_bucket_size, npos);
  tried_slots_.assign(cfg_.tried_bucket_count * cfg_.tried_bucket_size, npos);
}

size_t address_manager::address_hash::operator()(
  const net_address& x) const noexcept {
  siphasher h{k0, k1};
  h.write_u8(tag_address);
  feed(h, x);
  return static_cast<size_t>(h.finish());
}

uint64_t address_manager::hash_of(const net_address& addr) const noexcept {
  siphasher h{key0_, key1_};
  h.write_u8(tag_address);
  feed(h, addr);
  return h.finish();
}

uint64_t address_manager::hash_of(const netgroup& group) const noexcept {
  siphasher h{key0_, key1_};
  h.write_u8(tag_group);
  feed(h, group);
  return h.finish();
}

uint32_t address_manager::find(const net_address& addr) const {
  return index_.find(hash_of(addr), [&](uint32_t id) {
    return entries_[id].address == addr;
  });
}

// -- id_table ----------------------------------------------------------------------

void address_manager::id_table::insert(uint64_t h, uint32_t id) {
  // At most half full, so probe runs stay short.
  if ((count_ + 1) * 2 > cells_.size()) {
    std::vector<cell> old;
    old.swap(cells_);
    cells_.resize(std::max<size_t>(16, old.size() * 2));
    mask_ = cells_.size() - 1;
    count_ = 0;
    for (const auto& c : old)
      if (c.id != npos)
        insert(c.hash, c.id);
  }
  auto i = h & mask_;
  while (cells_[i].id != npos)
    i = (i + 1) & mask_;
  cells_[i] = cell{h, id};
  ++count_;
}

void address_manager::id_table::erase(uint64_t h, uint32_t id) {
  if (cells_.empty())
    return;
  auto i = h & mask_;
  while (cells_[i].id != id) {
    if (cells_[i].id == npos)
      return;
    i = (i + 1) & mask_;
  }
  // Backward-shift deletion: pull later cells of the run into the hole
  // when that brings them no further from their home cell, so that no
  // tombstones are needed.
  for (auto j = (i + 1) & mask_; cells_[j].id != npos; j = (j + 1) & mask_) {
    auto home = cells_[j].hash & mask_;
    if (((j - home) & mask_) >= ((j - i) & mask_)) {
      cells_[i] = cells_[j];
      i = j;
    }
  }
  cells_[i] = cell{};
  --count_;
}

netgroup address_manager::group_of(const net_address& addr) const {
  // The bit counts are clamped into range, so this cannot fail.
  auto g = netgroup_of(addr, cfg_.netgroup_bits_ipv4, cfg_.netgroup_bits_ipv6);
  return g ? std::move(*g) : netgroup{};
}

// Two steps, as in Core: the address's group picks one of the source's
// `new_buckets_per_source_group` "lanes", and only the lane number and the
// source group pick the bucket, so one source group can never name more
// buckets than it has lanes.
uint32_t address_manager::new_bucket_of(
  const netgroup& group, const std::optional<netgroup>& source_group) const {
  siphasher inner{key0_, key1_};
  inner.write_u8(tag_new_inner);
  feed(inner, group);
  feed_source(inner, source_group);
  auto lane = inner.finish() % cfg_.new_buckets_per_source_group;
  siphasher outer{key0_, key1_};
  outer.write_u8(tag_new_outer);
  feed_source(outer, source_group);
  outer.write_u64(lane);
  return static_cast<uint32_t>(outer.finish() % cfg_.new_bucket_count);
}

// Same shape: the address picks one of its group's lanes, the group and the
// lane pick the bucket.
uint32_t address_manager::tried_bucket_of(const net_address& addr,
                                          const netgroup& group) const {
  siphasher inner{key0_, key1_};
  inner.write_u8(tag_tried_inner);
  feed(inner, addr);
  auto lane = inner.finish() % cfg_.tried_buckets_per_group;
  siphasher outer{key0_, key1_};
  outer.write_u8(tag_tried_outer);
  feed(outer, group);
  outer.write_u64(lane);
  return static_cast<uint32_t>(outer.finish() % cfg_.tried_bucket_count);
}

uint32_t address_manager::slot_of(bool tried, uint32_t bucket,
                                  const net_address& addr) const {
  siphasher h{key0_, key1_};
  h.write_u8(tag_slot);
  h.write_u8(tried ? 1 : 0);
  h.write_u64(bucket);
  feed(h, addr);
  auto size = tried ? cfg_.tried_bucket_size : cfg_.new_bucket_size;
  return static_cast<uint32_t>(h.finish() % size);
}

uint32_t& address_manager::slot_ref(bool tried, uint32_t bucket,
                                    uint32_t slot) {
  if (tried)
    return tried_slots_[size_t{bucket} * cfg_.tried_bucket_size + slot];
  return new_slots_[size_t{bucket} * cfg_.new_bucket_size + slot];
}

uint64_t address_manager::next_random() noexcept {
  return splitmix64(rng_state_);
}

// The modulo bias is below n / 2^64, far too small to matter here.
uint64_t address_manager::below(uint64_t n) noexcept {
  return next_random() % n;
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

uint32_t address_manager::intern(const netgroup& group, uint64_t h) {
  auto found = group_ids_.find(h, [&](uint32_t gid) {
    return groups_[gid].group == group;
  });
  if (found != npos) {
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
  }
  groups_[gid].group = group;
  groups_[gid].hash = h;
  groups_[gid].refs = 1;
  group_ids_.insert(h, gid);
  return gid;
}

void address_manager::unref(uint32_t gid) {
  auto& g = groups_[gid];
  if (--g.refs > 0)
    return;
  // Every entry of the group is gone, so its pools are empty (their
  // capacity stays for the next group that gets this id).
  group_ids_.erase(g.hash, gid);
  g.group = netgroup{};
  free_groups_.push_back(gid);
}

void address_manager::make_ready(uint32_t id) {
  auto& e = entries_[id];
  auto t = e.tried ? 1 : 0;
  auto& g = groups_[e.group];
  e.pool_pos = static_cast<uint32_t>(g.pool[t].size());
  g.pool[t].push_back(id);
  if (g.ready_pos[t] == npos) {
    g.ready_pos[t] = static_cast<uint32_t>(ready_groups_[t].size());
    ready_groups_[t].push_back(e.group);
  }
}

void address_manager::unready(uint32_t id) {
  auto& e = entries_[id];
  if (e.pool_pos == npos)
    return;
  auto t = e.tried ? 1 : 0;
  auto& g = groups_[e.group];
  auto& pool = g.pool[t];
  auto moved = pool.back();
  pool[e.pool_pos] = moved;
  entries_[moved].pool_pos = e.pool_pos;
  pool.pop_back();
  e.pool_pos = npos;
  if (!pool.empty())
    return;
  auto& rg = ready_groups_[t];
  auto pos = g.ready_pos[t];
  auto moved_group = rg.back();
  rg[pos] = moved_group;
  groups_[moved_group].ready_pos[t] = pos;
  rg.pop_back();
  g.ready_pos[t] = npos;
}

void address_manager::leave_state(uint32_t id) {
  auto& e = entries_[id];
  switch (e.st) {
    case state::ready:
      unready(id);
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

void address_manager::erase_entry(uint32_t id) {
  auto& e = entries_[id];
  if (e.st == state::in_use)
    in_use_unstored_.insert(e.address);
  leave_state(id);
  slot_ref(e.tried, e.bucket, e.slot) = npos;
  if (e.tried)
    --tried_count_;
  index_.erase(e.hash, id);
  unref(e.group);
  e = entry{};
  free_ids_.push_back(id);
}

bool address_manager::terrible(const entry& e, time_point now) const {
  if (e.st == state::in_use)
    return false;
  if (e.failures >= cfg_.max_failures)
    return true;
  if (!e.last_success && e.failures >= cfg_.max_failures_never_connected)
    return true;
  return now - e.last_seen > cfg_.horizon;
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
  // The three tables touched below are far apart in memory at 100 000
  // entries: their cells are fetched while the hashes are computed.
  auto h = hash_of(addr);
  index_.prefetch(h);
  auto group = group_of(addr);
  auto group_h = hash_of(group);
  group_ids_.prefetch(group_h);
  std::optional<netgroup> source_group;
  if (source)
    source_group = group_of(*source);
  auto bucket = new_bucket_of(group, source_group);
  auto slot = slot_of(false, bucket, addr);
  auto& cell = slot_ref(false, bucket, slot);
  __builtin_prefetch(&cell);
  auto known = index_.find(h, [&](uint32_t id) {
    return entries_[id].address == addr;
  });
  if (known != npos) {
    auto& e = entries_[known];
    e.last_seen = std::max(e.last_seen, now);
    return done(add_result::known);
  }
  auto result = add_result::added;
  if (auto occupant = cell; occupant != npos) {
    if (!terrible(entries_[occupant], now))
      return done(add_result::slot_taken);
    erase_entry(occupant);
    result = add_result::replaced;
  }
  uint32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
  } else {
    id = static_cast<uint32_t>(entries_.size());
    entries_.emplace_back();
  }
  auto& e = entries_[id];
  e.address = addr;
  e.source = source;
  e.hash = h;
  e.group = intern(group, group_h);
  e.home_bucket = bucket;
  e.bucket = bucket;
  e.slot = slot;
  e.tried = false;
  e.added_at = now;
  e.last_seen = now;
  slot_ref(false, bucket, slot) = id;
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
  for (const auto& e : entries_) {
    if (e.group == npos)
      continue; // a free id
    managed_address m;
    m.address = e.address;
    m.source = e.source;
    m.group = groups_[e.group].group;
    m.tried = e.tried;
    m.bucket = e.bucket;
    m.slot = e.slot;
    m.added_at = e.added_at;
    m.last_seen = e.last_seen;
    m.attempts = e.attempts;
    m.failures = e.failures;
    m.last_attempt = e.last_attempt;
    m.last_success = e.last_success;
    m.last_failure = e.last_failure;
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
    if (auto pos = groups_[gid].ready_pos[table]; pos != npos)
      skipped.push_back(pos);
  if (skipped.size() == rg.size())
    return npos;
  std::sort(skipped.begin(), skipped.end());
  auto r = below(rg.size() - skipped.size());
  for (auto pos : skipped)
    if (pos <= r)
      ++r;
  const auto& pool = groups_[rg[r]].pool[table];
  return pool[below(pool.size())];
}

caf::expected<net_address>
address_manager::take(time_point now, const std::vector<netgroup>& avoid) {
  drain_backoff(now);
  auto& avoided = avoided_;
  avoided.clear();
  for (const auto& g : avoid) {
    auto gid = group_ids_.find(hash_of(g), [&](uint32_t x) {
      return groups_[x].group == g;
    });
    if (gid != npos
        && std::find(avoided.begin(), avoided.end(), gid) == avoided.end())
      avoided.push_back(gid);
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
                             to_string_duration(backoff_.begin()->first
                                                - now));
    return make_error(errc::no_address, std::move(context));
  }
  auto& e = entries_[id];
  if (e.attempts < std::numeric_limits<uint32_t>::max())
    ++e.attempts;
  e.last_attempt = now;
  leave_state(id);
  enter_state(id, state::in_use);
  return e.address;
}

bool address_manager::mark_connected(const net_address& addr,
                                     time_point now) {
  auto id = find(addr);
  if (id == npos) {
    in_use_unstored_.insert(addr);
    return false;
  }
  auto& e = entries_[id];
  leave_state(id);
  e.failures = 0;
  e.last_success = now;
  e.last_seen = std::max(e.last_seen, now);
  enter_state(id, state::in_use);
  if (e.tried)
    return true;
  auto bucket = tried_bucket_of(addr, groups_[e.group].group);
  auto slot = slot_of(true, bucket, addr);
  auto occupant = slot_ref(true, bucket, slot);
  if (occupant != npos) {
    const auto& o = entries_[occupant];
    if (o.st == state::in_use || o.failures < cfg_.tried_replace_failures) {
      ++stats_.tried_slot_kept;
      return true;
    }
  }
  // Leave the new table first: the occupant's way back may be this slot.
  slot_ref(false, e.bucket, e.slot) = npos;
  if (occupant != npos)
    demote(occupant, now);
  e.tried = true;
  e.bucket = bucket;
  e.slot = slot;
  slot_ref(true, bucket, slot) = id;
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
  auto slot = slot_of(false, home, o.address);
  auto occupant = slot_ref(false, home, slot);
  if (occupant != npos) {
    const auto& q = entries_[occupant];
    bool better = o.last_success.has_value() && !q.last_success.has_value();
    if (q.st == state::in_use || (!terrible(q, now) && !better)) {
      ++stats_.demoted_dropped;
      erase_entry(id);
      return;
    }
    erase_entry(occupant);
  }
  bool was_ready = o.st == state::ready;
  if (was_ready)
    unready(id);
  slot_ref(true, o.bucket, o.slot) = npos;
  --tried_count_;
  o.tried = false;
  o.bucket = home;
  o.slot = slot;
  slot_ref(false, home, slot) = id;
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
  e.last_failure = now;
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
  enter_state(id, entries_[id].failures > 0 ? state::backing_off
                                            : state::ready);
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
