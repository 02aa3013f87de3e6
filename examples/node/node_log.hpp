#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "examples/node/node_event.hpp"

namespace connmgr {

/// Quotes `text` as a JSON string (RFC 8259): wraps it in double quotes and
/// escapes `"` as `\"`, `\` as `\\` and every control character below 0x20 as
/// `\u00XX` (lower-case hex). Every other byte, non-ASCII included, is passed
/// through unchanged; the input is not checked for valid UTF-8.
std::string json_quote(std::string_view text);

/// Renders `x` as one human-readable line without a trailing newline, e.g.
///
///     connected #3 127.0.0.1:9001 (permanent) in 1.2 ms
///     retry #3 127.0.0.1:9001 (one-shot) in 500 ms
///     failed #4 127.0.0.1:9002 in 3 ms: refused: connection refused
///     peer_ready 127.0.0.1:9003 node 1f2e3d4c5b6a7980 outbound
///     learned 12 addresses from 127.0.0.1:9003
///
/// Fields in this order, each only when it applies (see `node_event`): the
/// kind; `#id`; with `count`: "N address(es) from <addr>", else `addr`;
/// "(permanent)" or "(one-shot)"; "node <16 hex digits>"; "outbound" or
/// "inbound"; " in <dial duration>"; " in <retry delay>" (", retry in ..."
/// when a dial duration is present too); then ": <reason_code>: <reason>".
/// The reason code is left out when the reason already starts with it, so an
/// error described as "refused" does not print as "refused: refused".
/// Durations print as "850 us", "1.2 ms", "500 ms" or "2.5 s".
///
/// Control characters inside strings print as `\n`, `\t`, `\r` or `\xNN` and
/// a backslash as `\\`, so the result is always exactly one line.
std::string to_text(const node_event& x);

/// Renders `x` as one JSON object without a trailing newline. Keys in this
/// order, each only when it applies: `event` (always), `id` (number, when not
/// 0), `addr` (when not empty), `permanent` (bool, when set), `reason` (when
/// not empty), `reason_code` (when not empty), `delay_ms` (number, when set),
/// `dial_us` (number, when set), `peer_node` (a string of 16 lower-case hex
/// digits, when not 0: JSON numbers lose precision above 2^53), `outbound`
/// (bool, when set) and `count` (number, when set). Strings are escaped with
/// `json_quote`.
std::string to_json(const node_event& x);

/// Same as `to_json(x)` with a `"ts":unix_ms` member (milliseconds since the
/// Unix epoch) right after `event`.
std::string to_json(const node_event& x, int64_t unix_ms);

/// Renders `x` as one text line without a trailing newline:
///
///     status: outbound 3/8, inbound 2/unlimited, pending dials 1,
///     failures 4, retries 2, failed attempts 0, peers 5, addresses 12
///
/// (on one line), where "2/unlimited" is "2/10" with an inbound limit of 10.
std::string status_line(const node_status& x);

/// Renders `x` as one JSON object without a trailing newline:
/// `{"event":"status","outbound":..,"target_outbound":..,"inbound":..,
/// "max_inbound":..,"pending_dials":..,"failures":..,"retries":..,
/// "failed_attempts":..,"peers_ready":..,"known_addresses":..}` with every
/// field always present; `max_inbound` is `null` when unlimited.
std::string status_json(const node_status& x);

/// Same as `status_json(x)` with a `"ts":unix_ms` member (milliseconds since
/// the Unix epoch) right after `event`.
std::string status_json(const node_status& x, int64_t unix_ms);

} // namespace connmgr
