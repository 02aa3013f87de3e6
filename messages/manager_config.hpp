#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "connmgr/messages/inbound_limits.hpp"

namespace connmgr {

/// Every tunable of the connection manager. Defaults follow the reference
/// where it has one; each fix of a reference flaw is a named field here.
/// `validate` accepts or rejects a whole configuration.
struct manager_config {
  /// Automatic outbound requests kept alive while an address source exists.
  /// Manual `connect`s come on top. 0 disables automatic outbound.
  uint32_t target_outbound = 8;

  /// Inbound connections held at once: unset = unlimited, 0 = refuse all.
  /// A slot is held until the accepted connection is closed. 114 by
  /// default (Bitcoin Core's 125 less its 11 outbound).
  std::optional<uint32_t> max_inbound = 114;

  /// Manual requests (`connect`, not permanent) alive at once: a connect
  /// beyond it is refused with `errc::limit_reached` (Bitcoin Core keeps 8
  /// addnode slots). Unset = unlimited.
  std::optional<uint32_t> max_manual = 8;

  /// Permanent requests alive at once, likewise. Unset = unlimited.
  std::optional<uint32_t> max_permanent;

  // -- inbound admission (see `inbound_limits` for the rules) -----------------

  /// Inbound connections per source IP (IPv6: per /64); unset = unlimited.
  std::optional<uint32_t> max_inbound_per_ip = 4;

  /// Inbound connections per network group; unset (default) = unlimited
  /// (eviction already takes from the biggest group).
  std::optional<uint32_t> max_inbound_per_netgroup;

  /// Inbound connections that have not finished the application's
  /// handshake (reported with `inbound_ready`); unset = unlimited.
  std::optional<uint32_t> max_pending_inbound = 32;

  /// New inbound connections per second per source IP (a token bucket of
  /// `inbound_burst_per_ip`); unset = unlimited.
  std::optional<double> inbound_rate_per_ip = 1.0;

  /// Burst of the per-IP rate; >= 1.
  double inbound_burst_per_ip = 10.0;

  /// When inbound slots are full, a newcomer evicts an existing inbound
  /// peer the way Bitcoin Core does (see `inbound_admission`) instead of
  /// being refused.
  bool evict_inbound = true;

  /// Base of the linear backoff: retry n waits n × retry_duration. Also the
  /// pause of the failed-attempts throttle. Must be > 0.
  caf::timespan retry_duration = std::chrono::seconds{5};

  /// Cap of the backoff (fixed at 5 min in the reference). Must be
  /// >= retry_duration.
  caf::timespan max_retry_duration = std::chrono::minutes{5};

  /// Random extra delay on each retry, as a fraction of the delay: a retry
  /// due after d waits uniformly in [d, d × (1 + retry_jitter)]. Spreads
  /// reconnect storms. In [0, 1]; 0 (default) keeps retry instants exact.
  double retry_jitter = 0.0;

  /// Seed of the jitter's random generator; 0 seeds from the OS. Fixed seeds
  /// make jittered schedules reproducible in tests.
  uint64_t jitter_seed = 0;

  /// Consecutive failed attempts of automatic requests after which
  /// replacements wait retry_duration ("network down" throttle). Counts dial
  /// and address failures and peers that hang up before
  /// stable_connection_period, never disconnects the user asked for; resets
  /// once a connection has lasted stable_connection_period without a new
  /// failure. Must be >= 1.
  ///
  /// Only failures that say something about our network count: once any
  /// automatic connection was made, a failed dial counts only if its
  /// address connected before (an address nobody ever reached, such as
  /// gossip, backs off in the address source alone); and the throttle trips
  /// only once the counted dial failures span at least two network groups
  /// (see `netgroup_bits_ipv4`), or an address could not be had at all.
  uint32_t max_failed_attempts = 25;

  /// Prefix length, in bits, of the network group of an IPv4 (or
  /// IPv4-mapped IPv6) address, for decisions about network diversity.
  /// 1..32; 16 by default. Loopback tests use 32 so 127.0.0.x differ.
  uint32_t netgroup_bits_ipv4 = 16;

  /// Prefix length, in bits, of the network group of an IPv6 address.
  /// 1..128; 32 by default.
  uint32_t netgroup_bits_ipv6 = 32;

  /// Deadline a dialer gets for one attempt. Must be > 0.
  caf::timespan dial_timeout = std::chrono::seconds{10};

  /// Dials in flight at once; further requests wait in FIFO order for a
  /// slot. Must be >= 1.
  uint32_t max_pending_dials = 128;

  /// A connection must last this long before the request's retry count (and
  /// the failed-attempt count) is reset, so a peer that accepts and drops at
  /// once backs off. 0 resets on every successful dial (the reference
  /// behaviour).
  caf::timespan stable_connection_period = std::chrono::seconds{60};

  /// Refuse a second request to an address that is already pending or
  /// connected. Disable only for benchmarks that dial one sink many times.
  bool reject_duplicate_addresses = true;

  // -- bans ----------------------------------------------------------------

  /// A peer whose misbehaviour score (`misbehaving`) reaches this is banned.
  /// Must be >= 1.
  uint32_t ban_threshold = 100;

  /// How long a misbehaving peer's address stays banned. Must be > 0.
  caf::timespan ban_duration = std::chrono::hours{24};

  /// Bans held at once: beyond it an operator's ban is refused
  /// (`errc::limit_reached`) and a misbehaving peer is disconnected without
  /// a ban, so a peer that misbehaves from ever new addresses cannot grow
  /// the list without bound. Must be >= 1.
  uint32_t max_bans = 100'000;
};

/// The admission rules `cfg` asks for.
inbound_limits inbound_limits_of(const manager_config& cfg);

/// What `find_violation` or `check_descriptor_limit` rejected, as data, so
/// that a caller can name the fields the way its users know them (config
/// keys, say) without parsing a message. `to_error` renders it.
struct config_violation {
  /// The `manager_config` fields (snake_case) whose value is rejected: one,
  /// or several whose sum is. A name that is no field (such as `listeners`)
  /// stands for a count that is not part of the config.
  std::vector<std::string> fields;

  /// The value of each of `fields`, in the same order, as text.
  std::vector<std::string> values;

  /// The rejected value: that of the one field, or the sum of several.
  std::string value;

  /// What was expected; each `{}` stands for the next of `expected_fields`,
  /// e.g. ">= {}" with `expected_fields` {"retry_duration"}.
  std::string expected;

  /// The fields `expected` refers to.
  std::vector<std::string> expected_fields;
};

/// Checks every field of `cfg`; the first bad field with its value and what
/// was expected, or nothing when `cfg` is valid. Same checks, same order as
/// `validate`.
std::optional<config_violation> find_violation(const manager_config& cfg);

/// Checks that the descriptors `cfg` may hold at once fit: `target_outbound`
/// + `max_inbound` (0 when unlimited) + `listeners` must be at most
/// `fd_limit` - `reserve` (0 = unknown limit, always fits). The violation
/// names fields `target_outbound`, `max_inbound` and `listeners`.
std::optional<config_violation>
check_descriptor_limit(const manager_config& cfg, uint64_t listeners,
                       uint64_t fd_limit, uint64_t reserve);

/// `x.expected` with its `{}` replaced by `names` in order (a `{}` without a
/// name left as it is).
std::string render_expected(const config_violation& x,
                            const std::vector<std::string>& names);

/// `errc::invalid_config` naming the fields of `x` as they are, e.g.
/// "max_retry_duration = 4s, expected >= retry_duration" or
/// "target_outbound + max_inbound + listeners = 2000, expected at most 960
/// to fit the open-file limit of 1024". (`to_error(x, section)` in
/// manager_config_reader.hpp names config keys instead.)
caf::error to_error(const config_violation& x);

/// Checks every field of `cfg`. Returns `errc::invalid_config` whose context
/// names the first bad field, its value and what was expected, e.g.
/// "retry_duration = 0ns, expected > 0" (`to_error(*find_violation(cfg))`).
caf::error validate(const manager_config& cfg);

/// Prints a duration compactly and exactly, for every value including
/// negative ones and the extremes: in the largest unit (h, min, s, ms, us,
/// ns) that divides it ("250ms", "5s", "90min", "0ns"), else as an exact
/// decimal of the largest of s, ms, us it reaches ("1.5s",
/// "9223372036.854775807s").
std::string to_string_duration(caf::timespan x);

} // namespace connmgr
