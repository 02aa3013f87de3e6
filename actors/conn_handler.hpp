#pragma once

#include <functional>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "connmgr/actors/function_address_source.hpp"
#include "connmgr/actors/gate.hpp"
#include "connmgr/messages/acceptor_actor.hpp"
#include "connmgr/messages/address_source_actor.hpp"
#include "connmgr/messages/conn_handler_actor.hpp"
#include "connmgr/messages/dialer_actor.hpp"
#include "connmgr/messages/events.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr {

/// A dial that completes at once: a connection or an error.
using dial_function = std::function<caf::expected<connection_ptr>(
  const std::string& address, caf::timespan timeout)>;

/// Everything a connection handler is made of.
struct handler_setup {
  /// The tunables; checked by `spawn_conn_handler`.
  manager_config config;
  /// The config section `config` was read from (`read_manager_config`), if
  /// any: spawn errors then name its keys ("p2p.target-outbound") instead
  /// of struct fields ("target_outbound").
  std::string config_section;
  /// Performs every dial; exactly one of `dialer` and `dial` is set.
  dialer_actor dialer;
  /// Alternative to `dialer` for transports that connect at once (in-memory
  /// pipes, socketpairs, test fakes): the handler calls it itself with the
  /// address and dial_timeout, so it must never block. Its result is handled
  /// like a dialer's answer.
  dial_function dial;
  /// Optional: where automatic requests get addresses. Not owned.
  address_source_actor address_source;
  /// Optional alternative to `address_source`: a plain function the handler
  /// calls itself, so it must answer at once (never block); a source that
  /// needs time belongs in an `address_source` actor. At most one of the two
  /// may be set.
  address_function get_address;
  /// Sources of inbound connections, one per listener. Owned: they receive
  /// an exit on stop, and stop waits until they are gone.
  std::vector<acceptor_actor> listeners;
  /// Optional: receives the events (`connected_event`, ...) in order, each
  /// with the handler as sender.
  conn_events_actor events;
  /// The informational events `events` wants (default: all).
  event_subscription subscribe;
  /// Optional hooks that may veto a dial or an accept before it happens,
  /// as functions and/or an actor (see `gate_setup`); unset, they cost
  /// nothing.
  gate_setup gate;
};

/// Spawns a connection handler after validating `setup`. Refuses a missing
/// dialer (or both `dialer` and `dial`), two address sources, a gate actor
/// with a zero `gate.timeout` or `gate.max_waiting_inbound`, invalid
/// configuration values and targets beyond the open-file limit with
/// `errc::invalid_config` naming the field. Grows the process's descriptor
/// table to fit every descriptor the configuration may hold
/// (`reserve_descriptor_table`): about 10 ms here instead of stalls of the
/// I/O thread while connections open.
///
/// The handler reads time only from its actor clock, so it runs unchanged on
/// CAF's test coordinator with simulated time. It does nothing until
/// `start` (manual connects work before it). Dials are requests to the
/// dialer answered straight to the handler; a dialer that gives no answer
/// within `dial_timeout` plus 1 s counts as `errc::timed_out` and is told to
/// cancel. On `stop` (or an exit message from anyone) it cancels every dial,
/// sends an exit to every listener and owned actor, closes every connection
/// that arrives meanwhile, waits until they are all gone and the dialer
/// confirms (`flush`) that canceled dials are closed, then answers every
/// `stop` request, emits `stopped_event` as its last event, and quits.
caf::expected<conn_handler_actor> spawn_conn_handler(caf::actor_system& sys,
                                                     handler_setup setup);

} // namespace connmgr
