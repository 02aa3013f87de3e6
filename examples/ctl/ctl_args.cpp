// connmgr-ctl's command line as a plain function, so it is unit-tested
// without a process.
#include "examples/ctl/ctl_args.hpp"

#include <algorithm>
#include <charconv>
#include <limits>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

caf::error bad(std::string text) {
  return make_error(errc::invalid_config, std::move(text));
}

struct verb_info {
  const char* name;
  ctl_verb verb;
};

constexpr verb_info verbs[] = {
  {"peers", ctl_verb::peers},
  {"stats", ctl_verb::stats},
  {"connect", ctl_verb::connect},
  {"disconnect", ctl_verb::disconnect},
  {"remove", ctl_verb::remove},
  {"ban", ctl_verb::ban},
  {"unban", ctl_verb::unban},
  {"bans", ctl_verb::bans},
  {"events", ctl_verb::events},
  {"protect", ctl_verb::protect},
  {"unprotect", ctl_verb::unprotect},
  {"limits", ctl_verb::limits},
  {"set", ctl_verb::set},
  {"drain", ctl_verb::drain},
};

struct limit_key {
  const char* key;
  uint64_t conn_limits::*member;
  /// Whether `unlimited` is a value (an optional cap in the node config).
  bool optional_cap;
};

/// The node config keys of the run-time limits, in `conn_limits` order.
constexpr limit_key limit_keys[] = {
  {"target-outbound", &conn_limits::target_outbound, false},
  {"max-inbound", &conn_limits::max_inbound, true},
  {"max-inbound-per-ip", &conn_limits::max_inbound_per_ip, true},
  {"max-inbound-per-netgroup", &conn_limits::max_inbound_per_netgroup, true},
  {"max-pending-inbound", &conn_limits::max_pending_inbound, true},
  {"max-manual", &conn_limits::max_manual, true},
  {"max-permanent", &conn_limits::max_permanent, true},
  {"max-pending-dials", &conn_limits::max_pending_dials, false},
};

static_assert(sizeof(conn_limits) == std::size(limit_keys) * sizeof(uint64_t),
              "every conn_limits field needs a key above");

const limit_key* find_limit_key(const std::string& key) {
  for (auto& k : limit_keys)
    if (key == k.key)
      return &k;
  return nullptr;
}

std::string limit_key_names() {
  std::string out;
  for (auto& k : limit_keys)
    out += (out.empty() ? "" : ", ") + std::string{k.key};
  return out;
}

/// Parses one `KEY=VALUE` of `set`.
caf::expected<ctl_limit_change> parse_limit_change(const std::string& arg) {
  auto eq = arg.find('=');
  if (eq == std::string::npos || eq == 0)
    return bad(fmt::format("set: \"{}\": expected KEY=VALUE like "
                           "target-outbound=8",
                           arg));
  auto key = arg.substr(0, eq);
  auto value = arg.substr(eq + 1);
  auto k = find_limit_key(key);
  if (k == nullptr)
    return bad(fmt::format("set: {}: not a run-time limit, expected one of {}",
                           key, limit_key_names()));
  ctl_limit_change out{key, 0};
  if (value == "unlimited") {
    if (!k->optional_cap)
      return bad(fmt::format("set {} = \"{}\": expected a count up to "
                             "4294967295 ({} has no unlimited)",
                             key, value, key));
    out.value = conn_limits::unlimited;
    return out;
  }
  uint64_t n = 0;
  auto res = std::from_chars(value.data(), value.data() + value.size(), n);
  constexpr uint64_t uint32_max = 0xFFFF'FFFF;
  if (value.empty() || res.ec != std::errc{}
      || res.ptr != value.data() + value.size() || n > uint32_max)
    return bad(fmt::format("set {} = \"{}\": expected a count up to "
                           "4294967295{}",
                           key, value, k->optional_cap ? " or unlimited" : ""));
  out.value = n;
  return out;
}

std::string verb_names() {
  std::string out;
  for (auto& v : verbs)
    out += (out.empty() ? "" : ", ") + std::string{v.name};
  return out;
}

/// Options that take a value, and the commands they belong to (empty: all).
struct option_info {
  const char* name;
  bool takes_value;
  std::vector<ctl_verb> only;
};

const std::vector<option_info>& options() {
  static const std::vector<option_info> result = {
    {"--node", true, {}},
    {"--cert", true, {}},
    {"--key", true, {}},
    {"--ca", true, {}},
    {"--json", false, {}},
    {"--timeout", true, {}},
    {"--help", false, {}},
    {"--permanent", false, {ctl_verb::connect}},
    {"--for", true, {ctl_verb::ban}},
    {"--reason", true, {ctl_verb::ban}},
    {"--count", true, {ctl_verb::events}},
  };
  return result;
}

const option_info* find_option(const std::string& name) {
  for (auto& o : options())
    if (name == o.name)
      return &o;
  return nullptr;
}

} // namespace

const std::vector<std::string>& ctl_limit_keys() {
  static const std::vector<std::string> result = [] {
    std::vector<std::string> xs;
    for (auto& k : limit_keys)
      xs.emplace_back(k.key);
    return xs;
  }();
  return result;
}

caf::error apply_limit_changes(conn_limits& x,
                               const std::vector<ctl_limit_change>& changes) {
  for (auto& c : changes) {
    auto k = find_limit_key(c.key);
    if (k == nullptr)
      return bad(fmt::format("set: {}: not a run-time limit, expected one of "
                             "{}",
                             c.key, limit_key_names()));
    x.*k->member = c.value;
  }
  return caf::none;
}

std::vector<std::pair<std::string, std::string>>
limit_rows(const conn_limits& x) {
  std::vector<std::pair<std::string, std::string>> out;
  for (auto& k : limit_keys) {
    auto v = x.*k.member;
    out.emplace_back(
      k.key, v == conn_limits::unlimited ? "unlimited" : std::to_string(v));
  }
  return out;
}

std::string to_string(ctl_verb x) {
  for (auto& v : verbs)
    if (v.verb == x)
      return v.name;
  return "?";
}

std::string ctl_usage() {
  return R"(usage: connmgr-ctl --node=HOST:PORT [--node=...] [--cert F --key F --ca F]
                   [--json] [--timeout 10s] COMMAND

commands:
  peers                          open connections (inbound and outbound)
  stats                          the handler's counters
  connect ADDR [--permanent]     dial ADDR (host:port)
  disconnect ID                  close peer ID (a request retries per its rules)
  remove ID                      close peer ID, or cancel request ID, for good
  ban ADDR|CIDR [--for 24h] [--reason TEXT]
                                 ban an address or subnet, closing its peers
  unban ADDR|CIDR                lift a ban
  bans                           bans in force
  events [--count N]             stream the node's events
  protect ID TAG                 never evict nor trim request ID's peer
  unprotect ID TAG               drop tag TAG of request ID
  limits                         the limits in force
  set KEY=VALUE...               change limits while the node runs; KEY is
                                 one of target-outbound, max-inbound,
                                 max-inbound-per-ip, max-inbound-per-netgroup,
                                 max-pending-inbound, max-manual,
                                 max-permanent, max-pending-dials; VALUE a
                                 count or unlimited (not for target-outbound
                                 and max-pending-dials)
  drain [--timeout 30s]          close every connection by the deadline, stop
                                 the node; prints the final counters

Several --node flags give one table across nodes (disconnect, remove,
protect and unprotect take one node). With drain, --timeout is the node's
deadline (the ctl waits that long plus a margin). --cert, --key and --ca
(PEM files) select mutual TLS; without them the connection is plain TCP
(nodes allow that on loopback only).
Exit status: 0 done, 1 a node could not be reached, refused us or refused the
command, 2 bad arguments.
)";
}

caf::expected<caf::timespan> parse_ctl_duration(const std::string& what,
                                                const std::string& text) {
  auto fail = [&] {
    return bad(fmt::format("{} = \"{}\": expected a duration like 24h, 30min, "
                           "90s, 250ms or 7d",
                           what, text));
  };
  auto digits = std::find_if(text.begin(), text.end(),
                             [](char c) { return c < '0' || c > '9'; });
  if (digits == text.begin())
    return fail();
  uint64_t n = 0;
  auto res =
    std::from_chars(text.data(), text.data() + (digits - text.begin()), n);
  if (res.ec != std::errc{} || n == 0)
    return fail();
  std::string unit{digits, text.end()};
  using namespace std::chrono;
  uint64_t ns_per = 0;
  if (unit == "ms")
    ns_per = 1'000'000;
  else if (unit == "s")
    ns_per = 1'000'000'000;
  else if (unit == "m" || unit == "min")
    ns_per = 60'000'000'000;
  else if (unit == "h")
    ns_per = 3'600'000'000'000;
  else if (unit == "d")
    ns_per = 86'400'000'000'000;
  else
    return fail();
  // Ten years at most: far beyond any ban, far from 64-bit overflow.
  constexpr uint64_t max_ns = 87600ull * 3'600'000'000'000ull;
  if (n > max_ns / ns_per)
    return bad(fmt::format("{} = \"{}\": expected at most 87600h", what, text));
  return caf::timespan{static_cast<int64_t>(n * ns_per)};
}

caf::expected<ctl_args> parse_ctl_args(const std::vector<std::string>& args) {
  ctl_args out;
  std::vector<std::string> positional;
  std::vector<std::pair<const option_info*, std::string>> given;
  for (size_t i = 0; i < args.size(); ++i) {
    auto& arg = args[i];
    if (arg.size() < 2 || arg.compare(0, 2, "--") != 0) {
      positional.push_back(arg);
      continue;
    }
    auto eq = arg.find('=');
    auto name = arg.substr(0, eq);
    auto opt = find_option(name);
    if (opt == nullptr)
      return bad(fmt::format("{}: unknown option, expected --node, --cert, "
                             "--key, --ca, --json, --timeout, --help, "
                             "--permanent, --for, --reason or --count",
                             name));
    std::string value;
    if (opt->takes_value) {
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
      } else if (i + 1 < args.size()) {
        value = args[++i];
      } else {
        return bad(
          fmt::format("{}: missing value, expected {} VALUE", name, name));
      }
      if (value.empty())
        return bad(
          fmt::format("{}: empty value, expected {} VALUE", name, name));
    } else if (eq != std::string::npos) {
      return bad(fmt::format("{} = \"{}\": {} takes no value", name,
                             arg.substr(eq + 1), name));
    }
    given.emplace_back(opt, std::move(value));
  }
  for (auto& [opt, value] : given) {
    if (opt->name == std::string_view{"--help"}) {
      out.help = true;
      return out;
    }
  }
  // The command.
  if (positional.empty())
    return bad("missing command, expected one of " + verb_names());
  auto verb_i = std::find_if(std::begin(verbs), std::end(verbs),
                             [&](auto& v) { return positional[0] == v.name; });
  if (verb_i == std::end(verbs))
    return bad(fmt::format("{}: unknown command, expected one of {}",
                           positional[0], verb_names()));
  out.verb = verb_i->verb;
  auto verb = positional[0];
  size_t wanted = 0;
  switch (out.verb) {
    case ctl_verb::connect:
    case ctl_verb::disconnect:
    case ctl_verb::remove:
    case ctl_verb::ban:
    case ctl_verb::unban:
      wanted = 1;
      break;
    case ctl_verb::protect:
    case ctl_verb::unprotect:
      wanted = 2;
      break;
    default:
      break;
  }
  auto takes_id = out.verb == ctl_verb::disconnect
    || out.verb == ctl_verb::remove || out.verb == ctl_verb::protect
    || out.verb == ctl_verb::unprotect;
  if (out.verb == ctl_verb::set) {
    if (positional.size() < 2)
      return bad(fmt::format("set: missing KEY=VALUE, expected one or more "
                             "like target-outbound=8; keys: {}",
                             limit_key_names()));
    for (size_t i = 1; i < positional.size(); ++i) {
      auto change = parse_limit_change(positional[i]);
      if (!change)
        return std::move(change.error());
      out.changes.push_back(std::move(*change));
    }
  } else if (positional.size() < wanted + 1) {
    const char* what = out.verb == ctl_verb::connect ? "ADDR, expected a "
                                                       "host:port like "
                                                       "127.0.0.1:8333"
      : takes_id && positional.size() < 2 ? "ID, expected a request id like 7"
      : takes_id                          ? "TAG, expected a tag like operator"
                                          : "ADDR|CIDR, expected an address or "
                                            "subnet like 203.0.113.7 or 10.0.0.0/8";
    return bad(fmt::format("{}: missing {}", verb, what));
  } else if (positional.size() > wanted + 1) {
    return bad(fmt::format("{}: unexpected argument \"{}\", expected {}", verb,
                           positional[wanted + 1],
                           wanted == 0     ? "no argument"
                             : wanted == 1 ? "one argument"
                                           : "two arguments"));
  }
  if (wanted >= 1) {
    auto& x = positional[1];
    if (takes_id) {
      uint64_t id = 0;
      auto res = std::from_chars(x.data(), x.data() + x.size(), id);
      if (res.ec != std::errc{} || res.ptr != x.data() + x.size() || id == 0)
        return bad(fmt::format("{} ID = \"{}\": expected a request id (a "
                               "positive integer) like 7",
                               verb, x));
      out.id = id;
      if (wanted == 2)
        out.tag = positional[2];
    } else if (out.verb == ctl_verb::connect) {
      auto addr = net_address::parse(x, false);
      if (!addr)
        return bad(
          fmt::format("connect ADDR = \"{}\": {}", x, describe(addr.error())));
      out.target = addr->to_string();
    } else {
      out.target = x;
    }
  }
  // The options.
  for (auto& [opt, value] : given) {
    std::string name = opt->name;
    if (!opt->only.empty()
        && std::find(opt->only.begin(), opt->only.end(), out.verb)
          == opt->only.end())
      return bad(fmt::format("{}: not an option of {}, expected it with {}",
                             name, verb, to_string(opt->only.front())));
    if (name == "--node") {
      auto addr = net_address::parse(value, false);
      if (!addr)
        return bad(fmt::format("--node = \"{}\": expected HOST:PORT like "
                               "127.0.0.1:8444 ({})",
                               value, describe(addr.error())));
      if (std::find(out.nodes.begin(), out.nodes.end(), *addr)
          == out.nodes.end())
        out.nodes.push_back(*addr);
    } else if (name == "--cert") {
      out.cert = value;
    } else if (name == "--key") {
      out.key = value;
    } else if (name == "--ca") {
      out.ca = value;
    } else if (name == "--json") {
      out.json = true;
    } else if (name == "--timeout") {
      auto d = parse_ctl_duration("--timeout", value);
      if (!d)
        return std::move(d.error());
      // drain's own deadline; connecting keeps its default.
      if (out.verb == ctl_verb::drain)
        out.drain_timeout = *d;
      else
        out.timeout = *d;
    } else if (name == "--permanent") {
      out.permanent = true;
    } else if (name == "--for") {
      auto d = parse_ctl_duration("--for", value);
      if (!d)
        return std::move(d.error());
      if (*d < std::chrono::seconds{1})
        return bad(fmt::format("--for = \"{}\": expected at least 1s", value));
      out.ban_for = *d;
    } else if (name == "--reason") {
      out.reason = value;
    } else if (name == "--count") {
      uint64_t n = 0;
      auto res = std::from_chars(value.data(), value.data() + value.size(), n);
      if (res.ec != std::errc{} || res.ptr != value.data() + value.size()
          || n == 0)
        return bad(fmt::format("--count = \"{}\": expected a positive "
                               "integer",
                               value));
      out.count = n;
    }
  }
  if (out.nodes.empty())
    return bad("missing --node, expected --node=HOST:PORT (one or more)");
  if (takes_id && out.nodes.size() > 1)
    return bad(fmt::format("{}: request ids belong to one node, expected "
                           "exactly one --node (got {})",
                           verb, out.nodes.size()));
  int tls_given = !out.cert.empty() + !out.key.empty() + !out.ca.empty();
  if (tls_given != 0 && tls_given != 3) {
    std::string missing;
    for (auto [flag, v] :
         {std::pair{"--cert", &out.cert}, std::pair{"--key", &out.key},
          std::pair{"--ca", &out.ca}})
      if (v->empty())
        missing += (missing.empty() ? "" : " and ") + std::string{flag};
    return bad(fmt::format("missing {}: mutual TLS needs --cert, --key and "
                           "--ca together (or none of them for plain TCP)",
                           missing));
  }
  return out;
}

} // namespace connmgr
