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
  {"peers", ctl_verb::peers},   {"stats", ctl_verb::stats},
  {"connect", ctl_verb::connect}, {"disconnect", ctl_verb::disconnect},
  {"remove", ctl_verb::remove}, {"ban", ctl_verb::ban},
  {"unban", ctl_verb::unban},   {"bans", ctl_verb::bans},
  {"events", ctl_verb::events},
};

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
  disconnect ID                  close request ID; it retries per its rules
  remove ID                      close or cancel request ID for good
  ban ADDR|CIDR [--for 24h] [--reason TEXT]
                                 ban an address or subnet, closing its peers
  unban ADDR|CIDR                lift a ban
  bans                           bans in force
  events [--count N]             stream the node's events

Several --node flags give one table across nodes (disconnect and remove take
one node). --cert, --key and --ca (PEM files) select mutual TLS; without them
the connection is plain TCP (nodes allow that on loopback only).
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
  auto res = std::from_chars(text.data(), text.data() + (digits - text.begin()),
                             n);
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
        return bad(fmt::format("{}: missing value, expected {} VALUE", name,
                               name));
      }
      if (value.empty())
        return bad(fmt::format("{}: empty value, expected {} VALUE", name,
                               name));
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
    default:
      break;
  }
  if (positional.size() < wanted + 1) {
    const char* what = out.verb == ctl_verb::connect ? "ADDR, expected a "
                                                       "host:port like "
                                                       "127.0.0.1:8333"
                       : (out.verb == ctl_verb::disconnect
                          || out.verb == ctl_verb::remove)
                         ? "ID, expected a request id like 7"
                         : "ADDR|CIDR, expected an address or subnet like "
                           "203.0.113.7 or 10.0.0.0/8";
    return bad(fmt::format("{}: missing {}", verb, what));
  }
  if (positional.size() > wanted + 1)
    return bad(fmt::format("{}: unexpected argument \"{}\", expected {}", verb,
                           positional[wanted + 1],
                           wanted == 0 ? "no argument" : "one argument"));
  if (wanted == 1) {
    auto& x = positional[1];
    if (out.verb == ctl_verb::disconnect || out.verb == ctl_verb::remove) {
      uint64_t id = 0;
      auto res = std::from_chars(x.data(), x.data() + x.size(), id);
      if (res.ec != std::errc{} || res.ptr != x.data() + x.size() || id == 0)
        return bad(fmt::format("{} ID = \"{}\": expected a request id (a "
                               "positive integer) like 7",
                               verb, x));
      out.id = id;
    } else if (out.verb == ctl_verb::connect) {
      auto addr = net_address::parse(x, false);
      if (!addr)
        return bad(fmt::format("connect ADDR = \"{}\": {}", x,
                               describe(addr.error())));
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
  if ((out.verb == ctl_verb::disconnect || out.verb == ctl_verb::remove)
      && out.nodes.size() > 1)
    return bad(fmt::format("{}: request ids belong to one node, expected "
                           "exactly one --node (got {})",
                           verb, out.nodes.size()));
  int tls_given = !out.cert.empty() + !out.key.empty() + !out.ca.empty();
  if (tls_given != 0 && tls_given != 3) {
    std::string missing;
    for (auto [flag, v] : {std::pair{"--cert", &out.cert},
                           std::pair{"--key", &out.key},
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
