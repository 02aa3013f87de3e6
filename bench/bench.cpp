// connmgr-bench: outbound benchmarks of the connection manager on loopback,
// following /work/shared/docs/bench-protocol.md. Each run prints one JSON
// object on stdout; bench/run runs the standard set and makes the table.
//
//   --mode=ramp --n=N       scenario a: the manager (real reactor + TCP
//                           dialer) fills target_outbound = N against a sink
//                           in a child process.
//   --mode=raw-ramp --n=N   scenario e for a: N non-blocking connects to the
//                           same kind of sink in a plain epoll loop.
//   --mode=silent --n=N     N dials in flight against a silent peer: threads,
//                           memory per dial, stop latency, descriptors.
//
// Options: --max-pending=K (ramp: max_pending_dials, default 1024),
// --window=W (raw-ramp: connects in flight at once, 0 = all, default 0),
// --settle-ms=M (ramp/raw-ramp: wait after the N-th connection before
// counting extras, default 500), --timeout-s=S (give up, default 60),
// --sink=PATH (default: connmgr-bench-sink next to this binary).

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <fmt/format.h>

#include "actors/manager.hpp"
#include "actors/tcp_dialer.hpp"
#include "messages/error_code.hpp"
#include "net/net_address.hpp"
#include "net/reactor.hpp"
#include "net/resolver.hpp"
#include "net/socket_ops.hpp"

using namespace connmgr;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

// --- Small helpers --------------------------------------------------------

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "connmgr-bench: %s\n", msg.c_str());
  std::exit(1);
}

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// User + system CPU of the whole process, in microseconds.
double cpu_us(const rusage& ru) {
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

rusage self_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru;
}

/// Peak resident set size so far, in kB (ru_maxrss).
long peak_rss_kb() {
  return self_usage().ru_maxrss;
}

/// Current resident set size from /proc/self/status (VmRSS), in kB.
long current_rss_kb() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

/// Threads of this process: entries of /proc/self/task.
long thread_count() {
  long n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (auto* e = ::readdir(d))
      if (e->d_name[0] != '.')
        ++n;
    ::closedir(d);
  }
  return n;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out + "\"";
}

/// Builds one flat JSON object in insertion order.
struct json_object {
  std::vector<std::pair<std::string, std::string>> fields;

  template <class T>
  void add(const std::string& key, T value) {
    if constexpr (std::is_same_v<T, bool>)
      fields.emplace_back(key, value ? "true" : "false");
    else if constexpr (std::is_floating_point_v<T>)
      fields.emplace_back(key, fmt::format("{:.3f}", value));
    else if constexpr (std::is_integral_v<T>)
      fields.emplace_back(key, std::to_string(value));
    else
      fields.emplace_back(key, json_str(std::string{value}));
  }

  void print() const {
    std::string out = "{";
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i > 0)
        out += ", ";
      out += json_str(fields[i].first) + ": " + fields[i].second;
    }
    out += "}\n";
    std::fputs(out.c_str(), stdout);
    std::fflush(stdout);
  }
};

struct options {
  std::string mode;
  size_t n = 1000;
  uint32_t max_pending = 1024;
  size_t window = 0;
  long settle_ms = 500;
  long timeout_s = 60;
  std::string sink_path;
};

options parse_args(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos)
      die("bad argument '" + a + "', expected --key=value");
    auto key = a.substr(2, eq - 2);
    auto val = a.substr(eq + 1);
    auto num = [&](long lo) {
      char* end = nullptr;
      errno = 0;
      auto v = std::strtol(val.c_str(), &end, 10);
      if (errno != 0 || end == val.c_str() || *end != '\0' || v < lo)
        die("bad value for --" + key + ": '" + val + "'");
      return v;
    };
    if (key == "mode")
      o.mode = val;
    else if (key == "n")
      o.n = static_cast<size_t>(num(1));
    else if (key == "max-pending")
      o.max_pending = static_cast<uint32_t>(num(1));
    else if (key == "window")
      o.window = static_cast<size_t>(num(0));
    else if (key == "settle-ms")
      o.settle_ms = num(0);
    else if (key == "timeout-s")
      o.timeout_s = num(1);
    else if (key == "sink")
      o.sink_path = val;
    else
      die("unknown option --" + key);
  }
  if (o.sink_path.empty()) {
    char buf[4096];
    auto len = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
    if (len <= 0)
      die("cannot read /proc/self/exe");
    std::string exe(buf, static_cast<size_t>(len));
    o.sink_path = exe.substr(0, exe.rfind('/') + 1) + "connmgr-bench-sink";
  }
  return o;
}

// --- The sink child process -----------------------------------------------

/// The sink, running as a child: its stdin is our pipe (closing it ends the
/// sink), its first stdout line is its port. It also dies with us
/// (PR_SET_PDEATHSIG), so no sink outlives a crashed benchmark.
struct sink_process {
  pid_t pid = -1;
  int to_child = -1;
  uint16_t port = 0;

  explicit sink_process(const std::string& path) {
    int in_pipe[2];
    int out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
      die("pipe2 failed");
    auto parent = ::getpid();
    pid = ::fork();
    if (pid < 0)
      die("fork failed");
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(1);
      ::dup2(in_pipe[0], STDIN_FILENO);
      ::dup2(out_pipe[1], STDOUT_FILENO);
      ::execl(path.c_str(), path.c_str(), static_cast<char*>(nullptr));
      std::fprintf(stderr, "connmgr-bench: cannot run %s: %s\n", path.c_str(),
                   std::strerror(errno));
      ::_exit(127);
    }
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    to_child = in_pipe[1];
    // Read the port line (bounded wait).
    std::string line;
    auto deadline = steady::now() + 10s;
    while (line.find('\n') == std::string::npos) {
      pollfd p{out_pipe[0], POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - steady::now())
                    .count();
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
        stop();
        die("the sink did not print its port in time");
      }
      char buf[64];
      auto r = ::read(out_pipe[0], buf, sizeof(buf));
      if (r <= 0) {
        stop();
        die("the sink exited before printing its port");
      }
      line.append(buf, static_cast<size_t>(r));
    }
    ::close(out_pipe[0]);
    auto v = std::strtol(line.c_str(), nullptr, 10);
    if (v <= 0 || v > 65535) {
      stop();
      die("the sink printed a bad port: " + line);
    }
    port = static_cast<uint16_t>(v);
  }

  /// Closes its stdin and waits for it; SIGTERM after 5 s, SIGKILL after 10.
  void stop() {
    if (pid <= 0)
      return;
    if (to_child >= 0) {
      ::close(to_child);
      to_child = -1;
    }
    auto t0 = steady::now();
    bool termed = false;
    for (;;) {
      int status = 0;
      auto r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR))
        break;
      auto waited = steady::now() - t0;
      if (waited > 10s) {
        ::kill(pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        break;
      }
      if (waited > 5s && !termed) {
        ::kill(pid, SIGTERM);
        termed = true;
      }
      std::this_thread::sleep_for(5ms);
    }
    pid = -1;
  }

  ~sink_process() {
    stop();
  }

  std::string address() const {
    return "127.0.0.1:" + std::to_string(port);
  }
};

/// Makes the coming close() send a reset instead of a FIN, so that the
/// teardown leaves no TIME_WAIT entries behind: 10 000 of them per run would
/// otherwise pile up across the fresh-process runs of bench/run and slow down
/// the ephemeral-port search of later runs. Only used after the measurement.
void abort_on_close(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  return sa;
}

// --- Scenario a: the manager ramps up to N --------------------------------

/// Everything the callbacks see, behind one mutex.
struct ramp_tally {
  std::mutex mtx;
  std::condition_variable cv;
  size_t target = 0;
  std::vector<connection_ptr> conns;
  size_t failures = 0;
  std::map<std::string, size_t> failure_kinds;
  std::optional<steady::time_point> nth_at;
  rusage nth_usage{};

  manager_callbacks callbacks() {
    manager_callbacks cb;
    cb.on_connection = [this](const conn_request&, connection_ptr c) {
      std::lock_guard<std::mutex> guard{mtx};
      conns.push_back(std::move(c));
      if (conns.size() == target) {
        nth_at = steady::now();
        nth_usage = self_usage();
        cv.notify_all();
      }
    };
    cb.on_failure = [this](const conn_request&, const caf::error& err) {
      std::lock_guard<std::mutex> guard{mtx};
      ++failures;
      ++failure_kinds[to_string(errc_of(err))];
    };
    return cb;
  }
};

int run_ramp(const options& o) {
  raise_fd_limit();
  sink_process sink{o.sink_path};
  auto target = sink.address();
  json_object out;
  {
    caf::actor_system_config cfg;
    add_error_category(cfg);
    caf::actor_system sys{cfg};
    auto io = reactor::start();
    if (!io)
      die(describe(io.error()));
    auto names = std::make_shared<resolver>(1);
    auto dialer = spawn_tcp_dialer(sys, *io, names);
    ramp_tally tally;
    tally.target = o.n;
    tally.conns.reserve(o.n + 64);
    handler_setup setup;
    setup.dialer = dialer;
    setup.config.target_outbound = static_cast<uint32_t>(o.n);
    setup.config.reject_duplicate_addresses = false;
    setup.config.max_pending_dials = o.max_pending;
    setup.get_address = [target]() -> caf::expected<std::string> {
      return target;
    };
    std::optional<manager> mgr;
    {
      auto m = manager::make(sys, setup, tally.callbacks());
      if (!m)
        die(describe(m.error()));
      mgr.emplace(std::move(*m));
    }
    auto ru0 = self_usage();
    auto t0 = steady::now();
    mgr->start();
    bool reached;
    {
      std::unique_lock<std::mutex> guard{tally.mtx};
      reached = tally.cv.wait_for(guard, std::chrono::seconds{o.timeout_s},
                                  [&] { return tally.nth_at.has_value(); });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{o.settle_ms});
    auto st = mgr->stats();
    size_t connected;
    size_t failures;
    std::string kinds;
    steady::time_point t_nth;
    rusage ru_nth;
    {
      std::lock_guard<std::mutex> guard{tally.mtx};
      connected = tally.conns.size();
      failures = tally.failures;
      for (auto& kv : tally.failure_kinds)
        kinds += (kinds.empty() ? "" : ",") + kv.first + "="
                 + std::to_string(kv.second);
      t_nth = tally.nth_at.value_or(steady::now());
      ru_nth = reached ? tally.nth_usage : self_usage();
    }
    auto peak = peak_rss_kb();
    auto t_stop = steady::now();
    mgr->stop().wait();
    auto stop_ms = ms_between(t_stop, steady::now());
    mgr.reset();
    {
      std::lock_guard<std::mutex> guard{tally.mtx};
      for (auto& c : tally.conns)
        if (auto fd = c->native_handle(); fd >= 0)
          abort_on_close(fd);
      tally.conns.clear();
    }
    caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
    (*io)->stop();

    auto ms = ms_between(t0, t_nth);
    auto cpu = cpu_us(ru_nth) - cpu_us(ru0);
    out.add("mode", "ramp");
    out.add("n", o.n);
    out.add("ok", reached && connected == o.n);
    out.add("max_pending_dials", o.max_pending);
    out.add("ms", ms);
    out.add("conn_per_s", static_cast<double>(o.n) / (ms / 1000.0));
    out.add("cpu_us_total", cpu);
    out.add("cpu_us_per_conn", cpu / static_cast<double>(o.n));
    out.add("dial_errors", failures);
    out.add("dial_error_kinds", kinds);
    out.add("connected", connected);
    out.add("extra_connections",
            connected > o.n ? connected - o.n : size_t{0});
    out.add("dials_started", st.dials_started);
    out.add("outbound_established", st.outbound_established);
    out.add("peak_rss_kb", peak);
    out.add("settle_ms", o.settle_ms);
    out.add("stop_ms", stop_ms);
  }
  sink.stop();
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
  size_t started = 0;
  size_t in_flight = 0;
  size_t errors = 0;
  std::map<std::string, size_t> error_kinds;
  auto fail = [&](int fd, int err) {
    ++errors;
    ++error_kinds[std::strerror(err)];
    ::close(fd);
  };
  auto ru0 = self_usage();
  auto t0 = steady::now();
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
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                        0);
      if (fd < 0)
        die(std::string{"socket: "} + std::strerror(errno));
      ++started;
      if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
        held.push_back(fd);
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
    int k = epoll_wait(ep, events.data(), static_cast<int>(events.size()),
                       100);
    for (int i = 0; i < k; ++i) {
      int fd = events[static_cast<size_t>(i)].data.fd;
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
      --in_flight;
      if (err == 0)
        held.push_back(fd);
      else
        fail(fd, err);
    }
  }
  if (held.size() >= o.n) {
    reached = true;
    t_nth = steady::now();
    ru_nth = self_usage();
  } else {
    t_nth = steady::now();
    ru_nth = self_usage();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{o.settle_ms});
  auto peak = peak_rss_kb();
  auto connected = held.size();
  for (int fd : held) {
    abort_on_close(fd);
    ::close(fd);
  }
  ::close(ep);
  sink.stop();
  auto ms = ms_between(t0, t_nth);
  auto cpu = cpu_us(ru_nth) - cpu_us(ru0);
  std::string kinds;
  for (auto& kv : error_kinds)
    kinds += (kinds.empty() ? "" : ",") + kv.first + "="
             + std::to_string(kv.second);
  json_object out;
  out.add("mode", "raw-ramp");
  out.add("n", o.n);
  out.add("ok", reached && connected == o.n);
  out.add("window", o.window);
  out.add("ms", ms);
  out.add("conn_per_s", static_cast<double>(o.n) / (ms / 1000.0));
  out.add("cpu_us_total", cpu);
  out.add("cpu_us_per_conn", cpu / static_cast<double>(o.n));
  out.add("dial_errors", errors);
  out.add("dial_error_kinds", kinds);
  out.add("connected", connected);
  out.add("extra_connections", size_t{0});
  out.add("connects_started", started);
  out.add("peak_rss_kb", peak);
  out.add("settle_ms", o.settle_ms);
  out.print();
  return 0;
}

// --- Silent peer: many dials in flight ------------------------------------

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

int run_silent(const options& o, long threads_at_main) {
  raise_fd_limit();
  silent_peer peer;
  auto target = "127.0.0.1:" + std::to_string(peer.port);
  json_object out;
  caf::actor_system_config cfg;
  add_error_category(cfg);
  caf::actor_system sys{cfg};
  auto io = reactor::start();
  if (!io)
    die(describe(io.error()));
  auto names = std::make_shared<resolver>(1);
  auto dialer = spawn_tcp_dialer(sys, *io, names);
  ramp_tally tally; // counts failures; nothing should connect
  tally.target = o.n;
  handler_setup setup;
  setup.dialer = dialer;
  setup.config.target_outbound = static_cast<uint32_t>(o.n);
  setup.config.max_pending_dials = static_cast<uint32_t>(o.n);
  setup.config.reject_duplicate_addresses = false;
  setup.config.dial_timeout = std::chrono::minutes{10};
  setup.get_address = [target]() -> caf::expected<std::string> {
    return target;
  };
  std::optional<manager> mgr;
  {
    auto m = manager::make(sys, setup, tally.callbacks());
    if (!m)
      die(describe(m.error()));
    mgr.emplace(std::move(*m));
  }
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
  while ((pending = (*io)->stats().pending_connects) < want
         && steady::now() < give_up)
    std::this_thread::sleep_for(5ms);
  auto ramp_ms = ms_between(t0, steady::now());
  // Give the last few a moment, then measure with everything in flight.
  std::this_thread::sleep_for(200ms);
  pending = (*io)->stats().pending_connects;
  auto threads_during = thread_count();
  auto rss_during = current_rss_kb();
  auto fds_during = open_fd_count();
  auto st = mgr->stats();
  auto t_stop = steady::now();
  mgr->stop().wait();
  auto stop_ms = ms_between(t_stop, steady::now());
  auto fds_after = open_fd_count();
  auto pending_after = (*io)->stats().pending_connects;
  size_t failures;
  size_t connected;
  {
    std::lock_guard<std::mutex> guard{tally.mtx};
    failures = tally.failures;
    connected = tally.conns.size();
  }
  mgr.reset();
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  (*io)->stop();

  out.add("mode", "silent");
  out.add("n", o.n);
  out.add("ok", pending >= want && fds_after == fds_before
                  && pending_after == 0);
  out.add("pending_connects", pending);
  out.add("ramp_ms", ramp_ms);
  out.add("dials_in_flight", st.dials_in_flight);
  out.add("threads_at_main", threads_at_main);
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

} // namespace

int main(int argc, char** argv) {
  auto threads_at_main = thread_count();
  std::signal(SIGPIPE, SIG_IGN);
  auto o = parse_args(argc, argv);
  if (o.mode == "ramp")
    return run_ramp(o);
  if (o.mode == "raw-ramp")
    return run_raw_ramp(o);
  if (o.mode == "silent")
    return run_silent(o, threads_at_main);
  die("--mode must be ramp, raw-ramp or silent");
}
