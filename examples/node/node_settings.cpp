// The node's key table and reader: the [connmgr] section of the config file
// and --connmgr.KEY=VALUE options, read strictly. The manager keys are the
// library's (manager_config_reader.hpp); the node's own keys are read here.
// Config-file handling is in node_settings_file.cpp, the scanner that names
// the key of a line CAF's parser blames in node_settings_blame.cpp. Over
// 500 lines because the key table, the reader of each kind of value and the
// reader that applies them in the table's order only make sense together.

#include "examples/node/node_settings.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include <caf/atom.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config_reader.hpp"
#include "examples/node/node_settings_blame.hpp"

namespace connmgr {

namespace {

using namespace std::string_literals;
using node_detail::bad_value;
using node_detail::trim;
using node_detail::unknown_key;

/// How the value of one key is read.
enum class key_kind : uint8_t {
  address_list, // list of quoted addresses
  count, // uint32_t with a lower bound
  duration, // positive caf::timespan
  address,
  log_format,
  flag, // bool: a bare flag on the command line, true/false in a file
  path, // a non-empty file name
  manager, // a key of the library's manager section (read_manager_option)
};

/// One key of the `connmgr` category: the node's own, or a manager key the
/// library declares and reads (kept here only for its place in the order).
struct key_info {
  const char* name;
  key_kind kind;
  /// For lists and addresses: whether port 0 is allowed (only where we
  /// listen: 0 asks the system for a free port, reported at start-up).
  bool allow_port_zero;
  /// For counts: the smallest allowed value. For lists: the most entries.
  uint32_t min;
  const char* help;
  /// For durations: the shortest allowed value (the longest is
  /// `max_duration` for all).
  caf::timespan min_duration;
};

constexpr uint32_t uint32_max = std::numeric_limits<uint32_t>::max();

/// The longest duration any key takes: far beyond a useful value, and far
/// from the overflow of CAF's 64-bit nanoseconds when added to a clock.
constexpr caf::timespan max_duration = std::chrono::hours{168};

/// Shortest period of the per-peer timers and the status line.
constexpr caf::timespan min_period = std::chrono::milliseconds{10};

constexpr caf::timespan no_duration{};

constexpr auto list_cap = static_cast<uint32_t>(max_address_list_entries);

// The order is the order of the "expected one of" list; manager keys
// the library adds later (`manager_config_keys()`) follow at the end.
const key_info keys[] = {
  {"listen", key_kind::address_list, true, list_cap,
   "addresses to accept connections on, e.g. [\"0.0.0.0:8333\"] (port 0: "
   "any free port)",
   no_duration},
  {"connect", key_kind::address_list, false, list_cap,
   "permanent peers, always kept connected", no_duration},
  {"peers", key_kind::address_list, false,
   static_cast<uint32_t>(max_peers_entries),
   "initial address pool for automatic outbound connections", no_duration},
  {"dns-seeds", key_kind::address_list, false, list_cap,
   "host:port names whose every resolved address joins the pool", no_duration},
  {"target-outbound", key_kind::manager, false, 0, "", no_duration},
  {"max-inbound", key_kind::manager, false, 0, "", no_duration},
  {"retry-duration", key_kind::manager, false, 0, "", no_duration},
  {"max-retry-duration", key_kind::manager, false, 0, "", no_duration},
  {"dial-timeout", key_kind::manager, false, 0, "", no_duration},
  {"max-failed-attempts", key_kind::manager, false, 0, "", no_duration},
  {"max-pending-dials", key_kind::manager, false, 0, "", no_duration},
  {"proxy", key_kind::address, false, 0,
   "SOCKS5 proxy host:port for outbound dials (default none)", no_duration},
  {"handshake-timeout", key_kind::duration, false, 0,
   "deadline of the handshake (default 10s, 10ms..168h)", min_period},
  {"status-interval", key_kind::duration, false, 0,
   "period of the status report (default 5s, 10ms..168h)", min_period},
  {"ping-interval", key_kind::duration, false, 0,
   "keep-alive period; a peer silent for one period is dropped (default "
   "30s, 10ms..168h)",
   min_period},
  {"metrics-listen", key_kind::address, true, 0,
   "host:port of the metrics endpoint (default none)", no_duration},
  {"log-format", key_kind::log_format, false, 0, "text or json (default text)",
   no_duration},
  {"netgroup-bits-ipv4", key_kind::manager, false, 0, "", no_duration},
  {"netgroup-bits-ipv6", key_kind::manager, false, 0, "", no_duration},
  {"allow-local-addresses", key_kind::flag, false, 0,
   "accept gossip of loopback, private and link-local addresses (default "
   "off)",
   no_duration},
  {"outbound-per-netgroup", key_kind::count, false, 1,
   "automatic outbound connections per network group (default 1)", no_duration},
  {"max-inbound-per-ip", key_kind::manager, false, 0, "", no_duration},
  {"max-inbound-per-netgroup", key_kind::manager, false, 0, "", no_duration},
  {"max-pending-inbound", key_kind::manager, false, 0, "", no_duration},
  {"inbound-rate-per-ip", key_kind::manager, false, 0, "", no_duration},
  {"inbound-burst-per-ip", key_kind::manager, false, 0, "", no_duration},
  {"receive-window", key_kind::count, false, 4096,
   "bytes per peer read ahead of processing (default 262144)", no_duration},
  {"send-buffer", key_kind::count, false, 4096,
   "bytes per peer queued for sending (default 1048576)", no_duration},
  {"slow-reader-timeout", key_kind::duration, false, 0,
   "a peer whose send buffer stays full this long is dropped (default 30s, "
   "10ms..168h)",
   min_period},
  {"control-listen", key_kind::address, true, 0,
   "IP address:port of the remote control for connmgr-ctl (default none; "
   "needs control-cert, control-key and control-ca)",
   no_duration},
  {"control-cert", key_kind::path, false, 0,
   "PEM certificate (chain) of the node's remote control", no_duration},
  {"control-key", key_kind::path, false, 0,
   "PEM private key of control-cert", no_duration},
  {"control-ca", key_kind::path, false, 0,
   "PEM CA certificate every control client's certificate must be signed by",
   no_duration},
  {"control-insecure-loopback", key_kind::flag, false, 0,
   "plain TCP for the remote control, only on a loopback control-listen "
   "(default off)",
   no_duration},
};

const key_info* find_key(std::string_view name) {
  for (auto& k : keys)
    if (name == k.name)
      return &k;
  return nullptr;
}

std::string expectation(const key_info& k) {
  switch (k.kind) {
    case key_kind::address_list:
      return R"(expected a list of quoted addresses like ["1.2.3.4:8333"])";
    case key_kind::count:
      return fmt::format("expected an integer in {}..{}", k.min, uint32_max);
    case key_kind::duration:
      return "expected a duration like 5s or 250ms";
    case key_kind::address:
      return R"(expected a quoted address like "127.0.0.1:9050")";
    case key_kind::log_format:
      return "expected text or json";
    case key_kind::flag:
      return "expected true or false";
    case key_kind::path:
      return R"(expected a quoted file name like "/etc/connmgr/node.pem")";
    case key_kind::manager:
      return manager_key_expectation(k.name);
  }
  return "expected a valid value";
}

std::string qualified(std::string_view key) {
  return fmt::format("{}.{}", node_settings_category, key);
}

/// The context string of an error made by `make_error(errc, std::string)`.
std::string context_of(const caf::error& err) {
  auto& ctx = err.context();
  if (ctx.size() == 1 && ctx.match_element<std::string>(0))
    return ctx.get_as<std::string>(0);
  return describe(err);
}

caf::expected<net_address> read_address(std::string_view key,
                                        const caf::config_value& x,
                                        bool allow_port_zero,
                                        std::string_view expected) {
  auto str = caf::get_if<std::string>(&x);
  if (str == nullptr)
    return bad_value(key, config_value_text(x), expected);
  auto addr = net_address::parse(*str, allow_port_zero);
  if (!addr)
    return make_error(
      errc::invalid_config,
      fmt::format("{} = {}", qualified(key), context_of(addr.error())));
  return addr;
}

caf::expected<std::vector<net_address>>
read_address_list(const key_info& k, const caf::config_value& x) {
  auto list = caf::get_if<caf::config_value::list>(&x);
  if (list == nullptr)
    return bad_value(k.name, config_value_text(x), expectation(k));
  // Before parsing a single entry: a huge list fails at once.
  if (list->size() > k.min)
    return make_error(errc::invalid_config,
                      fmt::format("{} = [{} entries]: expected at most {} "
                                  "entries",
                                  qualified(k.name), list->size(), k.min));
  std::vector<net_address> result;
  result.reserve(list->size());
  for (size_t i = 0; i < list->size(); ++i) {
    auto name = fmt::format("{}[{}]", k.name, i);
    auto addr =
      read_address(name, (*list)[i], k.allow_port_zero,
                   R"(expected a quoted address like "1.2.3.4:8333")");
    if (!addr)
      return std::move(addr.error());
    result.push_back(std::move(*addr));
  }
  return result;
}

caf::expected<uint32_t> read_count(const key_info& k,
                                   const caf::config_value& x) {
  auto num = caf::get_if<caf::config_value::integer>(&x);
  if (num == nullptr || *num < static_cast<int64_t>(k.min)
      || *num > static_cast<int64_t>(uint32_max))
    return bad_value(k.name, config_value_text(x), expectation(k));
  return static_cast<uint32_t>(*num);
}

/// "expected a duration in 1ms..168h".
std::string duration_range(const key_info& k) {
  return fmt::format("expected a duration in {}..{}",
                     to_string_duration(k.min_duration),
                     to_string_duration(max_duration));
}

/// Fails when `text`, the value of duration key `k`, is a duration that
/// does not fit 64-bit nanoseconds (CAF would silently wrap it around).
caf::error check_span_text(const key_info& k, std::string_view text) {
  if (!duration_text_overflows(text))
    return caf::none;
  auto shown = std::string{text};
  auto first = shown.find_first_not_of(" \t\r\"'");
  auto last = shown.find_last_not_of(" \t\r\"'");
  if (first != std::string::npos)
    shown = shown.substr(first, last - first + 1);
  return bad_value(k.name, shown, duration_range(k));
}

caf::expected<caf::timespan> read_duration(const key_info& k,
                                           const caf::config_value& x) {
  const caf::timespan* span = caf::get_if<caf::timespan>(&x);
  caf::config_value reparsed;
  if (auto str = caf::get_if<std::string>(&x)) {
    // A quoted duration ("5s") reads like an unquoted one.
    if (auto val = caf::config_value::parse(*str)) {
      reparsed = std::move(*val);
      span = caf::get_if<caf::timespan>(&reparsed);
    }
  }
  if (span == nullptr)
    return bad_value(k.name, config_value_text(x), expectation(k));
  if (*span < k.min_duration || *span > max_duration)
    return bad_value(k.name, config_value_text(x), duration_range(k));
  return *span;
}

caf::expected<node_settings::log_format>
read_log_format(const key_info& k, const caf::config_value& x) {
  auto text = config_value_text(x);
  if (caf::holds_alternative<std::string>(x)
      || caf::holds_alternative<caf::atom_value>(x)) {
    if (text == "text")
      return node_settings::log_format::text;
    if (text == "json")
      return node_settings::log_format::json;
  }
  return bad_value(k.name, text, expectation(k));
}

/// Stores the value `x` of key `name` (table entry `k`) into `out`.
caf::error apply(const key_info& k, std::string_view name,
                 const caf::config_value& x, node_settings& out) {
  switch (k.kind) {
    case key_kind::address_list: {
      auto list = read_address_list(k, x);
      if (!list)
        return std::move(list.error());
      if (name == "listen") {
        out.listen = std::move(*list);
      } else if (name == "connect") {
        out.connect = std::move(*list);
      } else if (name == "dns-seeds") {
        out.dns_seeds = std::move(*list);
      } else {
        out.peers.clear();
        for (auto& addr : *list)
          out.peers.push_back(addr.to_string());
      }
      return caf::none;
    }
    case key_kind::count: {
      auto num = read_count(k, x);
      if (!num)
        return std::move(num.error());
      if (name == "outbound-per-netgroup")
        out.outbound_per_netgroup = *num;
      else if (name == "receive-window")
        out.streams.receive_window = *num;
      else
        out.streams.max_send_buffer = *num;
      return caf::none;
    }
    case key_kind::duration: {
      auto span = read_duration(k, x);
      if (!span)
        return std::move(span.error());
      if (name == "handshake-timeout")
        out.handshake_timeout = *span;
      else if (name == "ping-interval")
        out.ping_interval = *span;
      else if (name == "slow-reader-timeout")
        out.streams.slow_reader_timeout =
          std::chrono::duration_cast<std::chrono::milliseconds>(*span);
      else
        out.status_interval = *span;
      return caf::none;
    }
    case key_kind::address: {
      auto addr = read_address(k.name, x, k.allow_port_zero, expectation(k));
      if (!addr)
        return std::move(addr.error());
      if (name == "proxy")
        out.proxy = std::move(*addr);
      else if (name == "control-listen")
        out.control_listen = std::move(*addr);
      else
        out.metrics_listen = std::move(*addr);
      return caf::none;
    }
    case key_kind::log_format: {
      auto fmt = read_log_format(k, x);
      if (!fmt)
        return std::move(fmt.error());
      out.format = *fmt;
      return caf::none;
    }
    case key_kind::flag: {
      auto flag = caf::get_if<bool>(&x);
      if (flag == nullptr)
        return bad_value(k.name, config_value_text(x), expectation(k));
      if (name == "control-insecure-loopback")
        out.control_insecure_loopback = *flag;
      else
        out.allow_local_addresses = *flag;
      return caf::none;
    }
    case key_kind::path: {
      auto str = caf::get_if<std::string>(&x);
      if (str == nullptr || str->empty())
        return bad_value(k.name, config_value_text(x), expectation(k));
      if (name == "control-cert")
        out.control_cert = *str;
      else if (name == "control-key")
        out.control_key = *str;
      else
        out.control_ca = *str;
      return caf::none;
    }
    case key_kind::manager:
      return read_manager_option(std::string{node_settings_category}, name, x,
                                 out.manager);
  }
  return caf::none;
}

/// Every key of the category in order: the table's, then the manager keys
/// the table does not place.
const std::vector<std::string>& all_keys() {
  static const std::vector<std::string> result = [] {
    std::vector<std::string> names;
    for (auto& k : keys)
      names.emplace_back(k.name);
    for (auto& key : manager_config_keys())
      if (find_key(key) == nullptr)
        names.push_back(key);
    return names;
  }();
  return result;
}

/// The table entry of `name`: the node's own, or one standing for a manager
/// key (also those the table does not place); null for an unknown key.
const key_info* find_any_key(std::string_view name) {
  if (auto k = find_key(name))
    return k;
  if (!is_manager_key(name))
    return nullptr;
  // One entry serves every manager key: `apply` and `expectation` go by
  // the key's name, which the caller passes along.
  static const key_info manager_entry{"", key_kind::manager, false, 0,
                                      "", no_duration};
  return &manager_entry;
}

/// The remote control's keys together: TLS keys all three or none, only
/// with control-listen; plain TCP only when asked and only on loopback.
caf::error check_control_keys(const node_settings& s) {
  const char* tls_keys = "connmgr.control-cert, connmgr.control-key and "
                         "connmgr.control-ca";
  std::vector<std::string> given;
  std::vector<std::string> missing;
  for (auto [key, value] : {std::pair{"control-cert", &s.control_cert},
                            std::pair{"control-key", &s.control_key},
                            std::pair{"control-ca", &s.control_ca}})
    (value->empty() ? missing : given).push_back(qualified(key));
  auto join = [](const std::vector<std::string>& xs) {
    std::string out;
    for (auto& x : xs)
      out += (out.empty() ? "" : ", ") + x;
    return out;
  };
  if (!s.control_listen) {
    if (!given.empty() || s.control_insecure_loopback)
      return make_error(
        errc::invalid_config,
        fmt::format("{} set without connmgr.control-listen, expected "
                    "connmgr.control-listen too",
                    given.empty() ? qualified("control-insecure-loopback")
                                  : join(given)));
    return caf::none;
  }
  auto where = s.control_listen->to_string();
  if (!s.control_listen->is_ip())
    return make_error(errc::invalid_config,
                      fmt::format("connmgr.control-listen = \"{}\": expected "
                                  "an IP address and port like "
                                  "\"127.0.0.1:8444\"",
                                  where));
  if (!given.empty() && !missing.empty())
    return make_error(errc::invalid_config,
                      fmt::format("{} set but {} missing: the remote control "
                                  "needs all of {}",
                                  join(given), join(missing), tls_keys));
  if (!given.empty()) {
    if (s.control_insecure_loopback)
      return make_error(errc::invalid_config,
                        fmt::format("connmgr.control-insecure-loopback = true "
                                    "with {}: expected one of TLS or plain "
                                    "TCP",
                                    tls_keys));
    return caf::none;
  }
  if (!s.control_listen->is_loopback())
    return make_error(errc::invalid_config,
                      fmt::format("connmgr.control-listen = \"{}\" is not a "
                                  "loopback address: it needs mutual TLS, "
                                  "expected {}{}",
                                  where, tls_keys,
                                  s.control_insecure_loopback
                                    ? " (connmgr.control-insecure-loopback "
                                      "allows plain TCP on loopback only)"
                                    : ""));
  if (!s.control_insecure_loopback)
    return make_error(errc::invalid_config,
                      fmt::format("connmgr.control-listen = \"{}\" without "
                                  "TLS: expected {}, or "
                                  "connmgr.control-insecure-loopback = true "
                                  "for plain TCP on loopback",
                                  where, tls_keys));
  return caf::none;
}

} // namespace

namespace node_detail {

std::string key_expectation(std::string_view key) {
  if (auto k = find_key(key))
    return expectation(*k);
  return manager_key_expectation(key);
}

caf::error bad_value(std::string_view key, std::string_view text,
                     std::string_view expected) {
  return make_error(
    errc::invalid_config,
    fmt::format("{} = \"{}\": {}", qualified(key), text, expected));
}

caf::error unknown_key(std::string_view key) {
  std::string names;
  for (auto& name : all_keys()) {
    if (!names.empty())
      names += ", ";
    names += name;
  }
  return make_error(
    errc::invalid_config,
    fmt::format("{}: unknown key, expected one of {}", qualified(key), names));
}

caf::error check_value_text(std::string_view key, std::string_view text) {
  if (auto k = find_key(key); k != nullptr && k->kind == key_kind::duration)
    return check_span_text(*k, text);
  return check_manager_option_text(std::string{node_settings_category}, key,
                                   text);
}

std::string trim(std::string_view x) {
  auto first = x.find_first_not_of(" \t\r");
  if (first == std::string_view::npos)
    return {};
  auto last = x.find_last_not_of(" \t\r");
  return std::string{x.substr(first, last - first + 1)};
}

} // namespace node_detail

std::string to_string(node_settings::log_format x) {
  return x == node_settings::log_format::json ? "json" : "text";
}

const std::vector<std::string>& node_settings_keys() {
  return all_keys();
}

void declare_node_options(caf::config_option_set& opts) {
  caf::config_option_adder adder{opts, node_settings_category};
  for (auto& k : keys) {
    if (k.kind == key_kind::manager)
      continue;
    // Explicit lengths: CAF 0.17's string_view takes a bare `const char*`
    // only when built by GCC.
    caf::string_view name{k.name, std::strlen(k.name)};
    caf::string_view help{k.help, std::strlen(k.help)};
    switch (k.kind) {
      case key_kind::address_list:
        adder.add<std::vector<std::string>>(name, help);
        break;
      case key_kind::count:
        adder.add<uint32_t>(name, help);
        break;
      case key_kind::duration:
        adder.add<caf::timespan>(name, help);
        break;
      case key_kind::address:
      case key_kind::log_format:
      case key_kind::path:
        adder.add<std::string>(name, help);
        break;
      case key_kind::flag:
        adder.add<bool>(name, help);
        break;
      case key_kind::manager:
        break;
    }
  }
  // The manager keys as the library declares them: CAF keeps their values
  // as written, `read_node_settings` checks them.
  declare_manager_options(opts, std::string{node_settings_category});
}

node_actor_system_config::node_actor_system_config() {
  declare_node_options(custom_options_);
}

caf::expected<node_settings>
parse_node_settings(const std::string& content, const std::string& file_name,
                    const std::vector<std::string>& args) {
  // Values by key, file first, then command line on top.
  std::map<std::string, caf::config_value> values;
  // 1. The file, parsed by CAF without type checks so nothing is dropped.
  if (!content.empty()) {
    if (auto err = node_detail::unterminated_list(content))
      return err;
    if (auto err = node_detail::overflowing_duration(content))
      return err;
    std::istringstream in{content};
    auto parsed = caf::actor_system_config::parse_config(in);
    if (!parsed)
      return node_detail::syntax_error(file_name, content, parsed.error());
    auto section = parsed->find(node_settings_category);
    if (section != parsed->end()) {
      auto dict = caf::get_if<caf::config_value::dictionary>(&section->second);
      if (dict == nullptr)
        return make_error(errc::invalid_config,
                          fmt::format("{} = \"{}\": expected a [{}] section",
                                      node_settings_category,
                                      config_value_text(section->second),
                                      node_settings_category));
      for (auto& [key, value] : *dict) {
        if (find_any_key(key) == nullptr)
          return unknown_key(key);
        values[key] = value;
      }
    }
  }
  // 2. The command line, each value parsed as CAF parses its option.
  caf::config_option_set opts;
  declare_node_options(opts);
  auto prefix = fmt::format("--{}.", node_settings_category);
  for (auto& arg : args) {
    if (arg == "--" || arg.empty() || arg.front() != '-')
      break;
    if (arg.compare(0, prefix.size(), prefix) != 0)
      continue;
    auto rest = std::string_view{arg}.substr(prefix.size());
    auto eq = rest.find('=');
    auto key = rest.substr(0, eq);
    auto k = find_any_key(key);
    if (k == nullptr)
      return unknown_key(key);
    if (eq == std::string_view::npos && k->kind == key_kind::flag) {
      // A bare flag, as CAF takes a bool on the command line.
      values[std::string{key}] = caf::config_value{true};
      continue;
    }
    if (eq == std::string_view::npos)
      return make_error(errc::invalid_config,
                        fmt::format("{}: missing value, expected {}{}=VALUE",
                                    qualified(key), prefix, key));
    auto text = rest.substr(eq + 1);
    if (k->kind == key_kind::duration)
      if (auto err = check_span_text(*k, text))
        return err;
    // Parsed as CAF parses the option (manager options keep what they
    // cannot parse as text, for the reader to refuse by key).
    auto opt = opts.qualified_name_lookup(node_settings_category, key);
    auto value = opt != nullptr
      ? opt->parse(text)
      : caf::expected<caf::config_value>{caf::config_value{std::string{text}}};
    if (!value)
      return bad_value(key, text, node_detail::key_expectation(key));
    values[std::string{key}] = std::move(*value);
  }
  // 3. Convert and check every key, in declaration order; the manager keys
  // through the library's reader, the combination by its validate.
  node_settings result;
  for (auto& name : all_keys()) {
    auto i = values.find(name);
    if (i == values.end())
      continue;
    if (auto err = apply(*find_any_key(name), name, i->second, result))
      return err;
  }
  if (auto err = validate(result.manager, std::string{node_settings_category}))
    return err;
  if (auto err = check_control_keys(result))
    return err;
  return result;
}

caf::expected<node_settings>
read_node_settings(const std::string& config_file, bool config_file_required,
                   const std::vector<std::string>& args) {
  auto content = read_config_file(config_file, config_file_required);
  if (!content)
    return std::move(content.error());
  return parse_node_settings(*content, config_file, args);
}

caf::expected<node_settings>
read_node_settings(const std::vector<std::string>& args) {
  auto src = find_config_file(args);
  return read_node_settings(src.path, src.required, args);
}

} // namespace connmgr
