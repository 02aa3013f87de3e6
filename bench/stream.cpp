// connmgr-bench-stream: scenario g (byte streams) of
// docs/bench-protocol.md. Each run prints one JSON object on
// stdout; bench/run runs the standard set and report.py makes the tables.
//
// The server (this process) listens on 127.0.0.1:0 and a load process
// (connmgr-bench-stream-load, a child) opens --conns connections to it.
//
//   --mode=stream      ours, echo: every connection becomes a reactor stream
//                      (`reactor::stream`); on_data posts each chunk to one
//                      CAF actor, as the example node does; the actor sends
//                      the chunk back on the same connection through the
//                      stream handle and then reports it consumed. A send
//                      refused by a full send buffer keeps the chunk (and
//                      everything after it) unconsumed in the actor and
//                      retries after 1 ms: the handle has no "drained"
//                      notification. The load pushes --bytes in total and
//                      reads every byte back (and checks it).
//   --mode=raw-stream  raw, echo: one thread, one level-triggered epoll set,
//                      recv of at most --raw-read bytes (default 64 KiB; the
//                      reactor reads up to 256 KiB, as much as the receive
//                      window has free; at most 8 reads per wake-up like the
//                      reactor) and a
//                      send of it back on the same connection; what the
//                      socket does not take waits in a per-connection buffer
//                      and reading that connection pauses until it is out.
//   --mode=flood       ours, flood: the load writes --bytes without reading;
//                      the actor holds what arrives and reports nothing
//                      consumed for --stall-ms, then reports everything
//                      consumed (and discards it) as it arrives. The
//                      figure is the peak RSS (VmHWM) against the bound
//                      RSS before + conns x receive window + 32 MiB.
//   --mode=raw-flood   raw, flood: the epoll loop reads nothing for
//                      --stall-ms, then reads and discards everything.
//
// Time runs from the "go" sent to the load process to its "done" line (for
// flood: to the last byte consumed); CPU is getrusage(RUSAGE_SELF) of this
// process over the same interval.
//
// Options: --conns=K (default 1), --bytes=B (default 1 GiB),
// --window=W (ours: receive window, default 256 KiB), --send-buffer=S (ours:
// max_send_buffer, default 1 MiB), --raw-read=R (raw: bytes per recv,
// default 64 KiB), --stall-ms=M (flood, default 1000),
// --timeout-s=T (default 120), --load=PATH. Any --KEY=VALUE whose KEY has a
// dot is a CAF option of ours (bench/run passes $CAF_OPTS).
//
// Over 500 lines because the server of ours, the raw echo loop and the
// flood share their setup and measured intervals here.

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <deque>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <dirent.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scheduler/abstract_coordinator.hpp>
#include <caf/send.hpp>
#include <caf/settings.hpp>
#include <caf/stateful_actor.hpp>

#include "bench/caf_setup.hpp"
#include "bench/common.hpp"
#include "connmgr/messages/dialer_actor.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr::bench {
namespace {

using namespace std::chrono_literals;

using g_open_atom = caf::atom_constant<caf::atom("g_open")>;
using g_data_atom = caf::atom_constant<caf::atom("g_data")>;
using g_end_atom = caf::atom_constant<caf::atom("g_end")>;
using g_retry_atom = caf::atom_constant<caf::atom("g_retry")>;
using g_consume_atom = caf::atom_constant<caf::atom("g_consume")>;

constexpr int raw_reads_per_wakeup = 8;
constexpr uint64_t listener_tag = ~uint64_t{0};

struct g_options {
  std::string mode;
  size_t conns = 1;
  uint64_t bytes = uint64_t{1} << 30;
  size_t window = size_t{256} * 1024;
  size_t send_buffer = size_t{1} << 20;
  size_t raw_read = size_t{64} * 1024;
  long stall_ms = 1000;
  long timeout_s = 120;
  std::string load_path;
  std::vector<std::string> caf_args;

  bool flood() const {
    return mode == "flood" || mode == "raw-flood";
  }
};

/// What the load process reported:
/// "done <ms> <bytes> <mismatches> <errors> <its CPU µs>".
struct load_result {
  double ms = 0;
  double cpu_us = 0;
  uint64_t bytes = 0;
  size_t mismatches = 0;
  size_t errors = 0;
};

load_result read_done(child_process& load, std::chrono::milliseconds timeout) {
  load_result r;
  parse_done(load.read_line(timeout, "the load process"), r.ms, r.bytes,
             r.mismatches, r.errors, r.cpu_us);
  return r;
}

std::vector<std::string> load_args(const g_options& o, uint16_t port) {
  return {"--port=" + std::to_string(port),
          "--conns=" + std::to_string(o.conns),
          "--bytes=" + std::to_string(o.bytes),
          std::string{"--mode="} + (o.flood() ? "flood" : "echo")};
}

/// CPU time of every thread of this process (utime + stime of
/// /proc/self/task/*/stat, in clock ticks) by thread id, with its name.
using thread_times = std::map<long, std::pair<std::string, long>>;

thread_times thread_cpu() {
  thread_times out;
  auto* dir = ::opendir("/proc/self/task");
  if (dir == nullptr)
    return out;
  while (auto* ent = ::readdir(dir)) {
    if (ent->d_name[0] == '.')
      continue;
    auto path = std::string{"/proc/self/task/"} + ent->d_name + "/stat";
    auto* f = std::fopen(path.c_str(), "r");
    if (f == nullptr)
      continue;
    char buf[1024];
    auto n = std::fread(buf, 1, sizeof(buf) - 1, f);
    std::fclose(f);
    buf[n] = '\0';
    std::string line{buf};
    auto open = line.find('(');
    auto close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos)
      continue;
    std::istringstream rest{line.substr(close + 2)};
    std::string field;
    long utime = 0;
    long stime = 0;
    // Fields 3..13, then utime (14) and stime (15).
    for (int i = 3; i <= 13; ++i)
      rest >> field;
    rest >> utime >> stime;
    out[std::stol(ent->d_name)] = {line.substr(open + 1, close - open - 1),
                                   utime + stime};
  }
  ::closedir(dir);
  return out;
}

/// CPU ms per thread name between two snapshots (threads of one name
/// summed): "name=ms name=ms ...", busiest first.
std::string thread_cpu_diff(const thread_times& t0, const thread_times& t1) {
  std::map<std::string, long> by_name;
  for (auto& [tid, v] : t1) {
    auto i = t0.find(tid);
    by_name[v.first] += v.second - (i != t0.end() ? i->second.second : 0);
  }
  std::vector<std::pair<long, std::string>> sorted;
  auto tick_ms = 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  for (auto& [name, ticks] : by_name)
    sorted.emplace_back(ticks, name);
  std::sort(sorted.rbegin(), sorted.rend());
  std::string out;
  for (auto& [ticks, name] : sorted)
    out += (out.empty() ? "" : " ") + name + "="
      + std::to_string(static_cast<long>(static_cast<double>(ticks) * tick_ms));
  return out;
}

/// The figures every mode reports.
struct measured {
  bool ok = false;
  double ms = 0;
  steady::time_point t0;
  rusage ru0{};
  rusage ru1{};
  thread_times threads0;
  thread_times threads1;
  long rss_before_kb = 0;
  load_result load;

  /// Starts the measured interval and the load process with it.
  void begin(child_process& load_proc) {
    rss_before_kb = current_rss_kb();
    perf_window(true);
    threads0 = thread_cpu();
    ru0 = self_usage();
    t0 = steady::now();
    load_proc.write_line("go");
  }

  /// Ends the measured interval.
  void end() {
    ms = ms_between(t0, steady::now());
    ru1 = self_usage();
    threads1 = thread_cpu();
    perf_window(false);
  }
};

void add_common(json_object& out, const g_options& o, const measured& m) {
  auto mib = static_cast<double>(o.bytes) / (1024.0 * 1024.0);
  auto cpu = cpu_us(m.ru1) - cpu_us(m.ru0);
  out.add("mode", o.mode);
  out.add("conns", o.conns);
  out.add("bytes", o.bytes);
  out.add("ok", m.ok);
  out.add("ms", m.ms);
  out.add("mib_per_s", mib / (m.ms / 1000.0));
  out.add("cpu_us_total", cpu);
  out.add("cpu_us_per_mib", cpu / mib);
  out.add("thread_cpu_ms", thread_cpu_diff(m.threads0, m.threads1));
  out.add("ctx_switches_per_mib",
          static_cast<double>(ctx_switches(m.ru1) - ctx_switches(m.ru0)) / mib);
  out.add("load_ms", m.load.ms);
  out.add("load_cpu_us_per_mib", m.load.cpu_us / mib);
  out.add("load_bytes", m.load.bytes);
  out.add("load_mismatches", m.load.mismatches);
  out.add("load_errors", m.load.errors);
  out.add("rss_before_kb", m.rss_before_kb);
  auto peak = peak_rss_kb();
  out.add("peak_rss_kb", peak);
  out.add("window", o.window);
  if (o.flood()) {
    auto bound = m.rss_before_kb + static_cast<long>(o.conns * o.window / 1024)
      + 32 * 1024;
    out.add("stall_ms", o.stall_ms);
    out.add("rss_bound_kb", bound);
    out.add("rss_within_bound", peak <= bound);
  }
}

int listen_loopback(uint16_t& port) {
  sockaddr_storage ss{};
  auto sa = loopback(0);
  std::memcpy(&ss, &sa, sizeof(sa));
  auto fd = open_tcp_listener(ss, sizeof(sa), 1024);
  if (!fd)
    die(describe(fd.error()));
  auto bound = local_sockaddr(*fd);
  if (!bound)
    die(describe(bound.error()));
  port = ntohs(reinterpret_cast<const sockaddr_in*>(&*bound)->sin_port);
  return *fd;
}

// -- ours ---------------------------------------------------------------------

/// Progress of the relay actor, for the measuring thread.
struct progress {
  std::mutex mtx;
  std::condition_variable cv;
  size_t opened = 0;
  uint64_t consumed = 0;
  /// Sends refused by a full send buffer, and retries after them.
  uint64_t sends_full = 0;
  uint64_t retries = 0;
};

struct relay_stream {
  stream_handle handle;
  /// Chunks received and not yet consumed: refused by a full send buffer
  /// (echo), or held while stalling (flood).
  std::deque<std::vector<uint8_t>> backlog;
  bool retry_armed = false;
};

struct relay_state {
  std::unordered_map<uint64_t, relay_stream> streams;
  uint64_t next_key = 0;
  bool consuming = false;
  static inline const char* name = "g_relay";
};

using relay_actor = caf::stateful_actor<relay_state>;

struct relay_config {
  std::shared_ptr<reactor> io;
  stream_options opts;
  bool echo = true;
  std::shared_ptr<progress> prog;
};

void count_consumed(progress& prog, size_t n) {
  std::lock_guard<std::mutex> guard{prog.mtx};
  prog.consumed += n;
  prog.cv.notify_all();
}

/// Sends the backlog of `s` in order; false if the send buffer filled up.
bool flush_backlog(relay_stream& s, progress& prog) {
  while (!s.backlog.empty()) {
    auto& front = s.backlog.front();
    auto size = front.size();
    // Handed over as it is: the reactor writes this very buffer (and may
    // read into it again). A refused send leaves it as it was.
    auto st = s.handle.send(std::move(front));
    if (st == send_status::full) {
      std::lock_guard<std::mutex> guard{prog.mtx};
      ++prog.sends_full;
      return false;
    }
    // Queued (or the stream ended: nothing more to do with it).
    s.handle.consumed(size);
    s.backlog.pop_front();
  }
  return true;
}

caf::behavior relay(relay_actor* self, relay_config cfg) {
  auto arm_retry = [self](uint64_t key, relay_stream& s) {
    if (s.retry_armed)
      return;
    s.retry_armed = true;
    self->delayed_send(self, 1ms, g_retry_atom::value, key);
  };
  return {
    [self, cfg](g_open_atom, const connection_ptr& conn) {
      auto key = ++self->state.next_key;
      auto me = caf::actor_cast<caf::actor>(self);
      stream_callbacks cb;
      cb.on_data = [me, key](std::vector<uint8_t> bytes) {
        caf::anon_send(me, g_data_atom::value, key, std::move(bytes));
      };
      cb.on_end = [me, key](const caf::error& reason) {
        caf::anon_send(me, g_end_atom::value, key, reason);
      };
      self->state.streams[key].handle =
        cfg.io->stream(conn, std::move(cb), cfg.opts);
      std::lock_guard<std::mutex> guard{cfg.prog->mtx};
      ++cfg.prog->opened;
      cfg.prog->cv.notify_all();
    },
    [self, cfg, arm_retry](g_data_atom, uint64_t key,
                           std::vector<uint8_t>& bytes) {
      auto i = self->state.streams.find(key);
      if (i == self->state.streams.end())
        return;
      auto& s = i->second;
      auto n = bytes.size();
      if (!cfg.echo) {
        if (!self->state.consuming) {
          s.backlog.push_back(std::move(bytes));
          return;
        }
        s.handle.consumed(n);
        count_consumed(*cfg.prog, n);
        return;
      }
      s.backlog.push_back(std::move(bytes));
      if (s.backlog.size() == 1 && !flush_backlog(s, *cfg.prog))
        arm_retry(key, s);
    },
    [self, cfg, arm_retry](g_retry_atom, uint64_t key) {
      auto i = self->state.streams.find(key);
      if (i == self->state.streams.end())
        return;
      auto& s = i->second;
      s.retry_armed = false;
      {
        std::lock_guard<std::mutex> guard{cfg.prog->mtx};
        ++cfg.prog->retries;
      }
      if (!flush_backlog(s, *cfg.prog))
        arm_retry(key, s);
    },
    [self, cfg](g_consume_atom) {
      self->state.consuming = true;
      for (auto& kv : self->state.streams) {
        auto& s = kv.second;
        size_t n = 0;
        for (auto& chunk : s.backlog)
          n += chunk.size();
        s.backlog.clear();
        s.handle.consumed(n);
        count_consumed(*cfg.prog, n);
      }
    },
    [self](g_end_atom, uint64_t key, const caf::error&) {
      self->state.streams.erase(key);
    },
  };
}

int run_ours(const g_options& o) {
  raise_fd_limit();
  measured_config cfg{o.caf_args};
  caf::actor_system sys{cfg};
  auto io = start_reactor();
  auto prog = std::make_shared<progress>();
  relay_config rc;
  rc.io = io;
  rc.opts.receive_window = o.window;
  rc.opts.max_send_buffer = o.send_buffer;
  rc.echo = !o.flood();
  rc.prog = prog;
  auto actor = sys.spawn(relay, rc);
  uint16_t port = 0;
  auto lfd = listen_loopback(port);
  auto listen_token = io->listen(
    lfd,
    [actor](std::vector<connection_ptr>& conns) {
      for (auto& c : conns)
        caf::anon_send(actor, g_open_atom::value, std::move(c));
    },
    false);
  child_process load{o.load_path, load_args(o, port)};
  load.read_line(30s, "the load process");
  {
    std::unique_lock<std::mutex> guard{prog->mtx};
    if (!prog->cv.wait_for(guard, 30s, [&] { return prog->opened == o.conns; }))
      die("the streams did not open in time");
  }
  io->unlisten(listen_token);
  measured m;
  m.begin(load);
  uint64_t read_at_stall_end = 0;
  long rss_at_stall_end_kb = 0;
  if (o.flood()) {
    std::this_thread::sleep_for(std::chrono::milliseconds{o.stall_ms});
    read_at_stall_end = io->stats().stream_bytes_read;
    rss_at_stall_end_kb = current_rss_kb();
    caf::anon_send(actor, g_consume_atom::value);
    std::unique_lock<std::mutex> guard{prog->mtx};
    m.ok = prog->cv.wait_for(guard, std::chrono::seconds{o.timeout_s},
                             [&] { return prog->consumed >= o.bytes; });
    guard.unlock();
    m.end();
    if (m.ok)
      m.load = read_done(load, 10s);
  } else {
    m.load = read_done(load, std::chrono::seconds{o.timeout_s});
    m.end();
    m.ok =
      m.load.bytes == o.bytes && m.load.mismatches == 0 && m.load.errors == 0;
  }
  auto st = io->stats();
  // The load process resets its ends: nothing lingers in TIME_WAIT.
  load.stop();
  caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
  io->stop();
  json_object out;
  add_common(out, o, m);
  out.add("send_buffer", o.send_buffer);
  {
    std::lock_guard<std::mutex> guard{prog->mtx};
    out.add("sends_full", prog->sends_full);
    out.add("send_retries", prog->retries);
  }
  out.add("stream_pauses", st.stream_pauses);
  out.add("stream_bytes_read", st.stream_bytes_read);
  out.add("stream_bytes_written", st.stream_bytes_written);
  if (o.flood()) {
    out.add("read_at_stall_end", read_at_stall_end);
    out.add("rss_at_stall_end_kb", rss_at_stall_end_kb);
  }
  out.add("caf", joined(o.caf_args));
  out.add("caf_workers", sys.scheduler().num_workers());
  out.print();
  return 0;
}

// -- raw ----------------------------------------------------------------------

struct raw_conn {
  int fd = -1;
  /// Bytes read and not yet sent back (echo); reading waits while any do.
  std::vector<uint8_t> pending;
  size_t pending_pos = 0;
};

int run_raw(const g_options& o) {
  raise_fd_limit();
  bool echo = !o.flood();
  uint16_t port = 0;
  auto lfd = listen_loopback(port);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0)
    die("epoll_create1 failed");
  child_process load{o.load_path, load_args(o, port)};
  load.read_line(30s, "the load process");
  std::vector<raw_conn> conns;
  conns.reserve(o.conns);
  auto give_up = steady::now() + 30s;
  while (conns.size() < o.conns) {
    int c = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      conns.push_back(raw_conn{c, {}, 0});
      continue;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR
        && errno != ECONNABORTED)
      die(std::string{"accept4: "} + std::strerror(errno));
    if (steady::now() > give_up)
      die("the load process did not connect in time");
    std::this_thread::sleep_for(1ms);
  }
  ::close(lfd);
  auto watch = [&](size_t i, uint32_t events, int op) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = i;
    ::epoll_ctl(ep, op, conns[i].fd, &ev);
  };
  std::vector<uint8_t> buf(o.raw_read);
  measured m;
  m.begin(load);
  // Flood: nothing is read during the stall (the sockets are not even
  // watched), like ours not consuming.
  if (!echo)
    std::this_thread::sleep_for(std::chrono::milliseconds{o.stall_ms});
  for (size_t i = 0; i < conns.size(); ++i)
    watch(i, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_ADD);
  uint64_t read_total = 0;
  uint64_t written_total = 0;
  size_t errors = 0;
  auto deadline = m.t0 + std::chrono::seconds{o.timeout_s};
  epoll_event events[256];
  auto done = [&] { return (echo ? written_total : read_total) >= o.bytes; };
  while (!done() && errors == 0 && steady::now() < deadline) {
    int n = ::epoll_wait(ep, events, 256, 100);
    for (int e = 0; e < n; ++e) {
      auto i = static_cast<size_t>(events[e].data.u64);
      auto& c = conns[i];
      if (c.fd < 0)
        continue;
      auto ev = events[e].events;
      if ((ev & EPOLLOUT) != 0) {
        auto w =
          ::send(c.fd, c.pending.data() + c.pending_pos,
                 c.pending.size() - c.pending_pos, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          c.pending_pos += static_cast<size_t>(w);
          written_total += static_cast<uint64_t>(w);
        } else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK
                   && errno != EINTR) {
          ++errors;
        }
        if (c.pending_pos == c.pending.size()) {
          c.pending.clear();
          c.pending_pos = 0;
          watch(i, EPOLLIN | EPOLLRDHUP, EPOLL_CTL_MOD);
        }
        continue;
      }
      for (int round = 0; round < raw_reads_per_wakeup; ++round) {
        auto r = ::recv(c.fd, buf.data(), buf.size(), MSG_DONTWAIT);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
          break;
        if (r < 0 && errno == EINTR)
          continue;
        if (r <= 0) {
          ++errors; // the load never closes during the measurement
          break;
        }
        auto len = static_cast<size_t>(r);
        read_total += len;
        if (!echo)
          continue;
        auto w = ::send(c.fd, buf.data(), len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK
            && errno != EINTR) {
          ++errors;
          break;
        }
        auto sent = w > 0 ? static_cast<size_t>(w) : size_t{0};
        written_total += sent;
        if (sent < len) {
          c.pending.assign(buf.begin() + static_cast<ptrdiff_t>(sent),
                           buf.begin() + static_cast<ptrdiff_t>(len));
          c.pending_pos = 0;
          watch(i, EPOLLOUT, EPOLL_CTL_MOD);
          break;
        }
      }
    }
  }
  if (echo) {
    if (done() && errors == 0)
      m.load = read_done(load, std::chrono::seconds{o.timeout_s});
    m.end();
    m.ok = errors == 0 && m.load.bytes == o.bytes && m.load.mismatches == 0
      && m.load.errors == 0;
  } else {
    m.end();
    m.ok = errors == 0 && done();
    if (m.ok)
      m.load = read_done(load, 10s);
  }
  load.stop();
  for (auto& c : conns)
    reset_and_close(c.fd);
  ::close(ep);
  json_object out;
  add_common(out, o, m);
  out.add("server_errors", errors);
  out.print();
  return 0;
}

g_options parse_args(int argc, char** argv) {
  g_options o;
  option_table opts;
  opts.choice("mode", o.mode, {"stream", "raw-stream", "flood", "raw-flood"});
  // The load process.
  opts.number("conns", o.conns, 1);
  opts.number("bytes", o.bytes, 1);
  opts.text("load", o.load_path);
  // Ours.
  opts.number("window", o.window, 1);
  opts.number("send-buffer", o.send_buffer, 1);
  opts.caf_options(o.caf_args);
  // Raw, flood, both.
  opts.number("raw-read", o.raw_read, 1);
  opts.number("stall-ms", o.stall_ms, 0);
  opts.number("timeout-s", o.timeout_s, 1);
  opts.parse(argc, argv);
  if (o.mode.empty())
    die("--mode is required (stream, raw-stream, flood or raw-flood)");
  if (o.load_path.empty())
    o.load_path = sibling_program("connmgr-bench-stream-load");
  return o;
}

} // namespace
} // namespace connmgr::bench

int main(int argc, char** argv) {
  using namespace connmgr::bench;
  std::signal(SIGPIPE, SIG_IGN);
  auto o = parse_args(argc, argv);
  if (o.mode == "stream" || o.mode == "flood")
    return run_ours(o);
  return run_raw(o);
}
