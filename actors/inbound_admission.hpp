#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "connmgr/net/flat_table.hpp"
#include "connmgr/actors/token_bucket.hpp"
#include "connmgr/messages/inbound_limits.hpp"

namespace connmgr {

/// Why a newcomer was turned away, why a peer was evicted, or that a
/// newcomer got in. Each name (`to_string`) is short and stable, fit for
/// events and metric labels.
enum class admission_reason : uint8_t {
  /// The newcomer got in (with or without evicting someone).
  admitted,
  /// Every inbound slot was taken and no peer could be evicted for the
  /// newcomer (eviction off, every peer protected, or the victim's netgroup
  /// held no more connections than the newcomer's).
  inbound_limit,
  /// The newcomer's IPv4 address or IPv6 /64 already held
  /// `max_inbound_per_ip` connections.
  per_ip_limit,
  /// The newcomer's netgroup already held `max_inbound_per_netgroup`
  /// connections.
  per_netgroup_limit,
  /// `max_pending_inbound` connections were pending and none could be
  /// evicted (eviction off or every pending peer protected).
  pending_limit,
  /// The newcomer's source had no token left in its rate bucket.
  rate_limit,
  /// A peer evicted because every slot was taken: the youngest of the
  /// netgroup with the most unprotected peers.
  evicted_for_newcomer,
  /// A pending peer evicted because `max_pending_inbound` was reached: the
  /// oldest unprotected pending connection.
  evicted_slow_handshake,
};

/// Number of `admission_reason` values.
constexpr size_t admission_reason_count = 8;

/// "admitted", "inbound_limit", "per_ip_limit", "per_netgroup_limit",
/// "pending_limit", "rate_limit", "evicted_for_newcomer" or
/// "evicted_slow_handshake". These names do not change between versions.
const char* to_string(admission_reason x) noexcept;

/// What happens to a newcomer.
enum class admission_verdict : uint8_t {
  /// Take the connection.
  admit,
  /// Close the connection; `reason` says why.
  reject,
  /// Close the connection in slot `victim`, then take the newcomer.
  evict_then_admit,
};

/// "admit", "reject" or "evict_then_admit".
const char* to_string(admission_verdict x) noexcept;

/// The answer of `inbound_admission::admit`.
struct admission_decision {
  /// Whether the newcomer gets in and whether someone leaves for it.
  admission_verdict verdict = admission_verdict::admit;

  /// `admitted` for `admit`; the limit for `reject`; the eviction rule
  /// (`evicted_for_newcomer` or `evicted_slow_handshake`) for
  /// `evict_then_admit`.
  admission_reason reason = admission_reason::admitted;

  /// The slot to close for `evict_then_admit`; 0 otherwise.
  uint64_t victim = 0;

  /// For `reject`: the limit and the source it applied to, e.g.
  /// "max_inbound_per_ip = 4 for 1.2.3.4/32". For `evict_then_admit`: the
  /// victim's netgroup. Empty for `admit`.
  std::string context;

  /// True for `admit` and `evict_then_admit`.
  bool admits() const noexcept {
    return verdict != admission_verdict::reject;
  }

  /// For `reject`: `errc::inbound_limit` with context "<reason>: <context>",
  /// e.g. "per_ip_limit: max_inbound_per_ip = 4 for 1.2.3.4/32". No error
  /// otherwise.
  caf::error error() const;
};

/// One line, e.g. "reject per_ip_limit (max_inbound_per_ip = 4 for
/// 1.2.3.4/32)" or "evict_then_admit 17 evicted_for_newcomer (10.1.0.0/16)".
std::string to_string(const admission_decision& x);

/// Decides which inbound connections a node takes and whom it evicts for
/// them, so no single source, netgroup or set of never-finishing handshakes
/// holds every inbound slot. Guarantees, with limits that pass `validate`:
///
/// - Newcomers over the per-IP, per-netgroup or rate limit are rejected;
///   they never cause an eviction.
/// - At most `max_inbound` connections are held, at most
///   `max_pending_inbound` of them pending.
/// - Eviction never picks a peer marked with `protect`, and at a full node a
///   newcomer only evicts a peer whose netgroup holds more connections than
///   the newcomer's own (protected ones included): no netgroup grows by
///   eviction, and the biggest cannot churn its own slots. When a single
///   netgroup holds every unprotected slot of a full node, a newcomer from
///   a netgroup holding fewer connections (a new one, say) gets in at its
///   first try, within its own source's limits.
/// - Memory is bounded: per-peer state lives until `closed` (or eviction),
///   per-IP and per-netgroup counts only while a connection from there is
///   held, and at most `max_rate_tracked_ips` rate buckets.
/// - `admit` costs O(1) expected (amortized O(log p) in the pending count p
///   when it evicts a slow handshake), plus O(n log n) in the inbound count
///   n when it has to pick a victim at a full node; it allocates nothing
///   per connection for IP sources once its tables have grown. Tables are
///   keyed by fixed-size binary addresses with a hash seeded from the
///   secret, so chosen addresses cannot degrade them.
///
/// Eviction at a full node follows Bitcoin Core's AttemptToEvictConnection.
/// Of the unprotected peers (n of them), keep:
/// 1. one peer (the longest-connected) from each of `protect_netgroups`
///    netgroups, those with the highest keyed hash of the netgroup (an
///    attacker cannot tell which);
/// 2. the `protect_lowest_ping` peers with the lowest reported ping;
/// 3. the `protect_recently_useful` peers most recently reported useful;
/// 4. of what remains, half (rounded down) by longest connection, taking
///    only peers that finished the handshake (a connection that is old but
///    never got ready is the slowloris pattern, not a proven peer).
/// Each of 1-3 keeps at most n / `protection_share` peers, so the
/// protections leave victims on small nodes too (with Core's 114 slots the
/// cap is 14 and does not bite). Of the rest, when some are pending, only
/// the pending ones (a connection that has not finished its handshake goes
/// before any peer that has, like Core's "prefer evict" class). Then evict
/// the youngest peer of the netgroup with the most of them (ties: the
/// netgroup whose youngest is the youngest).
///
/// At `max_pending_inbound`, a newcomer evicts the oldest unprotected
/// pending connection instead of being refused: refusing would let an
/// attacker who refills pending slots as they free keep honest peers out
/// for good, while an honest handshake finishes long before its connection
/// becomes the oldest pending one. An attacker who opens
/// `max_pending_inbound` connections within one honest handshake still
/// wins that round; the per-IP rate limit bounds how fast one source can.
///
/// A plain state machine: no clock, no sockets, no threads. Every call says
/// what time it is; not thread-safe.
class inbound_admission {
public:
  using time_point = caf::actor_clock::time_point;

  /// Each of the fixed-count protections keeps at most (unprotected
  /// peers) / `protection_share` peers.
  static constexpr uint32_t protection_share = 8;

  // -- construction ----------------------------------------------------------

  /// An empty admission with `limits` (which must pass `validate`) and a
  /// per-instance `secret` (pass a random value: it keys the hash tables and
  /// the choice of protected netgroups, which must stay unpredictable).
  inbound_admission(inbound_limits limits, uint64_t secret);

  // -- decisions -------------------------------------------------------------

  /// Decides on a newcomer from `remote_address` ("1.2.3.4:5678",
  /// "[2001:db8::1]:5678"; bare IPs too) that would hold `slot` (an id the
  /// embedder picks, not held right now). On `admit` and `evict_then_admit`
  /// the newcomer is recorded as pending at `now` and the victim is
  /// forgotten at once: the embedder must close the victim's connection (its
  /// later `closed` is a no-op). An address that does not parse (e.g. an
  /// in-memory connection's name) is its own IP and netgroup, by text.
  admission_decision admit(uint64_t slot, std::string_view remote_address,
                           time_point now);

  /// Same as `admit(slot, remote_address, now)`, but when `ipv4` (host byte
  /// order) is given it is the newcomer's address and `remote_address` is
  /// not parsed (pass `connection::remote_ipv4()`): the same decision, at
  /// less cost per connection.
  admission_decision admit(uint64_t slot, std::optional<uint32_t> ipv4,
                           std::string_view remote_address, time_point now);

  /// The slot `admit` would evict as a slow handshake if a newcomer came
  /// now: the oldest unprotected pending peer while `max_pending_inbound`
  /// peers are pending and `evict_when_full` is set; none otherwise. Lets
  /// the embedder release a slot whose connection already closed (its
  /// report still on the way) instead of having it evicted.
  std::optional<uint64_t> slow_handshake_victim();

  // -- reports from the embedder ---------------------------------------------

  /// The connection in `slot` finished the protocol handshake at `now`: it
  /// stops counting as pending. Unknown slots are ignored.
  void ready(uint64_t slot, time_point now);

  /// A ping round trip of `rtt` was measured on `slot`; the lowest one
  /// counts for protection. Unknown slots are ignored.
  void ping(uint64_t slot, caf::timespan rtt);

  /// The peer in `slot` did something useful at `now` (e.g. sent a valid
  /// addr frame); the latest counts for protection. Unknown slots are
  /// ignored.
  void useful(uint64_t slot, time_point now);

  /// The peer in `slot` is never evicted (manual or permanent peers). It
  /// still counts against every limit. Unknown slots are ignored.
  void protect(uint64_t slot);

  /// Lifts `protect`: the peer in `slot` may be evicted again (a pending
  /// one as a slow handshake too, by its original arrival). Unknown or
  /// unprotected slots are ignored.
  void unprotect(uint64_t slot);

  /// Replaces the limits (which must pass `validate`) for every later
  /// decision; held connections stay (the embedder closes a surplus).
  void set_limits(inbound_limits limits);

  /// The connection in `slot` closed: frees everything it held. Unknown
  /// slots (evicted victims included) are ignored.
  void closed(uint64_t slot);

  // -- observers -------------------------------------------------------------

  /// Inbound connections held.
  size_t size() const noexcept {
    return peers_.size();
  }

  /// Held connections that have not reported `ready`.
  size_t pending() const noexcept {
    return pending_;
  }

  /// Whether `slot` is held.
  bool contains(uint64_t slot) const noexcept {
    return peers_.find(slot) != nullptr;
  }

  /// For `admitted`: newcomers that got in. For a rejection reason:
  /// newcomers it turned away. For an eviction reason: peers it evicted.
  uint64_t count(admission_reason x) const noexcept {
    return counts_[static_cast<size_t>(x)];
  }

  /// Sources with a rate bucket in the table (<= `max_rate_tracked_ips`).
  size_t tracked_ips() const noexcept {
    return rate_index_.size();
  }

  /// Rate buckets forgotten before they refilled because the table was full
  /// (each gave its source a fresh burst): a sign of many sources at once.
  uint64_t rate_buckets_dropped() const noexcept {
    return rate_dropped_;
  }

  /// Distinct IPs (IPv6: /64s) holding connections.
  size_t ips() const noexcept {
    return per_ip_.size();
  }

  /// Distinct netgroups holding connections.
  size_t netgroups() const noexcept {
    return per_group_.size();
  }

  /// The limits this instance applies.
  const inbound_limits& limits() const noexcept {
    return limits_;
  }

private:
  // -- member types ----------------------------------------------------------

  /// A source (an IPv4 address or IPv6 /64, or a netgroup) as fixed bytes:
  /// the prefix in network byte order (`hi`, `lo`, bits past the prefix
  /// zero) and `meta` = family << 8 | prefix bits. A source that is not an
  /// IP (a host name, or text that does not parse) is keyed by a 128-bit
  /// hash of its text keyed with the secret. `hash` is the table hash of
  /// the rest, computed once when the key is made.
  struct source_key {
    uint64_t hi = 0;
    uint64_t lo = 0;
    uint32_t meta = 0;
    uint64_t hash = 0;

    friend bool operator==(const source_key& x, const source_key& y) noexcept {
      return x.hi == y.hi && x.lo == y.lo && x.meta == y.meta;
    }

    friend bool operator!=(const source_key& x, const source_key& y) noexcept {
      return !(x == y);
    }

    friend bool operator<(const source_key& x, const source_key& y) noexcept {
      if (x.meta != y.meta)
        return x.meta < y.meta;
      if (x.hi != y.hi)
        return x.hi < y.hi;
      return x.lo < y.lo;
    }
  };

  /// Takes the precomputed hash of a key.
  struct key_hash {
    size_t operator()(const source_key& x) const noexcept {
      return static_cast<size_t>(x.hash);
    }
  };

  /// Where a connection comes from: its IP (or /64) and its netgroup. For a
  /// source that is not an IP, both keys are the same and `text` holds the
  /// name, for messages (empty for IPs: they print from their keys).
  struct source {
    source_key ip;
    source_key group;
    std::string text;
  };

  struct peer {
    source_key ip;
    source_key group;
    /// The name of a source that is not an IP; empty for IPs.
    std::string text;
    time_point connected_at;
    /// Tells this admission of the slot from earlier ones (see
    /// `pending_order_`).
    uint64_t seq = 0;
    std::optional<caf::timespan> min_ping;
    std::optional<time_point> last_useful;
    bool ready = false;
    bool is_protected = false;
  };

  /// A rate bucket in `rate_nodes_`, linked into the recency list by
  /// index (`none` ends it): buckets come and go without allocating.
  struct rate_entry {
    source_key key;
    token_bucket bucket;
    uint32_t prev = none;
    uint32_t next = none;
  };

  static constexpr uint32_t none = ~uint32_t{0};

  /// A pending admission in `pending_order_`: valid while the slot holds
  /// the same admission (`seq`) and it is still pending and unprotected.
  struct pending_mark {
    time_point at;
    uint64_t slot;
    uint64_t seq;
  };

  using count_map = flat_table<source_key, uint32_t, key_hash>;

  // -- helpers ---------------------------------------------------------------

  source source_of(std::string_view remote_address) const;

  source source_of_ipv4(uint32_t v4) const;

  admission_decision admit_source(uint64_t slot, source src, time_point now);

  /// Keys `text` (a host name or an unparsed address).
  source_key text_key(std::string_view text) const;

  /// Completes `k` with its table hash.
  source_key hashed(source_key k) const;

  /// "1.2.3.4/32", "2001:db8::/32", or `text` for a source that is no IP.
  static std::string print(const source_key& k, const std::string& text);

  /// Takes one token from `key`'s bucket at `now`; false if there was none.
  bool take_token(const source_key& key, time_point now);

  /// Whether `e`'s bucket is full at `now` (forgetting it loses nothing).
  bool bucket_full(rate_entry& e, time_point now) const;

  /// Takes bucket `i` out of the recency list.
  void rate_unlink(uint32_t i) noexcept;

  /// Puts bucket `i` first in the recency list.
  void rate_push_front(uint32_t i) noexcept;

  /// Forgets the least recently used bucket (there must be one).
  void rate_drop_tail();

  /// The peer to evict for a newcomer at a full node, if any.
  std::optional<uint64_t> select_victim() const;

  /// The oldest unprotected pending peer, if any (drops stale marks).
  std::optional<uint64_t> oldest_pending();

  /// Heap order of `pending_order_`: the earliest (then lowest slot) on top.
  static bool later_mark(const pending_mark& x, const pending_mark& y) noexcept;

  /// Whether `m` still stands for a pending, unprotected peer.
  bool mark_valid(const pending_mark& m) const noexcept;

  /// Rebuilds `pending_order_` from the valid marks once stale ones
  /// outnumber them, so it stays O(pending) in size.
  void compact_pending_order();

  /// Forgets `slot` (which must be held) and counts an eviction for `why`.
  void evict(uint64_t slot, admission_reason why);

  admission_decision reject(admission_reason why, std::string context);

  static void dec(count_map& m, const source_key& key);

  // -- state -----------------------------------------------------------------

  inbound_limits limits_;
  /// Keys of the table hash, the netgroup ranking and the two text hashes.
  uint64_t table_k0_;
  uint64_t table_k1_;
  uint64_t rank_k0_;
  uint64_t rank_k1_;
  uint64_t text_k0_;
  uint64_t text_k1_;
  /// Slots are the embedder's numbers, not chosen by peers.
  flat_table<uint64_t, peer, int_hash> peers_;
  count_map per_ip_;
  count_map per_group_;
  size_t pending_ = 0;
  uint64_t next_seq_ = 0;
  /// A min-heap by (admission time, slot) of pending admissions; marks of
  /// peers that got ready, protected or closed are dropped lazily.
  std::vector<pending_mark> pending_order_;
  /// Every rate bucket, live or free (free ones chained through `next`
  /// from `rate_free_`).
  std::vector<rate_entry> rate_nodes_;
  uint32_t rate_free_ = none;
  /// The most (`rate_head_`) and least (`rate_tail_`) recently used
  /// buckets.
  uint32_t rate_head_ = none;
  uint32_t rate_tail_ = none;
  /// Indexes into `rate_nodes_`.
  flat_table<source_key, uint32_t, key_hash> rate_index_;
  uint64_t rate_dropped_ = 0;
  std::array<uint64_t, admission_reason_count> counts_{};
};

} // namespace connmgr
