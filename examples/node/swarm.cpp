// Swarm mode, the demo: many nodes in one process on 127.0.0.1, a ramp to
// their targets, then churn (nodes killed and restarted) while every target
// is checked. Over 500 lines because the swarm class is one scenario whose
// phases share the nodes' slots and the progress report; its flags are
// read at the end of the file.
#include "examples/node/swarm.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include <caf/actor_system.hpp>
#include <caf/config_value.hpp>
#include <fmt/format.h>

#include "examples/node/node.hpp"
#include "examples/node/output.hpp"
#include "examples/node/signals.hpp"
#include "examples/node/soak.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

caf::error bad_flag(const std::string& flag, const std::string& value,
                    const std::string& expected) {
  return make_error(errc::invalid_config,
                    fmt::format("{} = \"{}\": {}", flag, value, expected));
}

caf::expected<uint64_t> read_count(const std::string& flag,
                                   const std::string& value, uint64_t min,
                                   uint64_t max) {
  auto expected = fmt::format("expected an integer in {}..{}", min, max);
  if (value.empty() || value.size() > 9
      || !std::all_of(value.begin(), value.end(),
                      [](char c) { return c >= '0' && c <= '9'; }))
    return bad_flag(flag, value, expected);
  auto n = std::stoull(value);
  if (n < min || n > max)
    return bad_flag(flag, value, expected);
  return n;
}

caf::expected<caf::timespan> read_duration(const std::string& flag,
                                           const std::string& value) {
  auto parsed = caf::config_value::parse(value);
  if (parsed) {
    if (auto span = caf::get_if<caf::timespan>(&*parsed);
        span && span->count() >= 0)
      return *span;
  }
  return bad_flag(flag, value, "expected a duration like 8s or 500ms");
}

/// One place in the swarm: the node running there (if any) and what it saw.
struct slot {
  size_t index = 0;
  uint16_t port = 0;
  std::unique_ptr<node> n;
  std::atomic<uint64_t> connected{0};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<uint64_t> drops{0};
  uint64_t restarts = 0;
  std::optional<double> first_at_target;
  node_status last;
  bool at_target = false;
};

class swarm {
public:
  swarm(caf::actor_system& sys, const swarm_options& opts,
        stop_signals& signals, std::shared_ptr<reactor> io)
    : sys_(sys), opts_(opts), signals_(signals), io_(std::move(io)),
      names_(std::make_shared<resolver>()),
      out_(node_settings::log_format::text), rng_(std::random_device{}()) {
    target_ = opts.target
      ? *opts.target
      : static_cast<uint32_t>(std::min<size_t>(4, (opts.nodes - 2) / 3));
    for (size_t i = 0; i < opts.nodes; ++i) {
      slots_.push_back(std::make_unique<slot>());
      slots_.back()->index = i;
    }
    if (soaking())
      dead_ = std::make_unique<refusing_ports>(4);
  }

  int run() {
    started_ = clock_type::now();
    out_.line(fmt::format(
      "swarm: {} nodes on 127.0.0.1; node 0 is the seed, every other node "
      "knows only node 0 and keeps {} automatic outbound connection{}",
      opts_.nodes, target_, target_ == 1 ? "" : "s"));
    for (auto& s : slots_)
      if (!launch(*s))
        return finish(1);
    out_.line("phase 1: until every node holds its target");
    bool ok = settle(true);
    if (interrupted_)
      return finish(0);
    auto mesh_time = elapsed();
    if (ok)
      out_.line(
        fmt::format("every node holds its target after {:.2f} s", mesh_time));
    if (ok && soaking())
      return soak();
    if (ok && opts_.churn.count() > 0) {
      out_.line(fmt::format("phase 2: killing and restarting random nodes for "
                            "{}",
                            to_string_duration(opts_.churn)));
      churn(opts_.churn);
      if (interrupted_)
        return finish(0);
      if (!launch_missing())
        return finish(1);
      out_.line("phase 3: until every node holds its target again");
      auto t0 = elapsed();
      ok = settle(false);
      if (interrupted_)
        return finish(0);
      if (ok)
        out_.line(fmt::format("every node holds its target again {:.2f} s "
                              "after the churn",
                              elapsed() - t0));
    }
    if (!ok)
      out_.line(fmt::format("not every node reached its target within {}",
                            to_string_duration(opts_.settle_timeout)));
    return finish(ok ? 0 : 1);
  }

private:
  bool soaking() const {
    return opts_.soak.count() > 0;
  }

  double elapsed() const {
    return std::chrono::duration<double>(clock_type::now() - started_).count();
  }

  node_settings settings_for(const slot& s) {
    node_settings st;
    auto listen = net_address::parse(fmt::format("127.0.0.1:{}", s.port), true);
    st.listen.push_back(*listen);
    if (s.index != 0) {
      st.connect.push_back(seed_address_);
      st.manager.target_outbound = target_;
      // Leaves every node enough peers it is not yet connected to.
      st.manager.max_inbound = std::max<uint32_t>(2 * target_, 1);
      // Soak: two addresses that refuse, among those gossip brings.
      if (dead_ && !dead_->addresses().empty())
        for (int k = 0; k < 2; ++k)
          st.peers.push_back(
            dead_->addresses()[pick(dead_->addresses().size())].to_string());
    } else {
      st.manager.target_outbound = 0;
    }
    st.manager.retry_duration = 250ms;
    st.manager.max_retry_duration = 2s;
    st.manager.dial_timeout = 2s;
    st.handshake_timeout = 2s;
    st.ping_interval = 2s;
    st.status_interval = 1h; // the swarm polls instead
    // Every node on 127.0.0.1: loopback gossip is all there is, and one
    // address is one network group.
    st.allow_local_addresses = true;
    st.manager.max_inbound_per_ip = std::nullopt;
    st.manager.inbound_rate_per_ip = std::nullopt;
    st.outbound_per_netgroup = std::max<uint32_t>(target_, 1);
    return st;
  }

  bool launch(slot& s) {
    node_setup setup;
    setup.settings = settings_for(s);
    setup.io = io_;
    setup.names = names_;
    auto* sp = &s;
    auto* out = opts_.events ? &out_ : nullptr;
    setup.on_event = [sp, out](const node_event& ev) {
      if (out != nullptr)
        out->event(ev, fmt::format("node {}: ", sp->index));
      if (ev.event == "connected")
        ++sp->connected;
      else if (ev.event == "accepted")
        ++sp->accepted;
      else if (ev.event == "rejected")
        ++sp->rejected;
      else if (ev.event == "retry")
        ++sp->retries;
      else if (ev.event == "failed" && ev.reason_code != "no_address")
        ++sp->failures; // an empty address book is not a failed dial
      else if (ev.event == "peer_dropped")
        ++sp->drops;
    };
    auto n = node::make(sys_, std::move(setup));
    if (!n) {
      out_.line(fmt::format("node {}: {}", s.index, describe(n.error())));
      return false;
    }
    s.n = std::make_unique<node>(std::move(*n));
    s.port = s.n->listening().front().port();
    if (s.index == 0)
      seed_address_ = s.n->listening().front();
    s.n->start();
    return true;
  }

  /// A random index below `n` (> 0).
  size_t pick(size_t n) {
    return std::uniform_int_distribution<size_t>{0, n - 1}(rng_);
  }

  /// Starts every node that is down; false when one cannot start.
  bool launch_missing() {
    for (auto& s : slots_)
      if (!s->n && !launch(*s))
        return false;
    return true;
  }

  /// Starts `s` again on its port and says so (in soak mode only counts it).
  void restart(slot& s) {
    ++s.restarts;
    if (launch(s) && !soaking())
      out_.line(fmt::format("  {:6.2f} s  restarted node {} on 127.0.0.1:{}",
                            elapsed(), s.index, s.port));
  }

  void kill(slot& s) {
    if (!s.n)
      return;
    s.n->stop().wait();
    s.n.reset();
    s.at_target = false;
    s.last = node_status{};
  }

  bool node_at_target(slot& s) {
    if (!s.n)
      return false;
    s.last = s.n->status();
    auto want = s.index == 0 ? 0u : target_ + 1u; // + the permanent one
    return s.last.outbound >= want && s.last.peers_ready >= want;
  }

  /// Polls until every node holds its target, printing progress.
  bool settle(bool first) {
    auto deadline = clock_type::now() + opts_.settle_timeout;
    auto next_print = clock_type::now();
    for (;;) {
      size_t done = 0;
      uint64_t links = 0;
      for (auto& s : slots_) {
        s->at_target = node_at_target(*s);
        if (s->at_target) {
          ++done;
          if (first && !s->first_at_target)
            s->first_at_target = elapsed();
        }
        links += s->last.outbound;
      }
      auto now = clock_type::now();
      if (done == slots_.size() || now >= next_print) {
        out_.line(fmt::format("  {:6.2f} s  nodes at target {:>3}/{}  "
                              "outbound connections {:>4}  retries {:>4}  "
                              "failures {:>4}",
                              elapsed(), done, slots_.size(), links,
                              total(&slot::retries), total(&slot::failures)));
        next_print = now + 500ms;
      }
      if (done == slots_.size())
        return true;
      if (now >= deadline)
        return false;
      sample();
      if (signals_.wait_for(100ms) != 0) {
        interrupted_ = true;
        return false;
      }
    }
  }

  /// Kills and restarts random nodes for `length`; every node is up again
  /// at the end (unless interrupted). In soak mode a killed node stays down
  /// for a random 0.5..3 s (so dials to it fail meanwhile), and only a
  /// progress line every 5 s is printed.
  void churn(caf::timespan length) {
    auto until = clock_type::now() + length;
    struct pending_restart {
      slot* s;
      clock_type::time_point at;
    };
    std::vector<pending_restart> down;
    auto max_down = std::max<size_t>(1, slots_.size() / 4);
    auto next_kill = clock_type::now();
    while (clock_type::now() < until) {
      auto now = clock_type::now();
      for (auto i = down.begin(); i != down.end();) {
        if (i->at <= now) {
          restart(*i->s);
          i = down.erase(i);
        } else {
          ++i;
        }
      }
      if (now >= next_kill && down.size() < max_down) {
        // The seed goes first, so every node's permanent connection to it
        // shows its backoff; then random nodes.
        auto& victim = *slots_[kills_++ == 0 ? 0 : pick(slots_.size())];
        if (victim.n) {
          kill(victim);
          if (!soaking())
            out_.line(fmt::format("  {:6.2f} s  killed node {}{}", elapsed(),
                                  victim.index,
                                  victim.index == 0 ? " (the seed)" : ""));
          auto delay =
            soaking() ? std::chrono::milliseconds{500 + pick(2501)} : 1500ms;
          down.push_back({&victim, now + delay});
        }
        next_kill = now + 700ms;
      }
      if (soaking() && sample())
        out_.line(fmt::format("  {:6.2f} s  churning: {} kills, {} retries, "
                              "{} failed dials; {} descriptors, {} threads, "
                              "{} KiB resident",
                              elapsed(), kills_, total(&slot::retries),
                              total(&slot::failures), last_usage_.descriptors,
                              last_usage_.threads, last_usage_.rss_kib));
      if (signals_.wait_for(50ms) != 0) {
        interrupted_ = true;
        break;
      }
    }
    for (auto& d : down) {
      if (interrupted_)
        ++d.s->restarts; // interrupted: counted, but left down
      else
        restart(*d.s);
    }
  }

  /// In soak mode, reads the resources once a second (for their maximum);
  /// true on every fifth reading (a progress line is due).
  bool sample() {
    auto now = clock_type::now();
    if (!soaking() || now < next_sample_)
      return false;
    next_sample_ = now + 1s;
    last_usage_ = read_resource_usage();
    max_usage_ = max_of(max_usage_, last_usage_);
    return ++samples_ % 5 == 0;
  }

  /// Waits until every node holds its target, every connection is ready and
  /// no dial is in flight (the only state in which two readings compare),
  /// then reads the resources. Nothing when that does not happen within the
  /// settle timeout, or on a signal.
  std::optional<resource_usage> checkpoint() {
    if (!settle(false))
      return std::nullopt;
    auto deadline = clock_type::now() + opts_.settle_timeout;
    while (clock_type::now() < deadline) {
      auto quiet = std::all_of(slots_.begin(), slots_.end(), [this](auto& s) {
        return node_at_target(*s) && s->last.pending_dials == 0
          && s->last.peers_ready == s->last.outbound + s->last.inbound;
      });
      if (quiet) {
        auto usage = read_resource_usage();
        max_usage_ = max_of(max_usage_, usage);
        return usage;
      }
      if (signals_.wait_for(100ms) != 0) {
        interrupted_ = true;
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  /// Soak mode, after phase 1: churn for `soak` in rounds, each ending in a
  /// checkpoint; the first is the steady state, the last the end.
  int soak() {
    auto round = opts_.soak_warmup ? *opts_.soak_warmup : opts_.soak / 5;
    out_.line(fmt::format(
      "soak: churning for {} in rounds of {} (the first is the warm-up); "
      "restarts are delayed 0.5..3 s and every node knows 2 of {} ports that "
      "refuse; after each round every node holds its target again and the "
      "process's resources are read",
      to_string_duration(opts_.soak), to_string_duration(round),
      dead_->addresses().size()));
    std::optional<resource_usage> steady;
    resource_usage end;
    caf::timespan churned{0};
    for (int k = 1; churned < opts_.soak; ++k) {
      auto length = std::min(round, opts_.soak - churned);
      churn(length);
      churned += length;
      if (interrupted_)
        return finish(0);
      if (!launch_missing())
        return finish(1);
      auto t0 = elapsed();
      auto usage = checkpoint();
      if (interrupted_)
        return finish(0);
      if (!usage) {
        out_.line(fmt::format("checkpoint {}: not every node settled within "
                              "{}",
                              k, to_string_duration(opts_.settle_timeout)));
        return finish(1);
      }
      uint64_t links = 0;
      for (auto& s : slots_)
        links += s->last.outbound;
      out_.line(fmt::format("checkpoint {} after {} of churn (settled in "
                            "{:.2f} s, {} connections): {} descriptors, {} "
                            "threads, {} KiB resident{}",
                            k, to_string_duration(churned), elapsed() - t0,
                            links, usage->descriptors, usage->threads,
                            usage->rss_kib,
                            steady ? "" : " = the steady state"));
      if (!steady)
        steady = usage;
      end = *usage;
    }
    auto status = finish(0);
    auto rows = judge(*steady, end, max_usage_);
    out_.line("");
    for (auto& l : format_table(rows))
      out_.line(l);
    auto flat =
      std::all_of(rows.begin(), rows.end(), [](auto& r) { return r.flat(); });
    out_.line(flat ? "soak: every resource is flat"
                   : "soak: NOT flat (see GREW above)");
    return flat ? status : 1;
  }

  uint64_t total(std::atomic<uint64_t> slot::*field) const {
    uint64_t sum = 0;
    for (auto& s : slots_)
      sum += ((*s).*field).load();
    return sum;
  }

  int finish(int status) {
    for (auto& s : slots_)
      if (s->n)
        s->last = s->n->status();
    // Stop them all at once, then wait: faster than one by one.
    std::vector<std::shared_future<void>> stops;
    for (auto& s : slots_)
      if (s->n)
        stops.push_back(s->n->stop());
    for (auto& f : stops)
      f.wait();
    for (auto& s : slots_)
      s->n.reset();
    print_summary();
    return status;
  }

  void print_summary() {
    out_.line("");
    out_.line(fmt::format("{:>4}  {:>5}  {:>9}  {:>8}  {:>7}  {:>5}  {:>9}  "
                          "{:>8}  {:>7}  {:>8}  {:>5}  {:>8}",
                          "node", "port", "target at", "outbound", "inbound",
                          "peers", "connected", "accepted", "retries",
                          "failures", "drops", "restarts"));
    for (auto& s : slots_) {
      auto at = s->first_at_target
        ? fmt::format("{:.2f} s", *s->first_at_target)
        : std::string{"never"};
      out_.line(fmt::format(
        "{:>4}  {:>5}  {:>9}  {:>8}  {:>7}  {:>5}  {:>9}  "
        "{:>8}  {:>7}  {:>8}  {:>5}  {:>8}",
        s->index, s->port, at, s->last.outbound, s->last.inbound,
        s->last.peers_ready, s->connected.load(), s->accepted.load(),
        s->retries.load(), s->failures.load(), s->drops.load(), s->restarts));
    }
    out_.line(fmt::format("total: {} connections dialed, {} accepted, {} "
                          "rejected, {} retries, {} failures, {} peers "
                          "dropped",
                          total(&slot::connected), total(&slot::accepted),
                          total(&slot::rejected), total(&slot::retries),
                          total(&slot::failures), total(&slot::drops)));
  }

  caf::actor_system& sys_;
  swarm_options opts_;
  stop_signals& signals_;
  std::shared_ptr<reactor> io_;
  std::shared_ptr<resolver> names_;
  output out_;
  std::mt19937_64 rng_;
  uint32_t target_ = 0;
  std::vector<std::unique_ptr<slot>> slots_;
  net_address seed_address_;
  clock_type::time_point started_;
  bool interrupted_ = false;
  size_t kills_ = 0;
  // Soak mode only.
  std::unique_ptr<refusing_ports> dead_;
  clock_type::time_point next_sample_;
  uint64_t samples_ = 0;
  resource_usage last_usage_;
  resource_usage max_usage_;
};

} // namespace

caf::expected<swarm_options>
take_swarm_options(std::vector<std::string>& args) {
  swarm_options opts;
  bool any_flag = false;
  bool churn_flag = false;
  std::vector<std::string> rest;
  for (auto& arg : args) {
    auto eq = arg.find('=');
    auto flag = arg.substr(0, eq);
    auto value = eq == std::string::npos ? std::string{} : arg.substr(eq + 1);
    if (flag == "--swarm") {
      auto n = read_count(flag, value, 2, 500);
      if (!n)
        return std::move(n.error());
      opts.nodes = *n;
    } else if (flag == "--swarm-churn") {
      auto d = read_duration(flag, value);
      if (!d)
        return std::move(d.error());
      opts.churn = *d;
      any_flag = true;
      churn_flag = true;
    } else if (arg == "--swarm-events") {
      opts.events = true;
      any_flag = true;
    } else if (flag == "--swarm-target") {
      auto n = read_count(flag, value, 0, 64);
      if (!n)
        return std::move(n.error());
      opts.target = static_cast<uint32_t>(*n);
      any_flag = true;
    } else if (flag == "--soak" || flag == "--soak-warmup") {
      auto d = read_duration(flag, value);
      if (!d)
        return std::move(d.error());
      if (d->count() == 0)
        return bad_flag(flag, value, "expected a duration > 0");
      if (flag == "--soak")
        opts.soak = *d;
      else
        opts.soak_warmup = *d;
    } else if (flag == "--swarm-timeout") {
      auto d = read_duration(flag, value);
      if (!d)
        return std::move(d.error());
      if (d->count() == 0)
        return bad_flag(flag, value, "expected a duration > 0");
      opts.settle_timeout = *d;
      any_flag = true;
    } else {
      rest.push_back(arg);
    }
  }
  if (opts.soak_warmup && opts.soak.count() == 0)
    return make_error(errc::invalid_config, "--soak-warmup needs --soak=D");
  if (opts.soak_warmup && *opts.soak_warmup >= opts.soak)
    return bad_flag("--soak-warmup", to_string_duration(*opts.soak_warmup),
                    "expected less than --soak");
  if (churn_flag && opts.soak.count() > 0)
    return make_error(errc::invalid_config,
                      "--swarm-churn does not apply to --soak (the soak churns "
                      "for its whole duration)");
  if (opts.soak.count() > 0 && opts.nodes == 0)
    opts.nodes = 12;
  if (any_flag && opts.nodes == 0)
    return make_error(errc::invalid_config,
                      "--swarm-churn, --swarm-target, --swarm-timeout and "
                      "--swarm-events need --swarm=N or --soak=D");
  args = std::move(rest);
  return opts;
}

int run_swarm(caf::actor_system& sys, const swarm_options& opts,
              stop_signals& signals) {
  auto fds_before = open_descriptors();
  auto io = reactor::start();
  if (!io) {
    std::fprintf(stderr, "connmgr-node: cannot start the reactor: %s\n",
                 describe(io.error()).c_str());
    return 1;
  }
  int status = 0;
  {
    swarm s{sys, opts, signals, *io};
    status = s.run();
  }
  (*io)->stop();
  io = caf::error{}; // the last handle: closes the reactor's descriptors
  auto left = descriptors_left_open(fds_before, std::chrono::milliseconds{500});
  std::printf("descriptors open: %zu before the swarm, %zu after\n",
              fds_before.size(), fds_before.size() + left.size());
  if (!left.empty()) {
    std::fprintf(stderr,
                 "connmgr-node: %zu descriptors still open after "
                 "stop: %s\n",
                 left.size(), describe(left).c_str());
    return 1;
  }
  return status;
}

} // namespace connmgr
