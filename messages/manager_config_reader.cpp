// Reads every manager_config field from a caf::settings section and
// declares them as CAF options. Over 500 lines because it is one table of
// keys plus one strict reader per kind of value (counts, durations, rates,
// optional limits); each reader is short, and keeping them with the table
// keeps the key names and their error texts in one place.
#include "connmgr/messages/manager_config_reader.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/config_option.hpp>
#include <caf/config_option_set.hpp>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

/// How the value of one key is read.
enum class key_kind : uint8_t {
  count, // uint32_t in min..2^32-1
  optional_count, // a count or "unlimited"
  rate_per_minute, // an optional count >= 1, per minute; stored per second
  burst, // a count >= 1, stored as double
  duration, // caf::timespan in min_duration..max_duration
  fraction, // a number in 0..1
  seed, // an integer in 0..2^63-1
  flag, // true or false
};

struct key_info {
  const char* name;
  const char* field;
  key_kind kind;
  /// For counts: the smallest allowed value.
  uint32_t min;
  /// For durations: the shortest allowed value.
  caf::timespan min_duration;
  const char* help;
};

constexpr uint32_t uint32_max = std::numeric_limits<uint32_t>::max();

/// The longest duration any key takes: far beyond a useful value, and far
/// from the overflow of CAF's 64-bit nanoseconds when added to a clock.
constexpr caf::timespan max_duration = std::chrono::hours{168};

/// Shortest backoff step and dial deadline: below 1ms a retry schedule only
/// floods the handler with timer events.
constexpr caf::timespan min_retry = std::chrono::milliseconds{1};

constexpr caf::timespan none{};

// The order is the order of `--help` and of `manager_config_keys()`.
const key_info keys[] = {
  {"target-outbound", "target_outbound", key_kind::count, 0, none,
   "automatic outbound connections to keep (default 8)"},
  {"max-inbound", "max_inbound", key_kind::optional_count, 0, none,
   "inbound connections at once (default 114, 0 = none, or \"unlimited\")"},
  {"retry-duration", "retry_duration", key_kind::duration, 0, min_retry,
   "backoff step between retries (default 5s, 1ms..168h)"},
  {"max-retry-duration", "max_retry_duration", key_kind::duration, 0, min_retry,
   "backoff cap (default 5min, up to 168h)"},
  {"dial-timeout", "dial_timeout", key_kind::duration, 0, min_retry,
   "deadline of one dial attempt (default 10s, 1ms..168h)"},
  {"max-failed-attempts", "max_failed_attempts", key_kind::count, 1, none,
   "consecutive failures before throttling (default 25)"},
  {"max-pending-dials", "max_pending_dials", key_kind::count, 1, none,
   "dials in flight at once (default 128)"},
  {"netgroup-bits-ipv4", "netgroup_bits_ipv4", key_kind::count, 1, none,
   "prefix bits of an IPv4 network group, for diversity and inbound limits "
   "(default 16, 1..32)"},
  {"netgroup-bits-ipv6", "netgroup_bits_ipv6", key_kind::count, 1, none,
   "prefix bits of an IPv6 network group (default 32, 1..128)"},
  {"max-inbound-per-ip", "max_inbound_per_ip", key_kind::optional_count, 1,
   none,
   "inbound connections per source IP, IPv6 per /64 (default 4, or "
   "\"unlimited\")"},
  {"max-inbound-per-netgroup", "max_inbound_per_netgroup",
   key_kind::optional_count, 1, none,
   "inbound connections per network group (default unlimited)"},
  {"max-pending-inbound", "max_pending_inbound", key_kind::optional_count, 1,
   none,
   "inbound connections still in their handshake (default 32, or "
   "\"unlimited\")"},
  {"inbound-rate-per-ip", "inbound_rate_per_ip", key_kind::rate_per_minute, 1,
   none,
   "new inbound connections per minute per source IP (default 60, or "
   "\"unlimited\")"},
  {"inbound-burst-per-ip", "inbound_burst_per_ip", key_kind::burst, 1, none,
   "burst of new inbound connections per source IP (default 10)"},
  {"evict-inbound", "evict_inbound", key_kind::flag, 0, none,
   "when inbound slots are full, evict a peer for a newcomer (default "
   "true)"},
  {"retry-jitter", "retry_jitter", key_kind::fraction, 0, none,
   "random extra delay of a retry, as a fraction of it (default 0, 0..1)"},
  {"jitter-seed", "jitter_seed", key_kind::seed, 0, none,
   "seed of the retry jitter; 0 seeds from the OS (default 0)"},
  {"stable-connection-period", "stable_connection_period", key_kind::duration,
   0, none,
   "a connection lasting this long resets its backoff (default 60s, "
   "0s..168h)"},
  {"reject-duplicate-addresses", "reject_duplicate_addresses", key_kind::flag,
   0, none,
   "refuse a request to an address already pending or connected (default "
   "true)"},
  {"max-manual", "max_manual", key_kind::optional_count, 0, none,
   "one-shot connect requests alive at once (default 8, or \"unlimited\")"},
  {"max-permanent", "max_permanent", key_kind::optional_count, 0, none,
   "permanent connect requests alive at once (default unlimited)"},
  {"ban-threshold", "ban_threshold", key_kind::count, 1, none,
   "misbehaviour score at which a peer's address is banned (default 100)"},
  {"ban-duration", "ban_duration", key_kind::duration, 0,
   std::chrono::seconds{1},
   "how long a misbehaving peer stays banned (default 24h, 1s..168h)"},
  {"max-bans", "max_bans", key_kind::count, 1, none,
   "bans held at once (default 100000)"},
};

const key_info* find_key(std::string_view name) {
  for (auto& k : keys)
    if (name == k.name)
      return &k;
  return nullptr;
}

std::string duration_text(caf::timespan x) {
  return x.count() == 0 ? "0s" : to_string_duration(x);
}

std::string expectation(const key_info& k) {
  switch (k.kind) {
    case key_kind::count:
    case key_kind::burst:
      return fmt::format("expected an integer in {}..{}", k.min, uint32_max);
    case key_kind::optional_count:
    case key_kind::rate_per_minute:
      return fmt::format("expected an integer in {}..{} or \"unlimited\"",
                         k.min, uint32_max);
    case key_kind::duration:
      return "expected a duration like 5s or 250ms";
    case key_kind::fraction:
      return "expected a number in 0..1";
    case key_kind::seed:
      return fmt::format("expected an integer in 0..{}",
                         std::numeric_limits<int64_t>::max());
    case key_kind::flag:
      return "expected true or false";
  }
  return "expected a valid value";
}

/// "expected a duration in 1ms..168h".
std::string duration_range(const key_info& k) {
  return fmt::format("expected a duration in {}..{}",
                     duration_text(k.min_duration),
                     duration_text(max_duration));
}

caf::error bad_value(const std::string& section, std::string_view key,
                     std::string_view text, std::string_view expected) {
  return make_error(
    errc::invalid_config,
    fmt::format("{}.{} = \"{}\": {}", section, key, text, expected));
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
span_text parse_span(std::string_view text) {
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
  return span_text::ok;
}

/// `text` without blanks and quotes around it.
std::string strip(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\"'");
  if (first == std::string_view::npos)
    return std::string{text};
  auto last = text.find_last_not_of(" \t\r\"'");
  return std::string{text.substr(first, last - first + 1)};
}

bool is_word(const caf::config_value& x, const char* word) {
  return (caf::holds_alternative<std::string>(x)
          || caf::holds_alternative<caf::atom_value>(x))
    && config_value_text(x) == word;
}

// -- reading values -----------------------------------------------------------

caf::expected<uint32_t> read_count(const std::string& section,
                                   const key_info& k,
                                   const caf::config_value& x) {
  auto num = caf::get_if<caf::config_value::integer>(&x);
  if (num == nullptr || *num < static_cast<int64_t>(k.min)
      || *num > static_cast<int64_t>(uint32_max))
    return bad_value(section, k.name, config_value_text(x), expectation(k));
  return static_cast<uint32_t>(*num);
}

/// A count, or the word `unlimited` (quoted in a file, as every string
/// there; bare or quoted on the command line): nothing.
caf::expected<std::optional<uint32_t>>
read_optional_count(const std::string& section, const key_info& k,
                    const caf::config_value& x) {
  if (is_word(x, "unlimited"))
    return std::optional<uint32_t>{};
  auto num = read_count(section, k, x);
  if (!num)
    return std::move(num.error());
  return std::optional<uint32_t>{*num};
}

caf::expected<caf::timespan> read_duration(const std::string& section,
                                           const key_info& k,
                                           const caf::config_value& x) {
  const caf::timespan* span = caf::get_if<caf::timespan>(&x);
  caf::config_value reparsed;
  if (auto str = caf::get_if<std::string>(&x)) {
    // Too large for CAF: its parser would wrap it around.
    if (parse_span(*str) == span_text::overflow)
      return bad_value(section, k.name, strip(*str), duration_range(k));
    // A quoted duration ("5s") reads like an unquoted one.
    if (auto val = caf::config_value::parse(*str)) {
      reparsed = std::move(*val);
      span = caf::get_if<caf::timespan>(&reparsed);
    }
  }
  if (span == nullptr)
    return bad_value(section, k.name, config_value_text(x), expectation(k));
  if (*span < k.min_duration || *span > max_duration)
    return bad_value(section, k.name, config_value_text(x), duration_range(k));
  return *span;
}

caf::expected<double> read_fraction(const std::string& section,
                                    const key_info& k,
                                    const caf::config_value& x) {
  double value = -1.0;
  if (auto real = caf::get_if<double>(&x))
    value = *real;
  else if (auto num = caf::get_if<caf::config_value::integer>(&x))
    value = static_cast<double>(*num);
  else
    return bad_value(section, k.name, config_value_text(x), expectation(k));
  // Negated so NaN fails too.
  if (!(value >= 0.0 && value <= 1.0))
    return bad_value(section, k.name, config_value_text(x), expectation(k));
  return value;
}

// -- CAF options ----------------------------------------------------------------

// CAF's own check would drop a value of the wrong type silently and keep the
// default; ours keeps every value for `read_manager_config` to refuse by key.
caf::error accept_any(const caf::config_value&) {
  return caf::none;
}

// Options are declared without storage: CAF never stores or gets them.
void store_nothing(void*, const caf::config_value&) {
  // nop
}

caf::config_value get_nothing(const void*) {
  return caf::config_value{};
}

/// A command-line value as CAF's config syntax reads it, or else as the
/// text it is, for `read_manager_config` to refuse naming the key.
caf::expected<caf::config_value> parse_any(void*, caf::string_view str) {
  std::string text{str.begin(), str.end()};
  if (auto val = caf::config_value::parse(text))
    return std::move(*val);
  return caf::config_value{std::move(text)};
}

/// A duration, or else the text (also one that overflows 64-bit
/// nanoseconds, which CAF's parser would wrap around).
caf::expected<caf::config_value> parse_duration(void*, caf::string_view str) {
  std::string text{str.begin(), str.end()};
  if (parse_span(text) != span_text::overflow)
    if (auto val = caf::config_value::parse(text))
      if (caf::holds_alternative<caf::timespan>(*val))
        return std::move(*val);
  return caf::config_value{std::move(text)};
}

const caf::config_option::meta_state* meta_of(key_kind kind) {
  // Type names are what `--help` shows. Flags are no bare CAF flags
  // ("boolean"): their defaults are true, so they must take `=false`.
  static const caf::config_option::meta_state count{
    accept_any, store_nothing, get_nothing, parse_any, "uint32_t"};
  static const caf::config_option::meta_state optional_count{
    accept_any, store_nothing, get_nothing, parse_any, "uint32_t|unlimited"};
  static const caf::config_option::meta_state duration{
    accept_any, store_nothing, get_nothing, parse_duration, "timespan"};
  static const caf::config_option::meta_state fraction{
    accept_any, store_nothing, get_nothing, parse_any, "double"};
  static const caf::config_option::meta_state seed{
    accept_any, store_nothing, get_nothing, parse_any, "int64_t"};
  static const caf::config_option::meta_state flag{
    accept_any, store_nothing, get_nothing, parse_any, "bool"};
  switch (kind) {
    case key_kind::count:
    case key_kind::burst:
      return &count;
    case key_kind::optional_count:
    case key_kind::rate_per_minute:
      return &optional_count;
    case key_kind::duration:
      return &duration;
    case key_kind::fraction:
      return &fraction;
    case key_kind::seed:
      return &seed;
    case key_kind::flag:
      return &flag;
  }
  return &count;
}

/// Reaches the protected option set of any `actor_system_config`: CAF 0.17
/// has no public way to declare options on a config that is not a subclass.
struct option_access : caf::actor_system_config {
  static caf::config_option_set& of(caf::actor_system_config& cfg) {
    return cfg.*(&option_access::custom_options_);
  }
};

/// The dictionary of `section` ("a.b" nested) in `s`; null when absent.
/// Fails when a part of the path holds a value that is no section.
caf::expected<const caf::settings*> find_section(const caf::settings& s,
                                                 const std::string& section) {
  const caf::settings* dict = &s;
  size_t pos = 0;
  while (true) {
    auto dot = section.find('.', pos);
    auto name = section.substr(pos, dot == std::string::npos ? dot : dot - pos);
    auto i = dict->find(name);
    if (i == dict->end())
      return static_cast<const caf::settings*>(nullptr);
    dict = caf::get_if<caf::settings>(&i->second);
    if (dict == nullptr) {
      auto path = section.substr(0, dot);
      return make_error(errc::invalid_config,
                        fmt::format("{} = \"{}\": expected a [{}] section",
                                    path, config_value_text(i->second), path));
    }
    if (dot == std::string::npos)
      return dict;
    pos = dot + 1;
  }
}

} // namespace

// -- public functions ---------------------------------------------------------

const std::vector<std::string>& manager_config_keys() {
  static const std::vector<std::string> result = [] {
    std::vector<std::string> names;
    for (auto& k : keys)
      names.emplace_back(k.name);
    return names;
  }();
  return result;
}

bool is_manager_key(std::string_view key) {
  return find_key(key) != nullptr;
}

void declare_manager_options(caf::config_option_set& opts,
                             const std::string& section) {
  for (auto& k : keys) {
    // Explicit lengths: CAF 0.17's string_view takes a bare `const char*`
    // only when built by GCC. The option copies all three strings.
    caf::string_view category{section.data(), section.size()};
    caf::string_view name{k.name, std::strlen(k.name)};
    caf::string_view help{k.help, std::strlen(k.help)};
    opts.add(caf::config_option{category, name, help, meta_of(k.kind)});
  }
}

void declare_manager_options(caf::actor_system_config& cfg,
                             const std::string& section) {
  declare_manager_options(option_access::of(cfg), section);
}

caf::error read_manager_option(const std::string& section, std::string_view key,
                               const caf::config_value& x,
                               manager_config& out) {
  auto k = find_key(key);
  if (k == nullptr)
    return make_error(errc::invalid_config,
                      fmt::format("{}.{}: not a manager key", section, key));
  std::string_view field = k->field;
  switch (k->kind) {
    case key_kind::count: {
      auto num = read_count(section, *k, x);
      if (!num)
        return std::move(num.error());
      if (field == "target_outbound")
        out.target_outbound = *num;
      else if (field == "max_failed_attempts")
        out.max_failed_attempts = *num;
      else if (field == "max_pending_dials")
        out.max_pending_dials = *num;
      else if (field == "netgroup_bits_ipv4")
        out.netgroup_bits_ipv4 = *num;
      else if (field == "ban_threshold")
        out.ban_threshold = *num;
      else if (field == "max_bans")
        out.max_bans = *num;
      else
        out.netgroup_bits_ipv6 = *num;
      return caf::none;
    }
    case key_kind::optional_count: {
      auto num = read_optional_count(section, *k, x);
      if (!num)
        return std::move(num.error());
      if (field == "max_inbound")
        out.max_inbound = *num;
      else if (field == "max_inbound_per_ip")
        out.max_inbound_per_ip = *num;
      else if (field == "max_inbound_per_netgroup")
        out.max_inbound_per_netgroup = *num;
      else if (field == "max_manual")
        out.max_manual = *num;
      else if (field == "max_permanent")
        out.max_permanent = *num;
      else
        out.max_pending_inbound = *num;
      return caf::none;
    }
    case key_kind::rate_per_minute: {
      auto num = read_optional_count(section, *k, x);
      if (!num)
        return std::move(num.error());
      out.inbound_rate_per_ip =
        num->has_value() ? std::optional<double>{**num / 60.0} : std::nullopt;
      return caf::none;
    }
    case key_kind::burst: {
      auto num = read_count(section, *k, x);
      if (!num)
        return std::move(num.error());
      out.inbound_burst_per_ip = *num;
      return caf::none;
    }
    case key_kind::duration: {
      auto span = read_duration(section, *k, x);
      if (!span)
        return std::move(span.error());
      if (field == "retry_duration")
        out.retry_duration = *span;
      else if (field == "max_retry_duration")
        out.max_retry_duration = *span;
      else if (field == "dial_timeout")
        out.dial_timeout = *span;
      else if (field == "ban_duration")
        out.ban_duration = *span;
      else
        out.stable_connection_period = *span;
      return caf::none;
    }
    case key_kind::fraction: {
      auto value = read_fraction(section, *k, x);
      if (!value)
        return std::move(value.error());
      out.retry_jitter = *value;
      return caf::none;
    }
    case key_kind::seed: {
      auto num = caf::get_if<caf::config_value::integer>(&x);
      if (num == nullptr || *num < 0)
        return bad_value(section, k->name, config_value_text(x),
                         expectation(*k));
      out.jitter_seed = static_cast<uint64_t>(*num);
      return caf::none;
    }
    case key_kind::flag: {
      auto flag = caf::get_if<bool>(&x);
      if (flag == nullptr)
        return bad_value(section, k->name, config_value_text(x),
                         expectation(*k));
      if (field == "evict_inbound")
        out.evict_inbound = *flag;
      else
        out.reject_duplicate_addresses = *flag;
      return caf::none;
    }
  }
  return caf::none;
}

caf::expected<manager_config> read_manager_config(const caf::settings& s,
                                                  const std::string& section) {
  manager_config result;
  auto dict = find_section(s, section);
  if (!dict)
    return std::move(dict.error());
  if (*dict != nullptr) {
    for (auto& k : keys) {
      auto i = (*dict)->find(caf::string_view{k.name, std::strlen(k.name)});
      if (i == (*dict)->end())
        continue;
      if (auto err = read_manager_option(section, k.name, i->second, result))
        return err;
    }
  }
  if (auto err = validate(result, section))
    return err;
  return result;
}

std::string manager_key_expectation(std::string_view key) {
  auto k = find_key(key);
  return k != nullptr ? expectation(*k) : std::string{};
}

caf::error check_manager_option_text(const std::string& section,
                                     std::string_view key,
                                     std::string_view text) {
  auto k = find_key(key);
  if (k == nullptr || k->kind != key_kind::duration
      || parse_span(text) != span_text::overflow)
    return caf::none;
  return bad_value(section, k->name, strip(text), duration_range(*k));
}

std::string manager_key_of(std::string_view field) {
  for (auto& k : keys)
    if (field == k.field)
      return k.name;
  return {};
}

caf::error to_error(const config_violation& x, const std::string& section) {
  auto name = [&](const std::string& field) {
    auto key = manager_key_of(field);
    return key.empty() ? field : fmt::format("{}.{}", section, key);
  };
  std::vector<std::string> expected_names;
  for (auto& f : x.expected_fields)
    expected_names.push_back(name(f));
  auto expected = render_expected(x, expected_names);
  if (x.fields.size() == 1)
    return make_error(errc::invalid_config,
                      fmt::format("{} = \"{}\": expected {}", name(x.fields[0]),
                                  x.value, expected));
  std::string names;
  std::string values;
  for (size_t i = 0; i < x.fields.size(); ++i) {
    names += (i == 0 ? "" : " + ") + name(x.fields[i]);
    if (i < x.values.size())
      values += (i == 0 ? "" : " + ") + x.values[i];
  }
  return make_error(
    errc::invalid_config,
    fmt::format("{} = {} = {}: expected {}", names, values, x.value, expected));
}

caf::error validate(const manager_config& cfg, const std::string& section) {
  if (auto x = find_violation(cfg))
    return to_error(*x, section);
  return validate(cfg);
}

std::string config_value_text(const caf::config_value& x) {
  if (auto str = caf::get_if<std::string>(&x))
    return *str;
  if (auto atm = caf::get_if<caf::atom_value>(&x))
    return caf::to_string(*atm);
  if (auto num = caf::get_if<caf::config_value::integer>(&x))
    return std::to_string(*num);
  if (auto real = caf::get_if<double>(&x))
    return fmt::format("{}", *real);
  if (auto span = caf::get_if<caf::timespan>(&x))
    return duration_text(*span);
  return caf::to_string(x);
}

bool duration_text_overflows(std::string_view text) {
  return parse_span(text) == span_text::overflow;
}

} // namespace connmgr
