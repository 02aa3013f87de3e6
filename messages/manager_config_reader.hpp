#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <caf/config_value.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/settings.hpp>

#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

// Reads a `manager_config` from a CAF config section: one key per field,
// declared on a plain `caf::actor_system_config` under any section name, so
// that `--<section>.target-outbound=5` and `[<section>] target-outbound = 5`
// both work and two managers can each have a section.
//
// The keys (kebab-case field names; default in brackets):
//   target-outbound (8), max-inbound (114 or "unlimited"), retry-duration
//   (5s, 1ms..168h), max-retry-duration (5min, 1ms..168h), dial-timeout
//   (10s, 1ms..168h), max-failed-attempts (25, >= 1), max-pending-dials
//   (128, >= 1), netgroup-bits-ipv4 (16, 1..32), netgroup-bits-ipv6 (32,
//   1..128), max-inbound-per-ip (4, >= 1 or "unlimited"),
//   max-inbound-per-netgroup (unlimited), max-pending-inbound (32),
//   inbound-rate-per-ip (60 per MINUTE, >= 1 or "unlimited"; the field is
//   per second), inbound-burst-per-ip (10, >= 1), evict-inbound (true),
//   retry-jitter (0, a number in 0..1), jitter-seed (0,
//   0..9223372036854775807), stable-connection-period (60s, 0s..168h),
//   reject-duplicate-addresses (true).

/// The section `declare_manager_options` and `read_manager_config` use when
/// none is named.
inline constexpr std::string_view default_manager_section = "connmgr";

/// The keys of a manager section, in the order `--help` lists them.
const std::vector<std::string>& manager_config_keys();

/// Whether `key` is one of `manager_config_keys()`.
bool is_manager_key(std::string_view key);

/// Declares one option per key in `section` of `opts`, so CAF's command-line
/// parser accepts `--<section>.KEY=VALUE` and `--help` lists the keys.
/// Flags take a value (`--<section>.evict-inbound=false`): their defaults
/// are true. CAF keeps every value as written, of any type (its own check
/// would silently drop a value of the wrong type and keep the default):
/// `read_manager_config` checks them. Keys the application declares in the
/// same section live alongside.
void declare_manager_options(caf::config_option_set& opts,
                             const std::string& section = std::string{
                               default_manager_section});

/// Same on the options of a plain `caf::actor_system_config` (before its
/// `parse`).
void declare_manager_options(caf::actor_system_config& cfg,
                             const std::string& section = std::string{
                               default_manager_section});

/// Reads every key of `section` (dots name nested sections: "app.net") of
/// `s` (such as `caf::content(cfg)` after `cfg.parse`, or the result of
/// `caf::actor_system_config::parse_config` on a file) onto the defaults of
/// `manager_config`, then checks the whole config. An absent section or key
/// keeps the default. Keys that are not manager keys are left alone: they
/// belong to the application.
///
/// Fails with `errc::invalid_config` naming `<section>.<key>`, the value and
/// what was expected, e.g. `connmgr.retry-duration = "1.5s": expected a
/// duration like 5s or 250ms`, `connmgr.target-outbound = "-1": expected an
/// integer in 0..4294967295`, or for a combination `validate` rejects
/// `connmgr.max-retry-duration = "2s": expected >= connmgr.retry-duration`.
caf::expected<manager_config> read_manager_config(const caf::settings& s,
                                                  const std::string& section);

/// Reads the value `x` of one manager key onto `out` (the building block of
/// `read_manager_config` for an application that reads its section itself).
/// Fails like `read_manager_config`; also for a key that is no manager key.
caf::error read_manager_option(const std::string& section, std::string_view key,
                               const caf::config_value& x, manager_config& out);

/// What manager key `key` takes, as the tail of an error, e.g. "expected an
/// integer in 1..4294967295"; empty for a key that is no manager key.
std::string manager_key_expectation(std::string_view key);

/// Checks value text `text` of manager key `key` as written (in a file or
/// on the command line) before CAF parses it: a duration that does not fit
/// 64-bit nanoseconds fails naming `<section>.<key>` and its range (CAF's
/// file parser would wrap it around). Other keys and texts pass.
caf::error check_manager_option_text(const std::string& section,
                                     std::string_view key,
                                     std::string_view text);

/// `errc::invalid_config` naming `x`'s fields as keys of `section`, e.g.
/// `connmgr.max-retry-duration = "2s": expected >= connmgr.retry-duration`
/// or, for a sum, `connmgr.target-outbound + connmgr.max-inbound +
/// listeners = 1000 + 114 + 1 = 1115: expected at most 960 to fit the
/// open-file limit of 1024`. Names that are no field stay as they are.
caf::error to_error(const config_violation& x, const std::string& section);

/// `validate(cfg)` naming keys of `section` (see `to_error` above).
caf::error validate(const manager_config& cfg, const std::string& section);

/// The key of `manager_config` field `field` ("retry_duration" gives
/// "retry-duration"); empty for a name that is no field.
std::string manager_key_of(std::string_view field);

// -- text helpers shared with applications' own keys -----------------------

/// A config value as a user would have written it, without quotes ("5s",
/// "unlimited", "-1", "[1, 2]").
std::string config_value_text(const caf::config_value& x);

/// Whether `text` (blanks and one pair of quotes around it allowed) is a
/// duration in CAF's syntax whose nanoseconds do not fit 64 bits.
bool duration_text_overflows(std::string_view text);

} // namespace connmgr
