// Multi-host test of the real connmgr-node program: four hosts, each its own
// network namespace with one veth link to a switch (a Linux bridge in a fifth
// namespace), one node per host, started with `ip netns exec`. Addresses
// exist only inside those namespaces; nothing touches the machine's own
// network. One host's link is cut (`ip link set DEV down` on its switch
// port), held down while the others redial it, and healed. Needs root (or
// CAP_NET_ADMIN + CAP_SYS_ADMIN): skipped with a message where `ip netns add`
// fails.
//
// Every node holds a permanent connection to each node after it (0->1,2,3;
// 1->2,3; 2->3): six connections, one per pair, and every node has three
// ready peers. Host 1 is cut: requests 0->1, 1->2 and 1->3 must back off on
// the configured schedule and reconnect after the heal within the backoff
// bound; 0-2, 0-3 and 2-3 must stay up; every node's descriptors and threads
// must be back to their pre-partition counts, and every node must stop with
// status 0 on SIGTERM (it checks its own descriptors then).

#include <doctest/doctest.h>

#ifdef CONNMGR_NODE_BINARY

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "connmgr/net/socket_ops.hpp"
#include "tests/node/node_process.hpp"

using namespace connmgr::e2e;

namespace {

// -- settings under test ----------------------------------------------------------

constexpr size_t host_count = 4;
constexpr size_t cut_host = 1;
constexpr uint16_t node_port = 18555;
constexpr int64_t retry_ms = 250;
constexpr int64_t max_retry_ms = 1000;
constexpr int64_t dial_timeout_ms = 1000;
constexpr int64_t ping_ms = 500;
/// Link-up propagation (the kernel's link watch runs up to once a second),
/// the handshake and a loaded 2-core machine.
constexpr int64_t slack_ms = 1500;
/// The longest a cut request may take to be ready again once the link is
/// back: one dial started just before the heal can time out, then at most
/// one capped retry delay, then a dial and a handshake.
constexpr int64_t reconnect_bound_ms =
  dial_timeout_ms + max_retry_ms + slack_ms;
/// How many retries of each cut request are watched while the link is down.
constexpr size_t watched_retries = 5;

/// The delay of a permanent request's n-th retry: min(n * retry,
/// max_retry). Its count starts where it stood before the connection: a
/// connection shorter than the stable period (60 s) does not reset it.
int64_t want_delay(size_t n) {
  return std::min(static_cast<int64_t>(n) * retry_ms, max_retry_ms);
}

std::string host_ip(size_t i) {
  return "10.231.0." + std::to_string(i + 1);
}

std::string host_addr(size_t i) {
  return host_ip(i) + ":" + std::to_string(node_port);
}

// -- commands ---------------------------------------------------------------------

/// Runs a shell command line (our own, fixed words only); returns its exit
/// status and its output (stdout and stderr).
std::pair<int, std::string> sh(const std::string& cmd) {
  auto [out, rc] = run_command(cmd + " 2>&1");
  return {rc, out};
}

// -- the test bed -----------------------------------------------------------------

/// The namespaces and links, removed again by the destructor (whatever
/// happened): `ip netns del` unmounts each namespace, and the last process
/// leaving it takes its links along. Names carry our pid; leftovers of a
/// runner that was killed (pid gone) are removed first.
class testbed {
public:
  explicit testbed(std::string ip) : ip_(std::move(ip)) {
    prefix_ = "cmmh" + std::to_string(::getpid()) + "-";
    remove_stale();
    switch_ns_ = prefix_ + "sw";
    if (auto [rc, out] = sh(ip_ + " netns add " + switch_ns_); rc != 0) {
      skip_ = "cannot create a network namespace (`ip netns add` needs root "
              "or CAP_SYS_ADMIN): "
        + out;
      return;
    }
    created_.push_back(switch_ns_);
    must(ip_ + " -n " + switch_ns_ + " link add br0 type bridge");
    must(ip_ + " -n " + switch_ns_ + " link set br0 up");
    for (size_t i = 0; i < host_count; ++i) {
      auto ns = prefix_ + "h" + std::to_string(i);
      auto port = "p" + std::to_string(i);
      must(ip_ + " netns add " + ns);
      created_.push_back(ns);
      hosts_.push_back(ns);
      // Created directly in the two namespaces: never in ours.
      must(ip_ + " link add eth0 netns " + ns + " type veth peer name " + port
           + " netns " + switch_ns_);
      must(ip_ + " -n " + switch_ns_ + " link set " + port + " master br0");
      must(ip_ + " -n " + switch_ns_ + " link set " + port + " up");
      must(ip_ + " -n " + ns + " link set lo up");
      must(ip_ + " -n " + ns + " addr add " + host_ip(i) + "/16 dev eth0");
      must(ip_ + " -n " + ns + " link set eth0 up");
    }
  }

  ~testbed() {
    for (auto i = created_.rbegin(); i != created_.rend(); ++i)
      sh(ip_ + " netns del " + *i);
  }

  testbed(const testbed&) = delete;
  testbed& operator=(const testbed&) = delete;

  /// Why the test cannot run here (empty: it can).
  const std::string& skip_reason() const {
    return skip_;
  }

  /// The first command that failed, with its output (empty: none).
  const std::string& error() const {
    return error_;
  }

  const std::string& host(size_t i) const {
    return hosts_.at(i);
  }

  /// Takes host `i`'s switch port down (`up` false) or up again.
  bool set_link(size_t i, bool up) {
    return must(ip_ + " -n " + switch_ns_ + " link set p" + std::to_string(i)
                + (up ? " up" : " down"));
  }

private:
  bool must(const std::string& cmd) {
    if (!error_.empty())
      return false;
    auto [rc, out] = sh(cmd);
    if (rc != 0)
      error_ = "$ " + cmd + "\n" + out;
    return rc == 0;
  }

  void remove_stale() {
    auto [rc, out] = sh(ip_ + " netns list");
    if (rc != 0)
      return;
    std::istringstream in{out};
    std::string name;
    while (in >> name) {
      if (name.rfind("cmmh", 0) != 0)
        continue;
      auto dash = name.find('-');
      auto pid = std::atol(name.substr(4, dash - 4).c_str());
      if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH)
        sh(ip_ + " netns del " + name);
    }
  }

  std::string ip_;
  std::string prefix_;
  std::string switch_ns_;
  std::vector<std::string> hosts_;
  std::vector<std::string> created_;
  std::string skip_;
  std::string error_;
};

// -- nodes ------------------------------------------------------------------------

/// The `Threads:` line of `/proc/PID/status`.
size_t thread_count(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("Threads:", 0) == 0)
      return std::stoul(line.substr(8));
  return 0;
}

/// connmgr-node `i`, run inside host `i`'s namespace with JSON output.
class host_node : public node_process {
public:
  host_node(const std::string& ip, const testbed& bed, size_t i)
    : node_process(args(i), {ip, "netns", "exec", bed.host(i)}), index(i) {
    // nop
  }

  static std::vector<std::string> args(size_t i) {
    std::vector<std::string> later;
    for (auto j = i + 1; j < host_count; ++j)
      later.push_back(host_addr(j));
    auto ms = [](int64_t x) { return std::to_string(x) + "ms"; };
    return {opt("listen", list({host_addr(i)})),
            opt("connect", list(later)),
            opt("target-outbound", "0"),
            opt("retry-duration", ms(retry_ms)),
            opt("max-retry-duration", ms(max_retry_ms)),
            opt("dial-timeout", ms(dial_timeout_ms)),
            opt("handshake-timeout", "2s"),
            opt("ping-interval", ms(ping_ms)),
            opt("status-interval", "250ms")};
  }

  /// Waits for a status line with `ready` ready peers and no dial in flight.
  std::optional<std::string> wait_ready(size_t ready,
                                        clock_type::duration timeout) {
    return wait_for(
      [ready](const std::string& l) {
        return json_event(l) == "status"
          && json_int(l, "peers_ready") == static_cast<int64_t>(ready)
          && json_int(l, "pending_dials") == 0;
      },
      timeout);
  }

  size_t index;
  /// The request id of each permanent peer, by address.
  std::map<std::string, std::string> requests;
};

int64_t ts_of(const std::string& line) {
  return json_int(line, "ts").value_or(-1);
}

} // namespace

TEST_CASE("multihost: a cut link is redialed on the backoff schedule and "
          "healed within its bound, without leaks") {
  auto ip = tool("ip");
  if (::access(ip.c_str(), X_OK) != 0) {
    MESSAGE("multihost: skipped: no `ip` program (Debian package iproute2)");
    return;
  }
  testbed bed{ip};
  if (!bed.skip_reason().empty()) {
    MESSAGE("multihost: skipped: " << bed.skip_reason());
    return;
  }
  REQUIRE_MESSAGE(bed.error().empty(), bed.error());
  std::ostringstream report;

  // -- all four up, six connections ---------------------------------------
  // Declared after `bed`: the nodes die before their namespaces go.
  std::vector<std::unique_ptr<host_node>> nodes;
  for (size_t i = 0; i < host_count; ++i) {
    nodes.push_back(std::make_unique<host_node>(ip, bed, i));
    REQUIRE_MESSAGE(nodes.back()->ok(), nodes.back()->error());
  }
  for (auto& n : nodes) {
    n->boot();
    REQUIRE(n->addr == host_addr(n->index));
  }
  for (auto& n : nodes)
    REQUIRE_MESSAGE(n->wait_ready(host_count - 1, eventually),
                    "not every peer ready\n"
                      << n->tail(30));
  // Each node is ready with exactly the three others, by node id.
  for (auto& n : nodes) {
    std::set<std::string> want;
    for (auto& other : nodes)
      if (other != n)
        want.insert(other->id);
    std::set<std::string> got;
    for (auto& l : n->events("peer_ready"))
      got.insert(json_get(l, "peer_node").value_or(""));
    CHECK_MESSAGE(got == want, n->tail(30));
    for (auto& l : n->events("connected"))
      n->requests[json_get(l, "addr").value_or("")] =
        json_get(l, "id").value_or("");
  }
  // Every count is taken while every peer is ready and no dial is in flight.
  std::vector<size_t> fds_before;
  std::vector<size_t> threads_before;
  for (auto& n : nodes) {
    REQUIRE(n->wait_ready(host_count - 1, eventually));
    fds_before.push_back(connmgr::held_descriptor_count(n->pid()));
    threads_before.push_back(thread_count(n->pid()));
  }

  // -- cut host 1 ----------------------------------------------------------
  std::vector<size_t> cut_cursor;
  for (auto& n : nodes)
    cut_cursor.push_back(n->texts().size());
  REQUIRE_MESSAGE(bed.set_link(cut_host, false), bed.error());
  auto cut_ts = unix_ms();
  // The requests that lost their peer: (dialing node, address it dials).
  std::vector<std::pair<size_t, std::string>> cut_requests;
  for (size_t i = 0; i < host_count; ++i)
    for (auto j = i + 1; j < host_count; ++j)
      if (i == cut_host || j == cut_host)
        cut_requests.emplace_back(i, host_addr(j));
  // Everyone notices by the missing pongs: host 1 loses all three peers,
  // every other node exactly the one on host 1.
  for (auto& n : nodes) {
    auto lost = n->index == cut_host ? host_count - 1 : size_t{1};
    for (size_t k = 0; k < lost; ++k) {
      auto dropped = n->wait_for(event_is("peer_dropped"), eventually);
      REQUIRE_MESSAGE(dropped, n->tail(30));
      CHECK_MESSAGE(json_get(*dropped, "reason_code") == "ping_timeout",
                    *dropped);
      if (n->index != cut_host)
        CHECK_MESSAGE(json_get(*dropped, "addr")
                          .value_or("")
                          .rfind(host_ip(cut_host) + ":", 0)
                        == 0,
                      *dropped);
      // At most two ping periods, plus slack.
      CHECK_MESSAGE(ts_of(*dropped) - cut_ts <= 2 * ping_ms + slack_ms,
                    *dropped);
    }
    n->seek(cut_cursor[n->index]);
  }
  // Each cut request retries on its schedule while the link is down.
  std::map<std::pair<size_t, std::string>, std::vector<int64_t>> delays;
  std::map<std::pair<size_t, std::string>, std::vector<int64_t>> wanted;
  std::map<std::string, int> fail_codes;
  for (auto& [i, addr] : cut_requests) {
    auto& n = *nodes[i];
    auto id = n.requests[addr];
    CAPTURE(addr);
    REQUIRE(!id.empty());
    // Retries before the connection (e.g. the peer was not up yet).
    size_t before = 0;
    auto lines = n.texts();
    for (size_t k = 0; k < cut_cursor[i]; ++k)
      if (json_event(lines[k]) == "retry" && json_get(lines[k], "id") == id)
        ++before;
    auto& want = wanted[{i, addr}];
    for (size_t k = 1; k <= watched_retries; ++k)
      want.push_back(want_delay(before + k));
    n.seek(cut_cursor[i]);
    REQUIRE_MESSAGE(
      n.wait_for(event_with("disconnected", {{"id", id}}), eventually),
      n.tail(30));
    auto& got = delays[{i, addr}];
    for (size_t k = 0; k < watched_retries; ++k) {
      auto retry = n.wait_for(event_with("retry", {{"id", id}}), eventually);
      REQUIRE_MESSAGE(retry, n.tail(30));
      got.push_back(json_int(*retry, "delay_ms").value_or(-1));
      auto failed = n.wait_for(event_with("failed", {{"id", id}}), eventually);
      REQUIRE_MESSAGE(failed, n.tail(30));
      ++fail_codes[json_get(*failed, "reason_code").value_or("?")];
      // The dial starts after the delay, and fails by its deadline.
      auto gap = ts_of(*failed) - ts_of(*retry);
      CAPTURE(*retry);
      CAPTURE(*failed);
      CHECK(gap >= want[k] - 50);
      CHECK(gap <= want[k] + dial_timeout_ms + slack_ms);
    }
    CHECK_MESSAGE(got == want, n.tail(40));
  }
  // Nodes 0, 2 and 3 keep what they can: their other two peers.
  std::vector<size_t> fds_cut;
  for (auto& n : nodes) {
    auto want = n->index == cut_host ? size_t{0} : host_count - 2;
    n->seek(n->texts().size());
    auto st = n->wait_for(event_is("status"), eventually);
    REQUIRE_MESSAGE(st, n->tail());
    CHECK_MESSAGE(json_int(*st, "peers_ready") == static_cast<int64_t>(want),
                  *st);
    fds_cut.push_back(connmgr::held_descriptor_count(n->pid()));
    if (n->index == cut_host)
      continue;
    for (auto& name : {"peer_dropped", "peer_closed", "disconnected"})
      for (auto& l : events_of(*n, name, {}, cut_cursor[n->index]))
        CHECK_MESSAGE(
          json_get(l, "addr").value_or("").rfind(host_ip(cut_host) + ":", 0)
            == 0,
          "lost a peer not on the cut host: " << l);
  }

  // -- heal -----------------------------------------------------------------
  std::vector<size_t> heal_cursor;
  for (auto& n : nodes)
    heal_cursor.push_back(n->texts().size());
  REQUIRE_MESSAGE(bed.set_link(cut_host, true), bed.error());
  auto heal_ts = unix_ms();
  std::vector<int64_t> reconnect_ms;
  for (auto& [i, addr] : cut_requests) {
    auto& n = *nodes[i];
    n.seek(heal_cursor[i]);
    auto ready = n.wait_for(
      event_with("peer_ready", {{"id", n.requests[addr]}}), eventually);
    REQUIRE_MESSAGE(ready, n.tail(30));
    auto took = ts_of(*ready) - heal_ts;
    reconnect_ms.push_back(took);
    CAPTURE(addr);
    CHECK_MESSAGE(took <= reconnect_bound_ms, n.tail(30));
    report << "  node " << i << " -> " << addr << ": retry delays";
    for (auto d : delays[{i, addr}])
      report << " " << d;
    report << " ms (want";
    for (auto d : wanted[{i, addr}])
      report << " " << d;
    report << "); ready again " << took << " ms after the heal (bound "
           << reconnect_bound_ms << " ms)\n";
  }
  for (auto& n : nodes)
    REQUIRE_MESSAGE(n->wait_ready(host_count - 1, eventually),
                    "not every peer ready again\n"
                      << n->tail(30));

  // -- nothing leaked ---------------------------------------------------------
  for (auto& n : nodes) {
    auto i = n->index;
    // Counted again while every peer is ready and no dial is in flight.
    size_t fds = 0;
    size_t threads = 0;
    auto deadline = clock_type::now() + 10s;
    do {
      REQUIRE(n->wait_ready(host_count - 1, eventually));
      fds = connmgr::held_descriptor_count(n->pid());
      threads = thread_count(n->pid());
    } while ((fds != fds_before[i] || threads != threads_before[i])
             && clock_type::now() < deadline);
    CHECK_MESSAGE(fds == fds_before[i], "node " << i);
    CHECK_MESSAGE(threads == threads_before[i], "node " << i);
    report << "  node " << i << ": descriptors " << fds_before[i]
           << " before the cut, " << fds_cut[i] << " during it, " << fds
           << " after the heal; threads " << threads_before[i] << " / "
           << threads << "\n";
  }
  report << "  failed dials during the cut by reason:";
  for (auto& [code, count] : fail_codes)
    report << " " << code << " " << count;
  report << "\n";

  // -- stop: status 0 (each node checks its own descriptors) ------------------
  for (auto& n : nodes)
    n->signal(SIGTERM);
  for (auto& n : nodes)
    stop_ok(*n);
  MESSAGE("multihost figures:\n" << report.str());
}

#endif // CONNMGR_NODE_BINARY
