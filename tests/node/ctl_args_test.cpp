// connmgr-ctl's command line: what it accepts, and that every refusal names
// the argument and what was expected (the program exits 2 with it).

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "connmgr/messages/error_code.hpp"
#include "examples/ctl/ctl_args.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

ctl_args ok(std::vector<std::string> args) {
  auto res = parse_ctl_args(args);
  REQUIRE_MESSAGE(res, describe(res.error()));
  return *res;
}

/// The refusal of `args`; checks it contains every string of `expect`.
void refused(std::vector<std::string> args, std::vector<std::string> expect) {
  auto res = parse_ctl_args(args);
  REQUIRE_FALSE(res);
  auto text = describe(res.error());
  CHECK(errc_of(res.error()) == errc::invalid_config);
  for (auto& e : expect)
    CHECK_MESSAGE(text.find(e) != std::string::npos,
                  "\"" << e << "\" not in: " << text);
}

} // namespace

TEST_CASE("ctl args: commands with their arguments and options") {
  auto a = ok({"--node=127.0.0.1:8444", "peers"});
  CHECK(a.verb == ctl_verb::peers);
  REQUIRE(a.nodes.size() == 1);
  CHECK(a.nodes[0].to_string() == "127.0.0.1:8444");
  CHECK_FALSE(a.tls());
  CHECK_FALSE(a.json);
  a = ok({"--node", "127.0.0.1:1", "--node=127.0.0.1:2", "--json", "stats"});
  CHECK(a.nodes.size() == 2);
  CHECK(a.json);
  a = ok({"--node=127.0.0.1:1", "connect", "127.0.0.1:8333", "--permanent"});
  CHECK(a.verb == ctl_verb::connect);
  CHECK(a.target == "127.0.0.1:8333");
  CHECK(a.permanent);
  a = ok({"--node=127.0.0.1:1", "ban", "10.0.0.0/8", "--for", "2h",
          "--reason=spam"});
  CHECK(a.verb == ctl_verb::ban);
  CHECK(a.target == "10.0.0.0/8");
  CHECK(a.ban_for == caf::timespan{2h});
  CHECK(a.reason == "spam");
  a = ok({"--node=127.0.0.1:1", "ban", "203.0.113.7"});
  CHECK(a.ban_for == caf::timespan{24h});
  a = ok({"--node=127.0.0.1:1", "disconnect", "7"});
  CHECK(a.verb == ctl_verb::disconnect);
  CHECK(a.id == 7);
  a = ok({"remove", "9", "--node=127.0.0.1:1", "--cert", "c.pem", "--key",
          "k.pem", "--ca", "ca.pem", "--timeout=500ms"});
  CHECK(a.verb == ctl_verb::remove);
  CHECK(a.tls());
  CHECK(a.timeout == caf::timespan{500ms});
  a = ok({"--node=127.0.0.1:1", "events", "--count", "3"});
  CHECK(a.count == 3);
  a = ok({"--node=127.0.0.1:1", "unban", "10.0.0.0/8"});
  CHECK(a.verb == ctl_verb::unban);
  a = ok({"--node=127.0.0.1:1", "bans"});
  CHECK(a.verb == ctl_verb::bans);
  CHECK(ok({"--help"}).help);
}

TEST_CASE("ctl args: bad arguments name the argument and what was "
          "expected") {
  refused({"peers"}, {"missing --node", "HOST:PORT"});
  refused({"--node=127.0.0.1:1"}, {"missing command", "peers", "events"});
  refused({"--node=127.0.0.1:1", "frobnicate"},
          {"frobnicate", "unknown command", "expected one of"});
  refused({"--node=nohost", "peers"}, {"--node", "nohost", "HOST:PORT"});
  refused({"--node=127.0.0.1:99999", "peers"}, {"--node", "99999"});
  refused({"--node=127.0.0.1:1", "disconnect"}, {"disconnect", "missing ID"});
  refused({"--node=127.0.0.1:1", "disconnect", "x7"},
          {"disconnect ID", "x7", "positive integer"});
  refused({"--node=127.0.0.1:1", "remove", "0"}, {"remove ID", "\"0\""});
  refused({"--node=127.0.0.1:1", "--node=127.0.0.1:2", "disconnect", "7"},
          {"exactly one --node"});
  refused({"--node=127.0.0.1:1", "connect"}, {"connect", "missing ADDR"});
  refused({"--node=127.0.0.1:1", "connect", "nowhere"},
          {"connect ADDR", "nowhere"});
  refused({"--node=127.0.0.1:1", "ban"}, {"ban", "missing ADDR|CIDR"});
  refused({"--node=127.0.0.1:1", "ban", "1.2.3.4", "--for", "1.5h"},
          {"--for", "1.5h", "duration"});
  refused({"--node=127.0.0.1:1", "ban", "1.2.3.4", "--for", "99999999h"},
          {"--for", "87600h"});
  refused({"--node=127.0.0.1:1", "peers", "--permanent"},
          {"--permanent", "not an option of peers", "connect"});
  refused({"--node=127.0.0.1:1", "peers", "extra"},
          {"peers", "unexpected argument", "extra"});
  refused({"--node=127.0.0.1:1", "peers", "--colour"},
          {"--colour", "unknown option"});
  refused({"--node=127.0.0.1:1", "peers", "--cert", "c.pem"},
          {"missing --key and --ca", "mutual TLS"});
  refused({"--node=127.0.0.1:1", "peers", "--timeout"},
          {"--timeout", "missing value"});
  refused({"--node=127.0.0.1:1", "peers", "--json=yes"},
          {"--json", "takes no value"});
  refused({"--node=127.0.0.1:1", "events", "--count=0"},
          {"--count", "positive integer"});
}

TEST_CASE("ctl args: set, limits, drain, protect and unprotect") {
  auto a = ok({"--node=127.0.0.1:1", "set", "target-outbound=12",
               "max-inbound=unlimited", "max-pending-dials=0"});
  CHECK(a.verb == ctl_verb::set);
  REQUIRE(a.changes.size() == 3);
  CHECK(a.changes[0].key == "target-outbound");
  CHECK(a.changes[0].value == 12);
  CHECK(a.changes[1].key == "max-inbound");
  CHECK(a.changes[1].value == conn_limits::unlimited);
  CHECK(a.changes[2].value == 0);
  // Applied onto what the node has, only the keys given change.
  conn_limits x;
  x.target_outbound = 8;
  x.max_inbound = 114;
  x.max_manual = 8;
  x.max_pending_dials = 128;
  REQUIRE(!apply_limit_changes(x, a.changes));
  CHECK(x.target_outbound == 12);
  CHECK(x.max_inbound == conn_limits::unlimited);
  CHECK(x.max_pending_dials == 0);
  CHECK(x.max_manual == 8);
  // Every key of a run-time limit, printed under its config key.
  auto rows = limit_rows(x);
  REQUIRE(rows.size() == ctl_limit_keys().size());
  CHECK(rows[0]
        == std::pair<std::string, std::string>{"target-outbound", "12"});
  CHECK(rows[1]
        == std::pair<std::string, std::string>{"max-inbound", "unlimited"});
  for (auto& key : ctl_limit_keys()) {
    auto b = ok({"--node=127.0.0.1:1", "set", key + "=3"});
    conn_limits y;
    REQUIRE(!apply_limit_changes(y, b.changes));
    auto ys = limit_rows(y);
    auto i = std::find_if(ys.begin(), ys.end(),
                          [&](auto& r) { return r.first == key; });
    REQUIRE(i != ys.end());
    CHECK(i->second == "3");
  }
  a = ok({"--node=127.0.0.1:1", "limits", "--json"});
  CHECK(a.verb == ctl_verb::limits);
  a = ok({"--node=127.0.0.1:1", "drain"});
  CHECK(a.verb == ctl_verb::drain);
  CHECK(a.drain_timeout == caf::timespan{30s});
  // With drain, --timeout is the node's deadline, not the request's.
  a = ok({"--node=127.0.0.1:1", "drain", "--timeout", "2s"});
  CHECK(a.drain_timeout == caf::timespan{2s});
  CHECK(a.timeout == caf::timespan{10s});
  a = ok({"--node=127.0.0.1:1", "protect", "7", "operator"});
  CHECK(a.verb == ctl_verb::protect);
  CHECK(a.id == 7);
  CHECK(a.tag == "operator");
  a = ok({"--node=127.0.0.1:1", "unprotect", "7", "operator"});
  CHECK(a.verb == ctl_verb::unprotect);
}

TEST_CASE("ctl args: set refuses keys that are not run-time limits and bad "
          "values, naming them") {
  refused({"--node=127.0.0.1:1", "set"},
          {"set", "missing KEY=VALUE", "target-outbound"});
  refused({"--node=127.0.0.1:1", "set", "listen=127.0.0.1:1"},
          {"listen", "not a run-time limit", "target-outbound", "max-inbound",
           "max-inbound-per-ip", "max-inbound-per-netgroup",
           "max-pending-inbound", "max-manual", "max-permanent",
           "max-pending-dials"});
  refused({"--node=127.0.0.1:1", "set", "target_outbound=3"},
          {"target_outbound", "not a run-time limit"});
  refused({"--node=127.0.0.1:1", "set", "target-outbound"},
          {"target-outbound", "KEY=VALUE"});
  refused({"--node=127.0.0.1:1", "set", "max-inbound=lots"},
          {"max-inbound", "\"lots\"", "count", "unlimited"});
  refused({"--node=127.0.0.1:1", "set", "max-inbound="},
          {"max-inbound", "\"\"", "count"});
  refused({"--node=127.0.0.1:1", "set", "max-manual=-1"},
          {"max-manual", "\"-1\""});
  refused({"--node=127.0.0.1:1", "set", "max-manual=4294967296"},
          {"max-manual", "4294967296", "4294967295"});
  refused({"--node=127.0.0.1:1", "set", "target-outbound=unlimited"},
          {"target-outbound", "unlimited", "count"});
  refused({"--node=127.0.0.1:1", "protect", "7"}, {"protect", "missing TAG"});
  refused({"--node=127.0.0.1:1", "protect"}, {"protect", "missing ID"});
  refused({"--node=127.0.0.1:1", "unprotect", "x", "t"},
          {"unprotect ID", "\"x\""});
  refused({"--node=127.0.0.1:1", "--node=127.0.0.1:2", "protect", "7", "t"},
          {"exactly one --node"});
  refused({"--node=127.0.0.1:1", "drain", "--timeout", "soon"},
          {"--timeout", "soon", "duration"});
  refused({"--node=127.0.0.1:1", "limits", "extra"},
          {"limits", "unexpected argument"});
}
