#pragma once

// The modes of connmgr-bench, one per translation unit group. Each run
// prints one JSON object on stdout.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "bench/caf_setup.hpp"
#include "connmgr/messages/dialer_actor.hpp"

namespace connmgr {
class resolver;
} // namespace connmgr

namespace connmgr::bench {

struct json_object;

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

/// Records the CAF options and the scheduler that resulted from them.
void add_caf_fields(json_object& out, caf::actor_system& sys, const options& o);

int run_ramp(const options& o);
int run_raw_ramp(const options& o);
int run_silent(const options& o);
int run_cycle(const options& o);
int run_accept(const options& o);
int run_raw_accept(const options& o);

} // namespace connmgr::bench
