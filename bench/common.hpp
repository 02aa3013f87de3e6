#pragma once

// Helpers shared by the benchmark programs: measurement (CPU, memory,
// threads), one-line JSON output, child processes (sink, load dialer) and
// the load process's side of their protocol, loopback sockets and
// command-line options. Measurement code: it reads steady_clock directly.

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/types.h>

namespace connmgr::bench {

using steady = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg);

double ms_between(steady::time_point a, steady::time_point b);

/// User + system CPU of a usage record, in microseconds.
double cpu_us(const rusage& ru);

/// Voluntary + involuntary context switches of a usage record.
long ctx_switches(const rusage& ru);

/// Profiling window: with CONNMGR_BENCH_PERF_CTL=FIFO in the environment,
/// writes "enable" / "disable" to that control FIFO of `perf record -D -1
/// --control=fifo:FIFO` (or perf stat), so that only the measured interval
/// is sampled. Does nothing without the variable.
void perf_window(bool enable);

/// getrusage(RUSAGE_SELF): the whole process, every thread.
rusage self_usage();

/// Peak resident set size so far, in kB (ru_maxrss).
long peak_rss_kb();

/// Current resident set size (VmRSS of /proc/self/status), in kB.
long current_rss_kb();

/// Threads of this process (the Threads: line of /proc/self/status).
long thread_count();

/// Path of a program next to this executable.
std::string sibling_program(const std::string& name);

std::string json_str(const std::string& s);

/// Builds one flat JSON object in insertion order and prints it as one line.
struct json_object {
  std::vector<std::pair<std::string, std::string>> fields;

  template <class T>
  void add(const std::string& key, T value) {
    if constexpr (std::is_same_v<T, bool>)
      fields.emplace_back(key, value ? "true" : "false");
    else if constexpr (std::is_floating_point_v<T>)
      fields.emplace_back(key, format_double(static_cast<double>(value)));
    else if constexpr (std::is_integral_v<T>)
      fields.emplace_back(key, std::to_string(value));
    else
      fields.emplace_back(key, json_str(std::string{value}));
  }

  /// A list of numbers, e.g. a ramp curve.
  void add_list(const std::string& key, const std::vector<double>& xs);

  /// Prints the object on stdout, flushed.
  void print() const;

  static std::string format_double(double x);
};

/// A helper program running as our child: its stdin is our pipe (closing it
/// ends the child), its stdout comes back line by line. It also dies with us
/// (PR_SET_PDEATHSIG), so no peer outlives a crashed benchmark.
class child_process {
public:
  child_process(const std::string& path, const std::vector<std::string>& args);
  ~child_process();

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  /// The next line of its stdout (without the newline); dies after
  /// `timeout` or at EOF with `what` in the message.
  std::string read_line(std::chrono::milliseconds timeout,
                        const std::string& what);

  /// Writes `line` plus a newline to its stdin.
  void write_line(const std::string& line);

  /// Closes its stdin and waits for it; SIGTERM after 5 s, SIGKILL after 10.
  void stop();

private:
  pid_t pid_ = -1;
  int to_child_ = -1;
  int from_child_ = -1;
  std::string buffered_;
};

/// The sink (connmgr-bench-sink): accepts and holds; its first line is its
/// port.
struct sink_process {
  child_process proc;
  uint16_t port = 0;

  explicit sink_process(const std::string& path);

  std::string address() const {
    return "127.0.0.1:" + std::to_string(port);
  }
};

/// Makes the coming close() send a reset instead of a FIN, so teardown
/// leaves no TIME_WAIT entries behind across the fresh-process runs. Only
/// used after the measurement.
void abort_on_close(int fd);

/// abort_on_close, then close.
void reset_and_close(int fd);

sockaddr_in loopback(uint16_t port);

/// Most distinct source addresses `loopback_source` hands out.
constexpr size_t max_loopback_sources = 250 * 256;

/// The `index`-th of the load's distinct loopback source addresses
/// (`index` < max_loopback_sources), port 0: 127.10.(index / 250).(1 +
/// index % 250), inside 127.0.0.0/8 and never a .0 or .255 address.
sockaddr_in loopback_source(size_t index);

/// The integer environment variable `name` (>= lo), or `fallback` when it
/// is unset or empty; dies naming the variable on anything else.
long env_num(const char* name, long fallback, long lo);

/// Parses `--key=value` arguments into pairs; dies on anything else.
std::vector<std::pair<std::string, std::string>> parse_kv_args(int argc,
                                                               char** argv);

/// Parses a non-negative decimal number >= lo, or dies naming `key`.
long parse_num(const std::string& key, const std::string& val, long lo);

/// The `--key=value` options a program takes, each bound to the variable it
/// sets. `parse` takes them in the order given and dies on an unknown key or
/// a bad value.
class option_table {
public:
  /// A whole number >= lo (for a bool: 0 or not).
  template <class T>
  void number(const std::string& key, T& field, long lo) {
    add(key, [&field, lo](const std::string& k, const std::string& v) {
      field = static_cast<T>(parse_num(k, v, lo));
    });
  }

  void text(const std::string& key, std::string& field);

  /// One of `allowed`.
  void choice(const std::string& key, std::string& field,
              std::initializer_list<const char*> allowed);

  /// Every key with a dot is a CAF option: kept as "--key=value".
  void caf_options(std::vector<std::string>& caf_args);

  void parse(int argc, char** argv) const;

private:
  using setter = std::function<void(const std::string&, const std::string&)>;

  void add(const std::string& key, setter f);

  std::vector<std::pair<std::string, setter>> setters_;
  std::vector<std::string>* caf_args_ = nullptr;
};

/// Reads the last line of a load process, "done <fields...>", into
/// `fields`; dies on any other line.
template <class... Ts>
void parse_done(const std::string& line, Ts&... fields) {
  std::istringstream in{line};
  std::string word;
  in >> word;
  (in >> ... >> fields);
  if (word != "done")
    die("the load process printed '" + line + "'");
}

/// The handshake of a load process with its parent: prints "ready" and
/// waits for a line on stdin ("go"); exits at once when stdin closes instead.
void ready_then_wait_for_go();

/// Waits until stdin closes: the parent is done with this load process.
void wait_for_stdin_eof();

/// "k1=v1,k2=v2" from a map-like sequence of counters.
template <class Map>
std::string join_kinds(const Map& m) {
  std::string out;
  for (auto& kv : m)
    out +=
      (out.empty() ? "" : ",") + kv.first + "=" + std::to_string(kv.second);
  return out;
}

} // namespace connmgr::bench
