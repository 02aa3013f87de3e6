#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>

#include "connmgr/net/flat_table.hpp"
#include "connmgr/net/address_class.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

/// One ban: every address in `subnet` is refused until `until`.
struct ban_entry {
  /// An IPv4 or IPv6 prefix (see `parse_subnet`); a single host is a /32 or
  /// /128.
  netgroup subnet;
  /// When the ban ends (actor clock).
  caf::actor_clock::time_point until;
  /// Why, as the operator or the misbehaviour rule said it.
  std::string reason;
};

/// The set of banned subnets, with expiry: a plain value on the caller's
/// clock, no threads or actors.
///
/// Guarantees: a lookup costs one hash probe per distinct prefix length in
/// use (most bans are hosts: one or two lengths), whatever the number of
/// bans; the hash is keyed with a secret, so addresses an attacker picks
/// (its own, banned for misbehaviour) cannot pile up in one bucket. Bans
/// that ended are never reported, and `expire` forgets them in O(log n)
/// each. Not thread-safe.
class ban_list {
public:
  using time_point = caf::actor_clock::time_point;

  /// An empty list whose hash is keyed with `secret`.
  explicit ban_list(uint64_t secret = 0);

  /// Bans `subnet` until `until` for `reason`; a subnet banned already
  /// takes the new expiry and reason. Fails with `errc::invalid_address`
  /// for a host-name group (only IP prefixes can be banned).
  caf::error add(const netgroup& subnet, time_point until, std::string reason);

  /// Lifts the ban of exactly `subnet` (not of narrower or wider ones);
  /// false if there was none.
  bool remove(const netgroup& subnet);

  /// Whether exactly `subnet` is held (ended or not), so that renewing it
  /// needs no room.
  bool holds(const netgroup& subnet) const;

  /// The ban in force at `now` that covers `addr`, the most specific
  /// (longest prefix) first; null for none and for host names. Valid until
  /// the list next changes.
  const ban_entry* find(const net_address& addr, time_point now) const;

  /// Same as `find` for the IPv4 address `addr` (host byte order), as an
  /// accepted socket reports it: no text to parse on the accept path.
  const ban_entry* find_ipv4(uint32_t addr, time_point now) const;

  /// Forgets every ban that ended by `now`; returns how many.
  size_t expire(time_point now);

  /// The bans in force at `now`, ordered by subnet.
  std::vector<ban_entry> list(time_point now) const;

  /// When the earliest ban ends, if any (for a timer that calls `expire`).
  std::optional<time_point> next_expiry() const;

  /// Bans held, the ended ones that `expire` has not forgotten included.
  size_t size() const noexcept {
    return table_.size();
  }

private:
  /// Family, prefix length and prefix bytes of a subnet.
  struct key {
    uint64_t hi = 0;
    uint64_t lo = 0;
    uint32_t meta = 0; // family << 8 | bits

    friend bool operator==(const key& x, const key& y) noexcept {
      return x.hi == y.hi && x.lo == y.lo && x.meta == y.meta;
    }
  };

  struct keyed_hash {
    uint64_t k0 = 0;
    uint64_t k1 = 0;
    size_t operator()(const key& k) const noexcept;
  };

  struct expiry {
    time_point until;
    key k;
  };

  static key key_of(const std::array<uint8_t, 16>& prefix, bool v4,
                    unsigned bits) noexcept;
  void count_length(bool v4, unsigned bits, int delta);
  /// The longest ban in force at `now` covering the whole address `hi:lo`.
  const ban_entry* find_longest(bool v4, uint64_t hi, uint64_t lo,
                                time_point now) const;

  flat_table<key, ban_entry, keyed_hash> table_;
  /// Bans per prefix length (index = bits), and the lengths in use,
  /// longest first: a lookup tries only those.
  std::array<uint32_t, 33> v4_counts_{};
  std::array<uint32_t, 129> v6_counts_{};
  std::vector<uint8_t> v4_lengths_;
  std::vector<uint8_t> v6_lengths_;
  /// A min-heap by `until`; entries whose ban changed or went are skipped.
  std::vector<expiry> expiries_;
};

} // namespace connmgr
