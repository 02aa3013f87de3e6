// The handler actor: the thin shell that turns messages into inputs of
// conn_machine and carries out its effects (dials, timers, events, the
// listener workers). Over 500 lines because its state (the effects
// interface), its behaviour and its spawn-time validation work on the same
// few members; the decisions themselves are in conn_machine.cpp.
#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/actors/conn_handler_internal.hpp"

#include <deque>
#include <memory>
#include <unordered_map>
#include <variant>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/exit_reason.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/net/flat_table.hpp"
#include "connmgr/actors/listener_worker.hpp"
#include "connmgr/messages/manager_config_reader.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/events.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

namespace {

constexpr caf::timespan flush_timeout = std::chrono::seconds{5};

// A dialer answers by its deadline; this slack only catches dialers that
// never answer at all.
constexpr caf::timespan answer_grace = std::chrono::seconds{1};

// Descriptors kept free for everything else (logs, config, listeners).
constexpr uint64_t fd_reserve = 64;

// Work items run back to back before the mailbox gets a turn again.
constexpr size_t inline_budget = 64;

struct handler_state : conn_effects {
  using pointer = conn_handler_internal_actor::stateful_pointer<handler_state>;

  pointer self = nullptr;
  handler_setup setup;
  std::unique_ptr<conn_machine> machine;
  address_source_actor source;
  /// The dialer's direct path, once it answered with one: dials it takes
  /// cost no message to the dialer.
  direct_dialer_ptr direct;
  /// Dials in flight by attempt: their request and start, for the dial time
  /// their event reports. Erased when the answer arrives or on cancel.
  struct dial_entry {
    uint64_t id;
    time_point started;
    /// The direct path's token, or 0 for a dial sent to the dialer actor.
    uint64_t token = 0;
    /// Waiting for the gate actor's verdict: not at the dialer yet.
    bool gating = false;
  };
  std::unordered_map<uint64_t, dial_entry> dials;
  /// Attempts in start order with the instant a dialer that stays mute is
  /// given up on; one timer serves them all (dial_timeout is the same for
  /// every dial, so the order is the deadline order too).
  std::deque<std::pair<time_point, uint64_t>> answer_deadlines;
  bool deadline_timer_armed = false;
  /// The dial whose end the machine is handling right now.
  struct dial_end {
    uint64_t id = 0;
    caf::timespan took{0};
  };
  dial_end ending;
  /// The dial time of each established request, for `peers`; erased when
  /// it disconnects, so it holds at most one entry per established request.
  /// Open addressing: set and erased once per connection, so a node per
  /// entry would cost an allocation each time.
  flat_table<uint64_t, caf::timespan, int_hash> established_dial_times;
  /// Work that completed at once (a dial function's result, an address
  /// function's answer, a timer already due), run when the machine call
  /// that asked for it has returned: the machine never re-enters itself,
  /// and no message round trip is paid.
  struct dial_answer {
    uint64_t id;
    uint64_t attempt;
    caf::expected<connection_ptr> result;
  };
  struct address_answer {
    uint64_t id;
    caf::expected<std::string> result;
  };
  struct timer_due {
    uint64_t key;
    time_point at;
  };
  std::deque<std::variant<dial_answer, address_answer, timer_due>> later;
  bool running_later = false;
  /// A run_later message is on its way (the budget ran out with work left).
  bool run_later_sent = false;
  /// Actors we own: acceptors and listeners.
  std::vector<caf::actor> owned;
  /// Monitored children whose down message is still due.
  size_t live_children = 0;
  std::vector<caf::typed_response_promise<conn_stats>> stop_promises;
  /// Whether inbound connections pass a gate (function or actor) at all:
  /// without one they go straight to the machine.
  bool gate_inbound = false;
  /// Dials and inbound connections the gates vetoed (`gate_vetoes`).
  uint64_t gate_vetoes = 0;
  /// Inbound connections waiting for the gate actor's verdict, by a key of
  /// their own; at most `gate.max_waiting_inbound`.
  struct gate_wait {
    uint32_t listener;
    connection_ptr conn;
  };
  std::unordered_map<uint64_t, gate_wait> gate_waiting;
  uint64_t next_gate_key = 0;
  bool started = false;
  bool stopping = false;
  bool done = false;
  bool draining = false;

  static inline const char* name = "connmgr.conn_handler";

  ~handler_state() override {
    // However the handler ends (a failure included, which skips
    // begin_stop), its acceptors and listener workers go too: a listener
    // left behind keeps accepting for nobody and holds the reactor.
    if (!stopping)
      for (auto& child : owned)
        caf::anon_send_exit(child, caf::exit_reason::user_shutdown);
  }

  /// The actor clock's time, read once per message: every decision a
  /// message leads to is taken at the same instant (and reading the clock
  /// is a noticeable part of a cycle's cost).
  time_point now() {
    if (!now_read) {
      now_cache = self->clock().now();
      now_read = true;
    }
    return now_cache;
  }
  time_point now_cache;
  bool now_read = false;

  template <class T>
  void emit(T&& event) {
    if (setup.events)
      // From us, like send, but with our execution context: CAF then
      // schedules the receiver on this worker instead of waking another.
      caf::actor_cast<caf::abstract_actor*>(setup.events)
        ->enqueue(caf::actor_cast<caf::strong_actor_ptr>(self),
                  caf::make_message_id(),
                  caf::make_message(std::forward<T>(event)), self->context());
  }

  /// The answer to a message that may be refused: the refusal goes to a
  /// request only. Sent back for a plain send, an error would end a sender
  /// that has no error handler (CAF's default quits with it), e.g. one
  /// whose `remove` crossed the connection's own close.
  caf::result<void> refusal(caf::error err) {
    if (err && self->current_message_id().is_request())
      return err;
    return caf::unit;
  }

  void own(caf::actor child) {
    self->monitor(child);
    ++live_children;
    owned.push_back(std::move(child));
  }

  void start() {
    if (started || stopping)
      return;
    started = true;
    auto handle = caf::actor_cast<conn_handler_internal_actor>(self);
    for (size_t i = 0; i < setup.listeners.size(); ++i) {
      auto worker = self->spawn(listener_worker, handle,
                                static_cast<uint32_t>(i), setup.listeners[i]);
      own(caf::actor_cast<caf::actor>(worker));
    }
    machine->start(now());
  }

  /// Starts a drain (see `conn_handler_actor`): the listeners go at once,
  /// the connections by `timeout`.
  void drain(caf::timespan timeout) {
    if (stopping || draining)
      return;
    draining = true;
    machine->drain(now());
    // The listeners and their workers go now: no socket keeps accepting.
    for (auto& child : owned)
      self->send_exit(child, caf::exit_reason::user_shutdown);
    // A user who closes an outbound connection ends it early: learn of it
    // (outside a drain the request's close is the user's business).
    auto weak = self->address();
    for (auto& x : machine->established()) {
      std::weak_ptr<connection> weak_conn = x.conn;
      x.conn->on_close([weak, id = x.req.id, weak_conn] {
        auto handler = caf::actor_cast<conn_handler_internal_actor>(weak);
        auto c = weak_conn.lock();
        if (handler && c)
          caf::anon_send(
            handler, peer_gone_atom::value, id, std::move(c),
            make_error(errc::connection_closed, "closed while draining"));
      });
    }
    emit(drain_event{"started", machine->open_connections(), timeout});
    self->delayed_send(caf::actor_cast<conn_handler_internal_actor>(self),
                       timeout, drain_deadline_atom::value);
  }

  /// The drain's timeout passed: whatever is still open is closed.
  void drain_deadline_passed() {
    if (!draining || stopping)
      return;
    auto closed = machine->close_all(
      make_error(errc::draining, "drain timeout passed"), "draining", now());
    emit(drain_event{"deadline", closed, caf::timespan{0}});
    begin_stop();
  }

  /// The spawn-time checks that depend on more than the config: new limits
  /// must fit the open-file limit too. Errors name keys as spawn's do.
  caf::error check_limits(const conn_limits& x) {
    auto next = with_limits(setup.config, x);
    if (!next)
      return next.error();
    auto refuse = [this](const config_violation& v) {
      return setup.config_section.empty() ? to_error(v)
                                          : to_error(v, setup.config_section);
    };
    if (auto v = find_violation(*next))
      return refuse(*v);
    if (auto v = check_descriptor_limit(*next, setup.listeners.size(),
                                        raise_fd_limit(), fd_reserve))
      return refuse(*v);
    return caf::none;
  }

  /// Ends a drain once no connection is left.
  void check_drained() {
    if (draining && !stopping && machine->open_connections() == 0)
      begin_stop();
  }

  void begin_stop() {
    if (stopping)
      return;
    stopping = true;
    machine->stop(); // cancels every dial through cancel_dial
    // Connections still waiting for the gate: the stopped machine closes
    // and reports each (rule "stopped"); a verdict that comes later finds
    // nothing.
    auto waiting = std::move(gate_waiting);
    gate_waiting.clear();
    for (auto& [key, w] : waiting)
      machine->inbound(w.listener, w.conn, now());
    for (auto& child : owned)
      self->send_exit(child, caf::exit_reason::user_shutdown);
    check_done();
  }

  void check_done() {
    if (!stopping || done || live_children > 0)
      return;
    done = true;
    if (!setup.dialer) {
      finish(); // a dial function leaves nothing in flight
      return;
    }
    // The dialer was told to cancel every dial in flight; wait until it
    // confirms those sockets are closed. A dialer that dies or
    // stays mute meanwhile must not hold stop up: its down message or the
    // timeout ends the wait.
    self->monitor(setup.dialer);
    self->request(setup.dialer, flush_timeout, flush_atom::value)
      .then([this](bool) { finish(); }, [this](caf::error&) { finish(); });
  }

  void finish() {
    // A dial answer still queued holds a connection: the machine closes it.
    now_read = false;
    while (!later.empty() && !running_later)
      run_later();
    auto final_stats = stats();
    for (auto& promise : stop_promises)
      promise.deliver(final_stats);
    stop_promises.clear();
    emit(stopped_event{final_stats});
    self->quit();
  }

  /// The machine's counters plus the handler's own.
  conn_stats stats() const {
    auto result = machine->stats();
    result.gate_vetoes = gate_vetoes;
    return result;
  }

  // -- gates ------------------------------------------------------------------

  /// A veto as the error its dial or connection is refused with.
  caf::error veto(std::string reason) {
    ++gate_vetoes;
    return make_error(errc::vetoed, std::move(reason));
  }

  /// The verdict when the gate actor gave none: `err` says why.
  gate_verdict no_answer(const caf::error& err) const {
    if (setup.gate.fail_open)
      return gate_verdict::allow();
    if (err == caf::sec::request_timeout)
      return gate_verdict::veto("gate gave no answer within "
                                + to_string_duration(setup.gate.timeout));
    if (err == caf::sec::request_receiver_down)
      return gate_verdict::veto("gate is down");
    return gate_verdict::veto("gate failed: " + describe(err));
  }

  /// The gate actor's verdict (or its absence) on dial `attempt`.
  void dial_gated(uint64_t attempt, const std::string& address,
                  gate_verdict verdict) {
    auto i = dials.find(attempt);
    if (i == dials.end() || !i->second.gating)
      return; // canceled meanwhile
    auto id = i->second.id;
    if (!verdict.allowed) {
      dial_failed(id, attempt, veto(std::move(verdict.reason)));
      return;
    }
    // The dial time counts from here: the wait for the gate is no dial.
    i->second.gating = false;
    i->second.started = now();
    dial(id, attempt, address);
  }

  /// Inbound `conn`, when some gate is set: refused at once if stopped or
  /// banned (a banned peer costs no question to the gate), then asked of
  /// the gate function, then of the gate actor, then admitted or not by
  /// the machine.
  void inbound_gated(uint32_t listener, connection_ptr& conn) {
    if (machine->inbound_refused(listener, conn, {}, {}, now()))
      return;
    std::string local;
    if (setup.gate.accept) {
      local = conn->local_address();
      auto verdict = setup.gate.accept(conn->remote_address(), local);
      if (!verdict.allowed) {
        refuse_gated(listener, conn, std::move(verdict.reason));
        return;
      }
    }
    if (!setup.gate.actor) {
      machine->inbound(listener, conn, now());
      return;
    }
    if (gate_waiting.size() >= setup.gate.max_waiting_inbound) {
      refuse_gated(listener, conn,
                   "gate busy: " + std::to_string(gate_waiting.size())
                     + " inbound connections wait for its answer");
      return;
    }
    if (!setup.gate.accept)
      local = conn->local_address();
    auto key = ++next_gate_key;
    auto remote = conn->remote_address();
    gate_waiting.emplace(key, gate_wait{listener, std::move(conn)});
    self
      ->request(setup.gate.actor, setup.gate.timeout, gate_accept_atom::value,
                std::move(remote), std::move(local))
      .then(
        [this, key](gate_verdict& verdict) {
          after_message guard{*this};
          accept_gated(key, std::move(verdict));
        },
        [this, key](caf::error& err) {
          after_message guard{*this};
          accept_gated(key, no_answer(err));
        });
  }

  /// The gate actor's verdict (or its absence) on the waiting connection
  /// `key`.
  void accept_gated(uint64_t key, gate_verdict verdict) {
    auto i = gate_waiting.find(key);
    if (i == gate_waiting.end())
      return; // closed at stop
    auto w = std::move(i->second);
    gate_waiting.erase(i);
    if (!verdict.allowed)
      refuse_gated(w.listener, w.conn, std::move(verdict.reason));
    else
      machine->inbound(w.listener, w.conn, now());
  }

  void refuse_gated(uint32_t listener, const connection_ptr& conn,
                    std::string reason) {
    machine->inbound_refused(listener, conn, veto(std::move(reason)), "gated",
                             now());
  }

  // -- conn_effects -----------------------------------------------------------

  // The dialer answers straight to us: no actor per dial and no request
  // timeout per dial (each costs messages and a trip through the clock).
  void start_dial(uint64_t id, uint64_t attempt,
                  const std::string& address) override {
    auto& entry = dials.emplace(attempt, dial_entry{id, now()}).first->second;
    if (setup.gate.dial) {
      auto verdict = setup.gate.dial(address);
      if (!verdict.allowed) {
        // Answered like a dial function's failure: the machine never
        // re-enters itself.
        later.emplace_back(
          dial_answer{id, attempt, veto(std::move(verdict.reason))});
        return;
      }
    }
    if (setup.gate.actor) {
      entry.gating = true;
      self
        ->request(setup.gate.actor, setup.gate.timeout, gate_dial_atom::value,
                  address)
        .then(
          [this, attempt, address](gate_verdict& verdict) {
            after_message guard{*this};
            dial_gated(attempt, address, std::move(verdict));
          },
          [this, attempt, address](caf::error& err) {
            after_message guard{*this};
            dial_gated(attempt, address, no_answer(err));
          });
      return;
    }
    dial(id, attempt, address);
  }

  /// Starts dial `attempt`, whose entry in `dials` exists.
  void dial(uint64_t id, uint64_t attempt, const std::string& address) {
    auto t = now();
    if (setup.dial) {
      later.emplace_back(dial_answer{
        id, attempt, setup.dial(address, setup.config.dial_timeout)});
      now_read = false; // the dial took its time
      return;
    }
    answer_deadlines.emplace_back(t + setup.config.dial_timeout + answer_grace,
                                  attempt);
    arm_deadline_timer();
    if (direct) {
      auto token = direct->try_dial(attempt, address, setup.config.dial_timeout,
                                    caf::strong_actor_ptr{self->ctrl()});
      if (token != 0) {
        dials[attempt].token = token;
        return;
      }
    }
    self
      ->request(setup.dialer, caf::infinite, dial_atom::value, attempt, address,
                setup.config.dial_timeout)
      .then(
        [this, id, attempt](connection_ptr& conn) {
          after_message guard{*this};
          dial_succeeded(id, attempt, conn);
        },
        [this, id, attempt](caf::error& err) {
          after_message guard{*this};
          if (err == caf::sec::request_receiver_down)
            err = make_error(errc::dial_failed, "dialer is down");
          dial_failed(id, attempt, err);
        });
  }

  void dial_succeeded(uint64_t id, uint64_t attempt, connection_ptr& conn) {
    // A late answer (canceled meanwhile) still goes to the machine, which
    // closes it.
    finish_dial(attempt);
    machine->dial_succeeded(id, attempt, std::move(conn), now());
    ending = {};
  }

  void dial_failed(uint64_t id, uint64_t attempt, const caf::error& err) {
    if (!finish_dial(attempt))
      return; // canceled, or given up on as mute
    machine->dial_failed(id, attempt, err, now());
    ending = {};
  }

  /// Takes dial `attempt` out of flight and remembers how long it took for
  /// the event that follows; false if it was not in flight any more.
  bool finish_dial(uint64_t attempt) {
    auto i = dials.find(attempt);
    if (i == dials.end())
      return false;
    ending = dial_end{
      i->second.id,
      std::chrono::duration_cast<caf::timespan>(now() - i->second.started)};
    dials.erase(i);
    return true;
  }

  void arm_deadline_timer() {
    if (deadline_timer_armed || answer_deadlines.empty())
      return;
    deadline_timer_armed = true;
    auto me = caf::actor_cast<conn_handler_internal_actor>(self);
    auto delay = answer_deadlines.front().first - now();
    self->delayed_send(me, std::max(delay, caf::timespan{0}),
                       dial_deadline_atom::value);
  }

  /// Gives up on dials whose dialer did not answer by dial_timeout plus a
  /// grace period; the timer then waits for the next one still in flight.
  void dial_deadline_passed() {
    deadline_timer_armed = false;
    auto t = now();
    while (!answer_deadlines.empty()) {
      auto [at, attempt] = answer_deadlines.front();
      auto i = dials.find(attempt);
      if (i != dials.end() && at > t)
        break;
      answer_deadlines.pop_front();
      if (i == dials.end())
        continue; // answered or canceled long ago
      auto id = i->second.id;
      auto token = i->second.token;
      finish_dial(attempt);
      cancel_in_dialer(attempt, token);
      machine->dial_failed(
        id, attempt,
        make_error(errc::timed_out,
                   "dialer gave no answer within "
                     + to_string_duration(setup.config.dial_timeout)),
        t);
      ending = {};
    }
    arm_deadline_timer();
  }

  /// The dial time for the event of request `id`: set while the machine
  /// handles the end of its dial.
  caf::timespan dial_time(uint64_t id) const {
    return ending.id == id ? ending.took : caf::timespan{0};
  }

  void cancel_dial(uint64_t, uint64_t attempt) override {
    auto i = dials.find(attempt);
    if (i == dials.end())
      return;
    auto token = i->second.token;
    auto gating = i->second.gating;
    dials.erase(i);
    if (!gating) // else the dialer never heard of it
      cancel_in_dialer(attempt, token);
  }

  /// Tells the dialer to abandon `attempt`: on the direct path if it went
  /// that way (`token`), else through the dialer actor.
  void cancel_in_dialer(uint64_t attempt, uint64_t token) {
    if (token != 0)
      direct->cancel(token);
    else if (setup.dialer)
      self->send(setup.dialer, cancel_atom::value, attempt);
  }

  /// The answer to a dial on the direct path.
  void dialed(uint64_t attempt, caf::expected<connection_ptr> result) {
    auto i = dials.find(attempt);
    if (i != dials.end()) {
      auto id = i->second.id;
      if (result)
        dial_succeeded(id, attempt, *result);
      else
        dial_failed(id, attempt, result.error());
    } else if (result) {
      // Canceled or given up on meanwhile: the machine closes and counts
      // it (no request has id 0).
      machine->dial_succeeded(0, attempt, std::move(*result), now());
    }
  }

  void fetch_address(uint64_t id) override {
    if (setup.get_address) {
      // Called right here: it must not block.
      later.emplace_back(address_answer{id, setup.get_address()});
      return;
    }
    self->request(source, setup.config.dial_timeout, get_address_atom::value)
      .then(
        [this, id](std::string& address) {
          after_message guard{*this};
          machine->address_ready(id, std::move(address), now());
        },
        [this, id](caf::error& err) {
          after_message guard{*this};
          machine->address_ready(id, std::move(err), now());
        });
  }

  void arm_timer(uint64_t key, time_point at) override {
    // Decided in run_later: a very short delay has often passed by then.
    later.emplace_back(timer_due{key, at});
  }

  /// Reads the clock afresh for this message, and runs `later` when it
  /// goes out of scope: the first thing in every message handler that calls
  /// the machine.
  struct after_message {
    handler_state& s;
    explicit after_message(handler_state& st) : s(st) {
      s.now_read = false;
    }
    ~after_message() {
      s.run_later();
      s.check_drained();
      s.now_read = false;
    }
  };

  /// Runs the work in `later` (and whatever it adds) up to the budget; the
  /// rest waits behind the messages already in the mailbox. Called after
  /// every machine call from a message.
  void run_later() {
    if (running_later)
      return;
    running_later = true;
    for (size_t n = 0; n < inline_budget && !later.empty(); ++n) {
      auto item = std::move(later.front());
      later.pop_front();
      std::visit([this](auto& x) { run(x); }, item);
    }
    running_later = false;
    if (!later.empty() && !run_later_sent) {
      run_later_sent = true;
      self->send(caf::actor_cast<conn_handler_internal_actor>(self),
                 run_later_atom::value);
    }
  }

  void run(dial_answer& x) {
    if (x.result)
      dial_succeeded(x.id, x.attempt, *x.result);
    else
      dial_failed(x.id, x.attempt, x.result.error());
  }

  void run(address_answer& x) {
    if (x.result)
      machine->address_ready(x.id, std::move(*x.result), now());
    else
      machine->address_ready(x.id, std::move(x.result.error()), now());
  }

  void run(timer_due& x) {
    if (x.at > now())
      now_read = false; // a short delay may have passed meanwhile
    auto delay = x.at - now();
    if (delay.count() <= 0)
      machine->timer_fired(x.key, now());
    else
      self->delayed_send(caf::actor_cast<conn_handler_internal_actor>(self),
                         delay, timer_atom::value, x.key);
  }

  void connected(const conn_request& req, const connection_ptr& conn) override {
    // A peer that goes away counts as a disconnect with retry. Weak: the
    // connection must not keep the handler alive.
    auto weak = self->address();
    auto id = req.id;
    std::weak_ptr<connection> weak_conn = conn;
    conn->on_peer_gone([weak, id, weak_conn](const caf::error& reason) {
      auto handler = caf::actor_cast<conn_handler_internal_actor>(weak);
      auto c = weak_conn.lock();
      if (handler && c)
        caf::anon_send(handler, peer_gone_atom::value, id, std::move(c),
                       reason);
    });
    *established_dial_times.try_emplace(req.id).first = dial_time(req.id);
    emit(connected_event{req, conn, dial_time(req.id)});
  }

  void disconnected(const conn_request& req,
                    const caf::error& reason) override {
    established_dial_times.erase(req.id);
    if (setup.subscribe.disconnected)
      emit(disconnected_event{req, reason});
  }

  void failed(const conn_request& req, const caf::error& reason) override {
    if (setup.subscribe.failed)
      emit(failed_event{req, reason, dial_time(req.id)});
  }

  void retry_scheduled(const conn_request& req, caf::timespan delay) override {
    if (setup.subscribe.retry)
      emit(retry_event{req, delay});
  }

  void accepted(uint32_t listener, uint64_t slot,
                const connection_ptr& conn) override {
    // Weak: a connection the user keeps must not keep the handler alive.
    auto weak = self->address();
    conn->on_close([weak, slot] {
      if (auto handler = caf::actor_cast<conn_handler_internal_actor>(weak))
        caf::anon_send(handler, slot_free_atom::value, slot);
    });
    // An inbound peer that goes away gives its slot back at once. The hook
    // only ever runs inside a call on the connection itself (peer_gone or
    // on_peer_gone), so the plain pointer is alive then; and it fits
    // std::function's inline storage, so no allocation per connection.
    auto* raw = conn.get();
    conn->on_peer_gone([raw](const caf::error&) { raw->close(); });
    emit(accepted_event{listener, conn, slot});
  }

  /// The parts of `info` every kind of peer has: traffic, the
  /// application's report, score and tags.
  void fill_extras(peer_info& info, const connection* conn, time_point t) {
    if (conn != nullptr) {
      auto x = conn->traffic();
      info.bytes_in = x.bytes_in;
      info.bytes_out = x.bytes_out;
      // The counters are on the steady clock (the reactor's), not the
      // actor clock: how long ago is asked of the same clock.
      auto steady = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
      if (x.last_recv_ns != 0)
        info.since_recv = caf::timespan{steady - x.last_recv_ns};
      if (x.last_send_ns != 0)
        info.since_send = caf::timespan{steady - x.last_send_ns};
    }
    auto r = machine->report_of(info.id);
    info.frames_in = r.frames_in;
    info.frames_out = r.frames_out;
    info.ping = r.ping;
    info.ban_score = machine->score_of(info.id, t);
    info.tags = machine->tags_of(info.id);
  }

  /// Every open connection: established requests by id, then admitted
  /// inbound connections by slot.
  std::vector<peer_info> peers() {
    std::vector<peer_info> result;
    auto t = now();
    for (auto& x : machine->established()) {
      peer_info info;
      info.id = x.req.id;
      info.kind = x.req.automatic ? peer_class::automatic : peer_class::manual;
      info.permanent = x.req.permanent;
      info.remote_address = x.req.address;
      if (x.conn)
        info.local_address = x.conn->local_address();
      info.connected_for = t - x.since;
      if (auto took = established_dial_times.find(x.req.id))
        info.dial_time = *took;
      info.retry_count = x.req.retry_count;
      fill_extras(info, x.conn.get(), t);
      result.push_back(std::move(info));
    }
    auto first_inbound = result.size();
    machine->for_each_inbound(
      [&](uint64_t slot, const conn_machine::inbound_peer& in) {
        auto conn = in.conn.lock();
        // Closed, its slot_free on the way.
        if (!conn || conn->closed())
          return;
        peer_info info;
        info.id = slot;
        info.kind = peer_class::inbound;
        info.listener = in.listener;
        info.remote_address = in.remote_address;
        info.local_address = conn->local_address();
        info.connected_for = t - in.since;
        fill_extras(info, conn.get(), t);
        result.push_back(std::move(info));
      });
    std::sort(
      result.begin() + static_cast<ptrdiff_t>(first_inbound), result.end(),
      [](const peer_info& x, const peer_info& y) { return x.id < y.id; });
    return result;
  }

  void rejected(uint32_t listener, const connection_ptr& conn,
                const caf::error& reason, const std::string& rule) override {
    if (setup.subscribe.rejected)
      emit(rejected_event{listener, conn->remote_address(), reason, rule});
  }

  void evicted(uint64_t slot, const std::string& remote_address,
               const caf::error& reason, const std::string& rule) override {
    if (setup.subscribe.evicted)
      emit(evicted_event{slot, remote_address, reason, rule});
  }

  void banned(const std::string& subnet, const std::string& reason,
              caf::timespan duration, uint64_t peer) override {
    if (setup.subscribe.banned)
      emit(banned_event{subnet, reason, duration, peer});
  }
};

conn_handler_internal_actor::behavior_type
conn_handler(handler_state::pointer self, handler_setup setup) {
  auto& st = self->state;
  st.self = self;
  st.setup = std::move(setup);
  st.source = st.setup.address_source;
  st.gate_inbound = st.setup.gate.accept || st.setup.gate.actor;
  for (auto& acceptor : st.setup.listeners)
    st.own(caf::actor_cast<caf::actor>(acceptor));
  st.machine = std::make_unique<conn_machine>(
    st.setup.config, st.source != nullptr || st.setup.get_address != nullptr,
    st);
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& s = self->state;
    if (s.done) {
      // Only the dialer is monitored now: it went away during the flush.
      if (dm.source == s.setup.dialer.address())
        s.finish();
      return;
    }
    --s.live_children;
    s.check_done();
  });
  // As CAF's default: a linked actor that ends normally is no reason to
  // stop; any other exit reason (an owner going down) is a graceful stop.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    if (msg.reason)
      self->state.begin_stop();
  });
  if (st.setup.dialer)
    // Dials before the answer (or with a dialer that has no direct path, or
    // is gone) take the actor path.
    self->request(st.setup.dialer, caf::infinite, direct_atom::value)
      .then(
        [self](direct_dialer_ptr& path) {
          self->state.direct = std::move(path);
        },
        [](caf::error&) {});
  return {
    [self](start_atom) {
      handler_state::after_message guard{self->state};
      self->state.start();
    },
    [self](connect_atom, uint64_t id, std::string& address,
           bool permanent) -> caf::result<uint64_t> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      auto result =
        s.machine->connect(id, std::move(address), permanent, s.now());
      if (!result)
        return std::move(result.error());
      return *result;
    },
    [self](disconnect_atom, uint64_t id,
           bool trigger_reconnect) -> caf::result<void> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      return s.refusal(
        s.machine->disconnect(id, true, trigger_reconnect, s.now()));
    },
    [self](remove_atom, uint64_t id) -> caf::result<void> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      return s.refusal(s.machine->disconnect(id, false, false, s.now()));
    },
    [self](new_request_atom) {
      auto& s = self->state;
      handler_state::after_message guard{s};
      s.machine->new_request(s.now());
    },
    [self](requests_atom) { return self->state.machine->requests(); },
    [self](peers_atom) { return self->state.peers(); },
    [self](stats_atom) { return self->state.stats(); },
    [self](stop_atom) {
      auto& s = self->state;
      auto promise = self->make_response_promise<conn_stats>();
      s.stop_promises.push_back(promise);
      s.begin_stop();
      return promise;
    },
    [self](run_later_atom) {
      auto& s = self->state;
      s.run_later_sent = false;
      handler_state::after_message guard{s};
    },
    [self](dial_deadline_atom) {
      handler_state::after_message guard{self->state};
      self->state.dial_deadline_passed();
    },
    [self](inbound_atom, uint32_t listener, connection_batch& batch) {
      handler_state::after_message guard{self->state};
      auto& s = self->state;
      auto now = s.now();
      if (s.gate_inbound)
        for (auto& conn : batch)
          s.inbound_gated(listener, conn);
      else
        for (auto& conn : batch)
          s.machine->inbound(listener, conn, now);
    },
    [self](inbound_ready_atom, uint64_t slot) {
      handler_state::after_message guard{self->state};
      self->state.machine->inbound_ready(slot, self->state.now());
    },
    [self](inbound_ping_atom, uint64_t slot, caf::timespan rtt) {
      handler_state::after_message guard{self->state};
      self->state.machine->inbound_ping(slot, rtt);
    },
    [self](inbound_useful_atom, uint64_t slot) {
      handler_state::after_message guard{self->state};
      self->state.machine->inbound_useful(slot, self->state.now());
    },
    [self](ban_atom, std::string& subnet, caf::timespan duration,
           std::string& reason) -> caf::result<uint64_t> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      auto closed =
        s.machine->ban(subnet, duration, std::move(reason), s.now());
      if (!closed)
        return std::move(closed.error());
      return *closed;
    },
    [self](unban_atom, std::string& subnet) -> caf::result<void> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      return s.refusal(s.machine->unban(subnet, s.now()));
    },
    [self](bans_atom) {
      auto& s = self->state;
      s.now_read = false;
      return s.machine->bans(s.now());
    },
    [self](misbehaving_atom, uint64_t id, uint32_t points,
           std::string& reason) -> caf::result<void> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      return s.refusal(s.machine->misbehaving(id, points, reason, s.now()));
    },
    [self](peer_stats_atom, uint64_t id, uint64_t frames_in,
           uint64_t frames_out, caf::timespan ping) {
      self->state.machine->peer_stats(id, frames_in, frames_out, ping);
    },
    [self](protect_atom, uint64_t id, std::string& tag) -> caf::result<void> {
      auto& s = self->state;
      return s.refusal(s.machine->protect(id, tag));
    },
    [self](unprotect_atom, uint64_t id, std::string& tag) -> caf::result<void> {
      auto& s = self->state;
      return s.refusal(s.machine->unprotect(id, tag));
    },
    [self](limits_atom) { return self->state.machine->limits(); },
    [self](set_limits_atom, conn_limits& x) -> caf::result<conn_limits> {
      auto& s = self->state;
      handler_state::after_message guard{s};
      if (auto err = s.check_limits(x))
        return err;
      auto result = s.machine->set_limits(x, s.now());
      if (!result)
        return std::move(result.error());
      return *result;
    },
    [self](drain_atom, caf::timespan timeout) {
      auto& s = self->state;
      handler_state::after_message guard{s};
      auto promise = self->make_response_promise<conn_stats>();
      s.stop_promises.push_back(promise);
      s.drain(timeout);
      return promise;
    },
    [self](drain_deadline_atom) {
      auto& s = self->state;
      handler_state::after_message guard{s};
      s.drain_deadline_passed();
    },
    [self](slot_free_atom, uint64_t slot) {
      handler_state::after_message guard{self->state};
      self->state.machine->inbound_closed(slot);
    },
    [self](peer_gone_atom, uint64_t id, connection_ptr& conn,
           caf::error& reason) {
      auto& s = self->state;
      handler_state::after_message guard{s};
      s.machine->peer_gone(id, conn, reason, s.now());
    },
    [self](timer_atom, uint64_t key) {
      auto& s = self->state;
      handler_state::after_message guard{s};
      s.machine->timer_fired(key, s.now());
    },
    [self](dialed_atom, uint64_t attempt, connection_ptr& conn) {
      handler_state::after_message guard{self->state};
      self->state.dialed(attempt, std::move(conn));
    },
    [self](dialed_atom, uint64_t attempt, caf::error& err) {
      handler_state::after_message guard{self->state};
      self->state.dialed(attempt, std::move(err));
    },
  };
}

} // namespace

caf::expected<conn_handler_actor> spawn_conn_handler(caf::actor_system& sys,
                                                     handler_setup setup) {
  if (!setup.dialer && !setup.dial)
    return make_error(errc::invalid_config,
                      "dialer = none, expected a dialer actor");
  if (setup.dialer && setup.dial)
    return make_error(errc::invalid_config,
                      "dialer and dial both set, expected exactly one");
  if (setup.address_source && setup.get_address)
    return make_error(errc::invalid_config,
                      "address_source and get_address both set, expected "
                      "at most one");
  if (setup.gate.timeout <= caf::timespan{0})
    return make_error(errc::invalid_config,
                      "gate.timeout = " + to_string_duration(setup.gate.timeout)
                        + ", expected > 0");
  if (setup.gate.max_waiting_inbound == 0)
    return make_error(errc::invalid_config,
                      "gate.max_waiting_inbound = 0, expected at least 1");
  for (size_t i = 0; i < setup.listeners.size(); ++i)
    if (!setup.listeners[i])
      return make_error(errc::invalid_config,
                        "listeners[" + std::to_string(i)
                          + "] = none, expected an acceptor actor");
  // Errors name config keys when the config came from a section.
  auto refuse = [&setup](const config_violation& x) {
    return setup.config_section.empty() ? to_error(x)
                                        : to_error(x, setup.config_section);
  };
  if (auto x = find_violation(setup.config))
    return refuse(*x);
  // Every connection and every listening socket costs a descriptor: refuse
  // targets that cannot fit rather than failing with EMFILE later.
  auto limit = raise_fd_limit();
  if (auto x = check_descriptor_limit(setup.config, setup.listeners.size(),
                                      limit, fd_reserve))
    return refuse(*x);
  auto wanted = uint64_t{setup.config.target_outbound}
    + setup.config.max_inbound.value_or(0) + setup.listeners.size()
    + fd_reserve;
  // Room for every descriptor the configuration may hold, made now: growing
  // the table mid-ramp would stall the I/O thread for each doubling.
  reserve_descriptor_table(wanted + setup.config.max_pending_dials);
  return sys.spawn(conn_handler, std::move(setup));
}

} // namespace connmgr
