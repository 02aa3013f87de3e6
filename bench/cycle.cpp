// Scenario b: handler throughput without network.
//
// A dial function, called by the handler itself, answers every dial at once
// with an in-memory connection (make_memory_connection, or with
// --conn=socketpair one end of a fresh socketpair whose other end is
// closed). A driver actor, the handler's events actor, makes K manual
// requests (permanent or not) and waits until all K are connected (warm-up,
// not timed). Then every connected event is answered with
// disconnect(id, trigger_reconnect = !permanent), i.e. "disconnect with
// retry": the handler closes the connection, schedules a retry after
// retry_duration = 1 ns (stable_connection_period = 0 resets the backoff on
// every connect, so the delay stays 1 ns and has passed by the time the
// handler looks again), the retry redials, the dial function answers, and
// the next connected event arrives; all within the one disconnect message.
// The driver subscribes to the events it acts on (connected, failed); with
// --events=all it also gets disconnected and retry events. One cycle = one disconnect -> connected pair
// of one request; K requests cycle at once; the run ends after --cycles
// cycles in total. Cycles/s is cycles / wall time from the first disconnect
// to the last connected event; CPU is getrusage of the whole process over
// the same interval.

#include <future>
#include <memory>
#include <string>
#include <vector>

#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduled_actor.hpp>
#include <caf/send.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "bench/bench.hpp"
#include "bench/common.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/events.hpp"

namespace connmgr::bench {

namespace {

// The dial function answers every dial at once, as btcd's Dial does in the
// reference run: the handler calls it itself, no dialer actor in between.
dial_function instant_dial(bool use_socketpair) {
  return [use_socketpair](const std::string& address,
                          caf::timespan) -> caf::expected<connection_ptr> {
    if (!use_socketpair)
      return make_memory_connection(address);
    int sv[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv)
        != 0)
      die("socketpair failed");
    ::close(sv[1]);
    return std::make_shared<connection>(sv[0], address);
  };
}

struct cycle_run {
  conn_handler_actor handler;
  size_t k = 1;
  size_t cycles = 0;
  bool permanent = false;
  std::promise<void> done;
  // Written by the driver only; read by main after `done`.
  std::vector<uint64_t> ids;
  size_t warm = 0;
  size_t issued = 0;
  size_t completed = 0;
  size_t disconnected = 0;
  size_t failed = 0;
  size_t retries = 0;
  steady::time_point t0;
  steady::time_point t1;
  rusage ru0{};
  rusage ru1{};
  conn_stats stats;
};

caf::behavior cycle_driver(caf::event_based_actor* self,
                           std::shared_ptr<cycle_run> run) {
  self->set_default_handler(caf::drop);
  auto disconnect = [self, run](uint64_t id) {
    ++run->issued;
    self->send(run->handler, disconnect_atom::value, id, !run->permanent);
  };
  return {
    [self, run](start_atom) {
      for (size_t i = 0; i < run->k; ++i)
        self->send(run->handler, connect_atom::value, uint64_t{0},
                   "mem-" + std::to_string(i) + ":8333", run->permanent);
    },
    [](uint64_t) {
      // The id a connect answered with; the connected event carries it too.
    },
    [self, run, disconnect](connected_event& ev) {
      auto& r = *run;
      if (r.warm < r.k) {
        r.ids.push_back(ev.request.id);
        if (++r.warm == r.k) {
          perf_window(true);
          r.t0 = steady::now();
          r.ru0 = self_usage();
          for (auto id : r.ids)
            if (r.issued < r.cycles)
              disconnect(id);
        }
        return;
      }
      ++r.completed;
      if (r.issued < r.cycles)
        disconnect(ev.request.id);
      if (r.completed == r.cycles) {
        r.t1 = steady::now();
        r.ru1 = self_usage();
        perf_window(false);
        self->request(r.handler, caf::infinite, stop_atom::value)
          .then([run](conn_stats& st) {
            run->stats = st;
            run->done.set_value();
          });
      }
    },
    [run](disconnected_event&) { ++run->disconnected; },
    [run](failed_event&) { ++run->failed; },
    [run](retry_event&) { ++run->retries; },
    [](stopped_event&) {},
  };
}

} // namespace

int run_cycle(const options& o) {
  json_object out;
  measured_config cfg{o.caf_args};
  caf::actor_system sys{cfg};
  auto run = std::make_shared<cycle_run>();
  run->k = o.concurrency;
  run->cycles = o.cycles;
  run->permanent = o.permanent;
  auto done = run->done.get_future();
  auto driver = sys.spawn(cycle_driver, run);
  handler_setup setup;
  setup.dial = instant_dial(o.conn_kind == "socketpair");
  // The driver handles the events a cycle produces (no inbound ones).
  setup.events = caf::actor_cast<conn_events_actor>(driver);
  if (o.events == "needed") {
    setup.subscribe.disconnected = false;
    setup.subscribe.retry = false;
  }
  setup.config.target_outbound = 0;
  setup.config.retry_duration = std::chrono::nanoseconds{1};
  setup.config.max_retry_duration = std::chrono::nanoseconds{1};
  setup.config.stable_connection_period = caf::timespan{0};
  setup.config.max_pending_dials = static_cast<uint32_t>(o.concurrency);
  setup.config.reject_duplicate_addresses = false;
  // Up to 100 one-shot requests at once, past the default budget of 8.
  setup.config.max_manual.reset();
  auto handler = spawn_conn_handler(sys, setup);
  if (!handler)
    die(describe(handler.error()));
  run->handler = *handler;
  auto threads_before = thread_count();
  caf::anon_send(driver, start_atom::value);
  bool ok = done.wait_for(std::chrono::seconds{o.timeout_s})
    == std::future_status::ready;
  auto threads_during = thread_count();
  if (!ok) {
    out.add("mode", "cycle");
    out.add("concurrency", o.concurrency);
    out.add("permanent", o.permanent);
    out.add("ok", false);
    out.add("error", "timed out");
    out.print();
    std::fflush(stdout);
    ::_exit(1); // the actor system may be wedged: do not wait for it
  }
  auto ms = ms_between(run->t0, run->t1);
  auto cpu = cpu_us(run->ru1) - cpu_us(run->ru0);
  auto n = static_cast<double>(run->completed);
  out.add("mode", "cycle");
  out.add("concurrency", o.concurrency);
  out.add("permanent", o.permanent);
  out.add("conn", o.conn_kind);
  out.add("ok", run->completed == o.cycles && run->failed == 0);
  out.add("cycles", run->completed);
  out.add("ms", ms);
  out.add("cycles_per_s", n / (ms / 1000.0));
  out.add("cpu_us_total", cpu);
  out.add("cpu_us_per_cycle", cpu / n);
  out.add("ctx_switches_per_cycle",
          static_cast<double>(ctx_switches(run->ru1) - ctx_switches(run->ru0))
            / n);
  add_caf_fields(out, sys, o);
  out.add("events", o.events);
  out.add("disconnected_events", run->disconnected);
  out.add("retry_events", run->retries);
  out.add("failed_events", run->failed);
  out.add("dials_started", run->stats.dials_started);
  out.add("retries_scheduled", run->stats.retries_scheduled);
  out.add("disconnections", run->stats.disconnections);
  out.add("threads_before", threads_before);
  out.add("threads_during", threads_during);
  out.add("peak_rss_kb", peak_rss_kb());
  caf::anon_send_exit(driver, caf::exit_reason::user_shutdown);
  out.print();
  return 0;
}

} // namespace connmgr::bench
