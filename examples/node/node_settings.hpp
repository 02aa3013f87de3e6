#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <caf/config_option_set.hpp>
#include <caf/expected.hpp>
#include <caf/settings.hpp>
#include <caf/timespan.hpp>

#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/net_address.hpp"
#include "connmgr/net/stream_handle.hpp"

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

  /// The manager's tunables: every key of the library's manager reader
  /// (`manager_config_keys()` in manager_config_reader.hpp: `target-outbound`,
  /// `max-inbound`, `retry-duration`, ..., `retry-jitter`, `jitter-seed`,
  /// `stable-connection-period`, `reject-duplicate-addresses`,
  /// `evict-inbound`), read by `read_manager_option`; absent keys keep the
  /// default of `manager_config`.
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
  /// `handshake-timeout`). In 10ms..168h; defaults to 10 s.
  caf::timespan handshake_timeout = std::chrono::seconds{10};

  /// Period of the node's status report (key `status-interval`). In
  /// 10ms..168h; defaults to 5 s.
  caf::timespan status_interval = std::chrono::seconds{5};

  /// Keep-alive period (key `ping-interval`): a ready peer gets a ping this
  /// often and is dropped when the pong is not back before the next one is
  /// due. In 10ms..168h; defaults to 30 s.
  caf::timespan ping_interval = std::chrono::seconds{30};

  /// Address of the metrics endpoint (key `metrics-listen`); port 0 asks
  /// the system for a free port.
  /// Unset (default): no metrics endpoint.
  std::optional<net_address> metrics_listen;

  /// Log line format (key `log-format`, "text" or "json"); text by default.
  log_format format = log_format::text;

  /// Whether gossip may name loopback, private, shared, link-local and
  /// documentation addresses (key `allow-local-addresses`, a bare flag on
  /// the command line, `true`/`false` in a file). Off by default: on an open
  /// network such gossip would make the node a reflector against hosts next
  /// to it. Swarms on one machine and loopback tests turn it on.
  bool allow_local_addresses = false;

  /// Automatic outbound connections per network group (key
  /// `outbound-per-netgroup`, at least 1; default 1): an attacker who owns
  /// a few networks gets at most that many of our outbound slots. Groups
  /// are `netgroup-bits-ipv4`/`-ipv6` prefixes; nodes that all listen on
  /// one address (a swarm on 127.0.0.1) need more. Permanent (`connect`)
  /// peers do not count.
  uint32_t outbound_per_netgroup = 1;

  /// Where the remote control listens (key `control-listen`, an IP address;
  /// port 0 asks the system for a free port): `connmgr-ctl` reaches the
  /// node there through CAF's middleman. Unset (default): no remote
  /// control. It needs mutual TLS (`control-cert`, `control-key`,
  /// `control-ca`, all three) unless `control-insecure-loopback` is set
  /// and the address is a loopback one.
  std::optional<net_address> control_listen;

  /// PEM files of the remote control's TLS (keys `control-cert`: the
  /// node's certificate chain, `control-key`: its private key,
  /// `control-ca`: the CA that must have signed every client's
  /// certificate). Empty (default): no TLS.
  std::string control_cert;
  std::string control_key;
  std::string control_ca;

  /// Plain TCP for the remote control (key `control-insecure-loopback`):
  /// allowed only on a loopback `control-listen` and only without the TLS
  /// keys. Off by default.
  bool control_insecure_loopback = false;

  /// What each peer's connection may hold in memory: keys `receive-window`
  /// (bytes read and not yet processed, default 256 KiB, 4096 at least),
  /// `send-buffer` (bytes queued for the peer, default 1 MiB, 4096 at
  /// least) and `slow-reader-timeout` (how long the send buffer may stay
  /// full before the peer is dropped, default 30s, 10ms..168h).
  stream_options streams;
};

/// "text" or "json".
std::string to_string(node_settings::log_format x);

// -- limits ---------------------------------------------------------------------

/// The largest config file the node reads: 1 MiB. A node's file is a few
/// kilobytes; the cap keeps start-up quick and bounded whatever the path
/// names (`/dev/zero`, a huge log by mistake).
inline constexpr size_t max_config_file_size = size_t{1} << 20;

/// Entries `listen`, `connect` and `dns-seeds` may each hold. Every listen
/// and connect entry holds a descriptor (and an actor) for the node's whole
/// life; a thousand is far beyond any real node and still starts in well
/// under a second.
inline constexpr size_t max_address_list_entries = 1024;

/// Entries `peers` may hold: only the starting pool of the address book.
inline constexpr size_t max_peers_entries = 65536;

/// Descriptors `check_descriptor_budget` keeps for the node itself (reactor,
/// resolver, metrics endpoint, log and CAF's own) beyond connections and
/// listeners; the same reserve the connection handler keeps.
inline constexpr size_t node_descriptor_reserve = 64;

/// The largest `scheduler.max-threads` `check_scheduler_settings` accepts
/// on a machine with `cores` cores: max(64, 4 × cores). The node's actors
/// never block, so threads beyond the cores only add switching; the bound
/// still leaves room for blocking experiments and is always at least CAF's
/// default (max(cores, 4)), while thousands of threads would take minutes
/// to start.
size_t max_scheduler_threads(size_t cores);

/// The config category (INI section and command-line prefix) of all node
/// settings: `[connmgr]` and `--connmgr.KEY=VALUE`.
inline constexpr std::string_view node_settings_category = "connmgr";

/// The names of all keys `read_node_settings` accepts in the `connmgr`
/// category, in the order `--help` lists them.
const std::vector<std::string>& node_settings_keys();

/// Registers every `connmgr` option (with its CAF type and help text) in
/// `opts`, so that CAF's own command-line parsing accepts
/// `--connmgr.KEY=VALUE` and `--help` lists the keys: the node's own, then
/// the manager keys by `declare_manager_options`. The values CAF stores
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

/// Where the config file is, the way CAF finds it: `--config-file=F` in
/// `args` (before the first positional argument; required to exist), else
/// `caf-application.ini` in the working directory (optional).
struct config_file_source {
  /// The path as given.
  std::string path;
  /// Whether a missing file is an error.
  bool required = false;
};

/// The config file `args` name (see `config_file_source`).
config_file_source find_config_file(const std::vector<std::string>& args);

/// The whole text of config file `path`, read only if it is a regular file
/// of at most `max_config_file_size` bytes, so that a directory, a FIFO, a
/// device or a huge file fails at once instead of crashing, blocking or
/// exhausting memory (a FIFO or device is never read; opening does not
/// block). The null device (`/dev/null`) reads as the empty file. A missing
/// file gives the empty text unless `required`. Fails
/// with `errc::invalid_config` naming the file and the reason, e.g.
/// `config file "/etc": not a regular file (a directory)` or
/// `cannot read config file "f": Input/output error`.
caf::expected<std::string> read_config_file(const std::string& path,
                                            bool required);

/// Reads the node settings strictly from config-file text `content` (read
/// from `file_name`, which only appears in messages) and `args`, like
/// `read_node_settings` below; the caller passes the same text to CAF
/// (`actor_system_config::parse(argc, argv, istream)`), so the file is read
/// once and exactly what was checked is used.
caf::expected<node_settings>
parse_node_settings(const std::string& content, const std::string& file_name,
                    const std::vector<std::string>& args);

/// Reads the node settings strictly, without an actor system.
///
/// `config_file` is read by `read_config_file` and parsed with CAF's own
/// config parser (so every file CAF accepts reads the same way); its
/// `[connmgr]` section is then checked key by key. With
/// `config_file_required` false a missing file counts as empty (CAF's
/// behaviour for `caf-application.ini`); with true it is an error (CAF's
/// behaviour for `--config-file=F`). Sections other than `[connmgr]` are
/// left alone: they belong to CAF or to other components.
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
/// (negative, too large, or 0 where at least 1 is needed), a duration out of
/// its key's range (see below; one too large for CAF's 64-bit nanoseconds,
/// such as 99999999h, counts as too large rather than wrapping), a list
/// longer than `max_address_list_entries` (`max_peers_entries` for
/// `peers`), a malformed address, a log format other than text or json, a
/// file `read_config_file` refuses or CAF cannot parse, or a combination
/// `validate(manager_config, "connmgr")` rejects (naming keys).
///
/// Durations range up to 168h; at least 1ms for `retry-duration`,
/// `max-retry-duration` and `dial-timeout` and at least 10ms for
/// `handshake-timeout`, `status-interval` and `ping-interval` (shorter
/// periods only burn CPU on timers). `max-inbound` takes an integer or
/// `"unlimited"` (bare `unlimited` on the command line).
caf::expected<node_settings>
read_node_settings(const std::string& config_file, bool config_file_required,
                   const std::vector<std::string>& args);

/// Like the overload above, but takes the config file the way CAF does: from
/// `--config-file=F` in `args` (required to exist) or else
/// `caf-application.ini` in the working directory (optional).
caf::expected<node_settings>
read_node_settings(const std::vector<std::string>& args);

/// Checks that the descriptors `s` may hold at once fit `fd_limit` (the
/// process's open-file limit; 0 = unknown, always fits): `target-outbound`
/// + `max-inbound` (0 when unlimited) + one per `listen` and per `connect`
/// entry + `node_descriptor_reserve`. Fails with `errc::invalid_config`
/// naming those keys, their values and the limit, e.g.
/// `connmgr.target-outbound + connmgr.max-inbound + connmgr.listen +
/// connmgr.connect = 8 + 100000 + 0 + 0 = 100008, expected at most 960 to
/// fit the open-file limit of 1024 (64 kept for the node itself)`.
caf::error check_descriptor_budget(const node_settings& s, size_t fd_limit);

/// Checks the values of CAF's own scheduler options in `caf_content` (the
/// parsed config file and command line, `caf::content(cfg)`) that would
/// crash or hang the actor system, before one is made from them:
/// `scheduler.max-threads` in 1..`max_scheduler_threads(cores)` (0 divides
/// by zero), `scheduler.max-throughput` >= 1 (0 never runs an actor),
/// `scheduler.policy` `stealing` or `sharing` (`testing` runs nothing), and
/// `work-stealing.aggressive-steal-interval`, `moderate-steal-interval` and
/// `relaxed-steal-interval` >= 1 (0 divides by zero). Absent keys keep
/// CAF's defaults and pass. Fails with `errc::invalid_config` naming the
/// key, the value and what was expected, e.g.
/// `scheduler.max-threads = "0": expected an integer in 1..64`.
caf::error check_scheduler_settings(const caf::settings& caf_content,
                                    size_t cores);

} // namespace connmgr
