#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <caf/timespan.hpp>

#include "connmgr/messages/gate_actor.hpp"

namespace connmgr {

/// Asked before each dial attempt with the address to dial. Runs inside
/// the handler, so it must answer at once (never block); a gate that needs
/// time belongs in a `gate_actor`.
using gate_dial_function =
  std::function<gate_verdict(const std::string& address)>;

/// Asked for each inbound connection before any admission rule counts it,
/// with its remote address and our local one ("127.0.0.1:8333"). Runs
/// inside the handler, so it must answer at once (never block).
using gate_accept_function = std::function<gate_verdict(
  const std::string& remote, const std::string& local)>;

/// The hooks that may veto a dial or an accept before it happens
/// (`handler_setup::gate`); everything unset allows everything at no cost.
///
/// Order: for a dial, bans first (the machine refuses a banned address
/// before a dial starts), then `dial`, then `actor`. For an inbound
/// connection, a ban in force first (rule "banned"), then `accept`, then
/// `actor`, then the admission rules; a vetoed connection is closed before
/// admission counts it and before any user code sees it.
///
/// A vetoed dial is a failed attempt (`failed_event` with `errc::vetoed`
/// whose context is the gate's reason; the request then follows its usual
/// failure rules: a permanent request retries with backoff, asking the gate
/// again each time). A vetoed accept is a `rejected_event` with rule
/// "gated". Both count in `conn_stats::gate_vetoes`.
///
/// Fail-closed by default: an actor that gives no answer within `timeout`,
/// answers with an error, or is gone vetoes (the reason says which), since
/// a gate is a guard and a guard that is down must not let through what it
/// would have refused. A dial never waits longer than `timeout` for the
/// gate (then `dial_timeout` for the dial itself); a request whose dial was
/// vetoed this way retries per its rules once the gate answers again. With
/// `fail_open`, those cases allow instead.
struct gate_setup {
  /// Optional: asked before every dial attempt.
  gate_dial_function dial;
  /// Optional: asked for every inbound connection.
  gate_accept_function accept;
  /// Optional: asked after the functions allowed (or without them).
  gate_actor actor;
  /// How long `actor` has to answer one question; must be > 0.
  caf::timespan timeout = std::chrono::seconds{1};
  /// How many inbound connections may wait for `actor`'s answer at once;
  /// each one beyond is closed at once (rule "gated", "gate busy"). Must be
  /// at least 1. Waiting connections hold a descriptor but no inbound slot;
  /// stop closes them (rule "stopped").
  uint32_t max_waiting_inbound = 256;
  /// What no answer (timeout, an error, a dead gate) means: false (the
  /// default) vetoes, true allows.
  bool fail_open = false;
};

} // namespace connmgr
