// Model-based randomized test of `conn_machine`: drives the machine with
// seeded random inputs on a simulated clock, records every effect, keeps a
// reference model of what must be alive, and checks invariants after every
// single step.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
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

#include "actors/conn_effects.hpp"
#include "actors/conn_machine.hpp"
#include "messages/conn_request.hpp"
#include "messages/conn_stats.hpp"
#include "messages/error_code.hpp"
#include "messages/manager_config.hpp"
#include "net/connection.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = conn_effects::time_point;

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

struct fx_event {
  fx_kind kind = fx_kind::failed;
  uint64_t id = 0;  // request id
  uint64_t num = 0; // attempt, timer key or slot
  std::string address;
  time_point at{};
  conn_request req;
  connection_ptr conn;
  caf::error err;
  caf::timespan delay{};
};

/// Records every effect in order; the test interprets the log after each step.
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
  void disconnected(const conn_request& req, const caf::error& reason) override {
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
  void rejected(uint32_t, const connection_ptr& conn,
                const caf::error& reason) override {
    auto& e = add(fx_kind::rejected);
    e.conn = conn;
    e.err = reason;
  }
};

struct model_failure {
  std::string what;
};

#define MC(cond)                                                               \
  do {                                                                         \
    if (!(cond))                                                               \
      fail_check(#cond, __LINE__);                                             \
  } while (false)

/// One seeded run over many short machine lifetimes ("episodes").
class model_run {
public:
  model_run(uint64_t seed, const manager_config& cfg, bool has_source)
    : seed_(seed), rng_(seed), cfg_(cfg), has_source_(has_source) {
    // nop
  }

  /// Runs `steps` random inputs; returns an empty string or the first failure.
  std::string run(size_t steps) {
    try {
      new_episode();
      for (step_ = 0; step_ < steps; ++step_) {
        if (stopped_ && ++steps_after_stop_ > 150)
          new_episode();
        one_step();
      }
    } catch (model_failure& f) {
      return f.what;
    }
    return {};
  }

  size_t episodes() const {
    return episode_;
  }
  uint64_t stops() const {
    return stops_;
  }
  std::string coverage() const {
    std::ostringstream out;
    out << episode_ << " episodes, " << stops_ << " stops, "
        << total_connected_all_ << " connected, " << cov_retries_
        << " retries, " << cov_throttled_ << " throttled, " << cov_late_
        << " late conns closed, " << cov_rejected_ << " inbound rejected, "
        << cov_queued_steps_ << " steps with queued dials, " << cov_quiet_
        << " ignored inputs";
    return out.str();
  }

private:
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
    uint64_t disconnected = 0;
    uint64_t retries = 0;
    uint64_t accepted = 0;
    uint64_t rejected = 0;
    uint64_t late = 0;
    uint64_t throttled = 0;
  };

  [[noreturn]] void fail_check(const char* cond, int line) {
    std::ostringstream out;
    out << "model violation at line " << line << ": " << cond
        << "\n  seed=" << seed_ << " step=" << step_ << " episode=" << episode_
        << " op=" << op_ << " stopped=" << stopped_ << "\n  effects:";
    for (auto& e : fx_.log)
      out << " [" << static_cast<int>(e.kind) << " id=" << e.id
          << " num=" << e.num << " state=" << static_cast<int>(e.req.state)
          << " err=" << describe(e.err) << "]";
    throw model_failure{out.str()};
  }

  uint64_t pick(uint64_t n) {
    return n == 0 ? 0 : rng_() % n;
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

  std::string pool_address() {
    return "10.0.0." + std::to_string(1 + pick(6)) + ":8333";
  }

  void new_episode() {
    ++episode_;
    fx_.log.clear();
    m_ = std::make_unique<conn_machine>(cfg_, has_source_, fx_);
    now_ = time_point{} + std::chrono::hours{1};
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
    prev_ = m_->stats();
    last_reqs_.clear();
  }

  // -- one random step --------------------------------------------------------

  void one_step() {
    fx_.log.clear();
    step_conns_.clear();
    expect_quiet_ = false;
    refusal_ = std::nullopt;
    connect_result_ = 0;
    explicit_id_ = 0;
    target_id_ = 0;
    target_survives_ = false;
    inbound_conn_.reset();
    stop_op_ = false;
    choose_and_apply();
    check_step();
  }

  void choose_and_apply() {
    // Weights, zero when the input makes no sense right now.
    std::vector<std::pair<int, uint64_t>> w{
      {0, started_ ? 1 : 6},              // start
      {1, live_.size() < 40 ? 8 : 0},     // connect
      {2, live_.size() < 40 ? 2 : 0},     // new_request
      {3, 4},                             // disconnect
      {4, 3},                             // remove
      {5, fetching_.empty() ? 0 : 12},    // address_ready
      {6, stale_fetches_.empty() ? 0 : 1}, // stale address_ready
      {7, dials_.empty() ? 0 : 10},       // dial succeeded
      {8, dials_.empty() ? 0 : 8},        // dial failed
      {9, stale_dials_.empty() ? 0 : 3},  // late dial result
      {10, 5},                            // peer_gone
      {11, armed_.empty() ? 0 : 8},       // fire the earliest timer
      {12, 1},                            // stale timer
      {13, 3},                            // advance the clock
      {14, 4},                            // inbound
      {15, slots_.empty() ? 0 : 4},       // inbound_closed
      {16, released_slots_.empty() ? 0 : 1}, // double inbound_closed
    };
    if (!stopped_ && pick(2500) == 0) {
      op_ = "stop";
      stop_op_ = true;
      ++stops_;
      m_->stop();
      return;
    }
    uint64_t sum = 0;
    for (auto& x : w)
      sum += x.second;
    auto r = pick(sum);
    int op = 0;
    for (auto& x : w) {
      if (r < x.second) {
        op = x.first;
        break;
      }
      r -= x.second;
    }
    apply(op);
  }

  uint64_t random_request_id() {
    if (!live_.empty() && !chance(10))
      return pick_from(live_)->first;
    return chance(50) && !gone_ids_.empty() ? gone_ids_[pick(gone_ids_.size())]
                                            : max_id_seen_ + 1000 + pick(1000);
  }

  void apply(int op) {
    switch (op) {
      case 0:
        op_ = "start";
        if (!stopped_)
          started_ = true;
        m_->start(now_);
        break;
      case 1: {
        op_ = "connect";
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
        else if (cfg_.reject_duplicate_addresses
                 && std::any_of(last_reqs_.begin(), last_reqs_.end(),
                                [&](const conn_request& x) {
                                  return x.address == address;
                                }))
          expected = errc::duplicate_address;
        auto res = m_->connect(id, address, permanent, now_);
        if (expected) {
          MC(!res);
          if (!res)
            MC(errc_of(res.error()) == *expected);
          refusal_ = expected;
        } else {
          MC(res);
          connect_result_ = *res;
        }
        break;
      }
      case 2:
        op_ = "new_request";
        m_->new_request(now_);
        if (!stopped_ && !has_source_)
          refusal_ = errc::no_address;
        break;
      case 3:
      case 4: {
        bool remove = op == 4;
        op_ = remove ? "remove" : "disconnect";
        auto id = random_request_id();
        auto trigger = remove ? false : chance(50);
        auto j = live_.find(id);
        if (j == live_.end()) {
          expect_quiet_ = true;
        } else if (!stopped_) {
          // What the contract says becomes of the request.
          target_id_ = id;
          target_survives_ = !remove && j->second.phase == ph::established
                             && (j->second.permanent || trigger);
        }
        m_->disconnect(id, !remove, trigger, now_);
        break;
      }
      case 5: {
        op_ = "address_ready";
        auto i = pick_from(fetching_);
        auto id = *i;
        fetching_.erase(i);
        stale_fetches_.push_back(id);
        live_.at(id).phase = ph::other;
        auto r = pick(10);
        if (r < 7)
          m_->address_ready(id, pool_address(), now_);
        else if (r < 9)
          m_->address_ready(id, make_error(errc::no_address), now_);
        else
          m_->address_ready(id, std::string{}, now_);
        break;
      }
      case 6: {
        op_ = "stale address_ready";
        auto id = stale_fetches_[pick(stale_fetches_.size())];
        if (fetching_.count(id) == 0) {
          expect_quiet_ = true;
          m_->address_ready(id, pool_address(), now_);
        }
        break;
      }
      case 7:
      case 8: {
        auto i = pick_from(dials_);
        auto attempt = i->first;
        auto id = i->second.id;
        auto address = i->second.address;
        dials_.erase(i);
        live_.at(id).phase = ph::other;
        if (op == 7) {
          op_ = "dial_succeeded";
          auto conn = make_memory_connection(address);
          step_conns_.emplace_back(conn, id);
          m_->dial_succeeded(id, attempt, conn, now_);
        } else {
          op_ = "dial_failed";
          m_->dial_failed(id, attempt, make_error(errc::refused), now_);
        }
        break;
      }
      case 9: {
        op_ = "late dial result";
        auto k = pick(stale_dials_.size());
        auto d = stale_dials_[k];
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
          m_->dial_failed(d.first, d.second, make_error(errc::timed_out),
                          now_);
        }
        break;
      }
      case 10: {
        op_ = "peer_gone";
        std::vector<uint64_t> est;
        for (auto& kvp : live_)
          if (kvp.second.phase == ph::established || !kvp.second.old.empty())
            est.push_back(kvp.first);
        if (est.empty())
          break;
        auto id = est[pick(est.size())];
        auto& mr = live_.at(id);
        connection_ptr conn;
        if (mr.phase == ph::established && !chance(15)) {
          conn = mr.conn;
          if (!stopped_) {
            target_id_ = id;
            target_survives_ = mr.permanent;
          }
        } else if (!mr.old.empty()) {
          conn = mr.old[pick(mr.old.size())];
          expect_quiet_ = true;
        } else {
          break;
        }
        m_->peer_gone(id, conn, make_error(errc::connection_closed), now_);
        break;
      }
      case 11: {
        op_ = "timer_fired";
        auto i = std::min_element(armed_.begin(), armed_.end(),
                                  [](const auto& x, const auto& y) {
                                    return x.second < y.second;
                                  });
        auto key = i->first;
        if (i->second > now_)
          now_ = i->second;
        armed_.erase(i);
        stale_keys_.push_back(key);
        for (auto& kvp : live_)
          if (kvp.second.phase == ph::waiting && kvp.second.key == key)
            kvp.second.phase = ph::other;
        m_->timer_fired(key, now_);
        break;
      }
      case 12: {
        op_ = "stale timer";
        auto key = stale_keys_.empty() || chance(20)
                     ? max_key_ + 1 + pick(100)
                     : stale_keys_[pick(stale_keys_.size())];
        if (armed_.count(key) == 0) {
          expect_quiet_ = true;
          m_->timer_fired(key, now_);
        }
        break;
      }
      case 13:
        op_ = "advance clock";
        now_ += std::chrono::milliseconds{pick(20'000)};
        break;
      case 14:
        op_ = "inbound";
        inbound_conn_ = make_memory_connection("192.168.0.1:1");
        m_->inbound(static_cast<uint32_t>(pick(3)), inbound_conn_);
        break;
      case 15: {
        op_ = "inbound_closed";
        auto i = pick_from(slots_);
        i->second->close();
        released_slots_.push_back(i->first);
        slots_.erase(i);
        m_->inbound_closed(released_slots_.back());
        break;
      }
      case 16:
        op_ = "double inbound_closed";
        expect_quiet_ = true;
        m_->inbound_closed(released_slots_[pick(released_slots_.size())]);
        break;
      default:
        break;
    }
  }

  // -- checks -----------------------------------------------------------------

  void end_request(uint64_t id) {
    auto i = live_.find(id);
    MC(i != live_.end());
    auto& mr = i->second;
    MC(mr.phase != ph::dialing && mr.phase != ph::established);
    if (mr.phase == ph::fetching) {
      fetching_.erase(id);
      stale_fetches_.push_back(id);
    }
    if (mr.phase == ph::waiting) {
      armed_.erase(mr.key);
      stale_keys_.push_back(mr.key);
    }
    for (auto& d : dials_)
      MC(d.second.id != id);
    gone_ids_.push_back(id);
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
    MC(m_->stopped() == stopped_ || (stop_op_ && m_->stopped()));
    if (stop_op_)
      stopped_ = true;
    if (expect_quiet_)
      MC(log.empty());
    if (stopped_) {
      for (auto& e : log) {
        MC(e.kind == fx_kind::failed || e.kind == fx_kind::rejected
           || (stop_op_ && e.kind == fx_kind::cancel_dial));
      }
    }
    // A refusal is the only effect of its input.
    if (refusal_) {
      MC(log.size() == 1 && log[0].kind == fx_kind::failed
         && errc_of(log[0].err) == *refusal_);
      MC(live_.count(log[0].id) == 0 || log[0].id == explicit_id_);
      log.clear();
    }
    // Requests that appeared during this step: fresh ids only.
    std::vector<uint64_t> new_ids;
    for (auto& r : reqs) {
      if (live_.count(r.id) != 0)
        continue;
      MC(r.id > max_id_seen_);
      max_id_seen_ = r.id;
      ++tot_.created;
      if (r.automatic)
        MC(started_ && has_source_ && !stopped_);
      else
        MC(r.id == connect_result_ || op_ == std::string{"new_request"});
      mreq mr;
      mr.automatic = r.automatic;
      mr.permanent = r.permanent;
      live_.emplace(r.id, std::move(mr));
      new_ids.push_back(r.id);
    }
    // Interpret the effects in order.
    std::vector<uint64_t> terminal;
    std::vector<uint64_t> unbound_keys;
    uint64_t connected_now = 0;
    for (size_t i = 0; i < log.size(); ++i) {
      auto& e = log[i];
      switch (e.kind) {
        case fx_kind::start_dial: {
          MC(!stopped_);
          MC(e.num > max_attempt_seen_);
          max_attempt_seen_ = e.num;
          MC(!e.address.empty());
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase == ph::other);
          if (cfg_.reject_duplicate_addresses)
            for (auto& d : dials_)
              MC(d.second.address != e.address);
          dials_.emplace(e.num, mdial{e.id, e.address});
          j->second.phase = ph::dialing;
          j->second.attempt = e.num;
          ++tot_.start_dials;
          break;
        }
        case fx_kind::cancel_dial: {
          auto d = dials_.find(e.num);
          MC(d != dials_.end() && d->second.id == e.id);
          dials_.erase(d);
          stale_dials_.emplace_back(e.id, e.num);
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase == ph::dialing && j->second.attempt == e.num);
          j->second.phase = ph::other;
          break;
        }
        case fx_kind::fetch: {
          MC(!stopped_ && has_source_);
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase == ph::other);
          j->second.phase = ph::fetching;
          MC(fetching_.insert(e.id).second);
          break;
        }
        case fx_kind::arm:
          MC(!stopped_);
          MC(e.at >= now_);
          MC(e.num > max_key_);
          max_key_ = e.num;
          armed_.emplace(e.num, e.at);
          if (i + 1 >= log.size() || log[i + 1].kind != fx_kind::retry)
            unbound_keys.push_back(e.num);
          break;
        case fx_kind::retry: {
          MC(i > 0 && log[i - 1].kind == fx_kind::arm);
          MC(log[i - 1].at == now_ + e.delay);
          MC(e.delay > caf::timespan{0});
          MC(e.req.state == conn_state::pending
             || e.req.state == conn_state::failing);
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase == ph::other);
          j->second.phase = ph::waiting;
          j->second.key = log[i - 1].num;
          ++tot_.retries;
          // Retry n waits min(n x base, cap), stretched by [1, 1 + jitter].
          auto& mr = j->second;
          if (mr.retry_count < UINT32_MAX)
            ++mr.retry_count;
          MC(e.req.retry_count == mr.retry_count);
          auto n = static_cast<int64_t>(mr.retry_count);
          auto base = cfg_.max_retry_duration;
          if (n <= cfg_.max_retry_duration.count() / cfg_.retry_duration.count())
            base = std::min(base, cfg_.retry_duration * n);
          MC(e.delay >= base);
          auto top = static_cast<double>(base.count())
                     * (1.0 + cfg_.retry_jitter);
          MC(static_cast<double>(e.delay.count()) <= top + 1.0);
          break;
        }
        case fx_kind::connected: {
          MC(!stopped_);
          MC(e.req.state == conn_state::established);
          MC(step_conns_.size() == 1 && step_conns_[0].first == e.conn
             && step_conns_[0].second == e.id);
          MC(e.conn && !e.conn->closed());
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase == ph::other);
          j->second.phase = ph::established;
          j->second.conn = e.conn;
          j->second.established_at = now_;
          if (cfg_.stable_connection_period.count() == 0)
            j->second.retry_count = 0;
          MC(e.req.retry_count == j->second.retry_count);
          ++tot_.connected;
          ++total_connected_all_;
          ++connected_now;
          break;
        }
        case fx_kind::disconnected: {
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase == ph::established);
          // The machine closes what it takes back.
          MC(j->second.conn->closed());
          if (now_ - j->second.established_at
              >= cfg_.stable_connection_period)
            j->second.retry_count = 0;
          MC(e.req.retry_count == j->second.retry_count);
          j->second.old.push_back(std::move(j->second.conn));
          j->second.conn.reset();
          j->second.phase = ph::other;
          ++tot_.disconnected;
          if (e.req.state == conn_state::disconnected) {
            terminal.push_back(e.id);
          } else {
            MC(e.req.state == conn_state::pending);
            MC(retry_follows(i, e.id));
          }
          break;
        }
        case fx_kind::failed: {
          auto j = live_.find(e.id);
          MC(j != live_.end());
          MC(j->second.phase != ph::established);
          if (e.req.state == conn_state::canceled) {
            terminal.push_back(e.id);
          } else {
            MC(e.req.state == conn_state::failing);
            if (!retry_follows(i, e.id)) {
              MC(!e.req.permanent);
              terminal.push_back(e.id);
            }
          }
          break;
        }
        case fx_kind::accepted:
          MC(!stopped_);
          MC(inbound_conn_ && e.conn == inbound_conn_ && !e.conn->closed());
          MC(slots_.emplace(e.num, e.conn).second);
          MC(e.num > max_slot_);
          max_slot_ = e.num;
          ++tot_.accepted;
          break;
        case fx_kind::rejected:
          MC(inbound_conn_ && e.conn == inbound_conn_ && e.conn->closed());
          // Only at the limit or when stopped.
          MC(stopped_ || (cfg_.max_inbound && slots_.size() >= *cfg_.max_inbound));
          ++tot_.rejected;
          break;
      }
    }
    for (auto id : terminal)
      end_request(id);
    if (target_id_ != 0) {
      auto ended = std::count(terminal.begin(), terminal.end(), target_id_);
      MC(ended == (target_survives_ ? 0 : 1));
      if (target_survives_)
        MC(live_.at(target_id_).phase == ph::waiting);
    }
    // A throttled replacement arms a timer without a retry report.
    MC(unbound_keys.size() <= 1);
    if (!unbound_keys.empty()) {
      ++tot_.throttled;
      MC(armed_.at(unbound_keys[0]) == now_ + cfg_.retry_duration);
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
      MC(bound == 1);
    }
    if (stop_op_) {
      // Everything in flight is abandoned; established connections stay with
      // the user (the machine forgets them).
      MC(dials_.empty());
      for (auto id : fetching_)
        stale_fetches_.push_back(id);
      fetching_.clear();
      for (auto& kvp : armed_)
        stale_keys_.push_back(kvp.first);
      armed_.clear();
      for (auto& kvp : live_)
        gone_ids_.push_back(kvp.first);
      live_.clear();
      MC(reqs.empty());
    }
    // Every connection handed in: delivered xor closed.
    for (auto& sc : step_conns_) {
      bool delivered = false;
      for (auto& e : log)
        if (e.kind == fx_kind::connected && e.conn == sc.first)
          delivered = true;
      if (delivered) {
        MC(!sc.first->closed());
      } else {
        MC(sc.first->closed());
        ++tot_.late;
      }
      if (sc.second != 0)
        MC(delivered || stopped_);
    }
    (void) connected_now;
    // Live set agrees with requests().
    MC(reqs.size() == live_.size());
    uint64_t automatic = 0;
    uint64_t established = 0;
    uint64_t other = 0;
    std::set<std::string> addresses;
    for (auto& r : reqs) {
      auto j = live_.find(r.id);
      MC(j != live_.end());
      auto& mr = j->second;
      MC(r.automatic == mr.automatic);
      MC(r.permanent == mr.permanent);
      MC((r.state == conn_state::established) == (mr.phase == ph::established));
      if (mr.phase == ph::established) {
        ++established;
        MC(mr.conn && !mr.conn->closed());
      }
      if (mr.phase == ph::dialing)
        MC(dials_.count(mr.attempt) == 1);
      if (mr.phase == ph::fetching)
        MC(r.address.empty() && fetching_.count(r.id) == 1);
      if (mr.phase == ph::waiting)
        MC(armed_.count(mr.key) == 1);
      if (mr.phase == ph::other)
        ++other;
      if (r.automatic)
        ++automatic;
      if (cfg_.reject_duplicate_addresses && !r.address.empty())
        MC(addresses.insert(r.address).second);
    }
    // Gauges.
    MC(s.live_requests == reqs.size());
    MC(s.dials_in_flight == dials_.size());
    MC(s.dials_in_flight <= cfg_.max_pending_dials);
    MC(s.outbound_established == established);
    // Whatever is neither fetching, dialing, waiting nor established waits
    // for a dial slot, and only while every slot is taken.
    MC(s.dials_queued == other);
    MC(s.dials_queued == 0 || s.dials_in_flight == cfg_.max_pending_dials);
    MC(s.inbound_live == slots_.size());
    if (cfg_.max_inbound)
      MC(s.inbound_live <= *cfg_.max_inbound);
    MC(automatic <= cfg_.target_outbound);
    if (started_ && !stopped_ && has_source_)
      MC(automatic == cfg_.target_outbound);
    if (!started_ || !has_source_)
      MC(automatic == 0);
    // Counters never decrease and match the effects.
    MC(s.requests_created >= prev_.requests_created);
    MC(s.dials_started >= prev_.dials_started);
    MC(s.dials_succeeded >= prev_.dials_succeeded);
    MC(s.dials_failed >= prev_.dials_failed);
    MC(s.late_connections_closed >= prev_.late_connections_closed);
    MC(s.retries_scheduled >= prev_.retries_scheduled);
    MC(s.throttled >= prev_.throttled);
    MC(s.disconnections >= prev_.disconnections);
    MC(s.inbound_accepted >= prev_.inbound_accepted);
    MC(s.inbound_rejected >= prev_.inbound_rejected);
    MC(s.requests_created == tot_.created);
    MC(s.dials_started == tot_.start_dials);
    MC(s.dials_succeeded == tot_.connected);
    MC(s.late_connections_closed == tot_.late);
    MC(s.retries_scheduled == tot_.retries);
    MC(s.throttled == tot_.throttled);
    MC(s.disconnections == tot_.disconnected);
    MC(s.inbound_accepted == tot_.accepted);
    MC(s.inbound_rejected == tot_.rejected);
    if (expect_quiet_) {
      // Ignored inputs change nothing but the late-connection counter.
      MC(s.requests_created == prev_.requests_created);
      MC(s.dials_started == prev_.dials_started);
      MC(s.dials_failed == prev_.dials_failed);
      MC(s.live_requests == prev_.live_requests);
      MC(s.dials_in_flight == prev_.dials_in_flight);
      MC(s.failed_attempts == prev_.failed_attempts);
      MC(s.inbound_live == prev_.inbound_live);
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

  uint64_t seed_;
  std::mt19937_64 rng_;
  manager_config cfg_;
  bool has_source_;
  log_effects fx_;
  std::unique_ptr<conn_machine> m_;
  time_point now_{};
  size_t step_ = 0;
  size_t episode_ = 0;
  uint64_t stops_ = 0;
  const char* op_ = "";
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
  uint64_t total_connected_all_ = 0;
  uint64_t cov_late_ = 0;
  uint64_t cov_throttled_ = 0;
  uint64_t cov_retries_ = 0;
  uint64_t cov_rejected_ = 0;
  uint64_t cov_queued_steps_ = 0;
  uint64_t cov_quiet_ = 0;
  totals tot_;
  conn_stats prev_;
  std::vector<conn_request> last_reqs_;

  // Per step.
  std::vector<std::pair<connection_ptr, uint64_t>> step_conns_;
  bool expect_quiet_ = false;
  std::optional<errc> refusal_;
  uint64_t connect_result_ = 0;
  uint64_t explicit_id_ = 0;
  uint64_t target_id_ = 0;
  bool target_survives_ = false;
  connection_ptr inbound_conn_;
  bool stop_op_ = false;
};

#undef MC

struct model_config {
  const char* name;
  manager_config cfg;
  bool has_source;
};

std::vector<model_config> model_configs() {
  std::vector<model_config> result;
  {
    // Small target, few dial slots, tight inbound limit, quick throttle.
    manager_config c;
    c.target_outbound = 4;
    c.max_pending_dials = 2;
    c.max_inbound = 3;
    c.retry_duration = 1s;
    c.max_retry_duration = 10s;
    c.max_failed_attempts = 3;
    c.stable_connection_period = 30s;
    result.push_back({"tight", c, true});
  }
  {
    // No address source, duplicates allowed, unlimited inbound.
    manager_config c;
    c.target_outbound = 3;
    c.max_pending_dials = 3;
    c.reject_duplicate_addresses = false;
    c.retry_duration = 2s;
    c.max_retry_duration = 20s;
    result.push_back({"no-source", c, false});
  }
  {
    // One dial slot, jitter, no inbound at all, reset on every success.
    manager_config c;
    c.target_outbound = 8;
    c.max_pending_dials = 1;
    c.max_inbound = 0;
    c.retry_jitter = 0.5;
    c.jitter_seed = 42;
    c.retry_duration = 500ms;
    c.max_retry_duration = 5s;
    c.max_failed_attempts = 1;
    c.stable_connection_period = 0s;
    result.push_back({"one-slot", c, true});
  }
  {
    // Plenty of slots, duplicates allowed, default-ish throttle.
    manager_config c;
    c.target_outbound = 2;
    c.max_pending_dials = 128;
    c.max_inbound = 5;
    c.reject_duplicate_addresses = false;
    c.retry_duration = 3s;
    c.max_retry_duration = 60s;
    c.max_failed_attempts = 5;
    c.stable_connection_period = 60s;
    result.push_back({"wide", c, true});
  }
  return result;
}

} // namespace

TEST_CASE("model: conn_machine under 1 000 000 random inputs") {
  constexpr size_t steps_per_run = 250'000;
  const uint64_t seeds[] = {0x5eed0001, 0x5eed0002, 0x5eed0003, 0x5eed0004};
  auto configs = model_configs();
  for (size_t i = 0; i < configs.size(); ++i) {
    auto& mc = configs[i];
    REQUIRE(!validate(mc.cfg));
    model_run run{seeds[i], mc.cfg, mc.has_source};
    auto failure = run.run(steps_per_run);
    INFO("config " << std::string{mc.name});
    CHECK_MESSAGE(failure.empty(), failure);
    MESSAGE("config " << std::string{mc.name} << ": " << run.coverage());
  }
}

// manager_config::max_failed_attempts / stable_connection_period promise that
// the failed-attempt count resets only "once a connection has lasted
// stable_connection_period without a new failure". Here the only connection
// since the first failure lasted 1 s (the user removed it), yet a failure
// 100 s later is counted as the first of a new run instead of the second.
TEST_CASE("model: a short user-closed connection does not reset the "
          "failed-attempt throttle") {
  manager_config cfg;
  cfg.target_outbound = 1;
  cfg.max_failed_attempts = 2;
  cfg.stable_connection_period = 60s;
  REQUIRE(!validate(cfg));
  log_effects fx;
  conn_machine m{cfg, true, fx};
  auto t0 = time_point{} + std::chrono::hours{1};
  auto last_fetch = [&] {
    REQUIRE(!fx.log.empty());
    REQUIRE(fx.log.back().kind == fx_kind::fetch);
    return fx.log.back().id;
  };
  m.start(t0);
  // Failure 1: the address source has nothing.
  m.address_ready(last_fetch(), make_error(errc::no_address), t0);
  CHECK(m.stats().failed_attempts == 1);
  // The replacement connects at once...
  auto b = last_fetch();
  m.address_ready(b, std::string{"10.0.0.1:8333"}, t0);
  REQUIRE(fx.log.back().kind == fx_kind::start_dial);
  m.dial_succeeded(b, fx.log.back().num, make_memory_connection("10.0.0.1"),
                   t0);
  REQUIRE(m.stats().outbound_established == 1);
  // ...and the user removes it after 1 s: not a failure, not stable either.
  m.disconnect(b, false, false, t0 + 1s);
  // Failure 2, long after: the second consecutive failure, so the
  // replacement must wait (be throttled) rather than fetch at once.
  m.address_ready(last_fetch(), make_error(errc::no_address), t0 + 100s);
  CHECK(m.stats().failed_attempts == 2);
  CHECK(m.stats().throttled == 1);
  CHECK(fx.log.back().kind == fx_kind::arm);
}
