// Scenario a (ramp), its raw baseline (raw-ramp) and the silent-peer check.

#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/manager.hpp"
#include "bench/bench.hpp"
#include "bench/common.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr::bench {

using namespace std::chrono_literals;

namespace {

/// Connections between two points of the ramp curve.
constexpr size_t curve_step = 100;

/// Everything the callbacks see, behind one mutex.
struct ramp_tally : held_connections {
  size_t target = 0;
  steady::time_point t0;
  /// ms since t0 of every curve_step-th connection.
  std::vector<double> curve;
  size_t failures = 0;
  std::map<std::string, size_t> failure_kinds;

  manager_callbacks callbacks() {
    manager_callbacks cb;
    cb.on_connection = [this](const conn_request&, connection_ptr c) {
      std::lock_guard<std::mutex> guard{mtx};
      conns.push_back(std::move(c));
      if (conns.size() % curve_step == 0)
        curve.push_back(ms_between(t0, steady::now()));
      if (conns.size() == target)
        reached_nth();
    };
    cb.on_failure = [this](const conn_request&, const caf::error& err) {
      std::lock_guard<std::mutex> guard{mtx};
      ++failures;
      ++failure_kinds[to_string(errc_of(err))];
    };
    return cb;
  }
};

/// The figures of the interval from the first connect to the N-th
/// connection, which ramp and raw-ramp both report.
void add_rate(json_object& out, size_t n, double ms, const rusage& ru0,
              const rusage& ru_nth) {
  auto cpu = cpu_us(ru_nth) - cpu_us(ru0);
  out.add("ms", ms);
  out.add("conn_per_s", static_cast<double>(n) / (ms / 1000.0));
  out.add("cpu_us_total", cpu);
  out.add("cpu_us_per_conn", cpu / static_cast<double>(n));
  out.add("ctx_switches_per_conn",
          static_cast<double>(ctx_switches(ru_nth) - ctx_switches(ru0))
            / static_cast<double>(n));
}

/// The threads of the process (at main, before the ramp, during the hold)
/// and the hold that they were counted after.
void add_threads(json_object& out, const options& o, long threads_before,
                 long threads_during) {
  out.add("threads_at_main", o.threads_at_main);
  out.add("threads_before", threads_before);
  out.add("threads_during", threads_during);
  out.add("settle_ms", o.settle_ms);
}

/// Connections over time: ms since the start of every curve_step-th one.
void add_curve(json_object& out, const std::vector<double>& curve) {
  out.add("curve_step", curve_step);
  out.add_list("curve_ms", curve);
}

/// A manager (not started) whose `n` automatic requests all dial `target`
/// through `dialer`, reporting to `tally`; dies on a setup error.
std::optional<manager> make_manager(caf::actor_system& sys, dialer_actor dialer,
                                    ramp_tally& tally, std::string target,
                                    size_t n, uint32_t max_pending,
                                    caf::timespan dial_timeout) {
  handler_setup setup;
  setup.dialer = std::move(dialer);
  setup.config.target_outbound = static_cast<uint32_t>(n);
  setup.config.reject_duplicate_addresses = false;
  setup.config.max_pending_dials = max_pending;
  setup.config.dial_timeout = dial_timeout;
  setup.get_address = [target =
                         std::move(target)]() -> caf::expected<std::string> {
    return target;
  };
  auto m = manager::make(sys, setup, tally.callbacks());
  if (!m)
    die(describe(m.error()));
  return std::move(*m);
}

} // namespace

// --- Scenario a: the manager ramps up to N --------------------------------

int run_ramp(const options& o) {
  raise_fd_limit();
  sink_process sink{o.sink_path};
  auto target = sink.address();
  json_object out;
  {
    measured_stack stack{o};
    ramp_tally tally;
    tally.target = o.n;
    tally.conns.reserve(o.n + 64);
    auto mgr = make_manager(stack.sys, stack.dialer, tally, target, o.n,
                            o.max_pending, manager_config{}.dial_timeout);
    std::this_thread::sleep_for(50ms);
    auto threads_before = thread_count();
    perf_window(true);
    auto ru0 = self_usage();
    auto t0 = steady::now();
    {
      std::lock_guard<std::mutex> guard{tally.mtx};
      tally.t0 = t0;
    }
    mgr->start();
    bool reached = tally.wait_for_nth(std::chrono::seconds{o.timeout_s});
    std::this_thread::sleep_for(std::chrono::milliseconds{o.settle_ms});
    auto threads_during = thread_count();
    auto st = mgr->stats();
    size_t connected;
    size_t failures;
    std::string kinds;
    steady::time_point t_nth;
    rusage ru_nth;
    std::vector<double> curve;
    {
      std::lock_guard<std::mutex> guard{tally.mtx};
      connected = tally.conns.size();
      failures = tally.failures;
      kinds = join_kinds(tally.failure_kinds);
      tally.end_of_interval(reached, t_nth, ru_nth);
      curve = tally.curve;
    }
    auto peak = peak_rss_kb();
    auto t_stop = steady::now();
    mgr->stop().wait();
    auto stop_ms = ms_between(t_stop, steady::now());
    mgr.reset();
    tally.reset_all();
    stack.stop();

    out.add("mode", "ramp");
    out.add("n", o.n);
    out.add("ok", reached && connected == o.n);
    out.add("max_pending_dials", o.max_pending);
    add_rate(out, o.n, ms_between(t0, t_nth), ru0, ru_nth);
    add_caf_fields(out, stack.sys, o);
    out.add("dial_errors", failures);
    out.add("dial_error_kinds", kinds);
    out.add("connected", connected);
    out.add("extra_connections", connected > o.n ? connected - o.n : size_t{0});
    out.add("dials_started", st.dials_started);
    out.add("outbound_established", st.outbound_established);
    out.add("peak_rss_kb", peak);
    add_threads(out, o, threads_before, threads_during);
    out.add("stop_ms", stop_ms);
    add_curve(out, curve);
  }
  sink.proc.stop();
  out.print();
  return 0;
}

// --- Scenario e (for a): a plain epoll connect loop -----------------------

int run_raw_ramp(const options& o) {
  raise_fd_limit();
  sink_process sink{o.sink_path};
  auto sa = loopback(sink.port);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1 failed");
  std::vector<int> held;
  held.reserve(o.n);
  std::vector<double> curve;
  size_t started = 0;
  size_t in_flight = 0;
  size_t errors = 0;
  std::map<std::string, size_t> error_kinds;
  auto fail = [&](int fd, int err) {
    ++errors;
    ++error_kinds[std::strerror(err)];
    ::close(fd);
  };
  auto threads_before = thread_count();
  perf_window(true);
  auto ru0 = self_usage();
  auto t0 = steady::now();
  auto hold = [&](int fd) {
    held.push_back(fd);
    if (held.size() % curve_step == 0)
      curve.push_back(ms_between(t0, steady::now()));
  };
  auto give_up = t0 + std::chrono::seconds{o.timeout_s};
  std::vector<epoll_event> events(1024);
  steady::time_point t_nth{};
  rusage ru_nth{};
  bool reached = false;
  // Keep starting connects until N succeeded (failed ones are replaced, as
  // the manager replaces a failed automatic request).
  while (held.size() < o.n && steady::now() < give_up) {
    while (held.size() + in_flight < o.n
           && (o.window == 0 || in_flight < o.window)) {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0)
        die(std::string{"socket: "} + std::strerror(errno));
      ++started;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
        hold(fd);
        continue;
      }
      if (errno != EINPROGRESS) {
        fail(fd, errno);
        continue;
      }
      epoll_event ev{};
      ev.events = EPOLLOUT;
      ev.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
      ++in_flight;
    }
    if (in_flight == 0)
      continue;
    int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
    for (int i = 0; i < k; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      --in_flight;
      if (err == 0)
        hold(fd);
      else
        fail(fd, err);
    }
  }
  reached = held.size() >= o.n;
  t_nth = steady::now();
  ru_nth = self_usage();
  perf_window(false);
  std::this_thread::sleep_for(std::chrono::milliseconds{o.settle_ms});
  auto threads_during = thread_count();
  auto peak = peak_rss_kb();
  auto connected = held.size();
  for (int fd : held)
    reset_and_close(fd);
  ::close(ep);
  sink.proc.stop();
  json_object out;
  out.add("mode", "raw-ramp");
  out.add("n", o.n);
  out.add("ok", reached && connected == o.n);
  out.add("window", o.window);
  add_rate(out, o.n, ms_between(t0, t_nth), ru0, ru_nth);
  out.add("dial_errors", errors);
  out.add("dial_error_kinds", join_kinds(error_kinds));
  out.add("connected", connected);
  out.add("extra_connections", size_t{0});
  out.add("connects_started", started);
  out.add("peak_rss_kb", peak);
  add_threads(out, o, threads_before, threads_during);
  add_curve(out, curve);
  out.print();
  return 0;
}

// --- Silent peer: many dials in flight ------------------------------------

namespace {

/// A loopback listener with backlog 0 nobody accepts from, its accept queue
/// filled: the kernel then drops every SYN to it, so dials hang until their
/// deadline (the same trick as tests/tcp_test.cpp).
struct silent_peer {
  int listener = -1;
  std::vector<int> fillers;
  uint16_t port = 0;

  silent_peer() {
    auto sa = loopback(0);
    listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener < 0
        || ::bind(listener, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0
        || ::listen(listener, 0) != 0)
      die(std::string{"silent peer: "} + std::strerror(errno));
    socklen_t len = sizeof(sa);
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&sa), &len);
    port = ntohs(sa.sin_port);
    for (int i = 0; i < 16; ++i) {
      int c = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      ::connect(c, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
      fillers.push_back(c);
      pollfd p{c, POLLOUT, 0};
      if (::poll(&p, 1, 500) == 0)
        return; // this one hangs: the queue is full
    }
    die("could not fill the accept queue of the silent peer");
  }

  ~silent_peer() {
    for (auto fd : fillers)
      ::close(fd);
    ::close(listener);
  }
};

} // namespace

int run_silent(const options& o) {
  raise_fd_limit();
  silent_peer peer;
  auto target = "127.0.0.1:" + std::to_string(peer.port);
  json_object out;
  measured_stack stack{o};
  auto& io = stack.io;
  ramp_tally tally; // counts failures; nothing should connect
  tally.target = o.n;
  auto mgr = make_manager(stack.sys, stack.dialer, tally, target, o.n,
                          static_cast<uint32_t>(o.n), std::chrono::minutes{10});
  // Let the freshly spawned actors and threads settle before the baseline.
  std::this_thread::sleep_for(100ms);
  auto threads_before = thread_count();
  auto rss_before = current_rss_kb();
  auto fds_before = open_fd_count();
  auto t0 = steady::now();
  mgr->start();
  auto want = o.n - o.n / 100; // ~N: 99 %
  auto give_up = t0 + std::chrono::seconds{o.timeout_s};
  uint64_t pending = 0;
  while ((pending = io->stats().pending_connects) < want
         && steady::now() < give_up)
    std::this_thread::sleep_for(5ms);
  auto ramp_ms = ms_between(t0, steady::now());
  // Give the last few a moment, then measure with everything in flight.
  std::this_thread::sleep_for(200ms);
  pending = io->stats().pending_connects;
  auto threads_during = thread_count();
  auto rss_during = current_rss_kb();
  auto fds_during = open_fd_count();
  auto st = mgr->stats();
  auto t_stop = steady::now();
  mgr->stop().wait();
  auto stop_ms = ms_between(t_stop, steady::now());
  auto fds_after = open_fd_count();
  auto pending_after = io->stats().pending_connects;
  size_t failures;
  size_t connected;
  {
    std::lock_guard<std::mutex> guard{tally.mtx};
    failures = tally.failures;
    connected = tally.conns.size();
  }
  mgr.reset();
  stack.stop();

  out.add("mode", "silent");
  out.add("n", o.n);
  out.add("ok",
          pending >= want && fds_after == fds_before && pending_after == 0);
  out.add("pending_connects", pending);
  add_caf_fields(out, stack.sys, o);
  out.add("ramp_ms", ramp_ms);
  out.add("dials_in_flight", st.dials_in_flight);
  out.add("threads_at_main", o.threads_at_main);
  out.add("threads_before", threads_before);
  out.add("threads_during", threads_during);
  out.add("rss_kb_before", rss_before);
  out.add("rss_kb_during", rss_during);
  out.add("bytes_per_dial",
          pending > 0 ? static_cast<double>(rss_during - rss_before) * 1024.0
              / static_cast<double>(pending)
                      : 0.0);
  out.add("fds_before", fds_before);
  out.add("fds_during", fds_during);
  out.add("fds_after_stop", fds_after);
  out.add("fds_back_to_baseline", fds_after == fds_before);
  out.add("pending_after_stop", pending_after);
  out.add("stop_ms", stop_ms);
  out.add("failures_reported", failures);
  out.add("connected", connected);
  out.add("peak_rss_kb", peak_rss_kb());
  out.print();
  return 0;
}

} // namespace connmgr::bench
