// connmgr-bench: benchmarks of the connection manager on loopback, following
// docs/bench-protocol.md. Each run prints one JSON object on
// stdout; bench/run runs the standard set and makes the tables and the plot.
//
//   --mode=ramp --n=N        scenario a: the manager (real reactor + TCP
//                            dialer) fills target_outbound = N against a sink
//                            in a child process (also d: its peak RSS, and the
//                            held-10k scale check: its thread counts).
//   --mode=raw-ramp --n=N    scenario e for a: N non-blocking connects to the
//                            same kind of sink in a plain epoll loop.
//   --mode=silent --n=N      N dials in flight against a silent peer: threads,
//                            memory per dial, stop latency, descriptors.
//   --mode=cycle             scenario b: connected -> disconnect(retry) ->
//                            reconnect cycles against an instant in-memory
//                            dialer (--concurrency, --cycles, --permanent).
//   --mode=accept --n=N      scenario c: the manager listens; a load process
//                            (connmgr-bench-load) opens N connections with
//                            --workers connect loops over --load-threads OS
//                            threads (50 over 2); --action=hold|close.
//   --mode=raw-accept --n=N  scenario e for c: a plain epoll accept loop.
//
// Other options: --max-pending=K (ramp, default 1024), --window=W (raw-ramp,
// default 0 = all at once), --settle-ms=M (default 500), --timeout-s=S
// (default 60), --conn=memory|socketpair (cycle), --events=needed|all
// (cycle: the driver subscribes only to connected and failed events, or to
// disconnected and retry events too), --backlog=B (accept and
// raw-accept, default net.core.somaxconn), --sink=PATH, --load=PATH.
// Any --KEY=VALUE whose KEY has a dot is a CAF option for the measured actor
// system (ramp, silent, cycle, accept), e.g. --scheduler.max-threads=2 or
// --work-stealing.moderate-poll-attempts=0; bench/run passes $CAF_OPTS.

#include <csignal>
#include <string>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/settings.hpp>

#include "bench/bench.hpp"
#include "bench/common.hpp"
#include "connmgr/actors/tcp_dialer.hpp"
#include "connmgr/net/resolver.hpp"

namespace connmgr::bench {

measured_stack::measured_stack(const options& o)
  : cfg(o.caf_args), sys(cfg), io(start_reactor()),
    names(std::make_shared<resolver>(1)),
    dialer(spawn_tcp_dialer(sys, io, names)) {}

void measured_stack::stop() {
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  io->stop();
}

bool held_connections::wait_for_nth(std::chrono::seconds timeout) {
  std::unique_lock<std::mutex> guard{mtx};
  return cv.wait_for(guard, timeout, [this] { return nth_at.has_value(); });
}

void held_connections::end_of_interval(bool reached, steady::time_point& t,
                                       rusage& ru) const {
  t = nth_at.value_or(steady::now());
  ru = reached ? nth_usage : self_usage();
}

void held_connections::reset_all() {
  std::lock_guard<std::mutex> guard{mtx};
  for (auto& c : conns)
    if (auto fd = c->native_handle(); fd >= 0)
      abort_on_close(fd);
  conns.clear();
}

void add_caf_fields(json_object& out, caf::actor_system& sys,
                    const options& o) {
  out.add("caf", joined(o.caf_args));
  out.add("caf_policy",
          to_string(caf::get_or(sys.config(), "scheduler.policy",
                                caf::atom("stealing"))));
  out.add("caf_workers", sys.scheduler().num_workers());
}

} // namespace connmgr::bench

using namespace connmgr::bench;

namespace {

options parse_args(int argc, char** argv) {
  options o;
  option_table opts;
  opts.text("mode", o.mode);
  opts.number("n", o.n, 1);
  opts.number("max-pending", o.max_pending, 1);
  opts.number("window", o.window, 0);
  opts.number("settle-ms", o.settle_ms, 0);
  opts.number("timeout-s", o.timeout_s, 1);
  opts.text("sink", o.sink_path);
  opts.text("load", o.load_path);
  opts.number("concurrency", o.concurrency, 1);
  opts.number("cycles", o.cycles, 1);
  opts.number("permanent", o.permanent, 0);
  opts.choice("conn", o.conn_kind, {"memory", "socketpair"});
  opts.choice("events", o.events, {"needed", "all"});
  opts.choice("action", o.accept_action, {"hold", "close"});
  opts.number("backlog", o.backlog, 0);
  opts.number("load-threads", o.load_threads, 1);
  opts.number("workers", o.workers, 1);
  opts.caf_options(o.caf_args);
  opts.parse(argc, argv);
  if (o.sink_path.empty())
    o.sink_path = sibling_program("connmgr-bench-sink");
  if (o.load_path.empty())
    o.load_path = sibling_program("connmgr-bench-load");
  return o;
}

/// Each mode and the function that runs it.
const std::pair<const char*, int (*)(const options&)> modes[] = {
  {"ramp", run_ramp},     {"raw-ramp", run_raw_ramp},
  {"silent", run_silent}, {"cycle", run_cycle},
  {"accept", run_accept}, {"raw-accept", run_raw_accept},
};

} // namespace

int main(int argc, char** argv) {
  auto threads_at_main = thread_count();
  std::signal(SIGPIPE, SIG_IGN);
  auto o = parse_args(argc, argv);
  o.threads_at_main = threads_at_main;
  for (auto& [name, run] : modes)
    if (o.mode == name)
      return run(o);
  die("--mode must be ramp, raw-ramp, silent, cycle, accept or raw-accept");
}
