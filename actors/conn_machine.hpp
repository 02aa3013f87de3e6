#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "connmgr/actors/ban_list.hpp"
#include "connmgr/actors/conn_effects.hpp"
#include "connmgr/actors/dynamic_ban_score.hpp"
#include "connmgr/actors/inbound_admission.hpp"
#include "connmgr/actors/retry_policy.hpp"
#include "connmgr/messages/ban_info.hpp"
#include "connmgr/messages/conn_limits.hpp"
#include "connmgr/messages/conn_request.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/manager_config.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr {

/// The decisions of the connection handler, as a plain state machine: no
/// threads, no sockets, no clock of its own. Every input carries the current
/// time; every output goes through `conn_effects`. Not thread-safe: one actor
/// (or one test) drives it.
///
/// Guarantees:
/// - while started and not stopped, exactly `target_outbound` automatic
///   requests are alive (if an address source exists);
/// - every connection handed in is either passed to `connected` or closed,
///   never both, never neither;
/// - every request ends in exactly one terminal state (canceled,
///   disconnected, or failing without a retry) and is then forgotten;
/// - at most `max_pending_dials` dials are in flight;
/// - no dial starts and no inbound connection is admitted for an address
///   inside a ban in force, and no connection to one stays open once its
///   ban is known (a host name is checked once its dial has connected);
/// - request ids and inbound slots come from one counter: no two open
///   connections or live requests share an id.
class conn_machine {
public:
  using time_point = caf::actor_clock::time_point;

  /// `cfg` must be valid (see `validate`). `has_address_source` enables
  /// automatic requests.
  conn_machine(const manager_config& cfg, bool has_address_source,
               conn_effects& fx);

  /// Starts `target_outbound` automatic requests. Idempotent; ignored after
  /// `stop`.
  void start(time_point now);

  /// A manual request to `address`. `id` 0 draws a fresh one. Refused after
  /// stop, for an empty address, for an id in use, and (if configured) for
  /// an address already pending or connected; a refusal also reaches
  /// `failed`.
  caf::expected<uint64_t> connect(uint64_t id, std::string address,
                                  bool permanent, time_point now);

  /// One extra one-shot request whose address comes from the address source.
  void new_request(time_point now);

  /// The address source answered for request `id`.
  void address_ready(uint64_t id, caf::expected<std::string> address,
                     time_point now);

  /// Dial `attempt` of request `id` produced `conn`.
  void dial_succeeded(uint64_t id, uint64_t attempt, connection_ptr conn,
                      time_point now);

  /// Dial `attempt` of request `id` failed with `reason`.
  void dial_failed(uint64_t id, uint64_t attempt, const caf::error& reason,
                   time_point now);

  /// Closes request `id`'s connection, or cancels it if not connected.
  /// With `retry`, an established request is redialed if permanent or if
  /// `trigger_reconnect` (with backoff); an automatic one is replaced.
  /// An inbound peer's id closes it (`evicted` with rule "disconnect" or
  /// "remove"). Returns `errc::unknown_request` (changing nothing) for an
  /// id that is neither, and `errc::stopped` once stopped.
  caf::error disconnect(uint64_t id, bool retry, bool trigger_reconnect,
                        time_point now);

  /// The peer of request `id`'s connection `conn` closed or reset it: the
  /// same as `disconnect(id, true, false)` with `reason`, but only while
  /// `conn` is still the request's connection (a report about an older
  /// connection of a redialed request is ignored).
  void peer_gone(uint64_t id, const connection_ptr& conn,
                 const caf::error& reason, time_point now);

  /// The timer armed with `key` is due. Stale keys are ignored.
  void timer_fired(uint64_t key, time_point now);

  /// An inbound connection arrived on `listener`: admitted (`accepted`),
  /// refused (`rejected`), or admitted after another inbound connection
  /// was closed to make room for it (`evicted`, then `accepted`); see
  /// `inbound_admission` for the rules of `manager_config`. A slot whose
  /// connection is closed already (its `inbound_closed` still to come) is
  /// released first, never evicted.
  void inbound(uint32_t listener, const connection_ptr& conn, time_point now);

  /// The inbound connection that held `slot` closed. Releases the slot once.
  void inbound_closed(uint64_t slot);

  /// The inbound connection of `slot` finished the application's handshake
  /// (it no longer counts against `max_pending_inbound`).
  void inbound_ready(uint64_t slot, time_point now);

  /// A ping round trip of the inbound connection of `slot` (the fastest
  /// peers are protected from eviction).
  void inbound_ping(uint64_t slot, caf::timespan rtt);

  /// The inbound connection of `slot` did something useful (the most
  /// recently useful peers are protected from eviction).
  void inbound_useful(uint64_t slot, time_point now);

  /// Inbound `conn` on `listener` before admission, for a rule outside the
  /// machine (a gate): with `reason` set, refuses it by `rule`; without,
  /// refuses it only as `inbound` would before admission (after stop, or
  /// inside a ban in force). A refused `conn` is closed, counted in
  /// `inbound_rejected` and reported to `rejected`; returns whether it was.
  /// Never admits: an unrefused `conn` is still to be passed to `inbound`.
  bool inbound_refused(uint32_t listener, const connection_ptr& conn,
                       const caf::error& reason, const std::string& rule,
                       time_point now);

  // -- bans --------------------------------------------------------------

  /// Bans `subnet` (see `parse_subnet`) for `duration` with `reason`, and
  /// closes every open connection inside it: outbound ones as a disconnect
  /// with retry (`errc::banned`), inbound ones as an eviction with rule
  /// "banned". Returns how many it closed. Refused with the parse error,
  /// `errc::invalid_config` for a duration outside 1 ns..`max_ban_duration`,
  /// `errc::limit_reached` when `max_bans` are held, `errc::stopped`.
  caf::expected<uint64_t> ban(const std::string& subnet, caf::timespan duration,
                              std::string reason, time_point now);

  /// Lifts the ban of exactly `subnet`; `errc::not_found` if none is held,
  /// or the parse error.
  caf::error unban(const std::string& subnet, time_point now);

  /// Every ban in force at `now`, ordered by subnet.
  std::vector<ban_info> bans(time_point now);

  /// Peer `id` (an established request or an admitted inbound slot)
  /// misbehaved: adds `points` to its persistent misbehaviour score, and at
  /// `ban_threshold` bans its address (a /32 or /128) for `ban_duration`
  /// and closes it (with `max_bans` held, it is only closed).
  /// `errc::unknown_request` for an id that is no open connection.
  caf::error misbehaving(uint64_t id, uint32_t points,
                         const std::string& reason, time_point now);

  // -- protection, limits, drain ------------------------------------------

  /// Tags peer `id` (a live request or an admitted inbound slot) with
  /// `tag`: a peer with any tag is never evicted nor closed by a lowered
  /// limit. At most `max_tags` tags of 1..64 characters per peer; adding
  /// one it has is a no-op. `errc::unknown_request`, `errc::invalid_config`
  /// (the tag) or `errc::limit_reached`.
  caf::error protect(uint64_t id, const std::string& tag);

  /// Removes `tag` from peer `id`; `errc::not_found` if it lacks it.
  caf::error unprotect(uint64_t id, const std::string& tag);

  /// The tags of peer `id`, in the order they were added.
  std::vector<std::string> tags_of(uint64_t id) const;

  /// What the application counted of peer `id` (see `peer_stats_atom`);
  /// ignored for an id that is no open connection.
  void peer_stats(uint64_t id, uint64_t frames_in, uint64_t frames_out,
                  caf::timespan ping);

  /// The application's counts of a peer, as last reported.
  struct peer_report {
    uint64_t frames_in = 0;
    uint64_t frames_out = 0;
    caf::timespan ping{0};
  };

  /// The last report of peer `id` (zeros if none).
  peer_report report_of(uint64_t id) const;

  /// The misbehaviour score of peer `id` at `now` (0 if it has none).
  uint32_t score_of(uint64_t id, time_point now) const;

  /// Tags one peer may carry.
  static constexpr size_t max_tags = 16;

  /// Applies new limits at once, refusing invalid values with the error
  /// `validate` gives. Raising `target_outbound` starts requests now, a
  /// higher `max_pending_dials` starts queued dials; lowering a class's
  /// limit (`target_outbound`, `max_manual`, `max_permanent`,
  /// `max_inbound`) cancels its youngest pending requests, then closes its
  /// youngest open connections, never a protected one, with
  /// `errc::limit_lowered` (outbound: `disconnected` without retry;
  /// inbound: `evicted` with rule "limit_lowered"). Per-source caps apply
  /// to newcomers. Returns the limits now in force.
  caf::expected<conn_limits> set_limits(const conn_limits& x, time_point now);

  /// The limits in force.
  conn_limits limits() const {
    return limits_of(cfg_);
  }

  /// Starts a drain: no request is made or redialed and no inbound
  /// connection admitted from now on; every request not established is
  /// canceled (`failed` with `errc::draining`). Open connections stay
  /// until `close_all` or their own end. Idempotent.
  void drain(time_point now);

  /// True after `drain`.
  bool draining() const noexcept {
    return draining_;
  }

  /// Closes every open connection with `reason`: outbound ones without
  /// retry, inbound ones as evictions with `rule`. Returns how many.
  uint64_t close_all(const caf::error& reason, const std::string& rule,
                     time_point now);

  /// Open connections: established requests plus admitted inbound ones.
  uint64_t open_connections() const;

  /// The longest ban `ban` accepts: ten years.
  static constexpr caf::timespan max_ban_duration = std::chrono::hours{87'600};

  /// Cancels every dial, drops every timer and pending request, and turns
  /// every later input into a no-op (late connections are closed).
  void stop();

  /// True after `stop`.
  bool stopped() const noexcept {
    return stopped_;
  }

  /// Snapshot of every live request, ordered by id.
  std::vector<conn_request> requests() const;

  /// An established request with its connection and when it connected.
  struct established_request {
    conn_request req;
    connection_ptr conn;
    time_point since;
  };

  /// Every established request, ordered by id.
  std::vector<established_request> established() const;

  /// An admitted inbound connection, until its slot is released.
  struct inbound_peer {
    std::weak_ptr<connection> conn;
    /// Kept as text: the peer must stay nameable (for `misbehaving`, for
    /// `peers`) after the user dropped the connection.
    std::string remote_address;
    uint32_t listener = 0;
    time_point since;
  };

  /// Calls `f(slot, peer)` for every admitted inbound connection, in no
  /// particular order.
  template <class F>
  void for_each_inbound(F&& f) const {
    inbound_conns_.for_each(std::forward<F>(f));
  }

  /// Counters and gauges.
  conn_stats stats() const;

private:
  enum class phase : uint8_t {
    fetching,
    queued,
    dialing,
    waiting,
    established
  };

  struct entry {
    conn_request req;
    phase ph = phase::fetching;
    uint64_t attempt = 0;
    uint64_t timer = 0;
    connection_ptr conn;
    time_point established_at;
  };

  /// Hashed: a node may hold many thousands, and no decision depends on
  /// their order (`requests` and `stop` sort what they report or cancel).
  using entry_map = std::unordered_map<uint64_t, entry>;

  entry& create(uint64_t id, std::string address, bool permanent,
                bool automatic);
  void forget(entry_map::iterator i);
  void fetch_or_dial(entry& e);
  void begin_dial(entry& e);
  void pump();
  void dial_ended(const entry& e);
  void wait(entry& e, caf::timespan delay, time_point now);
  void fail(entry_map::iterator i, const caf::error& reason, time_point now);
  void close_established(entry_map::iterator i, bool retry_wanted,
                         bool trigger_reconnect, caf::error reason,
                         bool by_peer, time_point now);
  bool count_failed_attempt(time_point now, const std::string& address);
  std::string group_key(const std::string& address) const;
  bool lasted_since_failure(const entry& e, time_point now) const;
  void retry(entry& e, time_point now);
  void replace(bool throttled, time_point now);
  entry_map::iterator dialing(uint64_t id, uint64_t attempt);
  bool address_in_use(const std::string& address) const;
  uint64_t& alive_count(const conn_request& req);
  caf::error ban_refusal(const std::string& address, time_point now) const;
  caf::error ban_refusal(const connection& conn, time_point now) const;
  uint64_t close_banned(const netgroup& subnet, const caf::error& reason,
                        time_point now);
  void close_one(uint64_t id, const caf::error& reason, time_point now);
  /// Closes admitted inbound `slot` (which must be held) as an eviction by
  /// `rule`.
  void close_inbound(uint64_t slot, const caf::error& reason,
                     const std::string& rule);
  bool open_peer(uint64_t id) const;
  bool is_protected(uint64_t id) const;
  size_t trim_requests(bool automatic, bool permanent, uint64_t keep,
                       const caf::error& reason, time_point now);
  size_t trim_inbound(uint64_t keep, const caf::error& reason, time_point now);
  void cancel(entry_map::iterator i, const caf::error& reason);
  caf::error check_budget(bool permanent) const;
  void forget_score(uint64_t id);

  manager_config cfg_;
  bool has_source_;
  conn_effects& fx_;
  retry_policy policy_;
  bool started_ = false;
  bool stopped_ = false;
  entry_map entries_;
  std::unordered_map<std::string, uint32_t> addresses_;
  std::unordered_map<uint64_t, uint64_t> timers_;
  std::deque<uint64_t> queue_;
  // Admitted inbound connections by slot, to close one that is evicted.
  flat_table<uint64_t, inbound_peer, int_hash> inbound_conns_;
  inbound_admission admission_;
  ban_list bans_;
  // Misbehaviour scores of open connections that have one, by id; erased
  // when the connection closes. Node-based: a score holds a mutex.
  std::unordered_map<uint64_t, dynamic_ban_score> scores_;
  uint64_t next_timer_ = 0;
  uint64_t automatic_dials_ = 0;
  // Live requests by class, for the target and the budgets.
  uint64_t automatic_alive_ = 0;
  uint64_t manual_alive_ = 0;
  uint64_t permanent_alive_ = 0;
  bool draining_ = false;
  // Protection tags by peer id; erased when the peer ends.
  std::unordered_map<uint64_t, std::vector<std::string>> tags_;
  // The application's reports by peer id; erased when the peer ends.
  std::unordered_map<uint64_t, peer_report> reports_;
  // The failed-attempt count resets only once a connection has lasted the
  // stable period without a new failure: either one that closed after
  // doing so (this flag) or one still open (checked at the next failure).
  bool stable_since_failure_ = false;
  std::optional<time_point> last_failure_;
  // Addresses of automatic requests that connected (at most
  // max_proven_addresses, the oldest forgotten first): only their failures
  // say something about our network.
  std::unordered_set<std::string> proven_;
  std::deque<std::string> proven_order_;
  // The network group of the first failure counted since the last reset,
  // and whether a later one was of another group (or had no address).
  std::optional<std::string> first_failed_group_;
  bool failures_span_groups_ = false;
  conn_stats stats_;
};

} // namespace connmgr
