#include "examples/node/node_settings.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>
#include <utility>

#include <caf/atom.hpp>
#include <caf/config_option_adder.hpp>
#include <caf/config_value.hpp>
#include <caf/pec.hpp>
#include <caf/settings.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

using namespace std::string_literals;

/// How the value of one key is read.
enum class key_kind : uint8_t {
  address_list, // list of quoted addresses
  count,        // uint32_t with a lower bound
  optional_count,
  duration, // positive caf::timespan
  address,
  log_format,
  flag, // bool: a bare flag on the command line, true/false in a file
};

/// One key of the `connmgr` category.
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

/// Shortest backoff step and dial deadline: below 1ms a retry schedule only
/// floods the handler with timer events.
constexpr caf::timespan min_retry_duration = std::chrono::milliseconds{1};

/// Shortest period of the per-peer timers and the status line.
constexpr caf::timespan min_period = std::chrono::milliseconds{10};

constexpr caf::timespan no_duration{};

constexpr auto list_cap = static_cast<uint32_t>(max_address_list_entries);

// The order is the order of `--help` and of the "expected one of" list.
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
   "host:port names whose every resolved address joins the pool",
   no_duration},
  {"target-outbound", key_kind::count, false, 0,
   "automatic outbound connections to keep (default 8)", no_duration},
  {"max-inbound", key_kind::optional_count, false, 0,
   "inbound connections at once (default 114, 0 = none, or \"unlimited\")",
   no_duration},
  {"retry-duration", key_kind::duration, false, 0,
   "backoff step between retries (default 5s, 1ms..168h)",
   min_retry_duration},
  {"max-retry-duration", key_kind::duration, false, 0,
   "backoff cap (default 5min, up to 168h)", min_retry_duration},
  {"dial-timeout", key_kind::duration, false, 0,
   "deadline of one dial attempt (default 10s, 1ms..168h)",
   min_retry_duration},
  {"max-failed-attempts", key_kind::count, false, 1,
   "consecutive failures before throttling (default 25)", no_duration},
  {"max-pending-dials", key_kind::count, false, 1,
   "dials in flight at once (default 128)", no_duration},
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
  {"log-format", key_kind::log_format, false, 0,
   "text or json (default text)", no_duration},
  {"netgroup-bits-ipv4", key_kind::count, false, 1,
   "prefix bits of an IPv4 network group, for diversity and inbound limits "
   "(default 16, 1..32)",
   no_duration},
  {"netgroup-bits-ipv6", key_kind::count, false, 1,
   "prefix bits of an IPv6 network group (default 32, 1..128)", no_duration},
  {"allow-local-addresses", key_kind::flag, false, 0,
   "accept gossip of loopback, private and link-local addresses (default "
   "off)",
   no_duration},
  {"outbound-per-netgroup", key_kind::count, false, 1,
   "automatic outbound connections per network group (default 1)",
   no_duration},
  {"max-inbound-per-ip", key_kind::optional_count, false, 1,
   "inbound connections per source IP, IPv6 per /64 (default 4, or "
   "\"unlimited\")",
   no_duration},
  {"max-inbound-per-netgroup", key_kind::optional_count, false, 1,
   "inbound connections per network group (default unlimited)",
   no_duration},
  {"max-pending-inbound", key_kind::optional_count, false, 1,
   "inbound connections still in their handshake (default 32, or "
   "\"unlimited\")",
   no_duration},
  {"inbound-rate-per-ip", key_kind::optional_count, false, 1,
   "new inbound connections per minute per source IP (default 60, or "
   "\"unlimited\")",
   no_duration},
  {"inbound-burst-per-ip", key_kind::count, false, 1,
   "burst of new inbound connections per source IP (default 10)",
   no_duration},
  {"receive-window", key_kind::count, false, 4096,
   "bytes per peer read ahead of processing (default 262144)", no_duration},
  {"send-buffer", key_kind::count, false, 4096,
   "bytes per peer queued for sending (default 1048576)", no_duration},
  {"slow-reader-timeout", key_kind::duration, false, 0,
   "a peer whose send buffer stays full this long is dropped (default 30s, "
   "10ms..168h)",
   min_period},
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
    case key_kind::optional_count:
      return fmt::format("expected an integer in {}..{} or \"unlimited\"",
                         k.min, uint32_max);
    case key_kind::duration:
      return "expected a duration like 5s or 250ms";
    case key_kind::address:
      return R"(expected a quoted address like "127.0.0.1:9050")";
    case key_kind::log_format:
      return "expected text or json";
    case key_kind::flag:
      return "expected true or false";
  }
  return "expected a valid value";
}

std::string qualified(std::string_view key) {
  return fmt::format("{}.{}", node_settings_category, key);
}

caf::error bad_value(std::string_view key, std::string_view text,
                     std::string_view expected) {
  return make_error(errc::invalid_config,
                    fmt::format("{} = \"{}\": {}", qualified(key), text,
                                expected));
}

caf::error unknown_key(std::string_view key) {
  std::string names;
  for (auto& k : keys) {
    if (!names.empty())
      names += ", ";
    names += k.name;
  }
  return make_error(errc::invalid_config,
                    fmt::format("{}: unknown key, expected one of {}",
                                qualified(key), names));
}

/// The value as a user would have written it, without quotes.
std::string render(const caf::config_value& x) {
  if (auto str = caf::get_if<std::string>(&x))
    return *str;
  if (auto atm = caf::get_if<caf::atom_value>(&x))
    return caf::to_string(*atm);
  if (auto num = caf::get_if<caf::config_value::integer>(&x))
    return std::to_string(*num);
  if (auto span = caf::get_if<caf::timespan>(&x))
    return span->count() == 0 ? "0s" : to_string_duration(*span);
  return caf::to_string(x);
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
    return bad_value(key, render(x), expected);
  auto addr = net_address::parse(*str, allow_port_zero);
  if (!addr)
    return make_error(errc::invalid_config,
                      fmt::format("{} = {}", qualified(key),
                                  context_of(addr.error())));
  return addr;
}

caf::expected<std::vector<net_address>>
read_address_list(const key_info& k, const caf::config_value& x) {
  auto list = caf::get_if<caf::config_value::list>(&x);
  if (list == nullptr)
    return bad_value(k.name, render(x), expectation(k));
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
    auto addr = read_address(name, (*list)[i], k.allow_port_zero,
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
    return bad_value(k.name, render(x), expectation(k));
  return static_cast<uint32_t>(*num);
}

/// A count, or the word `unlimited` (quoted in a file, as every string
/// there; bare or quoted on the command line): nothing.
caf::expected<std::optional<uint32_t>>
read_optional_count(const key_info& k, const caf::config_value& x) {
  if (render(x) == "unlimited"
      && (caf::holds_alternative<std::string>(x)
          || caf::holds_alternative<caf::atom_value>(x)))
    return std::optional<uint32_t>{};
  auto num = read_count(k, x);
  if (!num)
    return std::move(num.error());
  return std::optional<uint32_t>{*num};
}

/// How `parse_span` read a text.
enum class span_text : uint8_t {
  /// A duration that fits a `caf::timespan`.
  ok,
  /// A duration too large (or too small) for 64-bit nanoseconds.
  overflow,
  /// Not a duration in CAF's syntax.
  invalid,
};

/// Reads `text` (blanks around it, and one pair of quotes, allowed) in CAF's
/// duration syntax, an integer and one of ns, us, ms, s, min, h, checking
/// what CAF's parser does not: that the nanoseconds fit 64 bits.
span_text parse_span(std::string_view text, caf::timespan& out) {
  auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos)
    return span_text::invalid;
  text = text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
  if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'')
      && text.back() == text.front())
    text = text.substr(1, text.size() - 2);
  bool negative = false;
  size_t pos = 0;
  if (pos < text.size() && (text[pos] == '-' || text[pos] == '+'))
    negative = text[pos++] == '-';
  // Magnitudes up to 2^63 (the most negative value) are representable.
  constexpr uint64_t limit = uint64_t{1} << 63;
  uint64_t mag = 0;
  bool overflow = false;
  auto digits_begin = pos;
  for (; pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos) {
    auto digit = static_cast<uint64_t>(text[pos] - '0');
    if (mag > (limit - digit) / 10)
      overflow = true;
    else
      mag = mag * 10 + digit;
  }
  if (pos == digits_begin)
    return span_text::invalid;
  auto unit = text.substr(pos);
  uint64_t factor = 0;
  if (unit == "ns")
    factor = 1;
  else if (unit == "us")
    factor = 1'000;
  else if (unit == "ms")
    factor = 1'000'000;
  else if (unit == "s")
    factor = 1'000'000'000;
  else if (unit == "min")
    factor = 60'000'000'000;
  else if (unit == "h")
    factor = 3'600'000'000'000;
  else
    return span_text::invalid;
  if (overflow || mag > limit / factor)
    return span_text::overflow;
  mag *= factor;
  if (mag > limit - (negative ? 0 : 1))
    return span_text::overflow;
  // -2^63 is no negated int64_t: negate one less, then subtract one.
  auto ns = negative && mag > 0 ? -static_cast<int64_t>(mag - 1) - 1
                                : static_cast<int64_t>(mag);
  out = caf::timespan{ns};
  return span_text::ok;
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
  caf::timespan span{};
  if (parse_span(text, span) != span_text::overflow)
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
    return bad_value(k.name, render(x), expectation(k));
  if (*span < k.min_duration || *span > max_duration)
    return bad_value(k.name, render(x), duration_range(k));
  return *span;
}

caf::expected<node_settings::log_format>
read_log_format(const key_info& k, const caf::config_value& x) {
  auto text = render(x);
  if (caf::holds_alternative<std::string>(x)
      || caf::holds_alternative<caf::atom_value>(x)) {
    if (text == "text")
      return node_settings::log_format::text;
    if (text == "json")
      return node_settings::log_format::json;
  }
  return bad_value(k.name, text, expectation(k));
}

/// Stores the value `x` of key `k` into `out`.
caf::error apply(const key_info& k, const caf::config_value& x,
                 node_settings& out) {
  std::string_view name = k.name;
  auto& mgr = out.manager;
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
    case key_kind::optional_count: {
      auto num = read_optional_count(k, x);
      if (!num)
        return std::move(num.error());
      if (name == "max-inbound-per-ip")
        mgr.max_inbound_per_ip = *num;
      else if (name == "max-inbound-per-netgroup")
        mgr.max_inbound_per_netgroup = *num;
      else if (name == "max-pending-inbound")
        mgr.max_pending_inbound = *num;
      else if (name == "inbound-rate-per-ip")
        mgr.inbound_rate_per_ip
          = num->has_value() ? std::optional<double>{**num / 60.0}
                             : std::nullopt;
      else
        mgr.max_inbound = *num;
      return caf::none;
    }
    case key_kind::count: {
      auto num = read_count(k, x);
      if (!num)
        return std::move(num.error());
      if (name == "target-outbound")
        mgr.target_outbound = *num;
      else if (name == "max-failed-attempts")
        mgr.max_failed_attempts = *num;
      else if (name == "netgroup-bits-ipv4")
        mgr.netgroup_bits_ipv4 = *num;
      else if (name == "netgroup-bits-ipv6")
        mgr.netgroup_bits_ipv6 = *num;
      else if (name == "outbound-per-netgroup")
        out.outbound_per_netgroup = *num;
      else if (name == "inbound-burst-per-ip")
        mgr.inbound_burst_per_ip = *num;
      else if (name == "receive-window")
        out.streams.receive_window = *num;
      else if (name == "send-buffer")
        out.streams.max_send_buffer = *num;
      else
        mgr.max_pending_dials = *num;
      return caf::none;
    }
    case key_kind::duration: {
      auto span = read_duration(k, x);
      if (!span)
        return std::move(span.error());
      if (name == "retry-duration")
        mgr.retry_duration = *span;
      else if (name == "max-retry-duration")
        mgr.max_retry_duration = *span;
      else if (name == "dial-timeout")
        mgr.dial_timeout = *span;
      else if (name == "handshake-timeout")
        out.handshake_timeout = *span;
      else if (name == "ping-interval")
        out.ping_interval = *span;
      else if (name == "slow-reader-timeout")
        out.streams.slow_reader_timeout
          = std::chrono::duration_cast<std::chrono::milliseconds>(*span);
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
        return bad_value(k.name, render(x), expectation(k));
      out.allow_local_addresses = *flag;
      return caf::none;
    }
  }
  return caf::none;
}

std::string trim(std::string_view x) {
  auto first = x.find_first_not_of(" \t\r");
  if (first == std::string_view::npos)
    return {};
  auto last = x.find_last_not_of(" \t\r");
  return std::string{x.substr(first, last - first + 1)};
}

/// The decimal number right after `marker` in `text`; 0 if there is none.
long number_after(const std::string& text, std::string_view marker) {
  auto pos = text.find(marker);
  if (pos == std::string::npos)
    return 0;
  long result = 0;
  for (pos += marker.size();
       pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos)
    result = result * 10 + (text[pos] - '0');
  return result;
}

/// Splits "  key = value" into its key (letters, digits, `_`, `.`, `-`) and
/// the text after `=`; false for any other line.
bool split_key_line(const std::string& line, std::string& key,
                    std::string& value) {
  auto first = line.find_first_not_of(" \t");
  if (first == std::string::npos)
    return false;
  auto last = first;
  auto is_key_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'
           || c == '.' || c == '-';
  };
  while (last < line.size() && is_key_char(line[last]))
    ++last;
  if (last == first)
    return false;
  auto eq = line.find_first_not_of(" \t", last);
  if (eq == std::string::npos || line[eq] != '=')
    return false;
  key = line.substr(first, last - first);
  value = line.substr(eq + 1);
  return true;
}

/// The name of a "[ section ]" line (trimmed, up to the first blank);
/// nothing for any other line.
std::optional<std::string> section_of(const std::string& line) {
  auto open = line.find_first_not_of(" \t");
  if (open == std::string::npos || line[open] != '[')
    return std::nullopt;
  auto close = line.find(']', open);
  if (close == std::string::npos)
    return std::nullopt;
  auto inner = trim(std::string_view{line}.substr(open + 1, close - open - 1));
  return inner.substr(0, inner.find_first_of(" \t"));
}

/// How many more '[' than ']' `text` holds outside quotes, up to a ';'
/// comment.
int open_brackets(std::string_view text) {
  int depth = 0;
  char quote = 0;
  for (auto c : text) {
    if (quote != 0) {
      if (c == quote)
        quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == ';') {
      break;
    } else if (c == '[') {
      ++depth;
    } else if (c == ']') {
      --depth;
    }
  }
  return depth;
}

/// Finds a list in the `[connmgr]` section of `content` that is never
/// closed. CAF's parser accepts one on the last line (dropping the whole
/// section) and otherwise blames a later line, so we look first.
caf::error unterminated_list(const std::string& content) {
  std::istringstream in{content};
  std::string line;
  std::string section;
  std::string key;
  std::string value;
  int depth = 0;
  auto check = [&]() -> caf::error {
    if (depth <= 0)
      return caf::none;
    auto text = trim(value);
    if (auto k = find_key(key))
      return bad_value(key, text, "unterminated list, " + expectation(*k));
    return unknown_key(key);
  };
  while (std::getline(in, line)) {
    std::string next_key;
    std::string next_value;
    auto name = section_of(line);
    bool is_key = !name && split_key_line(line, next_key, next_value);
    if (name || is_key) {
      if (auto err = check())
        return err;
      depth = 0;
    }
    if (name) {
      section = *name;
    } else if (is_key) {
      if (section == node_settings_category) {
        key = next_key;
        value = next_value;
        depth = open_brackets(next_value);
      }
    } else if (depth > 0) {
      value += " " + trim(line);
      depth += open_brackets(line);
    }
  }
  return check();
}

/// Finds a duration key of the `[connmgr]` section of `content` whose value
/// does not fit 64-bit nanoseconds. CAF's parser wraps such a value around
/// (99999999h reads as about -2.5 million hours), so the text is checked
/// before CAF reads it.
caf::error overflowing_duration(const std::string& content) {
  std::istringstream in{content};
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    std::string key;
    std::string value;
    if (auto name = section_of(line)) {
      section = *name;
    } else if (section == node_settings_category
               && split_key_line(line, key, value)) {
      auto k = find_key(key);
      if (k == nullptr || k->kind != key_kind::duration)
        continue;
      // A ';' outside quotes starts a comment.
      char quote = 0;
      size_t end = 0;
      for (; end < value.size(); ++end) {
        char c = value[end];
        if (quote != 0) {
          if (c == quote)
            quote = 0;
        } else if (c == '"' || c == '\'') {
          quote = c;
        } else if (c == ';') {
          break;
        }
      }
      if (auto err = check_span_text(*k, value.substr(0, end)))
        return err;
    }
  }
  return caf::none;
}

/// Turns a syntax error of CAF's config parser into one line. When the bad
/// line is a `key=value` line of the `[connmgr]` section, names the key and
/// its expectation, like a type error would.
caf::error syntax_error(const std::string& file, const std::string& content,
                        const caf::error& err) {
  auto what = caf::to_string(err);
  std::string reason = what;
  if (err.category() == caf::atom("parser"))
    reason = caf::to_string(static_cast<caf::pec>(err.code()));
  long line_no = number_after(what, "\"line\" = ");
  long column = number_after(what, "\"column\" = ");
  // Find the line and the section it is in.
  std::istringstream in{content};
  std::string line;
  std::string section;
  // The parser may report the line after the bad one: blame the last key
  // line of [connmgr] at or before the reported line.
  std::string key;
  std::string value;
  bool found = false;
  for (long i = 1; line_no > 0 && i <= line_no && std::getline(in, line);
       ++i) {
    std::string k;
    std::string v;
    if (auto name = section_of(line)) {
      section = *name;
      found = false;
    } else if (split_key_line(line, k, v)) {
      found = section == node_settings_category;
      key = k;
      value = v;
    }
  }
  if (found) {
    value = trim(value);
    if (!value.empty() && value.front() != '"' && value.front() != '\'')
      value = trim(value.substr(0, value.find(';')));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'')
        && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    if (auto k = find_key(key))
      return bad_value(key, value, expectation(*k));
    return unknown_key(key);
  }
  return make_error(errc::invalid_config,
                    fmt::format("{}:{}:{}: cannot parse the config file ({})",
                                file, line_no, column, reason));
}

/// Maps the field names in a context of `validate(manager_config)` to key
/// names: "max_retry_duration = 1s, expected >= retry_duration" becomes
/// `connmgr.max-retry-duration = "1s": expected >= connmgr.retry-duration`.
caf::error map_validate_error(const caf::error& err) {
  auto ctx = context_of(err);
  auto eq = ctx.find(" = ");
  auto exp = ctx.find(", expected ");
  if (eq == std::string::npos || exp == std::string::npos || exp < eq)
    return make_error(errc::invalid_config, ctx);
  auto to_key = [](std::string field) {
    for (auto& c : field)
      if (c == '_')
        c = '-';
    return field;
  };
  auto field = ctx.substr(0, eq);
  auto value = ctx.substr(eq + 3, exp - eq - 3);
  auto expected = ctx.substr(exp + 2);
  // Rename every field named in the expectation that is one of our keys.
  for (auto& k : keys) {
    std::string snake = k.name;
    for (auto& c : snake)
      if (c == '-')
        c = '_';
    auto is_word = [](char c) {
      return c == '_' || std::isalnum(static_cast<unsigned char>(c)) != 0;
    };
    for (auto pos = expected.find(snake); pos != std::string::npos;
         pos = expected.find(snake, pos + 1)) {
      // Whole words only: "retry_duration" must not hit "max_retry_duration".
      auto end = pos + snake.size();
      if ((pos > 0 && is_word(expected[pos - 1]))
          || (end < expected.size() && is_word(expected[end])))
        continue;
      auto repl = qualified(k.name);
      expected.replace(pos, snake.size(), repl);
      pos += repl.size() - 1;
    }
  }
  return bad_value(to_key(field), value, expected);
}

} // namespace

std::string to_string(node_settings::log_format x) {
  return x == node_settings::log_format::json ? "json" : "text";
}

const std::vector<std::string>& node_settings_keys() {
  static const std::vector<std::string> result = [] {
    std::vector<std::string> names;
    for (auto& k : keys)
      names.emplace_back(k.name);
    return names;
  }();
  return result;
}

void declare_node_options(caf::config_option_set& opts) {
  caf::config_option_adder adder{opts, node_settings_category};
  for (auto& k : keys) {
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
      case key_kind::optional_count:
        // A string for CAF, so that `unlimited` passes its command-line
        // parser; `read_node_settings` checks the value.
        adder.add<std::string>(name, help);
        break;
      case key_kind::duration:
        adder.add<caf::timespan>(name, help);
        break;
      case key_kind::address:
      case key_kind::log_format:
        adder.add<std::string>(name, help);
        break;
      case key_kind::flag:
        adder.add<bool>(name, help);
        break;
    }
  }
}

node_actor_system_config::node_actor_system_config() {
  declare_node_options(custom_options_);
}

config_file_source find_config_file(const std::vector<std::string>& args) {
  const std::string flag = "--config-file=";
  for (auto& arg : args) {
    if (arg == "--" || arg.empty() || arg.front() != '-')
      break;
    if (arg.compare(0, flag.size(), flag) == 0)
      return {arg.substr(flag.size()), true};
  }
  return {"caf-application.ini", false};
}

caf::expected<std::string> read_config_file(const std::string& path,
                                            bool required) {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer. It
  // has no effect on reading a regular file, the only kind read below.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    auto code = errno;
    if (code == ENOENT && !required)
      return std::string{};
    return make_error(errc::invalid_config,
                      fmt::format("cannot open config file \"{}\": {}", path,
                                  std::strerror(code)));
  }
  struct closer {
    int fd;
    ~closer() {
      ::close(fd);
    }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return make_error(errc::invalid_config,
                      fmt::format("cannot read config file \"{}\": {}", path,
                                  std::strerror(errno)));
  // The null device reads as the empty file it is meant as.
  if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
    return std::string{};
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISDIR(st.st_mode)    ? "a directory"
                       : S_ISFIFO(st.st_mode) ? "a FIFO"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                                              : "not a file";
    return make_error(errc::invalid_config,
                      fmt::format("config file \"{}\": not a regular file "
                                  "({})",
                                  path, what));
  }
  auto too_large = [&](uint64_t size) {
    return make_error(errc::invalid_config,
                      fmt::format("config file \"{}\": {} bytes, expected at "
                                  "most {} (1 MiB)",
                                  path, size, max_config_file_size));
  };
  if (st.st_size > static_cast<off_t>(max_config_file_size))
    return too_large(static_cast<uint64_t>(st.st_size));
  // Read one byte past the cap: the file may have grown since fstat.
  std::string content;
  content.resize(max_config_file_size + 1);
  size_t got = 0;
  while (got < content.size()) {
    auto n = ::read(fd, content.data() + got, content.size() - got);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return make_error(errc::invalid_config,
                        fmt::format("cannot read config file \"{}\": {}",
                                    path, std::strerror(errno)));
    }
    got += static_cast<size_t>(n);
  }
  if (got > max_config_file_size)
    return too_large(got);
  content.resize(got);
  return content;
}

caf::expected<node_settings>
parse_node_settings(const std::string& content, const std::string& file_name,
                    const std::vector<std::string>& args) {
  // Values by key, file first, then command line on top.
  std::map<std::string, caf::config_value> values;
  // 1. The file, parsed by CAF without type checks so nothing is dropped.
  if (!content.empty()) {
    if (auto err = unterminated_list(content))
      return err;
    if (auto err = overflowing_duration(content))
      return err;
    std::istringstream in{content};
    auto parsed = caf::actor_system_config::parse_config(in);
    if (!parsed)
      return syntax_error(file_name, content, parsed.error());
    auto section = parsed->find(node_settings_category);
    if (section != parsed->end()) {
      auto dict = caf::get_if<caf::config_value::dictionary>(&section->second);
      if (dict == nullptr)
        return make_error(errc::invalid_config,
                          fmt::format("{} = \"{}\": expected a [{}] section",
                                      node_settings_category,
                                      render(section->second),
                                      node_settings_category));
      for (auto& [key, value] : *dict) {
        if (find_key(key) == nullptr)
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
    auto k = find_key(key);
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
    caf::expected<caf::config_value> value{caf::config_value{}};
    if (k->kind == key_kind::optional_count) {
      // Read like a file value: an integer, or the word unlimited.
      value = caf::config_value::parse(text);
    } else {
      auto opt = opts.qualified_name_lookup(node_settings_category, key);
      value = opt != nullptr ? opt->parse(text)
                             : caf::expected<caf::config_value>{
                               caf::config_value{std::string{text}}};
    }
    if (!value)
      return bad_value(key, text, expectation(*k));
    values[std::string{key}] = std::move(*value);
  }
  // 3. Convert and check every key, in declaration order.
  node_settings result;
  for (auto& k : keys) {
    auto i = values.find(k.name);
    if (i == values.end())
      continue;
    if (auto err = apply(k, i->second, result))
      return err;
  }
  if (auto err = validate(result.manager))
    return map_validate_error(err);
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

caf::error check_descriptor_budget(const node_settings& s, size_t fd_limit) {
  if (fd_limit == 0)
    return caf::none;
  auto& mgr = s.manager;
  uint64_t inbound = mgr.max_inbound.value_or(0);
  auto wanted = uint64_t{mgr.target_outbound} + inbound + s.listen.size()
                + s.connect.size();
  auto room = fd_limit > node_descriptor_reserve
                ? uint64_t{fd_limit - node_descriptor_reserve}
                : uint64_t{0};
  if (wanted <= room)
    return caf::none;
  return make_error(
    errc::invalid_config,
    fmt::format("{} + {} + {} + {} = {} + {} + {} + {} = {}, expected at most "
                "{} to fit the open-file limit of {} ({} kept for the node "
                "itself)",
                qualified("target-outbound"), qualified("max-inbound"),
                qualified("listen"), qualified("connect"), mgr.target_outbound,
                mgr.max_inbound ? std::to_string(*mgr.max_inbound)
                                : std::string{"unlimited (0)"},
                s.listen.size(), s.connect.size(), wanted, room, fd_limit,
                node_descriptor_reserve));
}

size_t max_scheduler_threads(size_t cores) {
  return std::max(size_t{64}, 4 * cores);
}

caf::error check_scheduler_settings(const caf::settings& caf_content,
                                    size_t cores) {
  // The value of `category.key`, or null when absent.
  auto find = [&](std::string_view category,
                  std::string_view key) -> const caf::config_value* {
    auto cat = caf_content.find(category);
    if (cat == caf_content.end())
      return nullptr;
    auto dict = caf::get_if<caf::config_value::dictionary>(&cat->second);
    if (dict == nullptr)
      return nullptr;
    auto i = dict->find(key);
    return i == dict->end() ? nullptr : &i->second;
  };
  auto bad = [](std::string_view category, std::string_view key,
                const caf::config_value& x, const std::string& expected) {
    return make_error(errc::invalid_config,
                      fmt::format("{}.{} = \"{}\": {}", category, key,
                                  render(x), expected));
  };
  struct int_key {
    const char* category;
    const char* key;
    uint64_t min;
    uint64_t max;
  };
  auto max_int = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const int_key int_keys[] = {
    {"scheduler", "max-threads", 1, max_scheduler_threads(cores)},
    {"scheduler", "max-throughput", 1, max_int},
    {"work-stealing", "aggressive-steal-interval", 1, max_int},
    {"work-stealing", "moderate-steal-interval", 1, max_int},
    {"work-stealing", "relaxed-steal-interval", 1, max_int},
  };
  for (auto& k : int_keys) {
    auto x = find(k.category, k.key);
    if (x == nullptr)
      continue;
    auto num = caf::get_if<caf::config_value::integer>(x);
    if (num == nullptr || *num < 0 || static_cast<uint64_t>(*num) < k.min
        || static_cast<uint64_t>(*num) > k.max)
      return bad(k.category, k.key, *x,
                 fmt::format("expected an integer in {}..{}", k.min, k.max));
  }
  if (auto x = find("scheduler", "policy")) {
    auto text = render(*x);
    bool textual = caf::holds_alternative<std::string>(*x)
                   || caf::holds_alternative<caf::atom_value>(*x);
    if (!textual || (text != "stealing" && text != "sharing"))
      return bad("scheduler", "policy", *x, "expected stealing or sharing");
  }
  return caf::none;
}

} // namespace connmgr
