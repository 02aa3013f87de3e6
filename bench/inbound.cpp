// Scenario c (inbound accept) and its raw baseline.
//
// The server (this process) listens on 127.0.0.1:0; a load process
// (connmgr-bench-load, a child) with --workers connect loops over
// --load-threads OS threads opens N connections to it. "hold" keeps every accepted connection, "close" closes each at
// once. Time runs from the "go" sent to the load process to the N-th
// accepted connection; CPU is getrusage(RUSAGE_SELF) of the server over the
// same interval (the load process is not counted).
//
// The load spreads its connections over $CONNMGR_BENCH_C_SOURCES distinct
// loopback source addresses (default 2500; 0 = all from 127.0.0.1), for both
// servers. With $CONNMGR_BENCH_C_ADMISSION=1 (default) ours runs with inbound
// admission on, as a public node would: the library's per-IP cap (4), rate
// (1/s, burst 10), pending cap ($CONNMGR_BENCH_C_MAX_PENDING_INBOUND, default
// 1024, see `c_knobs`) and eviction, and max_inbound = N (so the slot limit
// itself never refuses); in "hold" the server reports each connection ready
// at once (an application would after its handshake), in "close" it closes
// it before any handshake. With 0, every admission rule is off (unlimited
// max_inbound, no per-IP cap, rate or pending cap). With
// $CONNMGR_BENCH_C_GATE=1 (default 0) ours also runs with a gate function
// (`handler_setup::gate.accept`) that allows every connection: the cost of
// asking a gate, with the local address it is given. With
// $CONNMGR_BENCH_C_BANS=K (default 0) ours holds K bans of single addresses
// in 198.18.0.0/15 (none of the load's sources) before the load starts:
// every accept is then looked up in a list of K. The raw accept loop
// admits everything: that is the comparison.

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>
#include <vector>

#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/manager.hpp"
#include "connmgr/actors/tcp_acceptor.hpp"
#include "bench/bench.hpp"
#include "bench/common.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr::bench {

using namespace std::chrono_literals;

namespace {

/// Listen backlog of both servers: --backlog, or by default the system's
/// maximum (net.core.somaxconn), as Go's net.Listen uses. A load process
/// whose connects complete faster than the server accepts fills the accept
/// queue; an overflow drops the handshake and costs a 1 s retransmission.
int backlog_of(const options& o) {
  if (o.backlog > 0)
    return o.backlog;
  std::ifstream in{"/proc/sys/net/core/somaxconn"};
  int v = 0;
  if (in >> v && v > 0)
    return v;
  return 4096;
}

/// TcpExt ListenOverflows of /proc/net/netstat: system-wide, so only a hint
/// when other programs are busy on this machine.
long listen_overflows() {
  std::ifstream in{"/proc/net/netstat"};
  std::string names;
  std::string values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("TcpExt:", 0) != 0)
      continue;
    std::istringstream n{names};
    std::istringstream v{values};
    std::string name;
    std::string value;
    while (n >> name && v >> value)
      if (name == "ListenOverflows")
        return std::strtol(value.c_str(), nullptr, 10);
  }
  return -1;
}

/// What the load process reported: "done <ms> <connected> <errors>".
struct load_result {
  double ms = 0;
  size_t connected = 0;
  size_t errors = 0;
};

/// The figures around the measured interval that both servers report: the
/// threads of this process and the accept queue overflows.
struct server_watch {
  long threads_before = 0;
  long threads_during = 0;
  long overflows_before = 0;
  long overflows = 0;

  void before() {
    threads_before = thread_count();
    overflows_before = listen_overflows();
  }

  /// Also reads the load process's result if it made all N connections.
  load_result after(child_process& load, const options& o, bool reached) {
    threads_during = thread_count();
    overflows = listen_overflows() - overflows_before;
    load_result lr;
    if (reached)
      parse_done(
        load.read_line(std::chrono::seconds{o.timeout_s}, "the load process"),
        lr.ms, lr.connected, lr.errors);
    return lr;
  }
};

/// Scenario c's settings from the environment (bench/run sets them).
struct c_knobs {
  bool admission = true;
  size_t sources = 2500;
  /// max_pending_inbound of ours with admission on. Not the library's 32:
  /// a connection counts as pending from its admission until the handler
  /// has processed its ready report, and at this arrival rate (~30 000/s,
  /// accept batches of up to 64) hundreds of reports are still queued behind
  /// new arrivals, so a cap of 32 (or 128) evicts most of the connections
  /// of "hold" as slow handshakes although each was reported ready at once.
  uint32_t max_pending_inbound = 1024;
  /// An allow-all gate function on every inbound connection.
  bool gate = false;
  /// Bans held during the run.
  size_t bans = 0;
};

c_knobs knobs_of(const options& o) {
  c_knobs k;
  k.admission = env_num("CONNMGR_BENCH_C_ADMISSION", 1, 0) != 0;
  k.gate = env_num("CONNMGR_BENCH_C_GATE", 0, 0) != 0;
  k.bans = static_cast<size_t>(env_num("CONNMGR_BENCH_C_BANS", 0, 0));
  if (k.bans > 131072)
    die("$CONNMGR_BENCH_C_BANS must be at most 131072 (198.18.0.0/15)");
  k.sources = static_cast<size_t>(
    env_num("CONNMGR_BENCH_C_SOURCES", static_cast<long>(k.sources), 0));
  k.max_pending_inbound = static_cast<uint32_t>(
    env_num("CONNMGR_BENCH_C_MAX_PENDING_INBOUND", k.max_pending_inbound, 1));
  if (k.sources > max_loopback_sources)
    die("$CONNMGR_BENCH_C_SOURCES must be at most "
        + std::to_string(max_loopback_sources));
  // Each source opens ceil(N / S) connections: they must fit its per-IP cap
  // and its rate burst, or admission (rightly) refuses part of the load.
  if (k.admission) {
    manager_config defaults;
    auto per_source = k.sources == 0 ? o.n : (o.n + k.sources - 1) / k.sources;
    if (per_source > defaults.max_inbound_per_ip.value_or(o.n)
        || static_cast<double>(per_source) > defaults.inbound_burst_per_ip)
      die("scenario c with admission: " + std::to_string(per_source)
          + " connections per source exceed the per-IP cap or burst; raise "
            "$CONNMGR_BENCH_C_SOURCES");
  }
  return k;
}

std::vector<std::string> load_args(const options& o, const c_knobs& k,
                                   uint16_t port) {
  return {"--port=" + std::to_string(port), "--n=" + std::to_string(o.n),
          "--workers=" + std::to_string(o.workers),
          "--threads=" + std::to_string(o.load_threads),
          "--sources=" + std::to_string(k.sources)};
}

void add_common(json_object& out, const options& o, const c_knobs& k,
                const char* mode, bool ok, double ms, const rusage& ru0,
                const rusage& ru_nth, size_t accepted, const load_result& lr,
                const server_watch& w, int backlog) {
  auto cpu = cpu_us(ru_nth) - cpu_us(ru0);
  out.add("mode", mode);
  out.add("n", o.n);
  out.add("action", o.accept_action);
  out.add("workers", o.workers);
  out.add("load_threads", o.load_threads);
  out.add("backlog", backlog);
  out.add("sources", k.sources);
  out.add("ok", ok);
  out.add("ms", ms);
  out.add("accepted_per_s", static_cast<double>(accepted) / (ms / 1000.0));
  out.add("cpu_us_total", cpu);
  out.add("cpu_us_per_conn", cpu / static_cast<double>(accepted));
  out.add("accepted", accepted);
  out.add("load_ms", lr.ms);
  out.add("load_connected", lr.connected);
  out.add("load_errors", lr.errors);
  out.add("threads_before", w.threads_before);
  out.add("threads_during", w.threads_during);
  out.add("peak_rss_kb", peak_rss_kb());
  out.add("listen_overflows", w.overflows);
}

/// Context switches per accepted connection over the measured interval.
void add_ctx_switches(json_object& out, const rusage& ru0, const rusage& ru_nth,
                      size_t accepted) {
  out.add("ctx_switches_per_conn",
          static_cast<double>(ctx_switches(ru_nth) - ctx_switches(ru0))
            / static_cast<double>(accepted));
}

} // namespace

int run_accept(const options& o) {
  raise_fd_limit();
  auto knobs = knobs_of(o);
  bool hold = o.accept_action == "hold";
  json_object out;
  measured_stack stack{o};
  auto where = net_address::parse("127.0.0.1:0", true);
  if (!where)
    die(describe(where.error()));
  auto backlog = backlog_of(o);
  auto listener = spawn_tcp_acceptor(stack.sys, stack.io, *where, backlog);
  if (!listener)
    die(describe(listener.error()));

  held_connections held;
  held.conns.reserve(o.n + 64);
  size_t accepted = 0;
  std::optional<manager> mgr;
  manager_callbacks cb;
  cb.on_inbound = [&](uint32_t, uint64_t slot, connection_ptr c) {
    std::lock_guard<std::mutex> guard{held.mtx};
    if (hold) {
      held.conns.push_back(std::move(c));
      if (knobs.admission)
        mgr->inbound_ready(slot);
    } else {
      c->close();
    }
    if (++accepted == o.n)
      held.reached_nth();
  };
  // The setup's ban events, counted so the window starts after the last:
  // their delivery is no part of the per-connection cost.
  std::atomic<size_t> bans_heard{0};
  cb.on_ban = [&bans_heard](const std::string&, const std::string&,
                            caf::timespan, uint64_t) { ++bans_heard; };
  handler_setup setup;
  setup.dialer = stack.dialer;
  setup.listeners.push_back(listener->acceptor);
  setup.config.target_outbound = 0;
  auto& mc = setup.config;
  if (knobs.admission) {
    // The library's admission defaults, but room for every connection.
    mc.max_inbound = static_cast<uint32_t>(o.n);
    mc.max_pending_inbound = knobs.max_pending_inbound;
  } else {
    mc.max_inbound.reset();
    mc.max_inbound_per_ip.reset();
    mc.max_inbound_per_netgroup.reset();
    mc.max_pending_inbound.reset();
    mc.inbound_rate_per_ip.reset();
    mc.evict_inbound = false;
  }
  size_t gate_calls = 0;
  if (knobs.gate)
    // Runs on the handler, one connection at a time: no lock needed.
    setup.gate.accept = [&gate_calls](const std::string&, const std::string&) {
      ++gate_calls;
      return gate_verdict::allow();
    };
  {
    auto m = manager::make(stack.sys, setup, cb);
    if (!m)
      die(describe(m.error()));
    mgr.emplace(std::move(*m));
  }
  mgr->start();
  for (size_t i = 0; i < knobs.bans; ++i) {
    auto host = "198." + std::to_string(18 + i / 65536) + "."
      + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256);
    if (auto banned = mgr->ban(host, std::chrono::hours{1}, "bench"); !banned)
      die(describe(banned.error()));
  }
  for (int i = 0; bans_heard < knobs.bans; ++i) {
    if (i == 10000)
      die("the ban events of the setup did not arrive within 10 s");
    std::this_thread::sleep_for(1ms);
  }
  child_process load{o.load_path, load_args(o, knobs, listener->bound.port())};
  load.read_line(10s, "the load process");
  std::this_thread::sleep_for(50ms); // the listener is served by now
  server_watch watch;
  watch.before();
  perf_window(true);
  auto ru0 = self_usage();
  auto t0 = steady::now();
  load.write_line("go");
  bool reached = held.wait_for_nth(std::chrono::seconds{o.timeout_s});
  auto lr = watch.after(load, o, reached);
  auto st = mgr->stats();
  steady::time_point t_nth;
  rusage ru_nth;
  size_t n_accepted;
  {
    std::lock_guard<std::mutex> guard{held.mtx};
    held.end_of_interval(reached, t_nth, ru_nth);
    n_accepted = accepted;
  }
  // The load process resets its ends: nothing lingers in TIME_WAIT.
  load.stop();
  mgr->stop().wait();
  mgr.reset();
  held.reset_all();
  stack.stop();
  // Every connection admitted and none evicted: else admission refused or
  // dropped part of the load and the figure would not be comparable.
  bool all_in = st.inbound_rejected == 0 && (!hold || st.inbound_evicted == 0);
  add_common(out, o, knobs, "accept", reached && n_accepted == o.n && all_in,
             ms_between(t0, t_nth), ru0, ru_nth, n_accepted, lr, watch,
             backlog);
  out.add("admission", knobs.admission);
  out.add("gate", knobs.gate);
  out.add("gate_calls", gate_calls);
  out.add("bans", knobs.bans);
  out.add("max_inbound", static_cast<long>(mc.max_inbound.value_or(0)));
  out.add("max_inbound_per_ip",
          static_cast<long>(mc.max_inbound_per_ip.value_or(0)));
  out.add("max_pending_inbound",
          static_cast<long>(mc.max_pending_inbound.value_or(0)));
  out.add("inbound_rate_per_ip", mc.inbound_rate_per_ip.value_or(0.0));
  out.add("inbound_burst_per_ip",
          mc.inbound_rate_per_ip ? mc.inbound_burst_per_ip : 0.0);
  add_ctx_switches(out, ru0, ru_nth, n_accepted);
  add_caf_fields(out, stack.sys, o);
  out.add("inbound_accepted", st.inbound_accepted);
  out.add("inbound_rejected", st.inbound_rejected);
  out.add("inbound_evicted", st.inbound_evicted);
  out.print();
  return 0;
}

int run_raw_accept(const options& o) {
  raise_fd_limit();
  auto knobs = knobs_of(o);
  bool hold = o.accept_action == "hold";
  auto sa = loopback(0);
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0
      || ::listen(lfd, backlog_of(o)) != 0)
    die(std::string{"raw-accept listener: "} + std::strerror(errno));
  socklen_t len = sizeof(sa);
  ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = lfd;
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  std::vector<int> held;
  held.reserve(o.n);
  size_t accepted = 0;
  size_t accept_errors = 0;
  child_process load{o.load_path, load_args(o, knobs, ntohs(sa.sin_port))};
  load.read_line(10s, "the load process");
  server_watch watch;
  watch.before();
  auto ru0 = self_usage();
  auto t0 = steady::now();
  load.write_line("go");
  auto give_up = t0 + std::chrono::seconds{o.timeout_s};
  epoll_event events[64];
  while (accepted < o.n && steady::now() < give_up) {
    int k = epoll_wait(ep, events, 64, 100);
    for (int i = 0; i < k; ++i) {
      for (;;) {
        int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
          if (errno == EINTR || errno == ECONNABORTED)
            continue;
          if (errno != EAGAIN && errno != EWOULDBLOCK)
            ++accept_errors;
          break;
        }
        ++accepted;
        if (hold)
          held.push_back(c);
        else
          ::close(c);
      }
    }
  }
  auto t_nth = steady::now();
  auto ru_nth = self_usage();
  bool reached = accepted >= o.n;
  auto lr = watch.after(load, o, reached);
  load.stop();
  for (int fd : held)
    reset_and_close(fd);
  ::close(ep);
  ::close(lfd);
  json_object out;
  add_common(out, o, knobs, "raw-accept", reached && accepted == o.n,
             ms_between(t0, t_nth), ru0, ru_nth, accepted, lr, watch,
             backlog_of(o));
  add_ctx_switches(out, ru0, ru_nth, accepted);
  out.add("accept_errors", accept_errors);
  // Raw does no admission: this is the mode of the ours runs it pairs with.
  out.add("paired_with_admission", knobs.admission);
  out.print();
  return 0;
}

} // namespace connmgr::bench
