#pragma once

// The eclipse-resistant address manager: its configuration, its reports
// and the class. Over 500 lines because the private types the class holds
// by value (its tables, slots and entry records) must be declared with it,
// and each is documented where it is declared.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include "connmgr/net/address_class.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

// -- configuration -------------------------------------------------------------

/// Tuning of an `address_manager`. `validate` says whether a value is usable.
///
/// The defaults keep Bitcoin Core's proportions at a quarter of its size:
/// Core has 1024 new buckets (64 reachable per source group, 1/16 of the
/// table) and 256 tried buckets (8 per group, 1/32), each of 64 slots,
/// i.e. room for 81 920 entries (~15 MB here). A small node rarely learns
/// more than a few thousand addresses, so 256 x 64 new (16 per source group,
/// still 1/16) and 64 x 64 tried (2 per group, still 1/32) hold 20 480
/// entries (~6 MB when full, 750 kB of tables when empty) with the same
/// bounds on what one source or one network can occupy.
struct address_manager_config {
  /// Buckets of the new table (addresses heard of, never connected); >= 1.
  size_t new_bucket_count = 256;
  /// Slots per new bucket; >= 1.
  size_t new_bucket_size = 64;
  /// How many new buckets one source network group can reach at most;
  /// 1..new_bucket_count. Entries without a source (config, DNS, hello)
  /// share one fixed source group, so they too reach at most this many.
  size_t new_buckets_per_source_group = 16;
  /// Buckets of the tried table (addresses we connected to); >= 1.
  size_t tried_bucket_count = 64;
  /// Slots per tried bucket; >= 1.
  size_t tried_bucket_size = 64;
  /// How many tried buckets the addresses of one network group can reach at
  /// most; 1..tried_bucket_count.
  size_t tried_buckets_per_group = 2;
  /// Prefix length of an IPv4 (or IPv4-mapped) network group; 1..32.
  /// Loopback tests use 32 (or 24) so that 127.0.0.x are distinct groups.
  uint32_t netgroup_bits_ipv4 = 16;
  /// Prefix length of an IPv6 network group; 1..128.
  uint32_t netgroup_bits_ipv6 = 32;
  /// Wait after the first consecutive failure of an address; > 0. Each
  /// further consecutive failure doubles it.
  caf::timespan backoff_base = std::chrono::seconds(10);
  /// Longest wait after any number of consecutive failures; >=
  /// `backoff_base`.
  caf::timespan backoff_cap = std::chrono::minutes(10);
  /// An entry with at least this many consecutive failures is "terrible"
  /// (see `address_manager`); >= 1.
  uint32_t max_failures = 10;
  /// An entry that never connected is terrible after this many consecutive
  /// failures; 1..max_failures.
  uint32_t max_failures_never_connected = 3;
  /// An entry neither learnt again nor connected for longer than this is
  /// terrible; > 0.
  caf::timespan horizon = std::chrono::hours(24 * 30);
  /// A tried entry with at least this many consecutive failures gives its
  /// slot to a newly connected address (and goes back to the new table);
  /// one with fewer keeps it. >= 1.
  uint32_t tried_replace_failures = 3;
  /// The secret from which the hash key and the random choices derive: two
  /// managers with the same seed and the same calls make the same decisions.
  /// Anyone who knows it can compute where addresses land, so a node must
  /// draw it from a secure random source at start-up; fixed values are for
  /// tests. Every value, 0 included, is a valid seed.
  uint64_t seed = 0;
};

/// No error when every field of `cfg` is in range; otherwise
/// `errc::invalid_config` naming the first bad field, its value and what was
/// expected, e.g. `invalid_config: new_bucket_count = 0, expected >= 1`.
caf::error validate(const address_manager_config& cfg);

// -- results and reports ---------------------------------------------------------

/// What `address_manager::add` did.
enum class add_result : uint8_t {
  /// Stored in an empty slot of the new table (its own, or one of the 3
  /// after it).
  added,
  /// Stored in the new table in place of a terrible entry, which is gone.
  replaced,
  /// Already stored (in either table); its last-seen time was refreshed.
  known,
  /// Excluded with `address_manager::exclude`; nothing stored.
  excluded,
  /// Its slot and the 3 after it are taken, and its own slot's occupant is
  /// not terrible; nothing stored.
  slot_taken,
};

/// "added", "replaced", "known", "excluded" or "slot_taken": short stable
/// names for metrics.
const char* to_string(add_result x) noexcept;

/// What the manager knows about one stored address, as `snapshot` reports
/// it.
struct managed_address {
  /// A point on the actor clock.
  using time_point = caf::actor_clock::time_point;

  /// The address itself.
  net_address address;
  /// The peer that gossiped it first; empty for config, DNS and hello
  /// entries.
  std::optional<net_address> source;
  /// The address's network group (with the configured bit counts).
  netgroup group;
  /// Whether it is in the tried table (else the new table).
  bool tried = false;
  /// Its bucket in its table.
  size_t bucket = 0;
  /// Its slot in that bucket.
  size_t slot = 0;
  /// When it was first stored.
  time_point added_at;
  /// When it was last stored, learnt again or connected.
  time_point last_seen;
  /// How many times `take` handed it out.
  uint32_t attempts = 0;
  /// Consecutive failures since it was stored or last connected
  /// (saturating). Zero means it is not backing off.
  uint32_t failures = 0;
  /// When `take` last handed it out; empty if never.
  std::optional<time_point> last_attempt;
  /// When it was last marked connected; empty if never.
  std::optional<time_point> last_success;
  /// When it last failed; empty if never.
  std::optional<time_point> last_failure;
  /// Set exactly when `failures > 0`: `*last_failure + backoff(failures)`,
  /// the first instant at which `take` may hand it out again.
  std::optional<time_point> retry_at;
  /// Whether it is handed out or connected right now.
  bool in_use = false;
};

/// Counters of the manager's decisions since construction, for metrics.
struct address_manager_stats {
  /// `add` calls per result, indexed by `add_result`.
  std::array<uint64_t, 5> adds{};
  /// Entries moved from new to tried by `mark_connected`.
  uint64_t promoted = 0;
  /// Connected addresses that stayed in new because their tried slot held
  /// an entry with fewer than `tried_replace_failures` failures.
  uint64_t tried_slot_kept = 0;
  /// Tried entries moved back to new to make room for a connected one.
  uint64_t demoted = 0;
  /// Demoted entries dropped because their new slot held a better entry.
  uint64_t demoted_dropped = 0;
};

// -- the manager -------------------------------------------------------------------

/// The addresses a node knows of, kept so that no single source or network
/// can fill the book or the node's outbound connections (an eclipse attack;
/// Heilman et al., USENIX Security 2015). Modelled on the design of Bitcoin
/// Core's addrman.
///
/// Layout: a "new" table for addresses heard of and a "tried" table for
/// addresses we connected to, each of fixed-size buckets of slots. Each
/// stored address occupies exactly one slot. With a secret key drawn from
/// `seed`:
/// - a new address's bucket is a keyed hash of (its network group, its
///   source's network group), shaped so that one source group reaches at
///   most `new_buckets_per_source_group` buckets;
/// - a tried address's bucket is a keyed hash of (the address, its group),
///   shaped so that one group reaches at most `tried_buckets_per_group`
///   buckets;
/// - the slot inside a bucket is a keyed hash of (table, bucket, address);
///   a new address whose slot is taken takes the first free one of the 3
///   slots after it (wrapping), if any.
///
/// A plain value type: no actors, no locks (use it from one thread at a
/// time) and no clock of its own; every call that needs the time takes
/// `now`. Given the same config (seed included) and the same sequence of
/// calls it makes the same decisions.
///
/// An entry is *terrible* at `now` when it is not in use and it has at
/// least `max_failures` consecutive failures, or has never connected and has
/// at least `max_failures_never_connected`, or was last seen more than
/// `horizon` ago.
///
/// Guarantees:
/// - `add` only ever writes the new table: gossip never removes or moves a
///   tried entry, whatever its amount.
/// - An address heard from one source network group lands in at most
///   `new_buckets_per_source_group` buckets, i.e. occupies at most that many
///   times `new_bucket_size` slots; all sourceless entries together likewise.
/// - A new-slot collision with no free slot among the next 3 keeps the
///   existing entry unless it is terrible; one entry that is in use is
///   never evicted. So a bucket's first 4 addresses are all kept.
/// - `mark_connected` moves a stored new entry to tried. If its tried slot
///   is taken, the occupant keeps it unless it is not in use and has at
///   least `tried_replace_failures` consecutive failures; then the occupant
///   goes back to the new table (into its own new slot, where it replaces
///   an entry only if that one is terrible or never connected, and is
///   dropped otherwise). Keeping healthy tried entries is this manager's
///   stand-in for Core's "test before evict", which needs a connection.
/// - `take` never returns an address that is in use, excluded, backing off
///   (`n >= 1` consecutive failures: skipped until
///   `last_failure + backoff(n)`, inclusive from then) or in one of the
///   network groups in `avoid`.
/// - `take` chooses the tried or the new table with equal chance when both
///   have candidates, then a network group uniformly among that table's
///   groups with candidates, then an address uniformly within that group.
///   Choosing by group first means that many addresses in one network buy
///   no more outbound chances than one.
/// - `size() <= new_bucket_count * new_bucket_size + tried_bucket_count *
///   tried_bucket_size` at all times.
///
/// Costs (n entries, a = `avoid.size()`): `add`, `contains`, `in_use`,
/// `release` and `mark_connected` are O(1) expected (hash tables keyed with
/// the secret, so colliding keys cannot be chosen from outside), plus
/// O(log n) where an entry enters or leaves backoff; `remove`, `exclude`
/// and `mark_failed` are O(log n); `take` is O(a log a) plus O(log n) for
/// each entry whose backoff ended since the previous `take` (each failure
/// is paid for once: O(log n) amortized); no operation scans the entries
/// except `snapshot`, O(n log n).
class address_manager {
public:
  /// A point on the actor clock.
  using time_point = caf::actor_clock::time_point;

  /// An empty manager. `cfg` should pass `validate`; values out of range are
  /// clamped to the nearest usable one rather than trusted.
  explicit address_manager(address_manager_config cfg = {});

  /// The configuration in effect, after clamping.
  const address_manager_config& config() const noexcept {
    return cfg_;
  }

  /// The network group of `addr` with the configured bit counts; what
  /// `take`'s `avoid` expects.
  netgroup group_of(const net_address& addr) const;

  // -- contents --------------------------------------------------------------

  /// Learns `addr` at `now` from `source`: the gossiping peer's address, or
  /// empty for config, DNS and hello entries. See `add_result` and the class
  /// comment for what happens; the first source of an entry is the one it
  /// keeps.
  add_result add(const net_address& addr,
                 const std::optional<net_address>& source, time_point now);

  /// Forgets the entry of `addr`; returns whether there was one. An address
  /// in use stays in use.
  bool remove(const net_address& addr);

  /// The number of stored entries, both tables.
  size_t size() const noexcept {
    return index_.size();
  }

  /// Entries in the new table.
  size_t new_size() const noexcept {
    return index_.size() - tried_count_;
  }

  /// Entries in the tried table.
  size_t tried_size() const noexcept {
    return tried_count_;
  }

  /// Whether `addr` is stored (in either table).
  bool contains(const net_address& addr) const;

  /// Every stored entry, ordered by address. Does not change the manager.
  std::vector<managed_address> snapshot() const;

  /// Counters of decisions since construction.
  const address_manager_stats& stats() const noexcept {
    return stats_;
  }

  // -- handing out -----------------------------------------------------------

  /// Hands out a candidate at `now` (see the class comment), skipping the
  /// network groups in `avoid` (the caller passes the groups of its current
  /// automatic outbound connections, from `group_of`), marks it in use and
  /// counts the attempt. When there is none, returns `errc::no_address`
  /// whose context says how many entries are in use, backing off and in
  /// avoided groups, and when the earliest backoff ends.
  caf::expected<net_address> take(time_point now,
                                  const std::vector<netgroup>& avoid = {});

  /// A connection to `addr` is up: it counts as in use until `release` or
  /// `mark_failed`, whether or not `take` handed it out. If it is stored,
  /// its failures go back to 0, it counts as seen now and, if it was new,
  /// it moves to tried (see the class comment). Returns whether `addr` is
  /// stored; an address that is not stored is still marked in use.
  bool mark_connected(const net_address& addr, time_point now);

  /// `addr` is in use without our having connected to it (e.g. the
  /// listening address an inbound peer announced): `take` skips it until
  /// `release` or `mark_failed`, but it stays in its table; an inbound
  /// connection proves nothing about the address, so it never moves to
  /// tried. Returns whether `addr` is stored.
  bool mark_in_use(const net_address& addr);

  /// An attempt to `addr` failed at `now` (or its connection broke before
  /// it proved itself): one more consecutive failure (saturating), backoff
  /// restarts from `now`, and it is no longer in use. Returns whether `addr`
  /// is stored; an address that is not stored is still released.
  bool mark_failed(const net_address& addr, time_point now);

  /// `addr` is no longer in use (its connection ended normally); its failure
  /// count stays. Returns whether it was in use.
  bool release(const net_address& addr);

  /// Whether `addr` is in use (handed out or connected, not yet released).
  bool in_use(const net_address& addr) const;

  /// Never stores nor hands out `addr` again (meant for the node's own
  /// addresses); drops its entry if there is one and returns whether there
  /// was. Permanent for this manager.
  bool exclude(const net_address& addr);

  /// Whether `addr` was excluded.
  bool is_excluded(const net_address& addr) const;

  /// The wait after `failures` consecutive failures: 0 for 0, else
  /// `min(backoff_base * 2^(failures-1), backoff_cap)`. Never overflows.
  caf::timespan backoff(uint32_t failures) const noexcept;

private:
  // -- internal types --------------------------------------------------------

  static constexpr uint32_t npos = UINT32_MAX;

  // Storage of the big arrays (see `allocate_big`). At 100 000 entries the
  // tables span tens of MB and are read at random, so with 4 kB pages
  // nearly every access also misses the TLB; 2 MB pages cut that cost
  // (about 15 % per operation measured at 100 000 entries).
  static void* allocate_big(size_t bytes, size_t align);
  static void free_big(void* ptr, size_t bytes, size_t align) noexcept;

  template <class T>
  struct big_allocator {
    using value_type = T;
    big_allocator() noexcept = default;
    template <class U>
    big_allocator(const big_allocator<U>&) noexcept {
      // nop
    }
    T* allocate(size_t n) {
      return static_cast<T*>(allocate_big(n * sizeof(T), alignof(T)));
    }
    void deallocate(T* ptr, size_t n) noexcept {
      free_big(ptr, n * sizeof(T), alignof(T));
    }
    template <class U>
    bool operator==(const big_allocator<U>&) const noexcept {
      return true;
    }
    template <class U>
    bool operator!=(const big_allocator<U>&) const noexcept {
      return false;
    }
  };

  template <class T>
  using big_vector = std::vector<T, big_allocator<T>>;

  // Where an entry stands for `take`.
  enum class state : uint8_t { ready, in_use, backing_off };

  // An entry is split in two parallel arrays indexed by its id: `entry`
  // holds what add, take, eviction and the state changes read (one cache
  // line), `entry_info` the rest. At 100 000 entries every line touched is
  // a likely cache miss, so the common paths touch one per entry.
  struct alignas(64) entry {
    uint64_t hash = 0; // keyed hash of the address (`hash_of`)
    time_point last_seen;
    time_point retry_at; // meaningful when failures > 0
    uint32_t group = npos; // interned group id; npos for a free id
    uint32_t home_bucket = 0; // its new bucket (from its source)
    uint32_t bucket = 0; // where it is now
    uint32_t slot = 0;
    uint32_t failures = 0;
    state st = state::ready;
    bool tried = false;
    bool connected = false; // whether it ever connected
  };

  struct entry_info {
    net_address address;
    std::optional<net_address> source;
    time_point added_at;
    uint32_t attempts = 0;
    std::optional<time_point> last_attempt;
    std::optional<time_point> last_success;
    std::optional<time_point> last_failure;
  };

  // A vector of ids with room for four inside, so that the ready pool of a
  // group of up to four entries (nearly all groups) costs no allocation and
  // no cache miss of its own.
  class id_pool {
  public:
    id_pool() noexcept = default;
    id_pool(id_pool&& other) noexcept;
    id_pool& operator=(id_pool&& other) noexcept;
    id_pool(const id_pool&) = delete;
    id_pool& operator=(const id_pool&) = delete;
    ~id_pool();

    uint32_t size() const noexcept {
      return size_;
    }
    bool empty() const noexcept {
      return size_ == 0;
    }
    uint32_t* data() noexcept {
      return cap_ <= inline_cap ? inline_ : heap_;
    }
    const uint32_t* data() const noexcept {
      return cap_ <= inline_cap ? inline_ : heap_;
    }
    uint32_t& operator[](size_t i) noexcept {
      return data()[i];
    }
    uint32_t operator[](size_t i) const noexcept {
      return data()[i];
    }
    void push_back(uint32_t id);
    void pop_back() noexcept {
      --size_;
    }

  private:
    static constexpr uint32_t inline_cap = 4;
    uint32_t size_ = 0;
    uint32_t cap_ = inline_cap;
    union {
      uint32_t inline_[inline_cap];
      uint32_t* heap_;
    };
  };

  // One line per group: what take and the pools read. The netgroup itself
  // sits in `group_names_`; IPv4 groups (nearly all) are found through
  // `v4_groups_` or told apart by their `group_ids_` cells, and never need
  // it on the hot paths.
  struct alignas(64) group_info {
    uint64_t hash = 0; // keyed hash of the group (`hash_of`)
    uint32_t refs = 0;
    uint32_t v4_index = npos; // its cell in `v4_groups_`, npos if none
    // Per table (0 new, 1 tried): ids of its ready entries.
    std::array<id_pool, 2> pool;
  };

  // A slot of a table. Besides the occupant's id it carries copies of what
  // deciding and carrying out its eviction needs (kept equal to the entry's
  // by `refresh_cell`): an add that collides reads this one line, and can
  // then fetch the occupant's group and index cell at once instead of one
  // after the other.
  struct slot_cell {
    uint32_t id = npos;
    uint32_t group = npos;
    uint32_t hash_lo = 0; // low half of the occupant's hash
    state st = state::ready;
    bool failing = false; // terrible by its failures alone
    time_point last_seen;
  };

  // Ids keyed by a 64-bit keyed hash, open addressing with linear probing:
  // no allocation per insert and one probe run per lookup, which matters at
  // 100 000 entries where every pointer chased is a cache miss. The caller
  // confirms a match with `eq(id, check)`.
  class id_table {
  public:
    template <class Eq>
    uint32_t find(uint64_t h, Eq&& eq) const {
      if (cells_.empty())
        return npos;
      for (size_t i = h & mask_;; i = (i + 1) & mask_) {
        const auto& c = cells_[i];
        if (c.id == npos)
          return npos;
        if (c.hash == h && eq(c.id, c.check))
          return c.id;
      }
    }
    /// Adds `id` under `h`; `find` hands `check` to its `eq` along with
    /// the id, so that a caller can confirm a match without reading
    /// elsewhere.
    void insert(uint64_t h, uint32_t id, uint32_t check = 0);
    void erase(uint64_t h, uint32_t id);
    /// Asks the CPU to load the first cell `find(h, ...)` will read.
    void prefetch(uint64_t h) const noexcept {
      if (!cells_.empty())
        __builtin_prefetch(&cells_[h & mask_]);
    }
    size_t size() const noexcept {
      return count_;
    }

  private:
    struct cell {
      uint64_t hash = 0;
      uint32_t id = npos;
      uint32_t check = 0;
    };
    big_vector<cell> cells_;
    size_t mask_ = 0;
    size_t count_ = 0;
  };

  // Keyed hash for the set of unstored addresses in use.
  struct address_hash {
    uint64_t k0;
    uint64_t k1;
    size_t operator()(const net_address& x) const noexcept;
  };

  // -- hashing and placement -------------------------------------------------

  // A group as one word for the bucket hashes: an IPv4 group's key itself
  // (`raw`: exact, and no hash to compute first), any other group's keyed
  // hash.
  struct group_word {
    uint64_t word;
    bool raw;
  };

  // `source` is null for sourceless entries. The others take the keyed
  // hashes (`hash_of`) of the address and its group.
  uint32_t new_bucket_of(group_word group, const group_word* source) const;
  uint32_t tried_bucket_of(uint64_t addr_hash, uint64_t group_hash) const;
  uint32_t slot_of(bool tried, uint32_t bucket, uint64_t addr_hash) const;
  slot_cell& slot_ref(bool tried, uint32_t bucket, uint32_t slot);
  void occupy(slot_cell& cell, uint32_t id);
  void refresh_cell(uint32_t id);

  // -- entry bookkeeping -----------------------------------------------------

  uint64_t hash_of(const net_address& addr) const noexcept;
  uint64_t hash_of(const netgroup& group) const noexcept;
  uint32_t find(const net_address& addr) const;
  // `group` may be null when `v4_key` is not 0.
  uint32_t v4_index(uint64_t v4_key) const noexcept;
  bool direct(uint64_t v4_key) const noexcept {
    return v4_key != 0 && !v4_groups_.empty();
  }
  uint32_t find_group(const netgroup* group, uint64_t hash,
                      uint64_t v4_key) const;
  uint32_t intern(const net_address& addr, const netgroup* group, uint64_t hash,
                  uint64_t v4_key);
  void unref(uint32_t gid);
  void make_ready(uint32_t id);
  void mirror_pool(int table, uint32_t gid);
  void unready(uint32_t id, int table, uint32_t gid);
  void leave_state(uint32_t id);
  void enter_state(uint32_t id, state st);
  void erase_entry(uint32_t id);
  void evict_new(slot_cell& cell);
  void demote(uint32_t id, time_point now);
  uint32_t pick(int table, const std::vector<uint32_t>& avoid);
  bool failing(const entry& e) const;
  bool terrible(const entry& e, time_point now) const;
  bool terrible(const slot_cell& c, time_point now) const;
  void drain_backoff(time_point now);
  uint64_t next_random() noexcept;
  uint64_t below(uint64_t n) noexcept;

  address_manager_config cfg_;
  uint64_t key0_ = 0;
  uint64_t key1_ = 0;
  uint64_t rng_state_ = 0;
  big_vector<entry> entries_;
  big_vector<entry_info> infos_; // parallel to entries_
  // Parallel to entries_: each ready entry's index in its group's pool, npos
  // for the others. Small arrays apart from the entries, so that moving an
  // entry inside a pool touches no other entry's line.
  big_vector<uint32_t> pool_pos_;
  std::vector<uint32_t> free_ids_;
  id_table index_;
  big_vector<slot_cell> new_slots_;
  big_vector<slot_cell> tried_slots_;
  size_t tried_count_ = 0;
  big_vector<group_info> groups_;
  std::vector<netgroup> group_names_; // parallel to groups_
  // Per table, parallel to groups_: each group's index in
  // `ready_groups_[table]`, npos when its pool is empty.
  std::array<big_vector<uint32_t>, 2> ready_pos_;
  std::vector<uint32_t> free_groups_;
  id_table group_ids_;
  // With IPv4 groups of at most 16 bits, the id of each IPv4 group (npos
  // for none) by its prefix: no hash and no probing to find one. Empty
  // otherwise; `group_ids_` holds the groups not found here.
  big_vector<uint32_t> v4_groups_;
  // A group with ready entries in one table, as `take` draws it: `size`
  // ready entries, the first two of which (in pool order) are copied here.
  // Most groups have one or two, and then `take` knows the entry without
  // reading the group's line first.
  struct ready_group {
    uint32_t group;
    uint32_t size;
    std::array<uint32_t, 2> ids;
  };
  std::array<big_vector<ready_group>, 2> ready_groups_;
  std::set<std::pair<time_point, uint32_t>> backoff_;
  size_t in_use_stored_ = 0;
  // In use but not stored (connected without being learnt, or removed
  // while in use); stored entries keep their state themselves.
  std::unordered_set<net_address, address_hash> in_use_unstored_;
  std::unordered_set<net_address, address_hash> excluded_;
  // Scratch space of `take`, kept to spare an allocation per call.
  std::vector<uint32_t> skipped_;
  // The group ids of the last `avoid` that `take` was given, valid while
  // no group id was made or freed since (`group_epoch_`): a node asks with
  // the same avoid list until its outbound connections change, and
  // resolving it is a keyed hash per group.
  std::vector<netgroup> avoid_groups_;
  std::vector<uint32_t> avoided_;
  uint64_t avoided_epoch_ = 0;
  uint64_t group_epoch_ = 0;
  address_manager_stats stats_;
};

} // namespace connmgr
