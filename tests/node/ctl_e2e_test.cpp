// connmgr-ctl against running connmgr-node processes over the remote
// control, all on 127.0.0.1: mutual TLS with certificates the test makes
// with the openssl command line, refusals named by reason, plain TCP only
// when asked on loopback, bans through the control, and a slow event
// subscriber dropped instead of buffered.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/node/node_process.hpp"

using namespace connmgr::e2e;

namespace {

std::string ctl_binary() {
#ifdef CONNMGR_CTL_BINARY
  return CONNMGR_CTL_BINARY;
#else
  return {};
#endif
}

/// A CA, a node certificate and a client certificate signed by it, and a
/// second CA with its own client certificate, in a fresh directory.
struct test_pki {
  std::string dir;

  test_pki() {
    char tmpl[] = "/tmp/connmgr-pki-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    auto script = "cd " + dir + R"( && set -e
ca() { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout $1.key -out $1.pem -days 2 -subj "/CN=$1"; }
leaf() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout $1.key -out $1.csr -subj "/CN=$1"
  openssl x509 -req -in $1.csr -CA $2.pem -CAkey $2.key -CAcreateserial \
  -out $1.pem -days 2; }
ca ca; leaf node ca; leaf client ca; ca ca2; leaf client2 ca2
)";
    auto [out, status] = run_command("(" + script + ") 2>&1");
    REQUIRE_MESSAGE(status == 0, "openssl failed: " << out);
  }

  ~test_pki() {
    run_command("rm -rf " + dir);
  }

  std::string path(const std::string& name) const {
    return dir + "/" + name;
  }

  /// The node's TLS options.
  std::vector<std::string> node_keys() const {
    return {opt("control-cert", path("node.pem")),
            opt("control-key", path("node.key")),
            opt("control-ca", path("ca.pem"))};
  }

  /// The ctl's flags for client `who` trusting CA `ca`.
  std::vector<std::string> client(const std::string& who = "client",
                                  const std::string& ca = "ca") const {
    return {"--cert", path(who + ".pem"), "--key", path(who + ".key"),
            "--ca",   path(ca + ".pem")};
  }
};

/// Runs connmgr-ctl to its end: exit status, stdout lines, stderr lines.
struct ctl_result {
  int status = -1;
  std::vector<std::string> out;
  std::vector<std::string> err;

  std::string text() const {
    std::string all;
    for (auto& l : out)
      all += l + "\n";
    for (auto& l : err)
      all += "stderr: " + l + "\n";
    return all;
  }
};

ctl_result run_ctl(const std::string& node, std::vector<std::string> flags,
                   std::vector<std::string> command) {
  std::vector<std::string> args{"--node=" + node, "--timeout=10s"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.insert(args.end(), command.begin(), command.end());
  process p{ctl_binary(), args};
  REQUIRE_MESSAGE(p.ok(), p.error());
  auto status = p.wait_exit(60s);
  REQUIRE_MESSAGE(status, "connmgr-ctl did not exit\n" << p.tail());
  return {*status, p.texts(), p.err_lines()};
}

/// The control address of a node (its "control" line).
std::string control_of(node_process& n) {
  auto line = expect_event(n, "control");
  auto addr = json_get(line, "addr").value_or("");
  REQUIRE(!addr.empty());
  return addr;
}

/// Resident memory of `pid` in KiB (VmRSS).
long rss_kib(pid_t pid) {
  std::ifstream f{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

bool contains(const ctl_result& r, const std::string& what) {
  return r.text().find(what) != std::string::npos;
}

} // namespace

TEST_CASE("ctl e2e: peers shows inbound and outbound peers; ban disconnects "
          "and refuses, unban lets back") {
  test_pki pki;
  node_process b{
    {opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0")}};
  b.boot();
  auto a_args = std::vector<std::string>{
    opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0"),
    opt("control-listen", "127.0.0.1:0"), opt("retry-duration", "100ms"),
    opt("max-retry-duration", "300ms"),   opt("ping-interval", "100ms")};
  for (auto& k : pki.node_keys())
    a_args.push_back(k);
  node_process a{a_args};
  a.boot();
  auto ctl_addr = control_of(a);
  node_process c{{opt("connect", list({a.addr})), opt("target-outbound", "0"),
                  opt("retry-duration", "100ms"),
                  opt("max-retry-duration", "300ms")}};
  c.boot(false);
  // Outbound from a to b, through the control.
  auto conn = run_ctl(ctl_addr, pki.client(), {"connect", b.addr});
  REQUIRE_MESSAGE(conn.status == 0, conn.text());
  expect_event(a, "peer_ready", {{"outbound", "true"}});
  a.seek(0);
  expect_event(a, "peer_ready", {{"outbound", "false"}});
  auto peers = run_ctl(ctl_addr, pki.client(), {"peers", "--json"});
  REQUIRE_MESSAGE(peers.status == 0, peers.text());
  CHECK_MESSAGE(contains(peers, "\"direction\":\"outbound\""), peers.text());
  CHECK_MESSAGE(contains(peers, "\"remote\":\"" + b.addr + "\""), peers.text());
  CHECK_MESSAGE(contains(peers, "\"direction\":\"inbound\""), peers.text());
  // Bytes grow: a pings both peers every 100 ms.
  auto outbound_bytes = [&] {
    auto r = run_ctl(ctl_addr, pki.client(), {"peers", "--json"});
    REQUIRE_MESSAGE(r.status == 0, r.text());
    for (auto& line : r.out) {
      if (line.find("\"direction\":\"outbound\"") == std::string::npos)
        continue;
      auto at = line.find("\"bytes_in\":");
      REQUIRE_MESSAGE(at != std::string::npos, line);
      return std::stoull(line.substr(at + 11));
    }
    FAIL("no outbound peer in " << r.text());
    return 0ull;
  };
  auto first = outbound_bytes();
  CHECK(first > 0);
  std::this_thread::sleep_for(500ms);
  CHECK(outbound_bytes() > first);
  auto table = run_ctl(ctl_addr, pki.client(), {"peers"});
  REQUIRE_MESSAGE(table.status == 0, table.text());
  REQUIRE(table.out.size() == 3); // header, inbound, outbound
  CHECK(table.out[0].rfind("ID", 0) == 0);
  // Every peer is on 127.0.0.1: banning it closes both and refuses c's
  // reconnects.
  auto from = a.cursor();
  auto ban = run_ctl(ctl_addr, pki.client(),
                     {"ban", "127.0.0.1", "--for", "1h", "--reason", "e2e"});
  REQUIRE_MESSAGE(ban.status == 0, ban.text());
  CHECK_MESSAGE(contains(ban, "127.0.0.1  2"), ban.text());
  expect_event(a, "banned", {{"addr", "127.0.0.1/32"}});
  a.seek(from);
  expect_event(a, "evicted", {{"reason_code", "banned"}});
  a.seek(from);
  expect_event(a, "rejected", {{"reason_code", "banned"}});
  auto bans = run_ctl(ctl_addr, pki.client(), {"bans"});
  CHECK_MESSAGE(contains(bans, "127.0.0.1/32"), bans.text());
  CHECK_MESSAGE(contains(bans, "e2e"), bans.text());
  auto unban = run_ctl(ctl_addr, pki.client(), {"unban", "127.0.0.1/32"});
  REQUIRE_MESSAGE(unban.status == 0, unban.text());
  from = a.cursor();
  expect_event(a, "peer_ready", {{"outbound", "false"}});
  auto after = run_ctl(ctl_addr, pki.client(), {"bans", "--json"});
  CHECK_MESSAGE(after.out == std::vector<std::string>{"[]"}, after.text());
  stop_all_ok({&c, &a, &b});
}

TEST_CASE("ctl e2e: clients without a certificate of the node's CA are "
          "refused, naming why") {
  test_pki pki;
  auto args = std::vector<std::string>{opt("control-listen", "127.0.0.1:0"),
                                       opt("target-outbound", "0")};
  for (auto& k : pki.node_keys())
    args.push_back(k);
  node_process a{args};
  a.boot(false);
  auto ctl_addr = control_of(a);
  auto good = run_ctl(ctl_addr, pki.client(), {"stats"});
  CHECK_MESSAGE(good.status == 0, good.text());
  CHECK_MESSAGE(contains(good, "requests_created"), good.text());
  // No certificate at all: plain TCP against a TLS control.
  auto plain = run_ctl(ctl_addr, {}, {"peers"});
  CHECK_MESSAGE(plain.status == 1, plain.text());
  CHECK_MESSAGE(contains(plain, "needs mutual TLS"), plain.text());
  // A certificate of another CA: the node refuses it.
  auto other = run_ctl(ctl_addr, pki.client("client2", "ca"), {"peers"});
  CHECK_MESSAGE(other.status == 1, other.text());
  CHECK_MESSAGE(contains(other, "the node refused our certificate"),
                other.text());
  // Trusting another CA: we refuse the node.
  auto distrust = run_ctl(ctl_addr, pki.client("client2", "ca2"), {"peers"});
  CHECK_MESSAGE(distrust.status == 1, distrust.text());
  CHECK_MESSAGE(contains(distrust, "not signed by --ca"), distrust.text());
  // Nobody there.
  closed_port nobody;
  auto down = run_ctl("127.0.0.1:" + std::to_string(nobody.port()),
                      pki.client(), {"peers"});
  CHECK_MESSAGE(down.status == 1, down.text());
  CHECK_MESSAGE(contains(down, "cannot reach the node"), down.text());
  // Bad arguments: 2.
  auto bad = run_ctl(ctl_addr, {"--cert", pki.path("client.pem")}, {"peers"});
  CHECK_MESSAGE(bad.status == 2, bad.text());
  CHECK_MESSAGE(contains(bad, "--key"), bad.text());
  stop_ok(a);
}

TEST_CASE("ctl e2e: plain TCP control only when asked and only on "
          "loopback") {
  SUBCASE("without TLS keys and without the flag: exit 2 naming the keys") {
    node_process n{{opt("control-listen", "127.0.0.1:0")}};
    auto status = n.wait_exit(exit_timeout);
    CHECK(status == 2);
    check_one_error_line(n,
                         {"connmgr.control-cert", "connmgr.control-key",
                          "connmgr.control-ca", "control-insecure-loopback"});
  }
  SUBCASE("a non-loopback address needs TLS even with the flag") {
    // Refused while reading the settings: nothing is bound.
    node_process n{{opt("control-listen", "192.0.2.1:0"),
                    "--connmgr.control-insecure-loopback"}};
    auto status = n.wait_exit(exit_timeout);
    CHECK(status == 2);
    check_one_error_line(
      n, {"192.0.2.1", "not a loopback address", "connmgr.control-cert"});
  }
  SUBCASE("incomplete TLS keys: exit 2 naming the missing ones") {
    node_process n{
      {opt("control-listen", "127.0.0.1:0"), opt("control-cert", "x.pem")}};
    CHECK(n.wait_exit(exit_timeout) == 2);
    check_one_error_line(n, {"connmgr.control-key", "connmgr.control-ca"});
  }
  SUBCASE("with the flag on loopback: plain TCP works") {
    node_process n{{opt("control-listen", "127.0.0.1:0"),
                    opt("target-outbound", "0"),
                    "--connmgr.control-insecure-loopback"}};
    n.boot(false);
    auto line = expect_event(n, "control");
    CHECK(json_get(line, "reason_code") == "plain");
    auto addr = json_get(line, "addr").value_or("");
    auto r = run_ctl(addr, {}, {"stats", "--json"});
    CHECK_MESSAGE(r.status == 0, r.text());
    CHECK_MESSAGE(contains(r, "\"requests_created\":"), r.text());
    stop_ok(n);
  }
}

TEST_CASE("ctl e2e: a slow events subscriber is dropped, the node's memory "
          "stays bounded") {
  test_pki pki;
  auto args = std::vector<std::string>{
    opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0"),
    opt("control-listen", "127.0.0.1:0"), opt("status-interval", "10min")};
  for (auto& k : pki.node_keys())
    args.push_back(k);
  node_process a{args};
  a.boot();
  auto ctl_addr = control_of(a);
  // A subscriber whose stdout nobody reads: once the pipe is full it stops
  // taking events, and so stops granting credit.
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  auto bin = ctl_binary();
  std::vector<std::string> argv_store{bin, "--node=" + ctl_addr};
  for (auto& f : pki.client())
    argv_store.push_back(f);
  argv_store.push_back("events");
  std::vector<char*> argv;
  for (auto& s : argv_store)
    argv.push_back(s.data());
  argv.push_back(nullptr);
  auto pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  // Kills and reaps the subscriber once, also when a REQUIRE throws.
  struct reaper {
    pid_t pid;
    int fd;
    void reap() {
      if (pid <= 0)
        return;
      ::kill(pid, SIGKILL);
      int st = 0;
      ::waitpid(pid, &st, 0);
      ::close(fd);
      pid = -1;
    }
    ~reaper() {
      reap();
    }
  } guard{pid, fds[0]};
  // Traffic until the node gives up on the subscriber: each connection
  // makes a few events (accepted, closed).
  auto rss_before = rss_kib(a.pid());
  auto flood = [&](int n) {
    for (int i = 0; i < n; ++i) {
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in sa{};
      sa.sin_family = AF_INET;
      sa.sin_port = htons(a.port);
      sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      ::connect(s, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      ::close(s);
    }
  };
  std::optional<std::string> dropped;
  for (int round = 0; round < 20 && !dropped; ++round) {
    flood(500);
    dropped = a.wait_for(event_is("control_dropped"), 1s);
  }
  REQUIRE_MESSAGE(dropped, "slow subscriber never dropped\n" << a.tail());
  CHECK_MESSAGE(json_get(*dropped, "reason").value_or("").find("too slow")
                  != std::string::npos,
                *dropped);
  // More events after the drop cost the node nothing for that subscriber.
  flood(2000);
  auto rss_after = rss_kib(a.pid());
  CAPTURE(rss_before);
  CAPTURE(rss_after);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // ASan quarantines freed memory (up to 256 MiB) and TSan keeps history per
  // allocation, so there the node's RSS does not follow its live heap.
  MESSAGE("memory bound not checked: sanitizer allocators hold freed memory");
#else
  CHECK(rss_after - rss_before < 64 * 1024);
#endif
  // Its connection must be gone before the node's exit check.
  guard.reap();
  stop_ok(a);
}

namespace {

/// A node with a TLS control that knows `peers` (listening nodes it may
/// dial automatically) and starts with `target` automatic connections.
std::vector<std::string> controlled_args(const test_pki& pki,
                                         const std::vector<std::string>& peers,
                                         const std::string& target) {
  auto args = std::vector<std::string>{
    opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", target),
    opt("control-listen", "127.0.0.1:0"), opt("peers", list(peers)),
    opt("retry-duration", "100ms"),       opt("max-retry-duration", "300ms")};
  for (auto& k : pki.node_keys())
    args.push_back(k);
  return args;
}

/// A node that listens and dials nobody.
std::vector<std::string> listener_args() {
  return {opt("listen", list({"127.0.0.1:0"})), opt("target-outbound", "0")};
}

/// The value of row `key` of a `limits`/`set` table ("KEY  VALUE").
std::string table_value(const ctl_result& r, const std::string& key) {
  for (auto& l : r.out)
    if (l.rfind(key + " ", 0) == 0) {
      auto v = l.substr(key.size());
      return v.substr(v.find_first_not_of(' '));
    }
  return {};
}

/// Waits until `n` has exited by itself: status 0, nothing on stderr, and
/// "stopped" its last line.
void exited_ok(node_process& n) {
  auto status = n.wait_exit(exit_timeout);
  REQUIRE_MESSAGE(status, "the node did not exit\n" << n.tail(30));
  CHECK_MESSAGE(*status == 0, n.tail(30));
  CHECK_MESSAGE(n.err_lines().empty(), n.tail(30));
  auto lines = n.texts();
  REQUIRE(!lines.empty());
  CHECK_MESSAGE(json_event(lines.back()) == "stopped", n.tail(30));
}

} // namespace

TEST_CASE("ctl e2e: set target-outbound up and down takes effect within one "
          "second") {
  test_pki pki;
  node_process l1{listener_args()};
  node_process l2{listener_args()};
  node_process l3{listener_args()};
  l1.boot();
  l2.boot();
  l3.boot();
  node_process a{controlled_args(pki, {l1.addr, l2.addr, l3.addr}, "0")};
  a.boot();
  auto ctl_addr = control_of(a);
  auto before = run_ctl(ctl_addr, pki.client(), {"limits"});
  REQUIRE_MESSAGE(before.status == 0, before.text());
  CHECK_MESSAGE(table_value(before, "target-outbound") == "0", before.text());
  CHECK_MESSAGE(a.events("connected").empty(), a.tail());
  // Up: two automatic connections at once.
  auto up = run_ctl(ctl_addr, pki.client(), {"set", "target-outbound=2"});
  auto answered = unix_ms();
  REQUIRE_MESSAGE(up.status == 0, up.text());
  CHECK_MESSAGE(table_value(up, "target-outbound") == "2", up.text());
  CHECK_MESSAGE(table_value(up, "max-inbound-per-ip") == "unlimited",
                up.text());
  std::vector<int64_t> ids;
  for (int i = 0; i < 2; ++i) {
    auto line = expect_event(a, "connected", {{"permanent", "false"}});
    CHECK_MESSAGE(int_of(line, "ts") <= answered + 1000, line);
    ids.push_back(int_of(line, "id"));
  }
  // Down to one: the youngest surplus connection closes, unless protected:
  // protecting the youngest makes it the other one.
  auto young = std::to_string(ids[1]); // connected last
  auto old = std::to_string(ids[0]);
  auto prot = run_ctl(ctl_addr, pki.client(), {"protect", young, "e2e"});
  REQUIRE_MESSAGE(prot.status == 0, prot.text());
  auto unknown = run_ctl(ctl_addr, pki.client(), {"unprotect", old, "e2e"});
  CHECK_MESSAGE(unknown.status == 1, unknown.text());
  CHECK_MESSAGE(contains(unknown, "no tag"), unknown.text());
  auto down =
    run_ctl(ctl_addr, pki.client(), {"set", "target-outbound=1", "--json"});
  answered = unix_ms();
  REQUIRE_MESSAGE(down.status == 0, down.text());
  CHECK_MESSAGE(contains(down, "\"target-outbound\":1"), down.text());
  auto gone =
    expect_event(a, "disconnected", {{"reason_code", "limit_lowered"}});
  CHECK_MESSAGE(int_of(gone, "ts") <= answered + 1000, gone);
  CHECK_MESSAGE(json_get(gone, "id") == old, gone);
  auto unprot = run_ctl(ctl_addr, pki.client(), {"unprotect", young, "e2e"});
  CHECK_MESSAGE(unprot.status == 0, unprot.text());
  auto now = run_ctl(ctl_addr, pki.client(), {"limits"});
  CHECK_MESSAGE(table_value(now, "target-outbound") == "1", now.text());
  // Bad arguments: 2, naming the key (and the keys) or the value.
  auto not_limit = run_ctl(ctl_addr, pki.client(), {"set", "listen=1"});
  CHECK_MESSAGE(not_limit.status == 2, not_limit.text());
  CHECK_MESSAGE(contains(not_limit, "listen: not a run-time limit"),
                not_limit.text());
  CHECK_MESSAGE(contains(not_limit, "max-pending-dials"), not_limit.text());
  auto bad_value = run_ctl(ctl_addr, pki.client(), {"set", "max-manual=x"});
  CHECK_MESSAGE(bad_value.status == 2, bad_value.text());
  CHECK_MESSAGE(contains(bad_value, "max-manual = \"x\""), bad_value.text());
  // A value the node refuses: 1, with its message naming the field.
  auto refused =
    run_ctl(ctl_addr, pki.client(), {"set", "target-outbound=4000000000"});
  CHECK_MESSAGE(refused.status == 1, refused.text());
  CHECK_MESSAGE(contains(refused, "set refused"), refused.text());
  CHECK_MESSAGE(contains(refused, "target_outbound"), refused.text());
  auto after = run_ctl(ctl_addr, pki.client(), {"limits"});
  CHECK_MESSAGE(table_value(after, "target-outbound") == "1", after.text());
  stop_all_ok({&a, &l1, &l2, &l3});
}

TEST_CASE("ctl e2e: drain closes every peer with a reason and ends the node "
          "with exit 0") {
  test_pki pki;
  node_process l1{listener_args()};
  l1.boot();
  node_process a{controlled_args(pki, {l1.addr}, "1")};
  a.boot();
  auto ctl_addr = control_of(a);
  node_process c{{opt("connect", list({a.addr})), opt("target-outbound", "0"),
                  opt("retry-duration", "100ms"),
                  opt("max-retry-duration", "300ms")}};
  c.boot(false);
  auto out_line = expect_event(a, "connected", {{"permanent", "false"}});
  a.seek(0);
  expect_event(a, "peer_ready", {{"outbound", "false"}});
  a.seek(0);
  expect_event(a, "peer_ready", {{"outbound", "true"}});
  auto from = a.cursor();
  std::vector<std::string> args{"--node=" + ctl_addr};
  for (auto& f : pki.client())
    args.push_back(f);
  for (auto x : {"drain", "--timeout", "2s"})
    args.emplace_back(x);
  process ctl{ctl_binary(), args};
  REQUIRE_MESSAGE(ctl.ok(), ctl.error());
  auto ctl_status = ctl.wait_exit(60s);
  REQUIRE_MESSAGE(ctl_status, "connmgr-ctl did not exit\n" << ctl.tail());
  ctl_result drained{*ctl_status, ctl.texts(), ctl.err_lines()};
  CHECK_MESSAGE(drained.status == 0, drained.text() << a.tail(30));
  // The final counters, one row each.
  CHECK_MESSAGE(table_value(drained, "requests_created") != "", drained.text());
  exited_ok(a);
  // Every peer closed with reason draining: the outbound one by its
  // request, the inbound one evicted.
  a.seek(from);
  expect_event(a, "disconnected",
               {{"id", std::to_string(int_of(out_line, "id"))},
                {"reason_code", "draining"}},
               0s);
  a.seek(from);
  expect_event(a, "evicted", {{"reason_code", "draining"}}, 0s);
  for (auto& l : a.events("disconnected"))
    CHECK_MESSAGE(json_get(l, "reason_code") == "draining", l);
  for (auto& l : a.events("evicted"))
    CHECK_MESSAGE(json_get(l, "reason_code") == "draining", l);
  stop_all_ok({&c, &l1});
}
