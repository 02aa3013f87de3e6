// End-to-end tests of the real connmgr-node program: every node is a separate
// process (see process.hpp) on 127.0.0.1, configured like an operator would,
// and observed only through its JSON log lines, its exit status, its stderr
// and its metrics endpoint. No test sleeps and hopes: each waits (with a
// generous deadline, for a loaded machine) for the line that proves the
// behaviour.
//
// Over 500 lines: one numbered section per behaviour of the program, all
// sharing the process harness.

#include <doctest/doctest.h>

#ifdef CONNMGR_NODE_BINARY

#include <algorithm>
#include <cstdio>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/node/node_process.hpp"

using namespace connmgr::e2e;

namespace {

/// A node of these tests: it listens on 127.0.0.1 only.
class loopback_node : public node_process {
public:
  using node_process::node_process;

  void boot(bool listens = true) {
    node_process::boot(listens);
    if (listens)
      REQUIRE(addr.rfind("127.0.0.1:", 0) == 0);
  }
};

} // namespace

// -- 1 ------------------------------------------------------------------------

TEST_CASE("node e2e: three nodes and a seed find each other") {
  loopback_node seed{
    {opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0")}};
  seed.boot();
  // Each member needs one outbound connection to another member, and a
  // node never dials a peer it is already connected to (inbound counts):
  // only a cycle A->B->C->A gives all three their two outbound. Without an
  // inbound limit, B->A and C->A leave A at 1/2 for good;
  // max-inbound=1 makes a member refuse the second, so the dialer moves on
  // and the cycle always forms.
  auto member_args = [&] {
    return std::vector<std::string>{
      opt("listen", list({"127.0.0.1:0"})), opt("peers", list({seed.addr})),
      opt("target-outbound", "2"),          opt("max-inbound", "1"),
      opt("status-interval", "200ms"),      opt("retry-duration", "200ms")};
  };
  loopback_node a{member_args()};
  loopback_node b{member_args()};
  loopback_node c{member_args()};
  a.boot();
  b.boot();
  c.boot();
  std::set<std::string> ids{seed.id, a.id, b.id, c.id};
  REQUIRE(ids.size() == 4);
  auto at_target = [](const std::string& line) {
    return json_event(line) == "status" && json_int(line, "outbound") >= 2
      && json_int(line, "peers_ready") >= 2;
  };
  for (auto* n : {&a, &b, &c}) {
    auto st = n->wait_for(at_target, eventually);
    REQUIRE_MESSAGE(st,
                    "no status with outbound >= 2 and peers_ready >= 2\n"
                      << n->tail(30));
  }
  // Each knew only the seed: a peer other than the seed came from gossip.
  bool gossip = false;
  for (auto* n : {&a, &b, &c})
    for (auto& l : events_of(*n, "peer_ready")) {
      auto peer = json_get(l, "peer_node").value_or("");
      CHECK_MESSAGE(ids.count(peer) == 1, l);
      CHECK_MESSAGE(peer != n->id, l);
      if (peer != seed.id)
        gossip = true;
    }
  CHECK_MESSAGE(gossip, a.tail(30) << b.tail(30) << c.tail(30));
  // The seed saw the three of them.
  std::set<std::string> seen_by_seed;
  for (auto& l : events_of(seed, "peer_ready"))
    seen_by_seed.insert(json_get(l, "peer_node").value_or(""));
  CHECK(seen_by_seed == std::set<std::string>{a.id, b.id, c.id});
  stop_all_ok({&a, &b, &c, &seed});
}

// -- 2 ------------------------------------------------------------------------

TEST_CASE("node e2e: a killed permanent peer is redialed on the backoff "
          "schedule") {
  auto b = std::make_unique<loopback_node>(std::vector<std::string>{
    opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0")});
  b->boot();
  auto b_addr = b->addr;
  loopback_node a{{opt("connect", list({b_addr})), opt("target-outbound", "0"),
                   opt("retry-duration", "300ms"),
                   opt("max-retry-duration", "1200ms")}};
  a.boot(false);
  auto connected =
    a.wait_for(event_with("connected", {{"addr", b_addr}}), eventually);
  REQUIRE_MESSAGE(connected, a.tail());
  auto id = std::to_string(int_of(*connected, "id"));
  CHECK(json_get(*connected, "permanent") == "true");
  REQUIRE_MESSAGE(
    a.wait_for(event_with("peer_ready", {{"id", id}}), eventually), a.tail());
  REQUIRE(b->signal(SIGKILL));
  REQUIRE(b->wait_exit(exit_timeout) == 128 + SIGKILL);
  b.reset();
  auto gone = a.wait_for(event_with("disconnected", {{"id", id}}), eventually);
  REQUIRE_MESSAGE(gone, a.tail());
  // retry 300, failed, retry 600, failed, retry 900, failed, retry 1200,
  // failed, retry 1200: each failed comes no sooner than the delay before.
  const std::vector<int64_t> want{300, 600, 900, 1200, 1200};
  std::vector<int64_t> delays;
  auto last_ts = int_of(*gone, "ts");
  for (size_t k = 0; k < want.size(); ++k) {
    auto retry = a.wait_for(event_with("retry", {{"id", id}}), eventually);
    REQUIRE_MESSAGE(retry, a.tail());
    auto delay = int_of(*retry, "delay_ms");
    delays.push_back(delay);
    if (k + 1 == want.size())
      break;
    auto failed = a.wait_for(event_with("failed", {{"id", id}}), eventually);
    REQUIRE_MESSAGE(failed, a.tail());
    CHECK(json_get(*failed, "reason_code") == "refused");
    auto ts = int_of(*failed, "ts");
    CAPTURE(k);
    CAPTURE(*retry);
    CAPTURE(*failed);
    CHECK(ts - last_ts >= delay - 50);
    CHECK(ts - last_ts <= delay + 1500);
    last_ts = ts;
  }
  CHECK(delays == want);
  // B comes back on the same address: the next redial (<= 1.2 s away)
  // reaches it.
  loopback_node b2{
    {opt("listen", list({b_addr})), opt("target-outbound", "0")}};
  b2.boot();
  REQUIRE(b2.addr == b_addr);
  auto again = a.wait_for(event_with("connected", {{"id", id}}), eventually);
  REQUIRE_MESSAGE(again, a.tail());
  auto gap = int_of(*again, "ts") - int_of(b2.listening_line, "ts");
  CAPTURE(gap);
  CHECK(gap <= 5000);
  CHECK_MESSAGE(a.wait_for(event_with("peer_ready", {{"id", id}}), eventually),
                a.tail());
  stop_all_ok({&a, &b2});
}

// -- 3 ------------------------------------------------------------------------

TEST_CASE("node e2e: inbound beyond max-inbound is rejected") {
  loopback_node s{{opt("listen", list({"127.0.0.1:0"})),
                   opt("target-outbound", "0"), opt("max-inbound", "1"),
                   opt("status-interval", "200ms")}};
  s.boot();
  auto client_args = std::vector<std::string>{
    opt("connect", list({s.addr})), opt("target-outbound", "0"),
    opt("retry-duration", "200ms"), opt("max-retry-duration", "400ms")};
  loopback_node a{client_args};
  loopback_node b{client_args};
  a.boot(false);
  b.boot(false);
  auto ready = s.wait_for(event_is("peer_ready"), eventually);
  REQUIRE_MESSAGE(ready, s.tail());
  s.seek(0);
  // The other one keeps trying and keeps being turned away.
  for (int i = 0; i < 2; ++i) {
    auto rejected = s.wait_for(
      event_with("rejected", {{"reason_code", "inbound_limit"}}), eventually);
    REQUIRE_MESSAGE(rejected, s.tail(30));
  }
  // A status after those rejections still holds the one peer.
  auto st = s.wait_for(event_is("status"), eventually);
  REQUIRE_MESSAGE(st, s.tail());
  CHECK(json_int(*st, "inbound") == 1);
  CHECK(json_int(*st, "max_inbound") == 1);
  CHECK(json_int(*st, "peers_ready") == 1);
  CHECK_MESSAGE(events_of(s, "accepted").size() == 1, s.tail(40));
  CHECK_MESSAGE(events_of(s, "peer_ready").size() == 1, s.tail(40));
  CHECK_MESSAGE(events_of(s, "peer_closed").empty(), s.tail(40));
  CHECK_MESSAGE(events_of(s, "peer_dropped").empty(), s.tail(40));
  // Exactly one of the two clients is ready with the seed.
  auto ready_a = events_of(a, "peer_ready").size();
  auto ready_b = events_of(b, "peer_ready").size();
  CHECK(ready_a + ready_b == 1);
  stop_all_ok({&a, &b, &s});
}

// -- 4 ------------------------------------------------------------------------

namespace {

struct config_case {
  /// What the case is about (shown on failure).
  std::string what;
  /// Content of caf-application.ini (empty: none).
  std::string ini;
  /// Command-line arguments.
  std::vector<std::string> args;
  /// What the one stderr line must contain.
  std::vector<std::string> expect;
};

/// Runs one malformed configuration: exit status 2, nothing on stdout,
/// exactly one line on stderr containing every `expect` string.
void check_config_error(const config_case& c) {
  CAPTURE(c.what);
  CAPTURE(c.ini);
  process_options o;
  if (!c.ini.empty())
    o.files.emplace_back("caf-application.ini", c.ini);
  process p{node_binary(), c.args, o};
  REQUIRE_MESSAGE(p.ok(), p.error());
  auto status = p.wait_exit(exit_timeout);
  REQUIRE_MESSAGE(status, "still running\n" << p.tail());
  CHECK_MESSAGE(*status == 2, p.tail());
  CHECK_MESSAGE(p.texts().empty(), p.tail());
  auto err = p.err_lines();
  REQUIRE_MESSAGE(err.size() == 1, p.tail());
  for (auto& e : c.expect)
    CHECK_MESSAGE(err[0].find(e) != std::string::npos,
                  "\"" << e << "\" not in: " << err[0]);
}

std::string section(const std::string& lines) {
  return "[connmgr]\n" + lines + "\n";
}

} // namespace

TEST_CASE("node e2e: malformed configs exit 2 naming the key") {
  const std::vector<config_case> cases{
    // In the working directory's caf-application.ini.
    {"unknown key", section("colour=\"red\""), {}, {"connmgr.colour"}},
    {"wrong type",
     section("target-outbound=\"8\""),
     {},
     {"connmgr.target-outbound", "\"8\"", "expected an integer"}},
    {"out of range",
     section("max-pending-dials=0"),
     {},
     {"connmgr.max-pending-dials", "\"0\"", "1.."}},
    {"negative",
     section("target-outbound=-1"),
     {},
     {"connmgr.target-outbound", "\"-1\""}},
    {"too large",
     section("max-inbound=4294967296"),
     {},
     {"connmgr.max-inbound", "\"4294967296\""}},
    {"bad address in a list",
     section("listen=[\"127.0.0.1:0\", \"1.2.3.4:99999\"]"),
     {},
     {"connmgr.listen[1]", "1.2.3.4:99999", "out of range"}},
    {"unquoted address",
     section("proxy=127.0.0.1:9050"),
     {},
     {"connmgr.proxy", "127.0.0.1:9050", "quoted"}},
    {"bad log format",
     section("log-format=\"xml\""),
     {},
     {"connmgr.log-format", "\"xml\"", "text or json"}},
    {"bad duration",
     section("retry-duration=1.5s"),
     {},
     {"connmgr.retry-duration", "\"1.5s\"", "duration"}},
    {"zero duration",
     section("status-interval=0s"),
     {},
     {"connmgr.status-interval", "\"0s\""}},
    {"max below min",
     section("retry-duration=10s\nmax-retry-duration=2s"),
     {},
     {"connmgr.max-retry-duration", "\"2s\"", "connmgr.retry-duration"}},
    {"unparsable line outside [connmgr]",
     "[scheduler]\n# comment\n",
     {},
     {"caf-application.ini:2:", "cannot parse"}},
    // In a file named by --config-file (which then must exist).
    {"missing --config-file",
     "",
     {"--config-file=/nonexistent/e2e.ini"},
     {"/nonexistent/e2e.ini"}},
    {"bad value in --config-file",
     "",
     {"--config-file=/dev/null", opt("colour", "red")},
     {"connmgr.colour"}},
    // On the command line.
    {"cli unknown key", "", {opt("colour", "red")}, {"connmgr.colour"}},
    {"cli wrong type",
     "",
     {opt("target-outbound", "\"8\"")},
     {"connmgr.target-outbound", "8"}},
    {"cli out of range",
     "",
     {opt("max-pending-dials", "0")},
     {"connmgr.max-pending-dials", "\"0\""}},
    {"cli negative",
     "",
     {opt("target-outbound", "-1")},
     {"connmgr.target-outbound", "\"-1\""}},
    {"cli bad address in a list",
     "",
     {opt("listen", list({"1.2.3.4:99999"}))},
     {"connmgr.listen[0]", "1.2.3.4:99999"}},
    {"cli bad proxy port",
     "",
     {opt("proxy", "127.0.0.1:99999")},
     {"connmgr.proxy", "127.0.0.1:99999"}},
    {"cli bad log format",
     "",
     {opt("log-format", "xml")},
     {"connmgr.log-format", "\"xml\""}},
    {"cli bad duration",
     "",
     {opt("retry-duration", "1.5s")},
     {"connmgr.retry-duration", "\"1.5s\""}},
    {"cli duration without unit",
     "",
     {opt("status-interval", "5")},
     {"connmgr.status-interval", "\"5\""}},
    {"cli key without value", "", {"--connmgr.listen"}, {"connmgr.listen"}},
    // The command line is checked on top of a valid file.
    {"cli over a valid file",
     section("target-outbound=3"),
     {opt("target-outbound", "-1")},
     {"connmgr.target-outbound", "\"-1\""}},
  };
  for (auto& c : cases)
    check_config_error(c);
}

TEST_CASE("node e2e: an unparsable config line names its key") {
  // CAF's parser reports these on a later line, or (an unterminated list on
  // the last line) not at all, silently dropping the whole section.
  const std::vector<config_case> cases{
    {"two values",
     section("target-outbound = 8 8"),
     {},
     {"connmgr.target-outbound"}},
    {"unterminated list before a line",
     section("listen=[\"127.0.0.1:0\"\ntarget-outbound=0"),
     {},
     {"connmgr.listen"}},
    {"unterminated list on the last line",
     section("log-format=\"json\"\nlisten=[\"127.0.0.1:0\""),
     {},
     {"connmgr.listen"}},
  };
  for (auto& c : cases) {
    CAPTURE(c.what);
    CAPTURE(c.ini);
    process_options o;
    o.files.emplace_back("caf-application.ini", c.ini);
    process p{node_binary(), c.args, o};
    REQUIRE_MESSAGE(p.ok(), p.error());
    // A config error exits at once; a node that runs instead is stopped.
    auto status = p.wait_exit(5s);
    CHECK_MESSAGE(status == 2, p.tail());
    check_one_error_line(p, c.expect);
  }
}

namespace {

/// The node of `p` starts, in the JSON log format ("started" its first
/// line), and listens; then it stops cleanly (stop_ok).
void check_starts_listening_in_json(process& p) {
  REQUIRE_MESSAGE(p.ok(), p.error());
  auto first = p.wait_for([](const std::string&) { return true; }, eventually);
  REQUIRE_MESSAGE(first, p.tail());
  CHECK_MESSAGE(json_event(*first) == "started", p.tail());
  CHECK_MESSAGE(p.wait_for(event_is("listening"), eventually), p.tail());
  stop_ok(p);
}

} // namespace

TEST_CASE("node e2e: a valid config file in the working directory is used") {
  auto ini = section("log-format=\"json\"\nlisten=[\"127.0.0.1:0\"]\n"
                     "target-outbound=0");
  SUBCASE("caf-application.ini") {
    process p{node_binary(), {}, {{{"caf-application.ini", ini}}}};
    check_starts_listening_in_json(p);
  }
  SUBCASE("--config-file=F") {
    process p{node_binary(), {"--config-file=node.ini"}, {{{"node.ini", ini}}}};
    check_starts_listening_in_json(p);
  }
  SUBCASE("the command line overrides the file") {
    process p{node_binary(),
              {opt("log-format", "text")},
              {{{"caf-application.ini", ini}}}};
    REQUIRE_MESSAGE(p.ok(), p.error());
    auto first =
      p.wait_for([](const std::string&) { return true; }, eventually);
    REQUIRE_MESSAGE(first, p.tail());
    CHECK_MESSAGE(first->rfind("started node ", 0) == 0, p.tail());
    // Still the file's listen address (text: "listening 127.0.0.1:PORT").
    CHECK_MESSAGE(p.wait_for(
                    [](const std::string& l) {
                      return l.rfind("listening 127.0.0.1:", 0) == 0;
                    },
                    eventually),
                  p.tail());
    REQUIRE(p.signal(SIGTERM));
    CHECK(p.wait_exit(exit_timeout) == 0);
    CHECK_MESSAGE(p.err_lines().empty(), p.tail());
  }
}

// -- 5 ------------------------------------------------------------------------

namespace {

/// Starts `n` busy nodes (a permanent peer that refuses, retried every
/// 100 ms, and a status line every 100 ms, so output is flowing when the
/// signal comes), sends every other one SIGTERM and the rest SIGINT, and
/// checks the common part: exit 0, nothing on stderr, every line a JSON
/// event, exactly one "stopping" naming the signal, "stopped" the very last
/// line. Returns each node's lines after "stopping", up to "stopped".
std::vector<std::vector<std::string>> stop_busy_nodes(size_t n) {
  closed_port refusing;
  REQUIRE(refusing.port() != 0);
  auto args = std::vector<std::string>{
    opt("listen", list({"127.0.0.1:0"})),
    opt("connect", list({"127.0.0.1:" + std::to_string(refusing.port())})),
    opt("target-outbound", "0"),
    opt("retry-duration", "100ms"),
    opt("max-retry-duration", "100ms"),
    opt("status-interval", "100ms")};
  std::vector<std::unique_ptr<loopback_node>> nodes;
  for (size_t i = 0; i < n; ++i)
    nodes.push_back(std::make_unique<loopback_node>(args));
  for (auto& p : nodes) {
    p->boot();
    REQUIRE_MESSAGE(p->wait_for(event_is("retry"), eventually), p->tail());
    REQUIRE_MESSAGE(p->wait_for(event_is("status"), eventually), p->tail());
  }
  auto sig_of = [](size_t i) { return i % 2 == 0 ? SIGTERM : SIGINT; };
  for (size_t i = 0; i < n; ++i)
    REQUIRE(nodes[i]->signal(sig_of(i)));
  std::vector<std::vector<std::string>> after;
  for (size_t i = 0; i < n; ++i) {
    auto& p = *nodes[i];
    auto sig = sig_of(i);
    CAPTURE(sig);
    auto status = p.wait_exit(exit_timeout);
    REQUIRE_MESSAGE(status, p.tail());
    CHECK_MESSAGE(*status == 0, p.tail());
    CHECK_MESSAGE(p.err_lines().empty(), p.tail());
    auto lines = p.texts();
    REQUIRE(lines.size() >= 2);
    for (auto& l : lines)
      CHECK_MESSAGE(!json_event(l).empty(), l);
    // Nothing after "stopped" (the output has ended: the process is gone).
    CHECK_MESSAGE(json_event(lines.back()) == "stopped", p.tail());
    CHECK(events_of(p, "stopping").size() == 1);
    CHECK(events_of(p, "stopped").size() == 1);
    auto stopping = std::find_if(lines.begin(), lines.end(), [](auto& l) {
      return json_event(l) == "stopping";
    });
    REQUIRE_MESSAGE(stopping != lines.end(), p.tail());
    CHECK(json_get(*stopping, "reason")
          == (sig == SIGINT ? "SIGINT" : "SIGTERM"));
    after.emplace_back(stopping + 1, lines.end() - 1);
  }
  return after;
}

} // namespace

TEST_CASE("node e2e: SIGTERM and SIGINT each exit 0 with stopping and "
          "stopped as the last events") {
  stop_busy_nodes(2);
}

TEST_CASE("node e2e: no new activity is reported after stopping") {
  // A dial finishing while the node stops must not report a retry that
  // will never run; several busy nodes make that race likely. Only a dial
  // cancelled in flight may be reported between "stopping" and "stopped".
  for (auto& lines : stop_busy_nodes(6))
    for (auto& l : lines) {
      auto code = json_get(l, "reason_code").value_or("");
      CHECK_MESSAGE((json_event(l) == "failed"
                     && (code == "canceled" || code == "stopped")),
                    "after stopping: " << l);
    }
}

TEST_CASE("node e2e: a node that dialed a host name stops promptly") {
  // A pending resolve timeout in the dialer must not keep the process alive
  // after "stopped" until that dial's dial-timeout (default 10 s).
  closed_port refusing;
  REQUIRE(refusing.port() != 0);
  loopback_node n{
    {opt("connect", list({"localhost:" + std::to_string(refusing.port())})),
     opt("target-outbound", "0"), opt("retry-duration", "100ms")}};
  n.boot(false);
  REQUIRE_MESSAGE(n.wait_for(event_is("retry"), eventually), n.tail());
  REQUIRE(n.signal(SIGTERM));
  auto stopped = n.wait_for_record(event_is("stopped"), eventually);
  REQUIRE_MESSAGE(stopped, n.tail());
  auto status = n.wait_exit(exit_timeout);
  auto lag = std::chrono::duration_cast<std::chrono::milliseconds>(
    clock_type::now() - stopped->at);
  CAPTURE(lag.count());
  CHECK(status == 0);
  CHECK_MESSAGE(lag <= 3s, n.tail());
}

// -- 6 ------------------------------------------------------------------------

namespace {

/// The value of the first sample of `metric` (with any labels) in a
/// Prometheus text exposition; nothing when there is none.
std::optional<double> sample(const std::string& body,
                             const std::string& metric) {
  std::istringstream in{body};
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    if (line.rfind(metric, 0) != 0)
      continue;
    auto rest = line.substr(metric.size());
    if (!rest.empty() && rest[0] != ' ' && rest[0] != '{')
      continue; // a longer name
    auto sp = line.rfind(' ');
    try {
      return std::stod(line.substr(sp + 1));
    } catch (...) {
      return std::nullopt;
    }
  }
  return std::nullopt;
}

} // namespace

TEST_CASE("node e2e: metrics answer a real HTTP client") {
  REQUIRE_MESSAGE(run_command("command -v curl").second == 0,
                  "this test needs curl");
  closed_port refusing;
  REQUIRE(refusing.port() != 0);
  loopback_node n{
    {opt("metrics-listen", "\"127.0.0.1:0\""),
     opt("connect", list({"127.0.0.1:" + std::to_string(refusing.port())})),
     opt("target-outbound", "0"), opt("retry-duration", "200ms"),
     opt("status-interval", "200ms")}};
  n.boot(false);
  auto metrics = n.wait_for(event_is("metrics"), eventually);
  REQUIRE_MESSAGE(metrics, n.tail());
  auto addr = json_get(*metrics, "addr").value_or("");
  REQUIRE(addr.rfind("127.0.0.1:", 0) == 0);
  REQUIRE(addr != "127.0.0.1:0");
  REQUIRE_MESSAGE(n.wait_for(event_is("retry"), eventually), n.tail());
  // The node records an event in its metrics right after printing it; the
  // next status line comes from the same actor, after that.
  auto st = n.wait_for(event_is("status"), eventually);
  REQUIRE_MESSAGE(st, n.tail());
  auto [body, rc] =
    run_command("curl -sS --max-time 10 http://" + addr + "/metrics 2>&1");
  REQUIRE_MESSAGE(rc == 0, body);
  CAPTURE(body);
  CHECK(body.find("# TYPE connmgr_retries_total counter") != std::string::npos);
  auto retries = sample(body, "connmgr_retries_total");
  REQUIRE(retries);
  CHECK(*retries >= 1);
  auto failures = sample(body, "connmgr_dial_failures_total");
  REQUIRE(failures);
  CHECK(*failures >= 1);
  CHECK(body.find("reason=\"refused\"") != std::string::npos);
  CHECK(sample(body, "connmgr_target_outbound") == 0.0);
  CHECK(sample(body, "connmgr_outbound_connections") == 0.0);
  CHECK(sample(body, "connmgr_connections_total") == 0.0);
  // Another request is answered too (the server keeps serving).
  auto [body2, rc2] =
    run_command("curl -sS --max-time 10 http://" + addr + "/metrics 2>&1");
  CHECK(rc2 == 0);
  CHECK(body2.find("connmgr_retries_total") != std::string::npos);
  stop_ok(n);
}

// -- 7 ------------------------------------------------------------------------

TEST_CASE("node e2e: a peer that stops answering pings is dropped") {
  loopback_node b{{opt("listen", list({"127.0.0.1:0"})),
                   opt("target-outbound", "0"), opt("ping-interval", "500ms")}};
  b.boot();
  loopback_node a{{opt("connect", list({b.addr})), opt("target-outbound", "0"),
                   opt("ping-interval", "500ms"),
                   opt("retry-duration", "200ms"),
                   opt("max-retry-duration", "1s")}};
  a.boot(false);
  auto ready = a.wait_for(event_is("peer_ready"), eventually);
  REQUIRE_MESSAGE(ready, a.tail());
  auto id = json_get(*ready, "id").value_or("");
  REQUIRE(!id.empty());
  REQUIRE(b.signal(SIGSTOP));
  auto stopped_at = clock_type::now();
  auto dropped = a.wait_for_record(event_is("peer_dropped"), eventually);
  // Resume B before any REQUIRE can end the test.
  b.signal(SIGCONT);
  REQUIRE_MESSAGE(dropped, a.tail());
  CHECK_MESSAGE(json_get(dropped->text, "reason_code") == "ping_timeout",
                dropped->text);
  CHECK(json_get(dropped->text, "addr") == b.addr);
  CHECK(json_get(dropped->text, "id") == id);
  // At most two ping periods after the stop, plus slack for the load.
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    dropped->at - stopped_at);
  CAPTURE(took.count());
  CHECK(took <= 1000ms + 5s);
  // No peer_closed for it first: the node itself closed the connection.
  for (auto& l : events_of(a, "peer_closed"))
    CHECK_MESSAGE(int_of(l, "ts") > int_of(dropped->text, "ts"), l);
  // B answers again, so A's permanent peer comes back.
  CHECK_MESSAGE(a.wait_for(event_with("peer_ready", {{"id", id}}), eventually),
                a.tail());
  stop_all_ok({&a, &b});
}

// -- 8 ------------------------------------------------------------------------

TEST_CASE("node e2e: DNS seeding finds a listening node") {
  loopback_node s{
    {opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0")}};
  s.boot();
  auto seed = "localhost:" + std::to_string(s.port);
  loopback_node a{{opt("dns-seeds", list({seed})), opt("target-outbound", "1"),
                   opt("retry-duration", "200ms")}};
  a.boot(false);
  auto seeded = a.wait_for(event_is("seeded"), eventually);
  REQUIRE_MESSAGE(seeded, a.tail());
  CHECK(json_get(*seeded, "addr") == seed);
  CHECK_MESSAGE(json_int(*seeded, "count") >= 1, *seeded);
  auto connected =
    a.wait_for(event_with("connected", {{"addr", s.addr}}), eventually);
  REQUIRE_MESSAGE(connected, a.tail());
  CHECK(json_get(*connected, "permanent") == "false");
  auto ready = a.wait_for(event_is("peer_ready"), eventually);
  REQUIRE_MESSAGE(ready, a.tail());
  CHECK(json_get(*ready, "peer_node") == s.id);
  stop_all_ok({&a, &s});
}

// -- 9 ------------------------------------------------------------------------

TEST_CASE("node e2e: swarm mode with churn") {
  process p{node_binary(), {"--swarm=8", "--swarm-churn=2s"}};
  REQUIRE_MESSAGE(p.ok(), p.error());
  // Every line but the twice-a-second progress ones: kills, restarts and
  // any node's error survive in a failure message.
  auto story = [&p] {
    std::string out;
    for (auto& l : p.texts())
      if (l.find("nodes at target") == std::string::npos)
        out += l + '\n';
    for (auto& l : p.err_lines())
      out += "stderr: " + l + '\n';
    return out;
  };
  auto status = p.wait_exit(60s);
  REQUIRE_MESSAGE(status, "no exit within 60 s\n" << story());
  CHECK_MESSAGE(*status == 0, story());
  CHECK_MESSAGE(p.err_lines().empty(), story());
  auto lines = p.texts();
  // Lines starting with `what` (after the indentation).
  auto count = [&](const std::string& what) {
    return std::count_if(lines.begin(), lines.end(), [&](const auto& l) {
      auto start = l.find_first_not_of(' ');
      return start != std::string::npos
        && l.compare(start, what.size(), what) == 0;
    });
  };
  // "12.34 s  killed node 3": churn lines start with the time.
  auto count_churn = [&](const std::string& what) {
    std::regex re{R"(^\s*\d+\.\d+ s\s+)" + what + " \\d+"};
    return std::count_if(lines.begin(), lines.end(), [&](const auto& l) {
      return std::regex_search(l, re);
    });
  };
  CHECK_MESSAGE(count("every node holds its target after") == 1, p.tail(40));
  CHECK_MESSAGE(count("every node holds its target again") == 1, p.tail(40));
  CHECK_MESSAGE(count("every node holds its target") == 2, p.tail(40));
  CHECK_MESSAGE(count_churn("killed node") >= 1, p.tail(40));
  CHECK_MESSAGE(count_churn("restarted node") >= 1, p.tail(40));
  // The summary: a header, one row per node (0..7), a total.
  auto header = std::find_if(lines.begin(), lines.end(), [](const auto& l) {
    return std::regex_search(l, std::regex{R"(^\s*node\s+port\s+target at)"});
  });
  REQUIRE_MESSAGE(header != lines.end(), p.tail(40));
  static const std::regex row{R"(^\s*(\d+)\s+(\d+)\s+(\d+\.\d+ s|never)\s)"};
  std::vector<int> rows;
  auto i = header + 1;
  for (; i != lines.end(); ++i) {
    std::smatch m;
    if (!std::regex_search(*i, m, row))
      break;
    rows.push_back(std::stoi(m[1]));
    CHECK_MESSAGE(m[3] != "never", *i);
  }
  CHECK_MESSAGE((rows == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7}), p.tail(40));
  REQUIRE(i != lines.end());
  CHECK_MESSAGE(i->rfind("total:", 0) == 0, *i);
}

// -- 10 -----------------------------------------------------------------------

TEST_CASE("node e2e: a connection to itself is detected") {
  for (int attempt = 0;; ++attempt) {
    auto port = free_port();
    REQUIRE(port != 0);
    auto self_addr = "127.0.0.1:" + std::to_string(port);
    loopback_node n{
      {opt("listen", list({self_addr})),
       opt("connect", list({"localhost:" + std::to_string(port)})),
       opt("target-outbound", "0"), opt("retry-duration", "200ms")}};
    REQUIRE_MESSAGE(n.ok(), n.error());
    auto first = n.wait_for(event_is("started"), eventually);
    if (!first) {
      // Someone took the port between our probe and the node's bind: the
      // node exits 1 naming the listen address. Try another port.
      auto status = n.wait_exit(exit_timeout);
      auto err = n.err_lines();
      REQUIRE_MESSAGE((attempt < 5 && status == 1 && err.size() == 1
                       && err[0].find(self_addr) != std::string::npos),
                      n.tail());
      continue;
    }
    auto dropped = n.wait_for(
      event_with("peer_dropped", {{"reason_code", "self"}}), eventually);
    REQUIRE_MESSAGE(dropped, n.tail(30));
    CHECK_MESSAGE(
      json_get(*dropped, "reason").value_or("").find("this node itself")
        != std::string::npos,
      *dropped);
    // It never became a ready peer of itself.
    CHECK_MESSAGE(events_of(n, "peer_ready").empty(), n.tail(30));
    stop_ok(n);
    break;
  }
}

#endif // CONNMGR_NODE_BINARY
