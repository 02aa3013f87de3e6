#pragma once

// The modes of connmgr-bench, one per translation unit group, and what
// they share. Each run prints one JSON object on stdout.

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "bench/caf_setup.hpp"
#include "bench/common.hpp"
#include "connmgr/messages/connection_ptr.hpp"
#include "connmgr/messages/dialer_actor.hpp"

namespace connmgr {
class resolver;
} // namespace connmgr

namespace connmgr::bench {

struct options {
  std::string mode;
  /// ramp/raw-ramp/silent: connections; accept/raw-accept: connections the
  /// load process opens.
  size_t n = 1000;
  /// ramp: max_pending_dials of the manager.
  uint32_t max_pending = 1024;
  /// raw-ramp: connects in flight at once (0 = all).
  size_t window = 0;
  /// ramp/raw-ramp: wait after the N-th connection before counting extras.
  long settle_ms = 500;
  /// Give up after this long.
  long timeout_s = 60;
  std::string sink_path;
  std::string load_path;
  /// cycle: requests cycling at once, total cycles, permanent or not, and
  /// what the instant dialer hands out ("memory" or "socketpair").
  size_t concurrency = 1;
  size_t cycles = 100000;
  bool permanent = false;
  std::string conn_kind = "memory";
  /// cycle: the driver subscribes to every event ("all") or only to those
  /// it acts on, connected and failed ("needed").
  std::string events = "needed";
  /// accept/raw-accept: "hold" or "close"; load dialer threads.
  std::string accept_action = "hold";
  size_t workers = 50;
  /// accept/raw-accept: OS threads of the load process.
  size_t load_threads = 2;
  /// accept/raw-accept: listen backlog (0 = net.core.somaxconn).
  int backlog = 0;
  /// Threads at the start of main (before any actor system).
  long threads_at_main = 0;
  /// CAF options for the measured actor system, as CAF's own command line
  /// takes them, e.g. "--scheduler.max-threads=2": every argument whose key
  /// has a dot (scheduler.*, work-stealing.*, ...).
  std::vector<std::string> caf_args;
};

/// The measured actor system of a mode with network, a reactor and a TCP
/// dialer on it.
struct measured_stack {
  measured_config cfg;
  caf::actor_system sys;
  std::shared_ptr<reactor> io;
  std::shared_ptr<resolver> names;
  dialer_actor dialer;

  explicit measured_stack(const options& o);

  /// Ends the dialer and stops the reactor (the actor system ends with this
  /// object).
  void stop();
};

/// What a measured manager's callbacks record for the measuring thread,
/// behind `mtx`: the connections held and when the N-th one came.
struct held_connections {
  std::mutex mtx;
  std::condition_variable cv;
  std::vector<connection_ptr> conns;
  std::optional<steady::time_point> nth_at;
  rusage nth_usage{};

  /// Ends the measured interval at the N-th connection; the caller holds
  /// `mtx`.
  void reached_nth() {
    nth_at = steady::now();
    nth_usage = self_usage();
    perf_window(false);
    cv.notify_all();
  }

  /// Waits up to `timeout` for the N-th connection; true if it came.
  bool wait_for_nth(std::chrono::seconds timeout);

  /// When the measured interval ended: at the N-th connection, or now if it
  /// never came. The caller holds `mtx`.
  void end_of_interval(bool reached, steady::time_point& t, rusage& ru) const;

  /// Makes every held connection reset on close, and drops them.
  void reset_all();
};

/// Records the CAF options and the scheduler that resulted from them.
void add_caf_fields(json_object& out, caf::actor_system& sys, const options& o);

int run_ramp(const options& o);
int run_raw_ramp(const options& o);
int run_silent(const options& o);
int run_cycle(const options& o);
int run_accept(const options& o);
int run_raw_accept(const options& o);

} // namespace connmgr::bench
