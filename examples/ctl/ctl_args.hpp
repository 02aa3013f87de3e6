#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include "connmgr/messages/conn_limits.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

/// What `connmgr-ctl` was asked to do.
enum class ctl_verb : uint8_t {
  peers,
  stats,
  connect,
  disconnect,
  remove,
  ban,
  unban,
  bans,
  events,
  protect,
  unprotect,
  limits,
  set,
  drain,
};

/// One `set KEY=VALUE`: the node config key (e.g. "target-outbound") and
/// its value, `conn_limits::unlimited` for `unlimited`.
struct ctl_limit_change {
  std::string key;
  uint64_t value = 0;
};

/// "peers", "stats", ...
std::string to_string(ctl_verb x);

/// A parsed `connmgr-ctl` command line.
struct ctl_args {
  /// `--help`: print the usage, nothing else.
  bool help = false;
  /// Every `--node=HOST:PORT`, in order, without duplicates.
  std::vector<net_address> nodes;
  /// `--cert`, `--key`, `--ca`: all three (mutual TLS) or none (plain TCP).
  std::string cert;
  std::string key;
  std::string ca;
  /// `--json`: JSON instead of a table.
  bool json = false;
  /// `--timeout D`: how long connecting and each request may take.
  caf::timespan timeout = std::chrono::seconds{10};
  ctl_verb verb = ctl_verb::peers;
  /// connect, ban, unban: the address or subnet.
  std::string target;
  /// disconnect, remove, protect, unprotect: the request id.
  uint64_t id = 0;
  /// connect `--permanent`.
  bool permanent = false;
  /// ban `--for D` (default 24h).
  caf::timespan ban_for = std::chrono::hours{24};
  /// ban `--reason TEXT` (default "operator").
  std::string reason = "operator";
  /// events `--count N`: stop after N events (0: until the node stops).
  uint64_t count = 0;
  /// protect, unprotect: the tag.
  std::string tag;
  /// set: the changes, in command-line order (a later one for the same key
  /// wins).
  std::vector<ctl_limit_change> changes;
  /// drain `--timeout D` (default 30s): how long the node gives its
  /// connections to close; the ctl waits that long plus a margin.
  caf::timespan drain_timeout = std::chrono::seconds{30};

  /// Whether the connection uses mutual TLS.
  bool tls() const noexcept {
    return !cert.empty();
  }
};

/// The usage text.
std::string ctl_usage();

/// Parses `args` (without the program name). Options may come before or
/// after the command, as `--opt=value` or `--opt value`. Fails with
/// `errc::invalid_config` naming the argument and what was expected, e.g.
/// `--node = "a:b": expected HOST:PORT` or `disconnect: missing ID, expected
/// a request id like 7`.
caf::expected<ctl_args> parse_ctl_args(const std::vector<std::string>& args);

/// The node config keys `set` accepts (the run-time limits), in the order
/// of `conn_limits`.
const std::vector<std::string>& ctl_limit_keys();

/// Applies `changes` to `x`; fails with `errc::invalid_config` naming a key
/// that is not a run-time limit (only possible for changes not made by
/// `parse_ctl_args`).
caf::error apply_limit_changes(conn_limits& x,
                               const std::vector<ctl_limit_change>& changes);

/// (key, value) rows of `x` with the node config keys, "unlimited" for no
/// cap.
std::vector<std::pair<std::string, std::string>>
limit_rows(const conn_limits& x);

/// Parses "24h", "30min", "90s", "250ms", "7d" (a positive integer and a
/// unit); fails naming `what`.
caf::expected<caf::timespan> parse_ctl_duration(const std::string& what,
                                                const std::string& text);

} // namespace connmgr
