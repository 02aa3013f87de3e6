// connmgr-node: one peer-to-peer node (configured from the actor-system config
// file and --connmgr.KEY=VALUE options), or with --swarm=N a whole swarm of
// nodes on loopback in one process.

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>

#include "examples/node/node.hpp"
#include "examples/node/node_control.hpp"
#include "examples/node/node_settings.hpp"
#include "examples/node/node_metrics.hpp"
#include "examples/node/output.hpp"
#include "examples/node/signals.hpp"
#include "examples/node/swarm.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "connmgr/net/socket_ops.hpp"

using namespace connmgr;

namespace {

int usage_error(const std::string& what) {
  std::fprintf(stderr, "connmgr-node: %s\n", what.c_str());
  return 2;
}

int runtime_error(const std::string& what) {
  std::fprintf(stderr, "connmgr-node: %s\n", what.c_str());
  return 1;
}

/// 0 when every descriptor opened since `before` is closed again; otherwise
/// names those still open and returns 1.
int check_descriptors(const std::vector<open_descriptor>& before) {
  auto left = descriptors_left_open(before, std::chrono::milliseconds{500});
  if (left.empty())
    return 0;
  return runtime_error(std::to_string(left.size())
                       + " descriptors still open after stop: "
                       + describe(left));
}

int serve(caf::actor_system& sys, const node_settings& settings,
          stop_signals& signals) {
  auto io = reactor::start();
  if (!io)
    return runtime_error("cannot start the reactor: " + describe(io.error()));
  auto names = std::make_shared<resolver>();
  output out{settings.format};
  std::shared_ptr<prometheus::Registry> registry;
  std::unique_ptr<node_metrics> metrics;
  if (settings.metrics_listen) {
    registry = std::make_shared<prometheus::Registry>();
    metrics = std::make_unique<node_metrics>(registry, "0");
  }
  node_setup setup;
  setup.settings = settings;
  setup.io = *io;
  setup.names = names;
  // Remote subscribers get every event once the control is up.
  auto tap = std::make_shared<control_tap>();
  setup.on_event = [&out, m = metrics.get(), tap](const node_event& ev) {
    out.event(ev);
    if (m != nullptr)
      m->record(ev);
    tap->push(ev, output::unix_ms());
  };
  setup.on_status = [&out, m = metrics.get()](const node_status& st) {
    out.status(st);
    if (m != nullptr)
      m->update(st);
  };
  // The metrics endpoint first: the node must know it, never to dial it.
  std::unique_ptr<metrics_server> server;
  if (settings.metrics_listen) {
    auto srv = metrics_server::start(*settings.metrics_listen, registry);
    if (!srv) {
      (*io)->stop();
      return runtime_error(describe(srv.error()));
    }
    server = std::move(*srv);
    setup.own_endpoints.push_back(server->address());
  }
  if (settings.control_listen && settings.control_listen->port() != 0)
    setup.own_endpoints.push_back(*settings.control_listen);
  auto n = node::make(sys, std::move(setup));
  if (!n) {
    server.reset();
    (*io)->stop();
    return runtime_error(describe(n.error()));
  }
  std::unique_ptr<node_control> control;
  if (settings.control_listen) {
    auto on_dropped = [&out](uint64_t id, const std::string& why) {
      node_event ev;
      ev.event = "control_dropped";
      ev.id = id;
      ev.reason = why;
      ev.reason_code = "slow_subscriber";
      out.event(ev);
    };
    auto ctl = node_control::start(sys, settings, n->handler(), on_dropped);
    if (!ctl) {
      n->stop("control").wait();
      server.reset();
      (*io)->stop();
      return runtime_error(describe(ctl.error()));
    }
    control = std::move(*ctl);
    tap->set(control->feed());
  }
  // Up: once "started" is out, a signal stops the node gracefully (it
  // waits in the mask until `wait` below takes it).
  signals.startup_done();
  node_event started;
  started.event = "started";
  started.peer_node = n->id();
  out.event(started);
  for (auto& addr : n->listening()) {
    node_event ev;
    ev.event = "listening";
    ev.addr = addr.to_string();
    out.event(ev);
  }
  if (server) {
    node_event ev;
    ev.event = "metrics";
    ev.addr = server->address().to_string();
    out.event(ev);
  }
  if (control) {
    node_event ev;
    ev.event = "control";
    ev.addr = control->address().to_string();
    ev.reason_code = control->tls() ? "tls" : "plain";
    out.event(ev);
  }
  n->start();
  // Until a signal, or until the node stops on its own: a drain through
  // the control stops the handler, and with it the node ("stopped").
  auto done = n->done();
  int sig = 0;
  while (sig == 0
         && done.wait_for(std::chrono::seconds{0}) != std::future_status::ready)
    sig = signals.wait_for(std::chrono::milliseconds{50});
  if (sig != 0) {
    n->stop(sig == SIGINT ? "SIGINT" : "SIGTERM").wait();
  } else if (control) {
    // The drain's answer (the final counters) left the handler as it
    // stopped; closing the control at once could cut it off in the
    // middleman's write buffer.
    std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
  tap->reset();
  if (control)
    control->stop();
  server.reset();
  (*io)->stop();
  return 0;
}

/// Runs one node until SIGINT or SIGTERM; everything it opened must be
/// closed again once it is gone.
int run_node(caf::actor_system& sys, const node_settings& settings,
             stop_signals& signals) {
  auto fds_before = open_descriptors();
  auto status = serve(sys, settings, signals);
  // A start-up that failed must keep its status, not turn into a stop.
  signals.startup_done();
  if (status != 0)
    return status;
  return check_descriptors(fds_before);
}

} // namespace

int main(int argc, char** argv) {
  // Before any thread exists, so that every thread inherits the mask.
  stop_signals signals;
  signals.watch_startup();
  std::vector<std::string> args(argv + 1, argv + argc);
  // Our own flags first; what remains goes to CAF.
  auto swarm = take_swarm_options(args);
  if (!swarm)
    return usage_error(describe(swarm.error()));
  // The config file is read once, checked, and handed to CAF as text: CAF
  // would open whatever the path names (a directory aborts it, /dev/zero
  // never ends, a FIFO blocks).
  auto source = find_config_file(args);
  auto config_text = read_config_file(source.path, source.required);
  if (!config_text)
    return usage_error(describe(config_text.error()));
  node_settings settings;
  if (swarm->nodes == 0) {
    auto res = parse_node_settings(*config_text, source.path, args);
    if (!res)
      return usage_error(describe(res.error()));
    settings = std::move(*res);
  }
  if (swarm->nodes == 0)
    if (auto err = check_control_files(settings))
      return usage_error(describe(err));
  node_actor_system_config cfg;
  add_error_category(cfg);
  std::vector<char*> caf_argv{argv[0]};
  for (auto& arg : args)
    caf_argv.push_back(arg.data());
  std::istringstream config_stream{*config_text};
  if (auto err = cfg.parse(static_cast<int>(caf_argv.size()), caf_argv.data(),
                           config_stream))
    return usage_error("command line: " + describe(err));
  // After parsing: the control's TLS files win over any [openssl] section.
  if (swarm->nodes == 0)
    prepare_control(cfg, settings);
  if (cfg.cli_helptext_printed) {
    std::printf(
      "\nswarm mode:\n  --swarm=N             run N nodes on loopback "
      "in this process\n  --swarm-churn=D       kill and restart "
      "nodes for duration D (default 8s)\n  --swarm-target=T      "
      "automatic outbound connections per node\n"
      "\nsoak mode (a swarm, 12 nodes unless --swarm=N):\n"
      "  --soak=D              churn for D with dials failing at "
      "random; descriptors,\n"
      "                        threads and resident memory must "
      "stay flat\n"
      "  --soak-warmup=W       churn before the steady state is "
      "read (default D/5)\n");
    return 0;
  }
  // CAF's scheduler divides by, loops on or spawns what these say before
  // any check of its own. The file's values are checked as written too: CAF
  // silently drops one of the wrong type.
  auto cores = std::thread::hardware_concurrency();
  std::istringstream untyped_stream{*config_text};
  if (auto untyped = caf::actor_system_config::parse_config(untyped_stream))
    if (auto err = check_scheduler_settings(*untyped, cores))
      return usage_error(describe(err));
  if (auto err = check_scheduler_settings(caf::content(cfg), cores))
    return usage_error(describe(err));
  if (swarm->nodes == 0)
    if (auto err = check_descriptor_budget(settings, raise_fd_limit()))
      return usage_error(describe(err));
  caf::actor_system sys{cfg};
  if (swarm->nodes > 0) {
    signals.startup_done();
    return run_swarm(sys, *swarm, signals);
  }
  return run_node(sys, settings, signals);
}
