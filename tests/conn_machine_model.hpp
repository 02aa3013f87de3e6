#pragma once

// Reference model and invariant checker for `conn_machine`, shared by the
// doctest model test (tests/conn_machine_model_test.cpp, seeded random
// choices) and the libFuzzer target (tests/fuzz/fuzz_conn_machine.cpp,
// choices decoded from the fuzz input). Plain C++: no test framework; a
// violation ends the run and `model_run::run` returns its description.
//
// A run drives one machine after another ("episodes": a fresh machine after
// each stop) with operations on a simulated clock:
//   start, connect (manual, permanent or one-shot; refusals included),
//   new_request, disconnect (with or without trigger_reconnect), remove,
//   address_ready (address, error, empty, duplicate), stale address_ready,
//   dial_succeeded / dial_failed for any dial in flight in any order, late
//   and repeated dial results (after cancel, remove, redial, stop, or a
//   second result for the same attempt), peer_gone (current or older
//   connection), timers in due order, stale timers, clock steps (0 ms to
//   10 min), inbound, inbound_closed (once and twice), and stop.
// Every effect is recorded; after every operation the model interprets the
// effects and checks, among others:
// - every request ends in exactly one terminal state (canceled,
//   disconnected, or failing without a retry), of the kind the operation
//   calls for, and is then forgotten; at stop, every live request is
//   abandoned at once (see `stop_abandoned` below) and none reappears;
// - every connection handed in (dial result or inbound) is delivered to the
//   user once (connected / accepted) or closed by the machine (late result /
//   rejected), never both, never neither; delivered connections stay open
//   until the user's disconnect/remove or the peer ends them, also at stop;
// - retry instants follow the policy: retry n is armed at now + d with
//   min(n x retry_duration, max_retry_duration) <= d <= that x (1 + jitter),
//   exact without jitter; the retry count resets as documented; the
//   failed-attempt throttle (max_failed_attempts, stable_connection_period,
//   dials in flight counted) is predicted by the model and a throttled
//   replacement waits exactly retry_duration;
// - counters match the model's own tallies, never decrease, and ignored
//   inputs change nothing; gauges match the live set.
//
// Over 500 lines because the model mirrors every input of conn_machine and
// the checker states every invariant; split, the two would drift apart.

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <iterator>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "connmgr/actors/conn_effects.hpp"
#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/messages/conn_request.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr::model {

using time_point = conn_effects::time_point;

// -- recording effects --------------------------------------------------------

enum class fx_kind : uint8_t {
  start_dial,
  cancel_dial,
  fetch,
  arm,
  connected,
  disconnected,
  failed,
  retry,
  accepted,
  rejected,
};

inline const char* to_string(fx_kind k) {
  // By enumerator, in their order.
  static constexpr const char* names[] = {
    "start_dial",   "cancel_dial", "fetch", "arm",      "connected",
    "disconnected", "failed",      "retry", "accepted", "rejected"};
  static_assert(std::size(names) == static_cast<size_t>(fx_kind::rejected) + 1,
                "one name per fx_kind");
  auto i = static_cast<size_t>(k);
  return i < std::size(names) ? names[i] : "?";
}

struct fx_event {
  fx_kind kind = fx_kind::failed;
  uint64_t id = 0; // request id
  uint64_t num = 0; // attempt, timer key or slot
  std::string address;
  time_point at{};
  conn_request req;
  connection_ptr conn;
  caf::error err;
  caf::timespan delay{};
};

/// Records every effect in order; the model interprets the log after each
/// operation.
struct log_effects : conn_effects {
  std::vector<fx_event> log;

  fx_event& add(fx_kind k) {
    log.emplace_back();
    log.back().kind = k;
    return log.back();
  }
  void start_dial(uint64_t id, uint64_t attempt,
                  const std::string& address) override {
    auto& e = add(fx_kind::start_dial);
    e.id = id;
    e.num = attempt;
    e.address = address;
  }
  void cancel_dial(uint64_t id, uint64_t attempt) override {
    auto& e = add(fx_kind::cancel_dial);
    e.id = id;
    e.num = attempt;
  }
  void fetch_address(uint64_t id) override {
    add(fx_kind::fetch).id = id;
  }
  void arm_timer(uint64_t key, time_point at) override {
    auto& e = add(fx_kind::arm);
    e.num = key;
    e.at = at;
  }
  void connected(const conn_request& req, const connection_ptr& conn) override {
    auto& e = add(fx_kind::connected);
    e.id = req.id;
    e.req = req;
    e.conn = conn;
  }
  void disconnected(const conn_request& req,
                    const caf::error& reason) override {
    auto& e = add(fx_kind::disconnected);
    e.id = req.id;
    e.req = req;
    e.err = reason;
  }
  void failed(const conn_request& req, const caf::error& reason) override {
    auto& e = add(fx_kind::failed);
    e.id = req.id;
    e.req = req;
    e.err = reason;
  }
  void retry_scheduled(const conn_request& req, caf::timespan delay) override {
    auto& e = add(fx_kind::retry);
    e.id = req.id;
    e.req = req;
    e.delay = delay;
  }
  void accepted(uint32_t, uint64_t slot, const connection_ptr& conn) override {
    auto& e = add(fx_kind::accepted);
    e.num = slot;
    e.conn = conn;
  }
  void rejected(uint32_t, const connection_ptr& conn, const caf::error& reason,
                const std::string&) override {
    auto& e = add(fx_kind::rejected);
    e.conn = conn;
    e.err = reason;
  }
};

// -- where choices come from --------------------------------------------------

/// The model asks its source for every choice it makes.
class choice_source {
public:
  virtual ~choice_source() = default;

  /// A value in [0, n); 0 when n <= 1.
  virtual uint64_t pick(uint64_t n) = 0;

  /// The index of one of the nonzero `weights` (at least one is nonzero).
  virtual size_t choose(const std::vector<uint64_t>& weights) = 0;

  /// True once the source has nothing more to say: the run ends.
  virtual bool exhausted() const {
    return false;
  }
};

/// Seeded pseudo-random choices, weighted as asked.
class random_source : public choice_source {
public:
  explicit random_source(uint64_t seed) : rng_(seed) {
    // nop
  }

  uint64_t pick(uint64_t n) override {
    return n <= 1 ? 0 : rng_() % n;
  }

  size_t choose(const std::vector<uint64_t>& weights) override {
    uint64_t sum = 0;
    for (auto w : weights)
      sum += w;
    auto r = pick(sum);
    for (size_t i = 0; i < weights.size(); ++i) {
      if (r < weights[i])
        return i;
      r -= weights[i];
    }
    return weights.size() - 1;
  }

private:
  std::mt19937_64 rng_;
};

/// Choices decoded from bytes (a fuzz input): `pick(n)` reads 1, 2, 4 or 8
/// bytes as n needs, `choose` reads one byte and maps it onto the weights
/// (every nonzero weight gets at least one of the 256 values). Past the end
/// every read yields 0 and `exhausted()` turns true.
class byte_source : public choice_source {
public:
  byte_source(const uint8_t* data, size_t size) : data_(data), size_(size) {
    // nop
  }

  uint64_t pick(uint64_t n) override {
    if (n <= 1)
      return 0;
    size_t len = n <= 0x100 ? 1 : n <= 0x10000 ? 2 : n <= 0x100000000 ? 4 : 8;
    uint64_t x = 0;
    for (size_t i = 0; i < len; ++i)
      x |= static_cast<uint64_t>(byte()) << (8 * i);
    return x % n;
  }

  size_t choose(const std::vector<uint64_t>& weights) override {
    auto share = shares(weights);
    uint64_t total = 0;
    for (auto x : share)
      total += x;
    auto b = static_cast<uint64_t>(byte()) % total;
    for (size_t i = 0; i < share.size(); ++i) {
      if (b < share[i])
        return i;
      b -= share[i];
    }
    return weights.size() - 1;
  }

  /// How many of the 256 byte values pick each weight: 1 for every nonzero
  /// weight plus its proportional part of the rest (total <= 256).
  static std::vector<uint64_t> shares(const std::vector<uint64_t>& weights) {
    uint64_t sum = 0;
    uint64_t nonzero = 0;
    for (auto w : weights) {
      sum += w;
      nonzero += w != 0 ? 1 : 0;
    }
    std::vector<uint64_t> share(weights.size(), 0);
    for (size_t i = 0; i < weights.size(); ++i)
      if (weights[i] != 0)
        share[i] = 1 + weights[i] * (256 - nonzero) / sum;
    return share;
  }

  bool exhausted() const override {
    return pos_ >= size_;
  }

  size_t consumed() const {
    return std::min(pos_, size_);
  }

private:
  uint8_t byte() {
    return pos_ < size_ ? data_[pos_++] : (++pos_, uint8_t{0});
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

/// Seeded random choices like `random_source`, also written down as the
/// bytes that make a `byte_source` repeat them: turns a random run into a
/// fuzz seed (see tests/fuzz/gen_conn_machine_seeds.cpp).
class recording_source : public choice_source {
public:
  explicit recording_source(uint64_t seed) : rng_(seed) {
    // nop
  }

  uint64_t pick(uint64_t n) override {
    if (n <= 1)
      return 0;
    auto x = next_ < script_.size() ? script_[next_++] % n : rng_() % n;
    size_t len = n <= 0x100 ? 1 : n <= 0x10000 ? 2 : n <= 0x100000000 ? 4 : 8;
    for (size_t i = 0; i < len; ++i)
      bytes_.push_back(static_cast<uint8_t>(x >> (8 * i)));
    return x;
  }

  size_t choose(const std::vector<uint64_t>& weights) override {
    auto biased = weights;
    for (size_t j = 0; j < biased.size() && j < boost_.size(); ++j)
      if (biased[j] != 0)
        biased[j] += boost_[j];
    auto i = weighted_.choose(biased);
    auto share = byte_source::shares(weights);
    uint64_t offset = 0;
    for (size_t j = 0; j < i; ++j)
      offset += share[j];
    bytes_.push_back(static_cast<uint8_t>(offset + rng_() % share[i]));
    return i;
  }

  /// Forces the next `pick` results (e.g. a configuration), then random.
  void script(std::vector<uint64_t> values) {
    script_ = std::move(values);
    next_ = 0;
  }

  /// Adds `extra[i]` to the weight of choice i whenever it is possible, so
  /// a recording can favour some operations (the bytes stay decodable with
  /// the plain weights).
  void boost(std::vector<uint64_t> extra) {
    boost_ = std::move(extra);
  }

  const std::vector<uint8_t>& bytes() const {
    return bytes_;
  }

private:
  std::mt19937_64 rng_;
  random_source weighted_{rng_()};
  std::vector<uint8_t> bytes_;
  std::vector<uint64_t> script_;
  size_t next_ = 0;
  std::vector<uint64_t> boost_;
};

// -- configurations -----------------------------------------------------------

struct named_config {
  std::string name;
  manager_config cfg;
  bool has_source = true;
};

/// A configuration whose only inbound rule is `max_inbound`: the model
/// predicts that one; the other admission rules and eviction have their own
/// tests (tests/inbound_admission_test.cpp), as have the class budgets
/// (tests/operator_test.cpp), which are off here.
inline manager_config model_config() {
  manager_config c;
  c.max_manual = std::nullopt;
  c.max_inbound = std::nullopt;
  c.max_inbound_per_ip = std::nullopt;
  c.max_pending_inbound = std::nullopt;
  c.inbound_rate_per_ip = std::nullopt;
  c.evict_inbound = false;
  return c;
}

/// model_config() with `target` automatic connections, `slots` dial slots
/// and a backoff from `retry` up to `max_retry`: what every preset sets.
inline manager_config preset_base(uint32_t target, uint32_t slots,
                                  caf::timespan retry,
                                  caf::timespan max_retry) {
  auto c = model_config();
  c.target_outbound = target;
  c.max_pending_dials = slots;
  c.retry_duration = retry;
  c.max_retry_duration = max_retry;
  return c;
}

/// The hand-picked configurations of the doctest.
inline std::vector<named_config> preset_configs() {
  using namespace std::chrono_literals;
  std::vector<named_config> result;
  {
    // Small target, few dial slots, tight inbound limit, quick throttle.
    auto c = preset_base(4, 2, 1s, 10s);
    c.max_inbound = 3;
    c.max_failed_attempts = 3;
    c.stable_connection_period = 30s;
    // Each pool address its own network, so failures span groups.
    c.netgroup_bits_ipv4 = 32;
    result.push_back({"tight", c, true});
  }
  {
    // No address source, duplicates allowed, unlimited inbound.
    auto c = preset_base(3, 3, 2s, 20s);
    c.reject_duplicate_addresses = false;
    result.push_back({"no-source", c, false});
  }
  {
    // One dial slot, jitter, no inbound at all, reset on every success.
    auto c = preset_base(8, 1, 500ms, 5s);
    c.max_inbound = 0;
    c.retry_jitter = 0.5;
    c.jitter_seed = 42;
    c.max_failed_attempts = 1;
    c.stable_connection_period = 0s;
    c.netgroup_bits_ipv4 = 32;
    result.push_back({"one-slot", c, true});
  }
  {
    // Plenty of slots, duplicates allowed, default-ish throttle.
    auto c = preset_base(2, 128, 3s, 60s);
    c.max_inbound = 5;
    c.reject_duplicate_addresses = false;
    c.max_failed_attempts = 5;
    c.stable_connection_period = 60s;
    result.push_back({"wide", c, true});
  }
  return result;
}

/// A valid configuration drawn from `src` (10 choices, one byte each from a
/// `byte_source`): target 0..5, 1..3 or 128 dial slots, inbound limit
/// none/0..3, duplicates rejected or not, retry base 100 ms..3 s with a cap of
/// 1..60 x base, jitter 0/0.5/1, throttle after 1..5 failures, stable period
/// 0/1/30/60 s, with or without an address source.
inline named_config draw_config(choice_source& src) {
  using namespace std::chrono_literals;
  named_config result;
  result.cfg = model_config();
  auto& c = result.cfg;
  c.target_outbound = static_cast<uint32_t>(src.pick(6));
  const uint32_t slots[] = {1, 2, 3, 128};
  c.max_pending_dials = slots[src.pick(4)];
  auto inbound = src.pick(5);
  if (inbound == 0)
    c.max_inbound = std::nullopt;
  else
    c.max_inbound = static_cast<uint32_t>(inbound - 1);
  c.reject_duplicate_addresses = src.pick(2) == 0;
  const caf::timespan bases[] = {100ms, 500ms, 1s, 3s};
  c.retry_duration = bases[src.pick(4)];
  const int64_t caps[] = {1, 4, 10, 60};
  c.max_retry_duration = c.retry_duration * caps[src.pick(4)];
  const double jitters[] = {0.0, 0.0, 0.5, 1.0};
  c.retry_jitter = jitters[src.pick(4)];
  c.jitter_seed = 7;
  c.max_failed_attempts = static_cast<uint32_t>(1 + src.pick(5));
  c.netgroup_bits_ipv4 = src.pick(2) == 0 ? 16 : 32;
  const caf::timespan periods[] = {0s, 1s, 30s, 60s};
  c.stable_connection_period = periods[src.pick(4)];
  result.has_source = src.pick(4) != 0;
  std::ostringstream name;
  name << "drawn(target=" << c.target_outbound
       << " slots=" << c.max_pending_dials << " inbound="
       << (c.max_inbound ? std::to_string(*c.max_inbound) : "none")
       << " dup=" << (c.reject_duplicate_addresses ? "reject" : "allow")
       << " base=" << to_string_duration(c.retry_duration)
       << " cap=" << to_string_duration(c.max_retry_duration)
       << " jitter=" << c.retry_jitter
       << " max_failed=" << c.max_failed_attempts
       << " stable=" << to_string_duration(c.stable_connection_period)
       << " source=" << result.has_source << ")";
  result.name = name.str();
  return result;
}

// -- the model ----------------------------------------------------------------

/// The operations, in the order of the weight table.
enum class op : uint8_t {
  start,
  connect,
  new_request,
  disconnect,
  remove,
  address_ready,
  stale_address_ready,
  dial_succeeded,
  dial_failed,
  late_dial_result,
  peer_gone,
  timer_fired,
  stale_timer,
  advance_clock,
  inbound,
  inbound_closed,
  double_inbound_closed,
  stop,
  count_
};

inline const char* to_string(op x) {
  switch (x) {
    case op::start:
      return "start";
    case op::connect:
      return "connect";
    case op::new_request:
      return "new_request";
    case op::disconnect:
      return "disconnect";
    case op::remove:
      return "remove";
    case op::address_ready:
      return "address_ready";
    case op::stale_address_ready:
      return "stale address_ready";
    case op::dial_succeeded:
      return "dial_succeeded";
    case op::dial_failed:
      return "dial_failed";
    case op::late_dial_result:
      return "late dial result";
    case op::peer_gone:
      return "peer_gone";
    case op::timer_fired:
      return "timer_fired";
    case op::stale_timer:
      return "stale timer";
    case op::advance_clock:
      return "advance clock";
    case op::inbound:
      return "inbound";
    case op::inbound_closed:
      return "inbound_closed";
    case op::double_inbound_closed:
      return "double inbound_closed";
    case op::stop:
      return "stop";
    case op::count_:
      break;
  }
  return "?";
}

constexpr size_t op_count = static_cast<size_t>(op::count_);

struct run_options {
  /// Inputs given to a stopped machine before the next episode begins.
  size_t steps_after_stop = 150;
  /// Live requests at most (connect and new_request pause above).
  size_t max_live = 40;
  /// Also demand that stop reports a terminal state for every live request
  /// that is not established (the machine abandons them silently today).
  bool strict_stop = false;
};

#define CONNMGR_MODEL_CHECK(cond)                                              \
  do {                                                                         \
    if (!(cond))                                                               \
      fail_check(#cond, __LINE__);                                             \
  } while (false)

/// One run over many short machine lifetimes ("episodes").
class model_run {
public:
  model_run(const named_config& cfg, choice_source& src, run_options opts = {})
    : name_(cfg.name), cfg_(cfg.cfg), has_source_(cfg.has_source), src_(src),
      opts_(opts) {
    // nop
  }

  /// Gives the machine up to `max_inputs` inputs (operations that reach the
  /// machine; clock steps count too), fewer if the source runs dry. Returns
  /// an empty string, or the first violation with the context to debug it.
  std::string run(size_t max_inputs) {
    try {
      if (!m_)
        new_episode();
      while (inputs_ < max_inputs && !src_.exhausted()) {
        if (stopped_ && steps_after_stop_ >= opts_.steps_after_stop)
          new_episode();
        one_step();
      }
    } catch (failure& f) {
      return f.what;
    }
    return {};
  }

  /// Inputs given to the machine so far.
  uint64_t inputs() const {
    return inputs_;
  }

  /// Steps taken (an operation that had nothing to act on is a step but no
  /// input).
  uint64_t steps() const {
    return step_;
  }

  /// What the run exercised, one line.
  std::string coverage() const {
    std::ostringstream out;
    out << inputs_ << " inputs, " << episode_ << " episodes, "
        << total_connected_all_ << " connected, " << cov_retries_
        << " retries, " << cov_throttled_ << " throttled, " << cov_late_
        << " late conns closed, " << cov_rejected_ << " inbound rejected, "
        << cov_queued_steps_ << " steps with queued dials, " << cov_quiet_
        << " ignored inputs, " << cov_abandoned_
        << " requests abandoned at stop; ops:";
    for (size_t i = 0; i < op_count; ++i)
      out << ' ' << to_string(static_cast<op>(i)) << '=' << op_counts_[i];
    return out.str();
  }

  /// Requests alive (not established) when a stop came: they end without a
  /// terminal event (see `run_options::strict_stop`).
  uint64_t stop_abandoned() const {
    return cov_abandoned_;
  }

private:
  struct failure {
    std::string what;
  };

  enum class ph : uint8_t { other, fetching, dialing, waiting, established };

  struct mreq {
    ph phase = ph::other;
    uint64_t attempt = 0;
    uint64_t key = 0;
    bool automatic = false;
    bool permanent = false;
    uint32_t retry_count = 0;
    time_point established_at{};
    connection_ptr conn;
    std::vector<connection_ptr> old;
  };

  struct mdial {
    uint64_t id;
    std::string address;
  };

  struct totals {
    uint64_t created = 0;
    uint64_t start_dials = 0;
    uint64_t connected = 0;
    uint64_t dials_failed = 0;
    uint64_t disconnected = 0;
    uint64_t retries = 0;
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    uint64_t late = 0;
    uint64_t throttled = 0;
  };

  /// A counter of `conn_stats` and the model's tally of the same events.
  struct counter {
    const char* name;
    uint64_t conn_stats::*stat;
    const char* tally_name;
    uint64_t totals::*tally;
  };

#define CONNMGR_MODEL_COUNTER(stat, tally)                                     \
  counter {                                                                    \
#stat, &conn_stats::stat, #tally, &totals::tally                           \
  }

  static constexpr counter counters[] = {
    CONNMGR_MODEL_COUNTER(requests_created, created),
    CONNMGR_MODEL_COUNTER(dials_started, start_dials),
    CONNMGR_MODEL_COUNTER(dials_succeeded, connected),
    CONNMGR_MODEL_COUNTER(dials_failed, dials_failed),
    CONNMGR_MODEL_COUNTER(late_connections_closed, late),
    CONNMGR_MODEL_COUNTER(retries_scheduled, retries),
    CONNMGR_MODEL_COUNTER(throttled, throttled),
    CONNMGR_MODEL_COUNTER(disconnections, disconnected),
    CONNMGR_MODEL_COUNTER(inbound_accepted, accepted),
    CONNMGR_MODEL_COUNTER(inbound_rejected, rejected),
  };

#undef CONNMGR_MODEL_COUNTER

  [[noreturn]] void fail_check(const std::string& cond, int line) {
    std::ostringstream out;
    out << "model violation (conn_machine_model.hpp:" << line << "): " << cond
        << "\n  config " << name_ << "\n  step=" << step_
        << " input=" << inputs_ << " episode=" << episode_
        << " op=" << to_string(op_) << " stopped=" << stopped_ << " now=+"
        << (now_ - epoch()).count() << "ns\n  effects:";
    for (auto& e : fx_.log) {
      out << "\n    " << to_string(e.kind) << " id=" << e.id
          << " num=" << e.num;
      if (e.kind == fx_kind::failed || e.kind == fx_kind::disconnected
          || e.kind == fx_kind::retry || e.kind == fx_kind::connected)
        out << " req={" << connmgr::to_string(e.req) << "}";
      if (e.err)
        out << " err=" << describe(e.err);
      if (e.kind == fx_kind::retry)
        out << " delay=" << e.delay.count() << "ns";
      if (e.kind == fx_kind::arm)
        out << " at=+" << (e.at - epoch()).count() << "ns";
    }
    throw failure{out.str()};
  }

  static time_point epoch() {
    return time_point{} + std::chrono::hours{1};
  }

  uint64_t pick(uint64_t n) {
    return src_.pick(n);
  }
  bool chance(uint64_t percent) {
    return pick(100) < percent;
  }
  template <class C>
  auto pick_from(const C& c) {
    auto i = c.begin();
    std::advance(i, static_cast<long>(pick(c.size())));
    return i;
  }
  /// Keeps a bounded sample of stale things to replay.
  template <class T>
  void remember(std::vector<T>& xs, T x) {
    if (xs.size() < 512)
      xs.push_back(std::move(x));
    else
      xs[pick(xs.size())] = std::move(x);
  }

  std::string pool_address() {
    return "10.0.0." + std::to_string(1 + pick(6)) + ":8333";
  }

  void new_episode() {
    ++episode_;
    fx_.log.clear();
    m_ = std::make_unique<conn_machine>(cfg_, has_source_, fx_);
    now_ = epoch();
    started_ = false;
    stopped_ = false;
    steps_after_stop_ = 0;
    live_.clear();
    dials_.clear();
    stale_dials_.clear();
    fetching_.clear();
    stale_fetches_.clear();
    armed_.clear();
    stale_keys_.clear();
    slots_.clear();
    released_slots_.clear();
    max_key_ = 0;
    max_slot_ = 0;
    tot_ = totals{};
    failed_attempts_ = 0;
    stable_since_failure_ = false;
    last_failure_.reset();
    proven_.clear();
    first_group_.reset();
    groups_span_ = false;
    prev_ = m_->stats();
    last_reqs_.clear();
  }

  // -- one step ---------------------------------------------------------------

  void one_step() {
    ++step_;
    fx_.log.clear();
    step_conns_.clear();
    expect_quiet_ = false;
    refusal_ = std::nullopt;
    connect_result_ = 0;
    explicit_id_ = 0;
    target_id_ = 0;
    target_survives_ = false;
    target_end_ = std::nullopt;
    inbound_conn_.reset();
    inbound_reject_ = false;
    stop_op_ = false;
    applied_ = true;
    failure_predicted_ = false;
    throttle_predicted_ = false;
    expected_fail_ = std::nullopt;
    choose_and_apply();
    if (!applied_)
      return;
    ++inputs_;
    ++op_counts_[static_cast<size_t>(op_)];
    if (stopped_)
      ++steps_after_stop_;
    check_step();
  }

  void choose_and_apply() {
    // Weights (x100 so that stop can be rare), zero when the input makes no
    // sense right now.
    auto room = live_.size() < opts_.max_live;
    std::vector<uint64_t> w(op_count, 0);
    auto set = [&](op o, uint64_t x) { w[static_cast<size_t>(o)] = x; };
    set(op::start, started_ ? 100 : 600);
    set(op::connect, room ? 800 : 0);
    set(op::new_request, room ? 200 : 0);
    set(op::disconnect, 400);
    set(op::remove, 300);
    set(op::address_ready, fetching_.empty() ? 0 : 1200);
    set(op::stale_address_ready, stale_fetches_.empty() ? 0 : 100);
    set(op::dial_succeeded, dials_.empty() ? 0 : 1000);
    set(op::dial_failed, dials_.empty() ? 0 : 800);
    set(op::late_dial_result, stale_dials_.empty() ? 0 : 300);
    set(op::peer_gone, 500);
    set(op::timer_fired, armed_.empty() ? 0 : 800);
    set(op::stale_timer, 100);
    set(op::advance_clock, 300);
    set(op::inbound, 400);
    set(op::inbound_closed, slots_.empty() ? 0 : 400);
    set(op::double_inbound_closed, released_slots_.empty() ? 0 : 100);
    set(op::stop, stopped_ ? 0 : 4);
    op_ = static_cast<op>(src_.choose(w));
    apply();
  }

  uint64_t random_request_id() {
    if (!live_.empty() && !chance(10))
      return pick_from(live_)->first;
    return chance(50) && !gone_ids_.empty() ? gone_ids_[pick(gone_ids_.size())]
                                            : max_id_seen_ + 1000 + pick(1000);
  }

  bool address_in_use(const std::string& address) const {
    return cfg_.reject_duplicate_addresses
      && std::any_of(
             last_reqs_.begin(), last_reqs_.end(),
             [&](const conn_request& x) { return x.address == address; });
  }

  // -- the failed-attempt throttle, as the documentation states it ----------

  /// Whether connection `mr` (still open, or closing now) lasted
  /// stable_connection_period since the last failure: with a zero period,
  /// whether it was made at or after the last failure.
  bool lasted_since_failure(const mreq& mr) const {
    auto period = cfg_.stable_connection_period;
    if (!last_failure_)
      return now_ - mr.established_at >= period;
    if (period.count() == 0)
      return mr.established_at >= *last_failure_;
    return now_ - std::max(mr.established_at, *last_failure_) >= period;
  }

  /// An established connection ends (any way): remember whether it proved
  /// stable since the last failure.
  void connection_ends(const mreq& mr) {
    if (lasted_since_failure(mr))
      stable_since_failure_ = true;
  }

  /// An automatic request's attempt failed now (`except`: the request that
  /// failed, gone by the time the machine counts; `address`: what it
  /// dialed, empty when it got no address). Predicts the count and whether
  /// its replacement is throttled: once anything connected, only addresses
  /// that connected count, and the throttle needs failures in two network
  /// groups (or one without an address).
  void automatic_failure(uint64_t except, const std::string& address) {
    failure_predicted_ = true;
    if (!address.empty() && !proven_.empty() && proven_.count(address) == 0) {
      throttle_predicted_ = false;
      return;
    }
    bool stable = stable_since_failure_;
    for (auto& kvp : live_)
      if (kvp.first != except && kvp.second.phase == ph::established
          && lasted_since_failure(kvp.second))
        stable = true;
    if (stable) {
      failed_attempts_ = 0;
      first_group_.reset();
      groups_span_ = false;
    }
    stable_since_failure_ = false;
    last_failure_ = now_;
    ++failed_attempts_;
    auto group = address.empty() ? std::string{} : group_of(address);
    if (group.empty() || (first_group_ && *first_group_ != group))
      groups_span_ = true;
    if (!first_group_)
      first_group_ = group;
    uint64_t automatic_dials = 0;
    for (auto& d : dials_)
      if (live_.at(d.second.id).automatic)
        ++automatic_dials;
    throttle_predicted_ = groups_span_
      && failed_attempts_ + automatic_dials >= cfg_.max_failed_attempts;
  }

  /// The pool's addresses are 10.0.0.N:8333: one /16, N's own /32.
  std::string group_of(const std::string& address) const {
    if (cfg_.netgroup_bits_ipv4 >= 32)
      return address.substr(0, address.find(':'));
    return "10.0.0.0/16";
  }

  // -- applying an operation ------------------------------------------------

  void apply() {
    switch (op_) {
      case op::start:
        if (!stopped_)
          started_ = true;
        m_->start(now_);
        break;
      case op::connect: {
        uint64_t id = 0;
        std::string address = chance(2) ? std::string{} : pool_address();
        bool permanent = chance(30);
        if (!live_.empty() && chance(4))
          id = pick_from(live_)->first;
        explicit_id_ = id;
        // What the contract says must happen.
        std::optional<errc> expected;
        if (stopped_)
          expected = errc::stopped;
        else if (address.empty())
          expected = errc::invalid_address;
        else if (id != 0)
          expected = errc::duplicate_request;
        else if (address_in_use(address))
          expected = errc::duplicate_address;
        auto res = m_->connect(id, address, permanent, now_);
        if (expected) {
          CONNMGR_MODEL_CHECK(!res);
          if (!res)
            CONNMGR_MODEL_CHECK(errc_of(res.error()) == *expected);
          refusal_ = expected;
        } else {
          CONNMGR_MODEL_CHECK(res);
          connect_result_ = *res;
        }
        break;
      }
      case op::new_request:
        m_->new_request(now_);
        if (!stopped_ && !has_source_)
          refusal_ = errc::no_address;
        break;
      case op::disconnect:
      case op::remove: {
        bool remove = op_ == op::remove;
        auto id = random_request_id();
        auto trigger = remove ? false : chance(50);
        auto j = live_.find(id);
        if (j == live_.end()) {
          expect_quiet_ = true;
        } else if (!stopped_) {
          // What the contract says becomes of the request.
          auto& mr = j->second;
          target_id_ = id;
          bool est = mr.phase == ph::established;
          target_survives_ = !remove && est && (mr.permanent || trigger);
          if (!target_survives_)
            target_end_ = est ? conn_state::disconnected : conn_state::canceled;
          if (est)
            connection_ends(mr);
        }
        m_->disconnect(id, !remove, trigger, now_);
        break;
      }
      case op::address_ready: {
        auto i = pick_from(fetching_);
        auto id = *i;
        fetching_.erase(i);
        remember(stale_fetches_, id);
        auto& mr = live_.at(id);
        mr.phase = ph::other;
        auto r = pick(10);
        std::optional<errc> fails;
        if (r < 7) {
          auto address = pool_address();
          if (address_in_use(address))
            fails = errc::duplicate_address;
          m_->address_ready(id, address, now_);
        } else if (r < 9) {
          fails = errc::no_address;
          m_->address_ready(id, make_error(errc::no_address), now_);
        } else {
          fails = errc::no_address;
          m_->address_ready(id, std::string{}, now_);
        }
        if (fails) {
          ++tot_.dials_failed;
          expected_fail_ = std::make_pair(id, *fails);
          // Requests that fetch are never permanent: this one ends.
          target_id_ = id;
          target_end_ = conn_state::failing;
          if (mr.automatic)
            automatic_failure(id, std::string{});
        }
        break;
      }
      case op::stale_address_ready: {
        auto id = stale_fetches_[pick(stale_fetches_.size())];
        if (fetching_.count(id) != 0) {
          applied_ = false;
          break;
        }
        expect_quiet_ = true;
        m_->address_ready(id, pool_address(), now_);
        break;
      }
      case op::dial_succeeded:
      case op::dial_failed: {
        auto i = pick_from(dials_);
        auto attempt = i->first;
        auto id = i->second.id;
        auto address = i->second.address;
        dials_.erase(i);
        // A second result for the same attempt must be ignored.
        remember(stale_dials_, std::make_pair(id, attempt));
        auto& mr = live_.at(id);
        mr.phase = ph::other;
        if (op_ == op::dial_succeeded) {
          auto conn = make_memory_connection(address);
          step_conns_.emplace_back(conn, id);
          m_->dial_succeeded(id, attempt, conn, now_);
        } else {
          ++tot_.dials_failed;
          expected_fail_ = std::make_pair(id, errc::refused);
          if (!mr.permanent) {
            target_id_ = id;
            target_end_ = conn_state::failing;
          }
          if (mr.automatic)
            automatic_failure(id, address);
          m_->dial_failed(id, attempt, make_error(errc::refused), now_);
        }
        break;
      }
      case op::late_dial_result: {
        auto k = pick(stale_dials_.size());
        auto d = stale_dials_[k];
        if (dials_.count(d.second) != 0) {
          applied_ = false;
          break;
        }
        if (chance(70)) {
          stale_dials_[k] = stale_dials_.back();
          stale_dials_.pop_back();
        }
        expect_quiet_ = true;
        if (chance(60)) {
          auto conn = make_memory_connection("late");
          step_conns_.emplace_back(conn, 0);
          m_->dial_succeeded(d.first, d.second, conn, now_);
        } else {
          m_->dial_failed(d.first, d.second, make_error(errc::timed_out), now_);
        }
        break;
      }
      case op::peer_gone: {
        std::vector<uint64_t> est;
        for (auto& kvp : live_)
          if (kvp.second.phase == ph::established || !kvp.second.old.empty())
            est.push_back(kvp.first);
        if (est.empty()) {
          applied_ = false;
          break;
        }
        auto id = est[pick(est.size())];
        auto& mr = live_.at(id);
        connection_ptr conn;
        if (mr.phase == ph::established && !chance(15)) {
          conn = mr.conn;
          if (!stopped_) {
            target_id_ = id;
            target_survives_ = mr.permanent;
            if (!target_survives_)
              target_end_ = conn_state::disconnected;
            connection_ends(mr);
            // A peer that hangs up before the stable period is a failure.
            if (mr.automatic
                && now_ - mr.established_at < cfg_.stable_connection_period)
              automatic_failure(id, mr.conn->remote_address());
          }
        } else if (!mr.old.empty()) {
          conn = mr.old[pick(mr.old.size())];
          expect_quiet_ = true;
        } else {
          applied_ = false;
          break;
        }
        m_->peer_gone(id, conn, make_error(errc::connection_closed), now_);
        break;
      }
      case op::timer_fired: {
        auto i = std::min_element(
          armed_.begin(), armed_.end(),
          [](const auto& x, const auto& y) { return x.second < y.second; });
        auto key = i->first;
        if (i->second > now_)
          now_ = i->second;
        armed_.erase(i);
        remember(stale_keys_, key);
        for (auto& kvp : live_)
          if (kvp.second.phase == ph::waiting && kvp.second.key == key)
            kvp.second.phase = ph::other;
        m_->timer_fired(key, now_);
        break;
      }
      case op::stale_timer: {
        auto key = stale_keys_.empty() || chance(20)
          ? max_key_ + 1 + pick(100)
          : stale_keys_[pick(stale_keys_.size())];
        if (armed_.count(key) != 0) {
          applied_ = false;
          break;
        }
        expect_quiet_ = true;
        m_->timer_fired(key, now_);
        break;
      }
      case op::advance_clock: {
        auto r = pick(20);
        if (r == 0)
          ; // a zero step
        else if (r == 1)
          now_ += std::chrono::milliseconds{pick(600'000)};
        else
          now_ += std::chrono::milliseconds{pick(20'000)};
        break;
      }
      case op::inbound:
        inbound_conn_ = make_memory_connection("192.168.0.1:1");
        inbound_reject_ =
          stopped_ || (cfg_.max_inbound && slots_.size() >= *cfg_.max_inbound);
        m_->inbound(static_cast<uint32_t>(pick(3)), inbound_conn_, now_);
        break;
      case op::inbound_closed: {
        auto i = pick_from(slots_);
        i->second->close();
        remember(released_slots_, i->first);
        auto slot = i->first;
        slots_.erase(i);
        m_->inbound_closed(slot);
        break;
      }
      case op::double_inbound_closed:
        expect_quiet_ = true;
        m_->inbound_closed(released_slots_[pick(released_slots_.size())]);
        break;
      case op::stop:
        stop_op_ = true;
        m_->stop();
        break;
      case op::count_:
        applied_ = false;
        break;
    }
  }

  // -- checks -----------------------------------------------------------------

  void end_request(uint64_t id) {
    auto i = live_.find(id);
    CONNMGR_MODEL_CHECK(i != live_.end());
    auto& mr = i->second;
    CONNMGR_MODEL_CHECK(mr.phase != ph::dialing && mr.phase != ph::established);
    if (mr.phase == ph::fetching) {
      fetching_.erase(id);
      remember(stale_fetches_, id);
    }
    if (mr.phase == ph::waiting) {
      armed_.erase(mr.key);
      remember(stale_keys_, mr.key);
    }
    for (auto& d : dials_)
      CONNMGR_MODEL_CHECK(d.second.id != id);
    remember(gone_ids_, id);
    live_.erase(i);
  }

  bool retry_follows(size_t i, uint64_t id) const {
    auto& log = fx_.log;
    return i + 2 < log.size() && log[i + 1].kind == fx_kind::arm
      && log[i + 2].kind == fx_kind::retry && log[i + 2].id == id;
  }

  void check_step() {
    auto& log = fx_.log;
    auto reqs = m_->requests();
    auto s = m_->stats();
    CONNMGR_MODEL_CHECK(m_->stopped() == stopped_
                        || (stop_op_ && m_->stopped()));
    if (stop_op_)
      stopped_ = true;
    if (expect_quiet_)
      CONNMGR_MODEL_CHECK(log.empty());
    if (stopped_) {
      for (auto& e : log) {
        CONNMGR_MODEL_CHECK(e.kind == fx_kind::failed
                            || e.kind == fx_kind::rejected
                            || (stop_op_ && e.kind == fx_kind::cancel_dial));
      }
    }
    // A refusal is the only effect of its input.
    if (refusal_) {
      CONNMGR_MODEL_CHECK(log.size() == 1 && log[0].kind == fx_kind::failed
                          && errc_of(log[0].err) == *refusal_);
      CONNMGR_MODEL_CHECK(live_.count(log[0].id) == 0
                          || log[0].id == explicit_id_);
      CONNMGR_MODEL_CHECK(log[0].req.state == conn_state::failing);
      log.clear();
    }
    // Requests that appeared during this step: fresh ids only.
    std::vector<uint64_t> new_ids;
    for (auto& r : reqs) {
      if (live_.count(r.id) != 0)
        continue;
      CONNMGR_MODEL_CHECK(r.id > max_id_seen_);
      max_id_seen_ = r.id;
      ++tot_.created;
      if (r.automatic)
        CONNMGR_MODEL_CHECK(started_ && has_source_ && !stopped_);
      else
        CONNMGR_MODEL_CHECK(r.id == connect_result_ || op_ == op::new_request);
      mreq mr;
      mr.automatic = r.automatic;
      mr.permanent = r.permanent;
      live_.emplace(r.id, std::move(mr));
      new_ids.push_back(r.id);
    }
    // Interpret the effects in order.
    std::vector<uint64_t> terminal;
    std::vector<conn_state> terminal_states;
    std::vector<uint64_t> unbound_keys;
    size_t inbound_outcomes = 0;
    bool expected_fail_seen = false;
    for (size_t i = 0; i < log.size(); ++i) {
      auto& e = log[i];
      switch (e.kind) {
        case fx_kind::start_dial: {
          CONNMGR_MODEL_CHECK(!stopped_);
          CONNMGR_MODEL_CHECK(e.num > max_attempt_seen_);
          max_attempt_seen_ = e.num;
          CONNMGR_MODEL_CHECK(!e.address.empty());
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase == ph::other);
          if (cfg_.reject_duplicate_addresses)
            for (auto& d : dials_)
              CONNMGR_MODEL_CHECK(d.second.address != e.address);
          dials_.emplace(e.num, mdial{e.id, e.address});
          j->second.phase = ph::dialing;
          j->second.attempt = e.num;
          ++tot_.start_dials;
          break;
        }
        case fx_kind::cancel_dial: {
          auto d = dials_.find(e.num);
          CONNMGR_MODEL_CHECK(d != dials_.end() && d->second.id == e.id);
          dials_.erase(d);
          remember(stale_dials_, std::make_pair(e.id, e.num));
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase == ph::dialing
                              && j->second.attempt == e.num);
          j->second.phase = ph::other;
          break;
        }
        case fx_kind::fetch: {
          CONNMGR_MODEL_CHECK(!stopped_ && has_source_);
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase == ph::other);
          j->second.phase = ph::fetching;
          CONNMGR_MODEL_CHECK(fetching_.insert(e.id).second);
          break;
        }
        case fx_kind::arm:
          CONNMGR_MODEL_CHECK(!stopped_);
          CONNMGR_MODEL_CHECK(e.at >= now_);
          CONNMGR_MODEL_CHECK(e.num > max_key_);
          max_key_ = e.num;
          armed_.emplace(e.num, e.at);
          if (i + 1 >= log.size() || log[i + 1].kind != fx_kind::retry)
            unbound_keys.push_back(e.num);
          break;
        case fx_kind::retry: {
          CONNMGR_MODEL_CHECK(i > 0 && log[i - 1].kind == fx_kind::arm);
          CONNMGR_MODEL_CHECK(log[i - 1].at == now_ + e.delay);
          CONNMGR_MODEL_CHECK(e.delay > caf::timespan{0});
          CONNMGR_MODEL_CHECK(e.req.state == conn_state::pending
                              || e.req.state == conn_state::failing);
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase == ph::other);
          // Only permanent requests and triggered reconnects retry.
          CONNMGR_MODEL_CHECK(j->second.permanent
                              || e.req.state == conn_state::pending);
          j->second.phase = ph::waiting;
          j->second.key = log[i - 1].num;
          ++tot_.retries;
          // Retry n waits min(n x base, cap), stretched by [1, 1 + jitter].
          auto& mr = j->second;
          if (mr.retry_count < UINT32_MAX)
            ++mr.retry_count;
          CONNMGR_MODEL_CHECK(e.req.retry_count == mr.retry_count);
          auto n = static_cast<int64_t>(mr.retry_count);
          auto base = cfg_.max_retry_duration;
          if (n
              <= cfg_.max_retry_duration.count() / cfg_.retry_duration.count())
            base = std::min(base, cfg_.retry_duration * n);
          CONNMGR_MODEL_CHECK(e.delay >= base);
          auto top =
            static_cast<double>(base.count()) * (1.0 + cfg_.retry_jitter);
          CONNMGR_MODEL_CHECK(static_cast<double>(e.delay.count())
                              <= top + 1.0);
          if (cfg_.retry_jitter == 0.0)
            CONNMGR_MODEL_CHECK(e.delay == base);
          break;
        }
        case fx_kind::connected: {
          CONNMGR_MODEL_CHECK(!stopped_);
          CONNMGR_MODEL_CHECK(e.req.state == conn_state::established);
          CONNMGR_MODEL_CHECK(step_conns_.size() == 1
                              && step_conns_[0].first == e.conn
                              && step_conns_[0].second == e.id);
          CONNMGR_MODEL_CHECK(e.conn && !e.conn->closed());
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase == ph::other);
          j->second.phase = ph::established;
          j->second.conn = e.conn;
          j->second.established_at = now_;
          if (j->second.automatic)
            proven_.insert(e.req.address);
          if (cfg_.stable_connection_period.count() == 0)
            j->second.retry_count = 0;
          CONNMGR_MODEL_CHECK(e.req.retry_count == j->second.retry_count);
          ++tot_.connected;
          ++total_connected_all_;
          break;
        }
        case fx_kind::disconnected: {
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase == ph::established);
          // The machine closes what it takes back.
          CONNMGR_MODEL_CHECK(j->second.conn->closed());
          if (now_ - j->second.established_at >= cfg_.stable_connection_period)
            j->second.retry_count = 0;
          CONNMGR_MODEL_CHECK(e.req.retry_count == j->second.retry_count);
          j->second.old.push_back(std::move(j->second.conn));
          j->second.conn.reset();
          j->second.phase = ph::other;
          ++tot_.disconnected;
          if (e.req.state == conn_state::disconnected) {
            terminal.push_back(e.id);
            terminal_states.push_back(conn_state::disconnected);
          } else {
            CONNMGR_MODEL_CHECK(e.req.state == conn_state::pending);
            CONNMGR_MODEL_CHECK(retry_follows(i, e.id));
          }
          break;
        }
        case fx_kind::failed: {
          auto j = live_.find(e.id);
          CONNMGR_MODEL_CHECK(j != live_.end());
          CONNMGR_MODEL_CHECK(j->second.phase != ph::established);
          if (expected_fail_ && expected_fail_->first == e.id) {
            CONNMGR_MODEL_CHECK(!expected_fail_seen);
            CONNMGR_MODEL_CHECK(e.req.state == conn_state::failing);
            CONNMGR_MODEL_CHECK(errc_of(e.err) == expected_fail_->second);
            expected_fail_seen = true;
          }
          if (e.req.state == conn_state::canceled) {
            CONNMGR_MODEL_CHECK(errc_of(e.err) == errc::canceled);
            terminal.push_back(e.id);
            terminal_states.push_back(conn_state::canceled);
          } else {
            CONNMGR_MODEL_CHECK(e.req.state == conn_state::failing);
            if (!retry_follows(i, e.id)) {
              CONNMGR_MODEL_CHECK(!e.req.permanent);
              terminal.push_back(e.id);
              terminal_states.push_back(conn_state::failing);
            } else {
              CONNMGR_MODEL_CHECK(e.req.permanent);
            }
          }
          break;
        }
        case fx_kind::accepted:
          CONNMGR_MODEL_CHECK(!stopped_);
          CONNMGR_MODEL_CHECK(inbound_conn_ && e.conn == inbound_conn_
                              && !e.conn->closed());
          CONNMGR_MODEL_CHECK(!inbound_reject_);
          CONNMGR_MODEL_CHECK(slots_.emplace(e.num, e.conn).second);
          CONNMGR_MODEL_CHECK(e.num > max_slot_);
          max_slot_ = e.num;
          ++tot_.accepted;
          ++inbound_outcomes;
          break;
        case fx_kind::rejected:
          CONNMGR_MODEL_CHECK(inbound_conn_ && e.conn == inbound_conn_
                              && e.conn->closed());
          // Only at the limit or when stopped.
          CONNMGR_MODEL_CHECK(inbound_reject_);
          CONNMGR_MODEL_CHECK(
            errc_of(e.err) == (stopped_ ? errc::stopped : errc::inbound_limit));
          ++tot_.rejected;
          ++inbound_outcomes;
          break;
      }
    }
    // An inbound connection is accepted or rejected: once, never neither.
    if (op_ == op::inbound)
      CONNMGR_MODEL_CHECK(inbound_outcomes == 1);
    else
      CONNMGR_MODEL_CHECK(inbound_outcomes == 0);
    // A predicted failure is reported, once, for its request.
    if (expected_fail_ && !stopped_)
      CONNMGR_MODEL_CHECK(expected_fail_seen);
    // Each request ends at most once per step (and end_request below makes
    // sure it was alive, so never twice over the run).
    for (size_t a = 0; a < terminal.size(); ++a)
      for (size_t b = a + 1; b < terminal.size(); ++b)
        CONNMGR_MODEL_CHECK(terminal[a] != terminal[b]);
    for (auto id : terminal)
      end_request(id);
    if (target_id_ != 0) {
      auto ended = std::count(terminal.begin(), terminal.end(), target_id_);
      CONNMGR_MODEL_CHECK(ended == (target_survives_ ? 0 : 1));
      if (target_survives_)
        CONNMGR_MODEL_CHECK(live_.at(target_id_).phase == ph::waiting);
      if (ended == 1 && target_end_) {
        auto k = std::find(terminal.begin(), terminal.end(), target_id_)
          - terminal.begin();
        CONNMGR_MODEL_CHECK(terminal_states[static_cast<size_t>(k)]
                            == *target_end_);
      }
    }
    // A throttled replacement arms a timer without a retry report, exactly
    // when the model predicts the throttle.
    CONNMGR_MODEL_CHECK(unbound_keys.size() <= 1);
    CONNMGR_MODEL_CHECK(
      unbound_keys.size()
      == (failure_predicted_ && throttle_predicted_ ? 1u : 0u));
    if (!unbound_keys.empty()) {
      ++tot_.throttled;
      CONNMGR_MODEL_CHECK(armed_.at(unbound_keys[0])
                          == now_ + cfg_.retry_duration);
      uint64_t bound = 0;
      for (auto id : new_ids) {
        auto j = live_.find(id);
        if (j != live_.end() && j->second.automatic
            && j->second.phase == ph::other) {
          j->second.phase = ph::waiting;
          j->second.key = unbound_keys[0];
          ++bound;
        }
      }
      CONNMGR_MODEL_CHECK(bound == 1);
    }
    if (stop_op_) {
      // Everything in flight is abandoned; established connections stay with
      // the user (the machine forgets them, and must not close them).
      CONNMGR_MODEL_CHECK(dials_.empty());
      for (auto id : fetching_)
        remember(stale_fetches_, id);
      fetching_.clear();
      for (auto& kvp : armed_)
        remember(stale_keys_, kvp.first);
      armed_.clear();
      for (auto& kvp : live_) {
        if (kvp.second.phase == ph::established) {
          CONNMGR_MODEL_CHECK(kvp.second.conn && !kvp.second.conn->closed());
        } else {
          ++cov_abandoned_;
          CONNMGR_MODEL_CHECK(!opts_.strict_stop);
        }
        remember(gone_ids_, kvp.first);
      }
      live_.clear();
      CONNMGR_MODEL_CHECK(reqs.empty());
    }
    // Every connection handed in: delivered xor closed.
    for (auto& sc : step_conns_) {
      bool delivered = false;
      for (auto& e : log)
        if (e.kind == fx_kind::connected && e.conn == sc.first)
          delivered = true;
      if (delivered) {
        CONNMGR_MODEL_CHECK(!sc.first->closed());
      } else {
        CONNMGR_MODEL_CHECK(sc.first->closed());
        ++tot_.late;
      }
      if (sc.second != 0)
        CONNMGR_MODEL_CHECK(delivered || stopped_);
    }
    // Live set agrees with requests().
    CONNMGR_MODEL_CHECK(reqs.size() == live_.size());
    uint64_t automatic = 0;
    uint64_t established = 0;
    uint64_t other = 0;
    std::set<std::string> addresses;
    for (auto& r : reqs) {
      auto j = live_.find(r.id);
      CONNMGR_MODEL_CHECK(j != live_.end());
      auto& mr = j->second;
      CONNMGR_MODEL_CHECK(r.automatic == mr.automatic);
      CONNMGR_MODEL_CHECK(r.permanent == mr.permanent);
      CONNMGR_MODEL_CHECK(r.retry_count == mr.retry_count);
      CONNMGR_MODEL_CHECK((r.state == conn_state::established)
                          == (mr.phase == ph::established));
      CONNMGR_MODEL_CHECK(r.state != conn_state::canceled
                          && r.state != conn_state::disconnected);
      if (mr.phase == ph::established) {
        ++established;
        CONNMGR_MODEL_CHECK(mr.conn && !mr.conn->closed());
      }
      if (mr.phase == ph::dialing)
        CONNMGR_MODEL_CHECK(dials_.count(mr.attempt) == 1);
      if (mr.phase == ph::fetching)
        CONNMGR_MODEL_CHECK(r.address.empty() && fetching_.count(r.id) == 1);
      if (mr.phase == ph::waiting)
        CONNMGR_MODEL_CHECK(armed_.count(mr.key) == 1);
      if (mr.phase == ph::other)
        ++other;
      if (r.automatic)
        ++automatic;
      if (cfg_.reject_duplicate_addresses && !r.address.empty())
        CONNMGR_MODEL_CHECK(addresses.insert(r.address).second);
    }
    // Gauges.
    CONNMGR_MODEL_CHECK(s.live_requests == reqs.size());
    CONNMGR_MODEL_CHECK(s.dials_in_flight == dials_.size());
    CONNMGR_MODEL_CHECK(s.dials_in_flight <= cfg_.max_pending_dials);
    CONNMGR_MODEL_CHECK(s.outbound_established == established);
    // Whatever is neither fetching, dialing, waiting nor established waits
    // for a dial slot, and only while every slot is taken.
    CONNMGR_MODEL_CHECK(s.dials_queued == other);
    CONNMGR_MODEL_CHECK(s.dials_queued == 0
                        || s.dials_in_flight == cfg_.max_pending_dials);
    CONNMGR_MODEL_CHECK(s.inbound_live == slots_.size());
    if (cfg_.max_inbound)
      CONNMGR_MODEL_CHECK(s.inbound_live <= *cfg_.max_inbound);
    CONNMGR_MODEL_CHECK(s.failed_attempts == failed_attempts_);
    CONNMGR_MODEL_CHECK(automatic <= cfg_.target_outbound);
    if (started_ && !stopped_ && has_source_)
      CONNMGR_MODEL_CHECK(automatic == cfg_.target_outbound);
    if (!started_ || !has_source_)
      CONNMGR_MODEL_CHECK(automatic == 0);
    // Counters never decrease and match the model's tallies.
    for (auto& c : counters) {
      auto now = s.*c.stat;
      auto before = prev_.*c.stat;
      auto tally = tot_.*c.tally;
      if (now < before || now != tally)
        fail_check(std::string{"counter "} + c.name + " = "
                     + std::to_string(now) + ": never decreases (was "
                     + std::to_string(before) + ") and equals the model's "
                     + c.tally_name + " (" + std::to_string(tally) + ")",
                   __LINE__);
    }
    if (expect_quiet_) {
      // Ignored inputs change nothing but the late-connection counter.
      CONNMGR_MODEL_CHECK(s.requests_created == prev_.requests_created);
      CONNMGR_MODEL_CHECK(s.dials_started == prev_.dials_started);
      CONNMGR_MODEL_CHECK(s.dials_failed == prev_.dials_failed);
      CONNMGR_MODEL_CHECK(s.live_requests == prev_.live_requests);
      CONNMGR_MODEL_CHECK(s.dials_in_flight == prev_.dials_in_flight);
      CONNMGR_MODEL_CHECK(s.failed_attempts == prev_.failed_attempts);
      CONNMGR_MODEL_CHECK(s.inbound_live == prev_.inbound_live);
    }
    cov_late_ += s.late_connections_closed - prev_.late_connections_closed;
    cov_throttled_ += s.throttled - prev_.throttled;
    cov_retries_ += s.retries_scheduled - prev_.retries_scheduled;
    cov_rejected_ += s.inbound_rejected - prev_.inbound_rejected;
    cov_queued_steps_ += s.dials_queued > 0 ? 1u : 0u;
    cov_quiet_ += expect_quiet_ ? 1u : 0u;
    prev_ = s;
    last_reqs_ = std::move(reqs);
  }

  // -- state ------------------------------------------------------------------

  std::string name_;
  manager_config cfg_;
  bool has_source_;
  choice_source& src_;
  run_options opts_;
  log_effects fx_;
  std::unique_ptr<conn_machine> m_;
  time_point now_{};
  uint64_t step_ = 0;
  uint64_t inputs_ = 0;
  uint64_t episode_ = 0;
  op op_ = op::start;
  bool started_ = false;
  bool stopped_ = false;
  size_t steps_after_stop_ = 0;

  std::map<uint64_t, mreq> live_;
  std::map<uint64_t, mdial> dials_;
  std::vector<std::pair<uint64_t, uint64_t>> stale_dials_;
  std::set<uint64_t> fetching_;
  std::vector<uint64_t> stale_fetches_;
  std::map<uint64_t, time_point> armed_;
  std::vector<uint64_t> stale_keys_;
  std::map<uint64_t, connection_ptr> slots_;
  std::vector<uint64_t> released_slots_;
  std::vector<uint64_t> gone_ids_;
  uint64_t max_key_ = 0;
  uint64_t max_slot_ = 0;
  uint64_t max_id_seen_ = 0;
  uint64_t max_attempt_seen_ = 0;
  uint64_t failed_attempts_ = 0;
  std::set<std::string> proven_;
  std::optional<std::string> first_group_;
  bool groups_span_ = false;
  bool stable_since_failure_ = false;
  std::optional<time_point> last_failure_;
  uint64_t total_connected_all_ = 0;
  uint64_t cov_late_ = 0;
  uint64_t cov_throttled_ = 0;
  uint64_t cov_retries_ = 0;
  uint64_t cov_rejected_ = 0;
  uint64_t cov_queued_steps_ = 0;
  uint64_t cov_quiet_ = 0;
  uint64_t cov_abandoned_ = 0;
  uint64_t op_counts_[op_count] = {};
  totals tot_;
  conn_stats prev_;
  std::vector<conn_request> last_reqs_;

  // Per step.
  std::vector<std::pair<connection_ptr, uint64_t>> step_conns_;
  bool applied_ = true;
  bool expect_quiet_ = false;
  std::optional<errc> refusal_;
  uint64_t connect_result_ = 0;
  uint64_t explicit_id_ = 0;
  uint64_t target_id_ = 0;
  bool target_survives_ = false;
  std::optional<conn_state> target_end_;
  connection_ptr inbound_conn_;
  bool inbound_reject_ = false;
  bool stop_op_ = false;
  bool failure_predicted_ = false;
  bool throttle_predicted_ = false;
  std::optional<std::pair<uint64_t, errc>> expected_fail_;
};

#undef CONNMGR_MODEL_CHECK

} // namespace connmgr::model
