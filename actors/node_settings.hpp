#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_set.hpp>
#include <caf/expected.hpp>
#include <caf/timespan.hpp>

#include "messages/manager_config.hpp"
#include "net/net_address.hpp"

namespace connmgr {

/// Everything `connmgr-node` takes from the `[connmgr]` section of its CAF
/// config file and from `--connmgr.KEY=VALUE` command-line options. A
/// default-constructed value is what a node runs with when no key is given.
struct node_settings {
  /// How the node writes its log lines (key `log-format`).
  enum class log_format : uint8_t {
    /// Human-readable lines (the default).
    text,
    /// One JSON object per line.
    json,
  };

  /// The manager's tunables. Keys `target-outbound`, `max-inbound`,
  /// `retry-duration`, `max-retry-duration`, `dial-timeout`,
  /// `max-failed-attempts` and `max-pending-dials` set the fields of the same
  /// name; every other field keeps the default of `manager_config`.
  manager_config manager;

  /// Addresses to accept inbound connections on (key `listen`); port 0
  /// asks the system for a free port. Empty (default): the node accepts
  /// nothing.
  std::vector<net_address> listen;

  /// Permanent peers, dialed and re-dialed for the node's whole life (key
  /// `connect`). Empty by default.
  std::vector<net_address> connect;

  /// The initial address pool automatic outbound connections draw from (key
  /// `peers`), each in the canonical form `net_address::to_string` prints.
  /// Every entry has been parsed as a `net_address` (port 1..65535).
  std::vector<std::string> peers;

  /// DNS seeds (key `dns-seeds`): `host:port` entries; every address a
  /// host resolves to joins the address pool with that port. Empty by
  /// default.
  std::vector<net_address> dns_seeds;

  /// SOCKS5 proxy every outbound dial goes through (key `proxy`); unset
  /// (default) dials directly.
  std::optional<net_address> proxy;

  /// Deadline of the application handshake after a connection is up (key
  /// `handshake-timeout`). Must be > 0; defaults to 10 s.
  caf::timespan handshake_timeout = std::chrono::seconds{10};

  /// Period of the node's status report (key `status-interval`). Must be > 0;
  /// defaults to 5 s.
  caf::timespan status_interval = std::chrono::seconds{5};

  /// Keep-alive period (key `ping-interval`): a ready peer gets a ping this
  /// often and is dropped when the pong is not back before the next one is
  /// due. Must be > 0; defaults to 30 s.
  caf::timespan ping_interval = std::chrono::seconds{30};

  /// Address of the metrics endpoint (key `metrics-listen`); port 0 asks
  /// the system for a free port.
  /// Unset (default): no metrics endpoint.
  std::optional<net_address> metrics_listen;

  /// Log line format (key `log-format`, "text" or "json"); text by default.
  log_format format = log_format::text;
};

/// "text" or "json".
std::string to_string(node_settings::log_format x);

/// The config category (INI section and command-line prefix) of all node
/// settings: `[connmgr]` and `--connmgr.KEY=VALUE`.
inline constexpr std::string_view node_settings_category = "connmgr";

/// The names of all keys `read_node_settings` accepts in the `connmgr`
/// category, in the order `--help` lists them.
const std::vector<std::string>& node_settings_keys();

/// Registers every `connmgr` option (with its CAF type and help text) in
/// `opts`, so that CAF's own command-line parsing accepts
/// `--connmgr.KEY=VALUE` and `--help` lists the keys. The values CAF stores
/// are not used: `read_node_settings` reads and checks them itself. Call it
/// on the `custom_options_` of an `actor_system_config` subclass, or simply
/// use `node_actor_system_config`.
void declare_node_options(caf::config_option_set& opts);

/// An `actor_system_config` whose constructor calls `declare_node_options`
/// on its own options.
class node_actor_system_config : public caf::actor_system_config {
public:
  /// Declares the `connmgr` options.
  node_actor_system_config();
};

/// Reads the node settings strictly, without an actor system.
///
/// `config_file` is parsed with CAF's own config parser (so every file CAF
/// accepts reads the same way); its `[connmgr]` section is then checked key
/// by key. With `config_file_required` false a missing file counts as empty
/// (CAF's behaviour for `caf-application.ini`); with true it is an error
/// (CAF's behaviour for `--config-file=F`). Sections other than `[connmgr]`
/// are left alone: they belong to CAF or to other components.
///
/// `args` are the command-line arguments without the program name. Each
/// `--connmgr.KEY=VALUE` is parsed the way CAF parses that option's type and
/// overrides the file's value of KEY; a later one overrides an earlier one.
/// Other arguments are ignored, and reading stops at the first positional
/// argument or at `--`, as CAF's parser does.
///
/// Fails with `errc::invalid_config` and a one-line context naming the key,
/// the value and what was expected, e.g.
/// `connmgr.retry-duration = "1.5s": expected a duration like 5s or 250ms`,
/// `connmgr.listen[1] = "1.2.3.4:99999": port 99999 out of range, expected
/// 1..65535` or `connmgr.colour: unknown key, expected one of listen, ...`
/// for: an unknown key, a value of the wrong type, an integer out of range
/// (negative, too large, or 0 where at least 1 is needed), a duration that is
/// not positive, a malformed address, a log format other than text or json,
/// a file CAF cannot parse, or a combination `validate(manager_config)`
/// rejects (its field names are reported as key names).
caf::expected<node_settings>
read_node_settings(const std::string& config_file, bool config_file_required,
                   const std::vector<std::string>& args);

/// Like the overload above, but takes the config file the way CAF does: from
/// `--config-file=F` in `args` (required to exist) or else
/// `caf-application.ini` in the working directory (optional).
caf::expected<node_settings>
read_node_settings(const std::vector<std::string>& args);

} // namespace connmgr
