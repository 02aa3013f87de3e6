// The node actor: one actor's state and behaviour, kept in one file because
// its parts (address book bookkeeping, start and stop, DNS seeding, the
// address source, status, connections, the peer protocol's effects and the
// manager's events) all work on the same state; each is a section below.
#include "examples/node/node_actor.hpp"

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <exception>
#include <map>
#include <random>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/actors/dial_policy.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/events.hpp"
#include "connmgr/net/reactor.hpp"
#include "examples/node/node_machine.hpp"

namespace connmgr {

namespace {

// Messages the node actor sends itself.
using data_atom = caf::atom_constant<caf::atom("node_data")>;
using end_atom = caf::atom_constant<caf::atom("node_end")>;
using tick_atom = caf::atom_constant<caf::atom("node_tick")>;
using report_atom = caf::atom_constant<caf::atom("node_rep")>;
using seeded_atom = caf::atom_constant<caf::atom("node_seed")>;

/// 64 bits from the operating system's random source.
uint64_t random_secret() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// What one misbehaving drop adds to the peer's score: the manager's default
// ban threshold, since an honest peer never breaks the protocol or these
// limits (set `ban-threshold` higher to ban only repeat offenders).
constexpr uint32_t misbehaviour_points = 100;

// How long an empty address book waits before asking the DNS seeds again.
constexpr auto reseed_interval = std::chrono::seconds{30};

std::string reason_code(const caf::error& err) {
  if (!err)
    return {};
  auto code = errc_of(err);
  return code == errc::none ? std::string{"other"} : to_string(code);
}

struct node_state : node_effects {
  using time_point = caf::actor_clock::time_point;

  /// One open connection.
  struct peer {
    connection_ptr conn;
    stream_handle stream;
    /// The manager's request id; 0 for inbound connections.
    uint64_t request = 0;
    bool outbound = false;
    bool permanent = false;
    /// The address the book holds for this connection (dialed address).
    std::optional<net_address> held;
    /// Whether the manager dialed it for an automatic request.
    bool automatic = false;
    /// The manager's inbound slot; 0 for outbound connections.
    uint64_t slot = 0;
    /// Frames queued for this peer.
    uint64_t frames_sent = 0;
    /// The peer's listening address, held once it is ready.
    std::optional<net_address> listen_held;
    bool ready = false;
  };

  caf::stateful_actor<node_state>* self = nullptr;
  node_parts parts;
  std::unique_ptr<node_machine> machine;
  address_manager book;
  /// What gossip may make us dial.
  dial_policy policy;
  /// The network group of every address handed out for an automatic
  /// request still alive: one automatic outbound connection per group.
  std::map<net_address, netgroup> automatic;
  conn_handler_actor handler;
  /// Ours: it goes after the handler, and the node is gone only once the
  /// dialer is (it holds the reactor and may hold sockets).
  dialer_actor dialer;
  bool handler_gone = false;
  bool dialer_gone = false;
  std::map<uint64_t, peer> peers;
  uint64_t next_key = 0;
  /// How many open connections hold each address in use in the book.
  std::map<net_address, size_t> holds;
  std::optional<time_point> last_seeding;
  /// Whether an empty book was reported since it last handed out an address
  /// (the manager asks again and again; one line says it all).
  bool empty_book_reported = false;
  bool started = false;
  bool stopping = false;
  conn_stats final_stats;

  static inline const char* name = "connmgr.node";

  ~node_state() override {
    // Whatever path ended the actor, nothing it owned stays open, and no
    // part of it runs on (after a failure, the handler and dialer are still
    // up: they would hold the reactor and accept for a node that is gone).
    close_peers();
    if (handler && !handler_gone)
      caf::anon_send_exit(handler, caf::exit_reason::user_shutdown);
    if (dialer && !dialer_gone)
      caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
    // Let go of the reactor, the resolver and the callbacks before saying
    // we are gone: whoever waits may then close the reactor at once.
    auto done = std::move(parts.done);
    machine.reset();
    parts = node_parts{};
    if (done)
      done->fire();
  }

  time_point now() const {
    return self->clock().now();
  }

  const node_settings& settings() const {
    return parts.setup.settings;
  }

  /// Once stopping, events say nothing new (dials canceled, retries that
  /// will never run, connections we close): only "stopped" follows
  /// "stopping".
  void emit(node_event ev) {
    if (stopping && ev.event != "stopped")
      return;
    if (parts.setup.on_event)
      parts.setup.on_event(ev);
  }

  // -- address book bookkeeping ----------------------------------------------

  /// An open connection holds `addr` in use (a dialed one until its
  /// handshake proves it, see `ready`; an inbound peer's announced one).
  void hold(const net_address& addr) {
    if (holds[addr]++ == 0)
      book.mark_in_use(addr);
  }

  void unhold(const net_address& addr, bool failed) {
    auto i = holds.find(addr);
    if (i == holds.end())
      return;
    if (--i->second > 0)
      return;
    holds.erase(i);
    if (failed)
      book.mark_failed(addr, now());
    else
      book.release(addr);
  }

  /// Stores `addrs`, learnt from `source` (a gossiping peer; none for
  /// configuration, DNS and hellos); returns how many are new.
  size_t learn(const std::vector<net_address>& addrs,
               const std::optional<net_address>& source) {
    size_t added = 0;
    for (auto& addr : addrs) {
      auto res = book.add(addr, source, now());
      if (res == add_result::added || res == add_result::replaced)
        ++added;
    }
    return added;
  }

  /// Keeps what `policy` lets us dial of what `from` told us; reports the
  /// rest as `gossip_dropped` events, one per reason.
  std::vector<net_address> admissible(std::vector<net_address> addrs,
                                      const std::string& from) {
    std::map<std::string, size_t> refused;
    auto kept = policy.filter(std::move(addrs), refused);
    for (auto& [why, count] : refused) {
      node_event ev;
      ev.event = "gossip_dropped";
      ev.addr = from;
      ev.reason_code = why;
      ev.count = count;
      emit(std::move(ev));
    }
    return kept;
  }

  /// Releases the automatic request's claim on `addr`'s network group.
  void automatic_done(const net_address& addr) {
    automatic.erase(addr);
  }

  // -- start and stop ---------------------------------------------------------

  void init(conn_handler_actor hdl, dialer_actor dial) {
    handler = std::move(hdl);
    dialer = std::move(dial);
    self->monitor(handler);
    self->monitor(dialer);
  }

  void start() {
    if (started || stopping || !handler)
      return;
    started = true;
    self->send(handler, start_atom::value);
    // A refusal also arrives as a failed event: the answer adds nothing.
    for (auto& addr : settings().connect)
      self
        ->request(handler, caf::infinite, connect_atom::value, uint64_t{0},
                  addr.to_string(), true)
        .then([](uint64_t) {}, [](caf::error&) {});
    seed();
    schedule_status();
  }

  void begin_stop(const std::string& why) {
    if (stopping)
      return;
    node_event ev;
    ev.event = "stopping";
    ev.reason = why;
    emit(std::move(ev));
    stopping = true;
    if (!handler) {
      finish();
      return;
    }
    self->request(handler, caf::infinite, stop_atom::value)
      .then([this](conn_stats& stats) { final_stats = stats; },
            [](caf::error&) {
              // The handler died: its down message ends us.
            });
  }

  /// The handler is gone: close what we hold, end the dialer, and quit once
  /// it is gone too.
  void handler_down() {
    handler_gone = true;
    stopping = true;
    close_peers();
    if (dialer && !dialer_gone)
      self->send_exit(dialer, caf::exit_reason::user_shutdown);
    else
      finish();
  }

  void dialer_down() {
    dialer_gone = true;
    if (handler_gone)
      finish();
  }

  /// Every connection of ours is closed by now (`handler_down`, or nothing
  /// ever opened without a handler).
  void finish() {
    stopping = true;
    node_event ev;
    ev.event = "stopped";
    emit(std::move(ev));
    self->quit();
  }

  // -- DNS seeding --------------------------------------------------------------

  void seed() {
    if (settings().dns_seeds.empty())
      return;
    last_seeding = now();
    auto me = caf::actor_cast<caf::actor>(self);
    for (auto& seed_addr : settings().dns_seeds) {
      auto name_text = seed_addr.to_string();
      parts.setup.lookup(
        seed_addr,
        [me, name_text](caf::expected<std::vector<net_address>> res) {
          std::vector<std::string> found;
          caf::error err;
          if (res) {
            for (auto& a : *res)
              found.push_back(a.to_string());
          } else {
            err = std::move(res.error());
          }
          caf::anon_send(me, seeded_atom::value, name_text, std::move(found),
                         std::move(err));
        });
    }
  }

  void seeded(const std::string& seed_name,
              const std::vector<std::string>& found, const caf::error& err) {
    node_event ev;
    ev.event = "seeded";
    ev.addr = seed_name;
    if (err) {
      ev.reason = describe(err);
      ev.reason_code = reason_code(err);
      ev.count = 0;
      emit(std::move(ev));
      return;
    }
    std::vector<net_address> addrs;
    for (auto& text : found)
      if (auto addr = net_address::parse(text))
        addrs.push_back(std::move(*addr));
    ev.count = learn(addrs, std::nullopt);
    emit(std::move(ev));
  }

  // -- the address source -------------------------------------------------------

  caf::result<std::string> get_address() {
    if (book.size() == 0 && !settings().dns_seeds.empty()
        && (!last_seeding || now() - *last_seeding >= reseed_interval))
      seed();
    // Few automatic connections per network group: an attacker who owns a
    // few networks gets at most that many of our outbound slots.
    std::map<netgroup, uint32_t> per_group;
    for (auto& kvp : automatic)
      ++per_group[kvp.second];
    std::vector<netgroup> avoid;
    for (auto& [group, count] : per_group)
      if (count >= settings().outbound_per_netgroup)
        avoid.push_back(group);
    auto addr = book.take(now(), avoid);
    if (!addr) {
      // Relays reach only a few peers: a node that joined after us may be
      // known only to our peers. Asking is bounded per peer by the machine.
      if (machine)
        machine->request_addresses(now());
      return std::move(addr.error());
    }
    // `take` marked it in use; the request holds it until it fails or its
    // connection closes.
    ++holds[*addr];
    automatic[*addr] = book.group_of(*addr);
    empty_book_reported = false;
    return addr->to_string();
  }

  // -- status -------------------------------------------------------------------

  /// Only when someone takes the reports: a pending delayed message keeps
  /// the actor's memory until it fires, however long after the stop (the
  /// swarm polls instead and sets the interval to an hour).
  void schedule_status() {
    if (!parts.setup.on_status)
      return;
    self->delayed_send(self, settings().status_interval, report_atom::value);
  }

  node_status make_status(const conn_stats& st) const {
    node_status s;
    s.outbound = st.outbound_established;
    s.target_outbound = settings().manager.target_outbound;
    s.inbound = st.inbound_live;
    if (settings().manager.max_inbound)
      s.max_inbound = *settings().manager.max_inbound;
    s.pending_dials = st.dials_in_flight + st.dials_queued;
    s.failures = st.dials_failed;
    s.retries = st.retries_scheduled;
    s.failed_attempts = st.failed_attempts;
    s.peers_ready = machine->ready_count();
    s.known_addresses = book.size();
    return s;
  }

  // -- connections --------------------------------------------------------------

  void open(connection_ptr conn, bool outbound, const conn_request* req,
            uint64_t slot = 0) {
    auto key = ++next_key;
    auto& p = peers[key];
    p.conn = conn;
    p.outbound = outbound;
    p.slot = slot;
    if (req != nullptr) {
      p.request = req->id;
      p.permanent = req->permanent;
      p.automatic = req->automatic;
      if (auto addr = net_address::parse(req->address)) {
        // An automatic request's address is held since `take`. Only the
        // handshake proves it (`ready`): a peer that accepts and then
        // resets, or never speaks, keeps failing and backing off.
        if (!req->automatic)
          hold(*addr);
        p.held = std::move(*addr);
      }
    }
    auto me = caf::actor_cast<caf::actor>(self);
    stream_callbacks cb;
    cb.on_data = [me, key](std::vector<uint8_t> bytes) {
      caf::anon_send(me, data_atom::value, key, std::move(bytes));
    };
    cb.on_end = [me, key](const caf::error& reason) {
      caf::anon_send(me, end_atom::value, key, reason);
    };
    p.stream = parts.setup.io->stream(conn, std::move(cb), settings().streams);
    machine->opened(key, outbound,
                    req != nullptr ? req->address : conn->remote_address(),
                    now());
  }

  /// Closes every connection we hold, without reporting them.
  void close_peers() {
    for (auto& [key, p] : peers)
      p.conn->close();
    peers.clear();
  }

  /// Forgets `key` and gives its addresses back to the book; the dialed one
  /// as failed when `address_failed`.
  void forget(std::map<uint64_t, peer>::iterator i, bool address_failed) {
    auto& p = i->second;
    if (p.held) {
      if (p.automatic)
        automatic_done(*p.held);
      unhold(*p.held, address_failed);
    }
    if (p.listen_held)
      unhold(*p.listen_held, false);
    peers.erase(i);
  }

  void stream_ended(uint64_t key, const caf::error& reason) {
    auto i = peers.find(key);
    if (i == peers.end())
      return; // we dropped it ourselves
    auto node_id = machine->node_of(key);
    machine->closed(key);
    node_event ev;
    // The reactor dropped a peer that does not read: our decision, so it
    // reads like any other drop.
    ev.event =
      errc_of(reason) == errc::slow_reader ? "peer_dropped" : "peer_closed";
    ev.addr = i->second.conn->remote_address();
    ev.id = i->second.request;
    ev.outbound = i->second.outbound;
    ev.peer_node = node_id.value_or(0);
    ev.reason = describe(reason);
    ev.reason_code = reason_code(reason);
    i->second.conn->close();
    forget(i, !i->second.ready);
    emit(std::move(ev));
  }

  // -- node_effects -------------------------------------------------------------

  void send(uint64_t key, const node_frames::frame& msg) override {
    auto i = peers.find(key);
    if (i == peers.end())
      return;
    // A frame refused by a full send buffer is lost: the peer does not
    // read, and the reactor drops it as a slow reader unless it catches up.
    i->second.stream.send(node_frames::encode(msg));
    ++i->second.frames_sent;
  }

  /// Bytes of `key` arrived: hand them to the protocol, then let the
  /// reactor read that much more. Once stopping, nothing is read any more:
  /// the backlog is discarded and the streams stay paused.
  void received(uint64_t key, const std::vector<uint8_t>& bytes) {
    if (stopping)
      return;
    machine->received(key, bytes.data(), bytes.size(), now());
    if (auto i = peers.find(key); i != peers.end())
      i->second.stream.consumed(bytes.size());
  }

  void ping_answered(uint64_t key, caf::timespan rtt) override {
    // Once per ping interval: the manager shows the counts in `peers`, and
    // eviction spares the fastest inbound peers.
    auto i = peers.find(key);
    if (i == peers.end())
      return;
    auto id = i->second.outbound ? i->second.request : i->second.slot;
    if (id != 0)
      self->send(handler, peer_stats_atom::value, id,
                 machine->frames_received(key), i->second.frames_sent, rtt);
  }

  void gossip_limited(uint64_t key, size_t count) override {
    auto i = peers.find(key);
    node_event ev;
    ev.event = "gossip_dropped";
    ev.addr = i != peers.end() ? i->second.conn->remote_address()
                               : std::string{"gossip"};
    ev.reason_code = "rate_limited";
    ev.count = count;
    emit(std::move(ev));
  }

  void drop(uint64_t key, drop_reason why, const caf::error& reason) override {
    auto i = peers.find(key);
    if (i == peers.end())
      return;
    auto& p = i->second;
    node_event ev;
    ev.event = "peer_dropped";
    ev.id = p.request;
    ev.addr = p.conn->remote_address();
    ev.outbound = p.outbound;
    ev.reason = describe(reason);
    ev.reason_code = to_string(why);
    emit(std::move(ev));
    // Sent before the close below reaches the manager, which still knows
    // the peer then: it bans the address and closes what else it holds.
    if (is_misbehaviour(why))
      self->send(handler, misbehaving_atom::value,
                 p.outbound ? p.request : p.slot, misbehaviour_points,
                 to_string(why));
    if (p.outbound) {
      switch (why) {
        case drop_reason::self:
          if (p.held)
            book.exclude(*p.held);
          self->send(handler, remove_atom::value, p.request);
          break;
        case drop_reason::duplicate:
          // A permanent peer stays wanted: retry it later (with backoff)
          // rather than forgetting it.
          if (p.permanent)
            self->send(handler, disconnect_atom::value, p.request, true);
          else
            self->send(handler, remove_atom::value, p.request);
          break;
        default:
          // The peer is as good as gone: let the manager apply its rules.
          p.conn->peer_gone(reason);
      }
    }
    p.conn->close();
    forget(i, counts_as_failure(p, why));
  }

  /// A drop that scores the peer: it broke the protocol or a rate limit
  /// that an honest peer never reaches.
  static bool is_misbehaviour(drop_reason why) {
    switch (why) {
      case drop_reason::protocol:
      case drop_reason::frame_rate:
      case drop_reason::ping_rate:
      case drop_reason::addr_rate:
        return true;
      default:
        return false;
    }
  }

  /// Whether dropping `p` for `why` backs its dialed address off.
  static bool counts_as_failure(const peer& p, drop_reason why) {
    switch (why) {
      case drop_reason::self:
        // Excluded already.
        return false;
      case drop_reason::duplicate:
        // The node is connected through the other connection. An automatic
        // dial that found it backs off, or the manager would dial the
        // same address again at once.
        return p.outbound && !p.permanent;
      case drop_reason::protocol:
      case drop_reason::frame_rate:
      case drop_reason::ping_rate:
      case drop_reason::addr_rate:
      case drop_reason::slow_reader:
        return true;
      default:
        return !p.ready;
    }
  }

  void ready(uint64_t key, uint64_t node_id,
             const std::optional<net_address>& listen_address) override {
    auto i = peers.find(key);
    if (i == peers.end())
      return;
    auto& p = i->second;
    p.ready = true;
    // The dialed address proved itself: it moves to tried, its failures end.
    if (p.outbound && p.held)
      book.mark_connected(*p.held, now());
    if (listen_address) {
      auto from = p.conn->remote_address();
      auto kept = admissible({*listen_address}, from);
      if (!kept.empty()) {
        learn(kept, std::nullopt);
        hold(*listen_address);
        p.listen_held = *listen_address;
      }
    }
    // A handshake done: the manager's admission counts it no longer as
    // pending.
    if (p.slot != 0)
      self->send(handler, inbound_ready_atom::value, p.slot);
    node_event ev;
    ev.event = "peer_ready";
    ev.id = p.request;
    ev.addr = p.conn->remote_address();
    ev.outbound = p.outbound;
    ev.peer_node = node_id;
    emit(std::move(ev));
  }

  void learned(uint64_t key, std::vector<net_address> addresses) override {
    auto i = peers.find(key);
    auto source = i != peers.end() ? i->second.conn->remote_address()
                                   : std::string{"gossip"};
    auto kept = admissible(std::move(addresses), source);
    std::optional<net_address> from;
    if (auto parsed = net_address::parse(source))
      from = std::move(*parsed);
    auto added = learn(kept, from);
    // Eviction spares the peers that most recently brought news.
    if (i != peers.end() && i->second.slot != 0 && added > 0)
      self->send(handler, inbound_useful_atom::value, i->second.slot);
    if (added == 0)
      return;
    node_event ev;
    ev.event = "learned";
    ev.addr = source;
    ev.count = added;
    emit(std::move(ev));
  }

  void arm_timer(uint64_t key, time_point at) override {
    auto delay = at - now();
    if (delay.count() < 0)
      delay = decltype(delay){0};
    self->delayed_send(self, delay, tick_atom::value, key);
  }

  // -- manager events -------------------------------------------------------------

  static node_event request_event(const char* kind, const conn_request& req) {
    node_event ev;
    ev.event = kind;
    ev.id = req.id;
    ev.addr = req.address;
    ev.permanent = req.permanent;
    return ev;
  }

  void on_connected(connected_event& ev) {
    auto out = request_event("connected", ev.request);
    out.dial_us =
      std::chrono::duration_cast<std::chrono::microseconds>(ev.dial_time)
        .count();
    emit(std::move(out));
    if (stopping) {
      ev.conn->close();
      return;
    }
    open(std::move(ev.conn), true, &ev.request);
  }

  void on_accepted(accepted_event& ev) {
    node_event out;
    out.event = "accepted";
    out.addr = ev.conn->remote_address();
    emit(std::move(out));
    if (stopping) {
      ev.conn->close();
      return;
    }
    open(std::move(ev.conn), false, nullptr, ev.slot);
  }

  void on_failed(const failed_event& ev) {
    if (errc_of(ev.reason) == errc::no_address) {
      if (empty_book_reported)
        return;
      empty_book_reported = true;
    }
    auto out = request_event("failed", ev.request);
    out.reason = describe(ev.reason);
    out.reason_code = reason_code(ev.reason);
    if (ev.dial_time.count() > 0)
      out.dial_us =
        std::chrono::duration_cast<std::chrono::microseconds>(ev.dial_time)
          .count();
    emit(std::move(out));
    if (!ev.request.automatic)
      return;
    auto addr = net_address::parse(ev.request.address);
    if (!addr)
      return;
    automatic_done(*addr);
    switch (errc_of(ev.reason)) {
      case errc::duplicate_address:
      case errc::duplicate_request:
        return;
      case errc::canceled:
      case errc::stopped:
        unhold(*addr, false);
        return;
      default:
        unhold(*addr, true);
    }
  }
};

caf::behavior node_actor(caf::stateful_actor<node_state>* self,
                         node_parts parts) {
  auto& st = self->state;
  st.self = self;
  node_machine_config mcfg;
  mcfg.node_id = parts.node_id;
  mcfg.listen_port =
    parts.bound.empty() ? uint16_t{0} : parts.bound.front().port();
  mcfg.handshake_timeout = parts.setup.settings.handshake_timeout;
  mcfg.ping_interval = parts.setup.settings.ping_interval;
  mcfg.relay_secret = random_secret();
  st.parts = std::move(parts);
  st.machine = std::make_unique<node_machine>(mcfg, st);
  // A bug must not end the node silently: say what it was, on stderr
  // (tests fail on any stderr line) and as the stopping event's reason.
  self->set_exception_handler([self](std::exception_ptr& eptr) -> caf::error {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(eptr);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
      // keep "unknown exception"
    }
    std::fprintf(stderr, "connmgr-node: node %016llx failed: %s\n",
                 static_cast<unsigned long long>(self->state.parts.node_id),
                 what.c_str());
    node_event ev;
    ev.event = "stopping";
    ev.reason = "internal error: " + what;
    self->state.emit(std::move(ev));
    return make_error(errc::stopped, "internal error: " + what);
  });
  address_manager_config bcfg;
  bcfg.backoff_base = st.settings().manager.retry_duration;
  bcfg.backoff_cap =
    std::max(st.settings().manager.max_retry_duration, bcfg.backoff_base);
  bcfg.netgroup_bits_ipv4 = st.settings().manager.netgroup_bits_ipv4;
  bcfg.netgroup_bits_ipv6 = st.settings().manager.netgroup_bits_ipv6;
  // Secret: whoever knows it can aim gossip at our buckets (the node id
  // is public, it travels in every hello).
  bcfg.seed = random_secret();
  st.book = address_manager{bcfg};
  // Never dial ourselves: our listening and other endpoints, and for a
  // wildcard listener every loopback address on its port.
  dial_policy_config pcfg;
  pcfg.allow_local_addresses = st.settings().allow_local_addresses;
  pcfg.own_endpoints = st.parts.bound;
  for (auto& addr : st.parts.setup.own_endpoints)
    pcfg.own_endpoints.push_back(addr);
  for (auto& addr : pcfg.own_endpoints) {
    st.book.exclude(addr);
    if (addr.host() == "0.0.0.0" || addr.host() == "::") {
      for (auto loop : {"127.0.0.1", "[::1]"})
        if (auto a = net_address::parse(std::string{loop} + ":"
                                        + std::to_string(addr.port())))
          st.book.exclude(*a);
    }
  }
  st.policy = dial_policy{std::move(pcfg)};
  // Dialed permanently anyway.
  for (auto& addr : st.settings().connect)
    st.book.exclude(addr);
  for (auto& text : st.settings().peers)
    if (auto addr = net_address::parse(text))
      st.book.add(*addr, std::nullopt, st.now());
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st2 = self->state;
    if (msg.source == st2.handler.address())
      st2.handler_down();
    else if (msg.source == st2.dialer.address())
      st2.dialer_down();
  });
  return {
    [self](node_init_atom, conn_handler_actor& hdl, dialer_actor& dial) {
      self->state.init(std::move(hdl), std::move(dial));
    },
    [self](start_atom) { self->state.start(); },
    [self](stop_atom, const std::string& why) { self->state.begin_stop(why); },
    [self](get_address_atom) { return self->state.get_address(); },
    [self](data_atom, uint64_t key, const std::vector<uint8_t>& bytes) {
      self->state.received(key, bytes);
    },
    [self](end_atom, uint64_t key, const caf::error& reason) {
      self->state.stream_ended(key, reason);
    },
    [self](tick_atom, uint64_t key) {
      self->state.machine->timer_fired(key, self->state.now());
    },
    [self](seeded_atom, const std::string& seed_name,
           const std::vector<std::string>& found, const caf::error& err) {
      self->state.seeded(seed_name, found, err);
    },
    [self](report_atom) {
      auto& s = self->state;
      if (s.stopping)
        return;
      s.schedule_status();
      self->request(s.handler, caf::infinite, stats_atom::value)
        .then(
          [self](conn_stats& stats) {
            auto& s2 = self->state;
            if (s2.parts.setup.on_status && !s2.stopping)
              s2.parts.setup.on_status(s2.make_status(stats));
          },
          [](caf::error&) {
            // The handler is stopping: no report, and no reason to quit.
          });
    },
    [self](node_status_atom) {
      auto& s = self->state;
      auto rp = self->make_response_promise();
      self->request(s.handler, caf::infinite, stats_atom::value)
        .then(
          [self, rp](conn_stats& stats) mutable {
            rp.deliver(self->state.make_status(stats));
          },
          [rp](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [self](connected_event& ev) { self->state.on_connected(ev); },
    [self](accepted_event& ev) { self->state.on_accepted(ev); },
    [self](failed_event& ev) { self->state.on_failed(ev); },
    [self](retry_event& ev) {
      auto out = node_state::request_event("retry", ev.request);
      out.delay_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(ev.delay).count();
      self->state.emit(std::move(out));
    },
    [self](disconnected_event& ev) {
      auto out = node_state::request_event("disconnected", ev.request);
      out.reason = describe(ev.reason);
      out.reason_code = reason_code(ev.reason);
      self->state.emit(std::move(out));
    },
    [self](rejected_event& ev) {
      node_event out;
      out.event = "rejected";
      out.addr = ev.remote_address;
      out.reason = describe(ev.reason);
      out.reason_code = ev.rule.empty() ? reason_code(ev.reason) : ev.rule;
      self->state.emit(std::move(out));
    },
    [self](drain_event& ev) {
      node_event out;
      out.event = "draining";
      out.reason_code = ev.step;
      out.count = ev.open;
      self->state.emit(std::move(out));
    },
    [self](banned_event& ev) {
      node_event out;
      out.event = "banned";
      out.id = ev.peer;
      out.addr = ev.subnet;
      out.reason = ev.reason;
      out.reason_code = "banned";
      out.delay_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(ev.duration)
          .count();
      self->state.emit(std::move(out));
    },
    [self](evicted_event& ev) {
      node_event out;
      out.event = "evicted";
      out.addr = ev.remote_address;
      out.reason = describe(ev.reason);
      out.reason_code = ev.rule;
      self->state.emit(std::move(out));
    },
    [](stopped_event&) {
      // The handler's down message follows; it ends the node.
    },
  };
}

} // namespace

uint64_t random_node_id() {
  uint64_t id = 0;
  while (id == 0)
    id = random_secret();
  return id;
}

caf::actor spawn_node_actor(caf::actor_system& sys, node_parts parts) {
  return sys.spawn(node_actor, std::move(parts));
}

} // namespace connmgr
