#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>

#include "messages/address_source_actor.hpp"
#include "net/net_address.hpp"

namespace connmgr {

// -- message tags of the address book actor (at most 10 characters) ----------

/// `(add_addr, address, source) -> bool`: learn an address; the answer says
/// whether it was stored (see `address_book::add`).
using add_address_atom = caf::atom_constant<caf::atom("add_addr")>;
/// `(addr_conn, address) -> bool`: a connection to the address is up (see
/// `address_book::mark_connected`); the answer says whether it is known.
using address_connected_atom = caf::atom_constant<caf::atom("addr_conn")>;
/// `(addr_fail, address) -> bool`: an attempt to the address failed (see
/// `address_book::mark_failed`); the answer says whether it is known.
using address_failed_atom = caf::atom_constant<caf::atom("addr_fail")>;
/// `(addr_rel, address) -> bool`: the address is no longer in use (see
/// `address_book::release`); the answer says whether it was in use.
using address_release_atom = caf::atom_constant<caf::atom("addr_rel")>;
/// `(addr_excl, address) -> bool`: never hand the address out again (see
/// `address_book::exclude`); the answer says whether a stored entry went.
using address_exclude_atom = caf::atom_constant<caf::atom("addr_excl")>;

// -- configuration -------------------------------------------------------------

/// Tuning of an `address_book`. `validate` says whether a value is usable.
struct address_book_config {
  /// Most entries kept at once; >= 1. A full book evicts its worst entry to
  /// make room (see `address_book::add`).
  size_t capacity = 1000;
  /// Wait after the first consecutive failure of an address; > 0. Each
  /// further consecutive failure doubles it (see `address_book::backoff`).
  caf::timespan backoff_base = std::chrono::seconds(10);
  /// Longest wait after any number of consecutive failures; >=
  /// `backoff_base`.
  caf::timespan backoff_cap = std::chrono::minutes(10);
  /// Seeds the tie-breaking between equally ranked addresses: two books with
  /// the same seed and the same calls hand out the same addresses in the same
  /// order. Every value, 0 included, is a fixed seed.
  uint64_t seed = 0;
};

/// No error when every field of `cfg` is in range; otherwise
/// `errc::invalid_config` naming the first bad field, its value and what was
/// expected, e.g. `invalid_config: capacity = 0, expected >= 1`.
caf::error validate(const address_book_config& cfg);

// -- the book --------------------------------------------------------------------

/// What the book knows about one stored address, as `snapshot` reports it.
struct address_entry {
  /// A point on the actor clock.
  using time_point = caf::actor_clock::time_point;

  /// The address itself.
  net_address address;
  /// Who told us about it (free text given to `add`, e.g. "dns" or a peer).
  std::string source;
  /// When it was added.
  time_point added_at;
  /// How many times `take` handed it out.
  uint32_t attempts = 0;
  /// Consecutive failures since it was added or last connected (saturates
  /// at UINT32_MAX). Zero means it is not backing off.
  uint32_t failures = 0;
  /// When `take` last handed it out; empty if never.
  std::optional<time_point> last_attempt;
  /// When it was last marked connected; empty if never.
  std::optional<time_point> last_success;
  /// When it last failed; empty if never (kept after a reset, so that an
  /// address that never failed can still be told apart).
  std::optional<time_point> last_failure;
  /// Set exactly when `failures > 0`: the first instant at which `take` may
  /// hand it out again, `*last_failure + backoff(failures)`.
  std::optional<time_point> retry_at;
  /// Whether it is handed out or connected right now, so `take` skips it.
  bool in_use = false;
};

/// The addresses a node knows of, and which of them to dial next.
///
/// A plain value type: no actors, no locks (use it from one thread at a time)
/// and no clock of its own; every call that needs the time takes `now`, so it
/// runs on simulated time as well as on real time. Given the same seed and
/// the same sequence of calls it makes the same decisions.
///
/// Guarantees:
/// - `take` never returns an address that is in use (handed out by `take` or
///   marked connected, and not yet failed or released), so an address is
///   never handed out twice at once, even if it was removed or evicted and
///   learnt again meanwhile.
/// - `take` never returns an excluded address.
/// - `size() <= config().capacity` at all times.
/// - An address with `n >= 1` consecutive failures is skipped until
///   `last_failure + backoff(n)`, where
///   `backoff(n) = min(backoff_base * 2^(n-1), backoff_cap)`;
///   from that instant on (inclusive) it is a candidate again.
/// - Among candidates `take` prefers, in this order: addresses with no
///   consecutive failure over those with some; then the one whose last
///   failure is oldest (one that never failed counts as oldest of all); then
///   a pseudo-random but fixed per-entry rank drawn from the seed, so that
///   no address ordering (e.g. low IPs first) can be gamed by gossip.
///
/// Every operation is O(log n) except `take`, `add` on a full book and
/// `snapshot`, which are O(n) in the number of entries.
class address_book {
public:
  /// A point on the actor clock.
  using time_point = caf::actor_clock::time_point;

  /// An empty book. `cfg` should pass `validate`; values out of range are
  /// clamped to the nearest usable one (capacity 0 → 1, base <= 0 → 1 ns,
  /// cap < base → base) rather than trusted.
  explicit address_book(address_book_config cfg = {});

  /// The configuration in effect, after clamping.
  const address_book_config& config() const noexcept {
    return cfg_;
  }

  // -- contents --------------------------------------------------------------

  /// Stores `addr`, learnt from `source` at `now`, and returns true. Returns
  /// false and changes nothing when `addr` is already stored (its record,
  /// source included, stays as it was), when it is excluded, or when the
  /// book is full and every entry is in use. When the book is full otherwise,
  /// the worst entry that is not in use is evicted first: the one with the
  /// most consecutive failures; among equals one that never connected before
  /// one that did; then the one added longest ago; then by the seeded rank.
  bool add(const net_address& addr, std::string source, time_point now);

  /// Forgets the entry of `addr`; returns whether there was one. An address
  /// in use stays in use (a later `add` and `take` will not hand it out
  /// until it is released or failed).
  bool remove(const net_address& addr);

  /// The number of stored entries (excluded addresses are never stored).
  size_t size() const noexcept {
    return entries_.size();
  }

  /// Whether `addr` is stored.
  bool contains(const net_address& addr) const;

  /// Every stored entry, ordered by address (`net_address`'s `<`), with the
  /// state `take` decides on. Does not change the book.
  std::vector<address_entry> snapshot() const;

  // -- handing out -----------------------------------------------------------

  /// Hands out the best candidate at `now` (see the class comment) and
  /// marks it in use; counts the attempt. When no stored address is a
  /// candidate (the book is empty, or every entry is in use or backing off)
  /// returns `errc::no_address`, whose context says how many entries are in
  /// use and backing off and when the earliest backoff ends.
  caf::expected<net_address> take(time_point now);

  /// A connection to `addr` is up: its consecutive failures go back to 0 and
  /// it counts as in use until `release` or `mark_failed`, whether or not
  /// `take` handed it out (e.g. a manual or inbound connection). Returns
  /// whether `addr` is stored; an address that is not stored is still
  /// marked in use.
  bool mark_connected(const net_address& addr, time_point now);

  /// An attempt to `addr` failed at `now` (or its connection broke before it
  /// proved itself): one more consecutive failure (saturating), backoff
  /// restarts from `now`, and it is no longer in use. Returns whether `addr`
  /// is stored; an address that is not stored is still released.
  bool mark_failed(const net_address& addr, time_point now);

  /// `addr` is no longer in use (e.g. its connection ended normally); its
  /// failure count stays as it is. Returns whether it was in use.
  bool release(const net_address& addr);

  /// Whether `addr` is in use (handed out or connected, not yet released).
  bool in_use(const net_address& addr) const;

  /// Never stores nor hands out `addr` again (meant for the node's own
  /// listening addresses); drops its entry if there is one and returns
  /// whether there was. Exclusion is permanent for this book.
  bool exclude(const net_address& addr);

  /// Whether `addr` was excluded.
  bool is_excluded(const net_address& addr) const;

  /// The wait after `failures` consecutive failures:
  /// 0 for 0, else `min(backoff_base * 2^(failures-1), backoff_cap)`.
  /// Never overflows, whatever `failures`.
  caf::timespan backoff(uint32_t failures) const noexcept;

private:
  struct record {
    std::string source;
    time_point added_at;
    uint64_t rank = 0;
    uint32_t attempts = 0;
    uint32_t failures = 0;
    std::optional<time_point> last_attempt;
    std::optional<time_point> last_success;
    std::optional<time_point> last_failure;
  };

  using map_type = std::map<net_address, record>;

  // The instant `r` may be handed out again; `added_at` if not backing off.
  time_point retry_at(const record& r) const;

  // Evicts the worst entry that is not in use; false if there is none.
  bool evict_one();

  address_book_config cfg_;
  std::mt19937_64 rng_;
  map_type entries_;
  std::set<net_address> in_use_;
  std::set<net_address> excluded_;
};

// -- the actor -------------------------------------------------------------------

/// The address book as an actor: an `address_source_actor` (it answers
/// `get_addr` with `address_book::take` at the actor clock's now, printed as
/// text, or with `errc::no_address`) that also takes the updates above.
/// Addresses travel as text and are parsed with `net_address::parse`; text
/// that does not parse is answered with `errc::invalid_address` and changes
/// nothing. It converts to `address_source_actor`, so it can be passed as
/// `handler_setup::address_source`.
using address_book_actor = address_source_actor::extend<
  caf::replies_to<add_address_atom, std::string, std::string>::with<bool>,
  caf::replies_to<address_connected_atom, std::string>::with<bool>,
  caf::replies_to<address_failed_atom, std::string>::with<bool>,
  caf::replies_to<address_release_atom, std::string>::with<bool>,
  caf::replies_to<address_exclude_atom, std::string>::with<bool>>;

/// Spawns an address book actor with an empty book configured by `cfg`, or
/// returns the error of `validate(cfg)` without spawning anything. The actor
/// reads time only from its clock, so it runs on CAF's test coordinator.
caf::expected<address_book_actor>
spawn_address_book(caf::actor_system& sys, address_book_config cfg = {});

} // namespace connmgr
