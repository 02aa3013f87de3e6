#pragma once

#include <cstdint>
#include <string>

#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

namespace connmgr {

/// Every reason the manager reports a failure for. Travels as a `caf::error`
/// in the `connmgr` category, so it prints by name once the category is
/// registered with `add_error_category(cfg)`.
enum class errc : uint8_t {
  /// Not an error.
  none = 0,
  /// The peer refused the connection.
  refused,
  /// The dial did not complete before its deadline.
  timed_out,
  /// No route to the peer (network or host unreachable).
  unreachable,
  /// The peer's host name did not resolve.
  resolve_failed,
  /// The request was removed (or the dial canceled) before it completed.
  canceled,
  /// The manager is stopped or stopping.
  stopped,
  /// The address source had no address to give.
  no_address,
  /// A configuration value is out of range; the context names the field.
  invalid_config,
  /// No request with the given id exists.
  unknown_request,
  /// The address is already pending or connected.
  duplicate_address,
  /// The request id is already in use.
  duplicate_request,
  /// An inbound connection was refused, or evicted, by an admission rule
  /// (slots, per-IP or per-group caps, rate, pending handshakes); the
  /// context names the rule.
  inbound_limit,
  /// The address is malformed.
  invalid_address,
  /// The dialer failed for a reason of its own; the context says which.
  dial_failed,
  /// The connection was closed by the peer or by the user.
  connection_closed,
  /// The proxy refused or broke the protocol.
  proxy_failed,
  /// The peer did not read what we sent within the allowed time.
  slow_reader,
  /// The address lies in a banned subnet, or its ban closed the connection;
  /// the context names the ban.
  banned,
  /// A bounded table or class is full; the context names the limit.
  limit_reached,
  /// The ban, tag or other named thing to lift does not exist.
  not_found,
  /// A limit lowered at run time closed the connection (`set_limits`).
  limit_lowered,
  /// The handler is draining: no new connections, open ones closed by the
  /// deadline.
  draining,
  /// A gate (`handler_setup::gate`) vetoed the dial or the inbound
  /// connection; the context is the gate's reason.
  vetoed,
  /// The state file could not be opened, read or written; the context names
  /// the file and what SQLite said.
  state_failed,
  /// The state file was written by a newer connmgr (its schema version is
  /// higher than this one knows); it is left untouched.
  state_too_new,
};

/// The category atom of our errors inside `caf::error`.
constexpr caf::atom_value errc_category = caf::atom("connmgr");

/// The name of `x`, e.g. "refused".
std::string to_string(errc x);

/// Wraps `x` into a `caf::error` of our category.
caf::error make_error(errc x);

/// Wraps `x` into a `caf::error` of our category with a human-readable context
/// (e.g. the field name and the rejected value).
caf::error make_error(errc x, std::string context);

/// Registers the `connmgr` category so `system.render(err)` prints our names.
void add_error_category(caf::actor_system_config& cfg);

/// Returns the `errc` inside `err`, or `errc::none` for errors of other
/// categories (and for no error).
errc errc_of(const caf::error& err);

/// Renders any error as one line: our errors as "refused" or
/// "invalid_config: retry_duration = 0s, expected > 0"; other categories via
/// CAF's own printing.
std::string describe(const caf::error& err);

} // namespace connmgr
