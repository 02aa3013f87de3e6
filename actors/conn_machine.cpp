// The connection manager's decisions on plain data and an injected clock:
// requests, dial results, retries, the outbound target and the inbound
// slots. Over 500 lines because every input may touch every request's
// state and the counters, which are one invariant; the effects it asks for
// are carried out by conn_handler.cpp.
#include "connmgr/actors/conn_machine.hpp"

#include <algorithm>
#include <atomic>
#include <random>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/address_class.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

conn_effects::~conn_effects() {
  // nop
}

void conn_effects::evicted(uint64_t, const std::string&, const caf::error&,
                           const std::string&) {
  // nop
}

void conn_effects::banned(const std::string&, const std::string&, caf::timespan,
                          uint64_t) {
  // nop
}

namespace {

// Enough for every address a node dials in a day; a bound, since a node that
// churns through gossip would otherwise remember every address for ever.
constexpr size_t max_proven_addresses = 4096;

// The secret that keeps eviction's netgroup protection unpredictable.
uint64_t admission_secret() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ rd();
}

// Process-wide, so managers that share one dialer never reuse a dial id.
uint64_t next_dial_id() {
  static std::atomic<uint64_t> last{0};
  return ++last;
}

// The refusal for `address`, found inside the ban `hit` (none for null).
caf::error banned_error(const std::string& address, const ban_entry* hit) {
  if (hit == nullptr)
    return caf::none;
  return make_error(errc::banned,
                    fmt::format("{} is inside the ban of {} ({})", address,
                                hit->subnet.to_string(), hit->reason));
}

} // namespace

conn_machine::conn_machine(const manager_config& cfg, bool has_address_source,
                           conn_effects& fx)
  : cfg_(cfg), has_source_(has_address_source), fx_(fx), policy_(cfg),
    admission_(inbound_limits_of(cfg), admission_secret()),
    bans_(admission_secret()) {
  entries_.reserve(cfg_.target_outbound);
  inbound_conns_.reserve(
    std::min<size_t>(cfg_.max_inbound.value_or(0), 65'536));
}

// -- inputs -------------------------------------------------------------------

void conn_machine::start(time_point now) {
  if (started_ || stopped_)
    return;
  started_ = true;
  for (uint32_t i = 0; i < cfg_.target_outbound; ++i)
    replace(false, now);
}

caf::expected<uint64_t> conn_machine::connect(uint64_t id, std::string address,
                                              bool permanent, time_point now) {
  caf::error err;
  if (stopped_)
    err = make_error(errc::stopped, "connect after stop");
  else if (draining_)
    err = make_error(errc::draining, "connect while draining");
  else if (address.empty())
    err = make_error(errc::invalid_address, "empty address");
  else if (id != 0 && (entries_.count(id) != 0 || inbound_conns_.find(id)))
    err = make_error(errc::duplicate_request, fmt::format("id {}", id));
  else if (id > last_drawn_request_id())
    // An id the counter has not handed out yet would collide with one it
    // hands out later to another request.
    err = make_error(errc::duplicate_request,
                     fmt::format("id {} not drawn by next_request_id(), "
                                 "expected 0 or a drawn id",
                                 id));
  else if (address_in_use(address))
    err = make_error(errc::duplicate_address, address);
  else if ((err = ban_refusal(address, now)))
    ++stats_.banned_refused;
  else
    err = check_budget(permanent);
  if (err) {
    conn_request refused{id,    std::move(address),  permanent,
                         false, conn_state::failing, 0};
    fx_.failed(refused, err);
    return err;
  }
  auto& e = create(id, std::move(address), permanent, false);
  begin_dial(e);
  return e.req.id;
}

void conn_machine::new_request(time_point) {
  if (stopped_ || draining_)
    return;
  if (!has_source_) {
    conn_request refused{next_request_id(),   {}, false, false,
                         conn_state::failing, 0};
    fx_.failed(refused, make_error(errc::no_address, "no address source"));
    return;
  }
  fetch_or_dial(create(0, {}, false, false));
}

void conn_machine::address_ready(uint64_t id,
                                 caf::expected<std::string> address,
                                 time_point now) {
  if (stopped_)
    return;
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.ph != phase::fetching)
    return;
  if (!address) {
    ++stats_.dials_failed;
    fail(i, address.error(), now);
  } else if (address->empty()) {
    ++stats_.dials_failed;
    fail(i, make_error(errc::no_address, "address source gave \"\""), now);
  } else if (address_in_use(*address)) {
    ++stats_.dials_failed;
    fail(i, make_error(errc::duplicate_address, *address), now);
  } else if (auto banned = ban_refusal(*address, now)) {
    ++stats_.dials_failed;
    ++stats_.banned_refused;
    fail(i, banned, now);
  } else {
    auto& e = i->second;
    e.req.address = std::move(*address);
    ++addresses_[e.req.address];
    begin_dial(e);
  }
}

void conn_machine::dial_succeeded(uint64_t id, uint64_t attempt,
                                  connection_ptr conn, time_point now) {
  auto i = dialing(id, attempt);
  if (i == entries_.end()) {
    // Canceled, removed or stopped meanwhile: nobody will ever use it.
    if (conn)
      conn->close();
    ++stats_.late_connections_closed;
    return;
  }
  dial_ended(i->second);
  // A host name is checked here, where it has become an address.
  if (auto banned =
        conn ? ban_refusal(conn->remote_address(), now) : caf::error{}) {
    conn->close();
    ++stats_.dials_failed;
    ++stats_.banned_refused;
    fail(i, banned, now);
    pump();
    return;
  }
  ++stats_.dials_succeeded;
  auto& e = i->second;
  e.ph = phase::established;
  e.req.state = conn_state::established;
  e.conn = std::move(conn);
  e.established_at = now;
  if (cfg_.stable_connection_period.count() == 0)
    e.req.retry_count = 0;
  if (e.req.automatic && proven_.insert(e.req.address).second) {
    proven_order_.push_back(e.req.address);
    if (proven_order_.size() > max_proven_addresses) {
      proven_.erase(proven_order_.front());
      proven_order_.pop_front();
    }
  }
  fx_.connected(e.req, e.conn);
  pump();
}

void conn_machine::dial_failed(uint64_t id, uint64_t attempt,
                               const caf::error& reason, time_point now) {
  auto i = dialing(id, attempt);
  if (i == entries_.end())
    return;
  dial_ended(i->second);
  ++stats_.dials_failed;
  fail(i, reason, now);
  pump();
}

caf::error conn_machine::disconnect(uint64_t id, bool retry_wanted,
                                    bool trigger_reconnect, time_point now) {
  const char* what = retry_wanted ? "disconnect" : "remove";
  if (stopped_)
    return make_error(errc::stopped, fmt::format("{} after stop", what));
  auto i = entries_.find(id);
  if (i == entries_.end()) {
    if (inbound_conns_.find(id)) {
      // An inbound peer: closed, its slot free; there is nothing to retry.
      close_inbound(id, make_error(errc::connection_closed, what), what);
      return caf::none;
    }
    return make_error(
      errc::unknown_request,
      fmt::format("{} of id {}: no live request or inbound peer has it", what,
                  id));
  }
  auto& e = i->second;
  if (e.ph == phase::established) {
    close_established(i, retry_wanted, trigger_reconnect,
                      make_error(errc::connection_closed, what), false, now);
    return caf::none;
  }
  // Not connected yet: cancel. A dial result that still arrives is closed.
  if (e.ph == phase::dialing) {
    dial_ended(e);
    fx_.cancel_dial(id, e.attempt);
  }
  e.req.state = conn_state::canceled;
  auto snapshot = e.req;
  forget(i);
  fx_.failed(snapshot, make_error(errc::canceled, what));
  pump();
  if (snapshot.automatic)
    replace(false, now);
  return caf::none;
}

void conn_machine::peer_gone(uint64_t id, const connection_ptr& conn,
                             const caf::error& reason, time_point now) {
  if (stopped_)
    return;
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.ph != phase::established
      || i->second.conn != conn)
    return;
  close_established(i, true, false, reason, true, now);
}

void conn_machine::close_established(entry_map::iterator i, bool retry_wanted,
                                     bool trigger_reconnect, caf::error reason,
                                     bool by_peer, time_point now) {
  auto& e = i->second;
  auto conn = std::move(e.conn);
  conn->close();
  forget_score(e.req.id);
  ++stats_.disconnections;
  bool stable = now - e.established_at >= cfg_.stable_connection_period;
  if (lasted_since_failure(e, now))
    stable_since_failure_ = true;
  if (stable)
    e.req.retry_count = 0;
  if (retry_wanted && !draining_ && (e.req.permanent || trigger_reconnect)) {
    e.req.state = conn_state::pending;
    fx_.disconnected(e.req, reason);
    retry(e, now);
    return;
  }
  e.req.state = conn_state::disconnected;
  auto snapshot = e.req;
  forget(i);
  fx_.disconnected(snapshot, reason);
  // A peer that drops us before the connection proved stable is a failed
  // attempt: otherwise a peer that accepts and hangs up at once would be
  // redialed at full speed forever. A disconnect the user asked for never
  // counts.
  if (snapshot.automatic)
    replace(by_peer && !stable && count_failed_attempt(now, snapshot.address),
            now);
}

bool conn_machine::lasted_since_failure(const entry& e, time_point now) const {
  if (!last_failure_)
    return now - e.established_at >= cfg_.stable_connection_period;
  // With a zero period only a connection made after the failure counts,
  // which is the reference's "reset on every connect".
  if (cfg_.stable_connection_period.count() == 0)
    return e.established_at >= *last_failure_;
  auto since = std::max(e.established_at, *last_failure_);
  return now - since >= cfg_.stable_connection_period;
}

bool conn_machine::count_failed_attempt(time_point now,
                                        const std::string& address) {
  // An address nobody ever reached failing says nothing about our network:
  // it backs off in the address source, and the node dials on.
  if (!address.empty() && !proven_.empty() && proven_.count(address) == 0)
    return false;
  bool stable = stable_since_failure_;
  for (auto i = entries_.begin(); !stable && i != entries_.end(); ++i)
    stable = i->second.ph == phase::established
      && lasted_since_failure(i->second, now);
  if (stable) {
    stats_.failed_attempts = 0;
    first_failed_group_.reset();
    failures_span_groups_ = false;
  }
  stable_since_failure_ = false;
  last_failure_ = now;
  ++stats_.failed_attempts;
  // No address at all throttles like failures in several networks: asking
  // again at once would only spin.
  auto group = address.empty() ? std::string{} : group_key(address);
  if (group.empty() || (first_failed_group_ && *first_failed_group_ != group))
    failures_span_groups_ = true;
  if (!first_failed_group_)
    first_failed_group_ = std::move(group);
  // Attempts still in flight count as failures-to-be, so a dead network
  // sees at most max_failed_attempts back-to-back dials, not that plus the
  // target.
  return failures_span_groups_
    && stats_.failed_attempts + automatic_dials_ >= cfg_.max_failed_attempts;
}

std::string conn_machine::group_key(const std::string& address) const {
  auto addr = net_address::parse(address);
  if (!addr)
    return address;
  auto group =
    netgroup_of(*addr, cfg_.netgroup_bits_ipv4, cfg_.netgroup_bits_ipv6);
  return group ? group->to_string() : address;
}

void conn_machine::timer_fired(uint64_t key, time_point now) {
  if (stopped_)
    return;
  auto t = timers_.find(key);
  if (t == timers_.end())
    return;
  auto i = entries_.find(t->second);
  timers_.erase(t);
  if (i == entries_.end() || i->second.timer != key
      || i->second.ph != phase::waiting)
    return;
  i->second.timer = 0;
  if (draining_)
    return; // canceled when the drain began; nothing waits any more
  if (auto banned = ban_refusal(i->second.req.address, now)) {
    ++stats_.dials_failed;
    ++stats_.banned_refused;
    fail(i, banned, now);
    return;
  }
  fetch_or_dial(i->second);
}

void conn_machine::inbound(uint32_t listener, const connection_ptr& conn,
                           time_point now) {
  if (stopped_) {
    conn->close();
    ++stats_.inbound_rejected;
    fx_.rejected(listener, conn,
                 make_error(errc::stopped, "inbound after stop"), "stopped");
    return;
  }
  if (draining_) {
    conn->close();
    ++stats_.inbound_rejected;
    fx_.rejected(listener, conn,
                 make_error(errc::draining, "inbound while draining"),
                 "draining");
    return;
  }
  // Before admission, so a banned peer costs no admission state at all.
  if (auto banned = ban_refusal(*conn, now)) {
    conn->close();
    ++stats_.inbound_rejected;
    ++stats_.banned_refused;
    fx_.rejected(listener, conn, banned, "banned");
    return;
  }
  // A connection the user closed still holds its slot until the close
  // report arrives; at the pending cap that would make it the victim of an
  // eviction that evicts nobody. Release such slots first.
  while (auto victim = admission_.slow_handshake_victim()) {
    auto held = inbound_conns_.find(*victim);
    if (held == nullptr)
      break;
    if (auto c = held->conn.lock(); c && !c->closed())
      break;
    inbound_closed(*victim);
  }
  // From the request counter: an id names one peer, whichever its kind.
  auto slot = next_request_id();
  // The accepted socket's binary address, when it has one, spares a parse.
  auto decision =
    admission_.admit(slot, conn->remote_ipv4(), conn->remote_address(), now);
  if (!decision.admits()) {
    conn->close();
    ++stats_.inbound_rejected;
    fx_.rejected(listener, conn, decision.error(), to_string(decision.reason));
    return;
  }
  if (decision.verdict == admission_verdict::evict_then_admit) {
    auto victim = decision.victim;
    ++stats_.inbound_evicted;
    std::string remote;
    if (auto i = inbound_conns_.find(victim)) {
      auto c = i->conn.lock();
      remote = std::move(i->remote_address);
      inbound_conns_.erase(victim);
      forget_score(victim);
      if (c)
        c->close();
    }
    fx_.evicted(
      victim, remote,
      make_error(errc::inbound_limit,
                 fmt::format("{}: room for {}", to_string(decision.reason),
                             conn->remote_address())),
      to_string(decision.reason));
  }
  auto& peer = *inbound_conns_.try_emplace(slot).first;
  peer.conn = conn;
  peer.remote_address = conn->remote_address();
  peer.listener = listener;
  peer.since = now;
  ++stats_.inbound_accepted;
  fx_.accepted(listener, slot, conn);
}

void conn_machine::inbound_closed(uint64_t slot) {
  inbound_conns_.erase(slot);
  admission_.closed(slot);
  forget_score(slot);
  if (!tags_.empty())
    tags_.erase(slot);
}

void conn_machine::inbound_ready(uint64_t slot, time_point now) {
  admission_.ready(slot, now);
}

void conn_machine::inbound_ping(uint64_t slot, caf::timespan rtt) {
  admission_.ping(slot, rtt);
}

void conn_machine::inbound_useful(uint64_t slot, time_point now) {
  admission_.useful(slot, now);
}

// -- protection, limits, drain --------------------------------------------------

caf::error conn_machine::protect(uint64_t id, const std::string& tag) {
  if (entries_.count(id) == 0 && inbound_conns_.find(id) == nullptr)
    return make_error(errc::unknown_request,
                      fmt::format("protect of id {}: no live request or "
                                  "inbound peer has it",
                                  id));
  if (tag.empty() || tag.size() > 64)
    return make_error(
      errc::invalid_config,
      fmt::format("tag \"{}\": expected 1..64 characters", tag));
  auto& tags = tags_[id];
  if (std::find(tags.begin(), tags.end(), tag) != tags.end())
    return caf::none;
  if (tags.size() >= max_tags)
    return make_error(errc::limit_reached,
                      fmt::format("peer {} has {} tags already, the most "
                                  "one peer may carry",
                                  id, max_tags));
  tags.push_back(tag);
  if (tags.size() == 1)
    admission_.protect(id); // a no-op for outbound ids
  return caf::none;
}

caf::error conn_machine::unprotect(uint64_t id, const std::string& tag) {
  auto i = tags_.find(id);
  auto j = i == tags_.end()
    ? std::vector<std::string>::iterator{}
    : std::find(i->second.begin(), i->second.end(), tag);
  if (i == tags_.end() || j == i->second.end())
    return make_error(
      errc::not_found,
      fmt::format("unprotect of id {}: it has no tag \"{}\"", id, tag));
  i->second.erase(j);
  if (i->second.empty()) {
    tags_.erase(i);
    admission_.unprotect(id);
  }
  return caf::none;
}

std::vector<std::string> conn_machine::tags_of(uint64_t id) const {
  auto i = tags_.find(id);
  return i == tags_.end() ? std::vector<std::string>{} : i->second;
}

void conn_machine::peer_stats(uint64_t id, uint64_t frames_in,
                              uint64_t frames_out, caf::timespan ping) {
  if (!open_peer(id))
    return;
  auto& r = reports_[id];
  r.frames_in = frames_in;
  r.frames_out = frames_out;
  if (ping.count() > 0) {
    r.ping = ping;
    admission_.ping(id, ping); // a no-op for outbound ids
  }
}

conn_machine::peer_report conn_machine::report_of(uint64_t id) const {
  auto i = reports_.find(id);
  return i == reports_.end() ? peer_report{} : i->second;
}

uint32_t conn_machine::score_of(uint64_t id, time_point now) const {
  auto i = scores_.find(id);
  return i == scores_.end() ? 0 : i->second.value(now);
}

bool conn_machine::is_protected(uint64_t id) const {
  return !tags_.empty() && tags_.count(id) != 0;
}

caf::expected<conn_limits> conn_machine::set_limits(const conn_limits& x,
                                                    time_point now) {
  if (stopped_)
    return make_error(errc::stopped, "set_limits after stop");
  auto next = with_limits(cfg_, x);
  if (!next)
    return std::move(next.error());
  if (auto err = validate(*next))
    return err;
  cfg_ = std::move(*next);
  admission_.set_limits(inbound_limits_of(cfg_));
  auto lowered = [](const char* name) {
    return make_error(errc::limit_lowered, name);
  };
  trim_requests(true, false, cfg_.target_outbound,
                lowered("target_outbound lowered"), now);
  if (cfg_.max_manual)
    trim_requests(false, false, *cfg_.max_manual, lowered("max_manual lowered"),
                  now);
  if (cfg_.max_permanent)
    trim_requests(false, true, *cfg_.max_permanent,
                  lowered("max_permanent lowered"), now);
  if (cfg_.max_inbound)
    trim_inbound(*cfg_.max_inbound, lowered("max_inbound lowered"), now);
  while (started_ && automatic_alive_ < cfg_.target_outbound && has_source_
         && !draining_)
    replace(false, now);
  pump();
  return limits_of(cfg_);
}

size_t conn_machine::trim_requests(bool automatic, bool permanent,
                                   uint64_t keep, const caf::error& reason,
                                   time_point now) {
  auto in_class = [&](const entry& e) {
    return e.req.automatic == automatic
      && (automatic || e.req.permanent == permanent);
  };
  uint64_t alive = automatic ? automatic_alive_
                             : (permanent ? permanent_alive_ : manual_alive_);
  if (alive <= keep)
    return 0;
  // Requests still waiting go first (nothing is lost but a dial), then the
  // youngest connections; ids grow with age.
  std::vector<std::pair<time_point, uint64_t>> pending;
  std::vector<std::pair<time_point, uint64_t>> open;
  for (auto& [id, e] : entries_) {
    if (!in_class(e) || is_protected(id))
      continue;
    if (e.ph == phase::established)
      open.emplace_back(e.established_at, id);
    else
      pending.emplace_back(time_point{}, id);
  }
  auto youngest_first = [](const auto& x, const auto& y) { return x > y; };
  std::sort(pending.begin(), pending.end(), youngest_first);
  std::sort(open.begin(), open.end(), youngest_first);
  pending.insert(pending.end(), open.begin(), open.end());
  size_t closed = 0;
  for (auto& [at, id] : pending) {
    if (alive - closed <= keep)
      break;
    auto i = entries_.find(id);
    if (i == entries_.end())
      continue;
    if (i->second.ph == phase::established)
      close_established(i, false, false, reason, false, now);
    else
      cancel(i, reason);
    ++closed;
  }
  pump();
  return closed;
}

size_t conn_machine::trim_inbound(uint64_t keep, const caf::error& reason,
                                  time_point) {
  if (inbound_conns_.size() <= keep)
    return 0;
  std::vector<std::pair<time_point, uint64_t>> candidates;
  inbound_conns_.for_each([&](uint64_t slot, const inbound_peer& peer) {
    if (!is_protected(slot))
      candidates.emplace_back(peer.since, slot);
  });
  std::sort(candidates.begin(), candidates.end(),
            [](const auto& x, const auto& y) { return x > y; });
  size_t closed = 0;
  for (auto& [since, slot] : candidates) {
    if (inbound_conns_.size() <= keep)
      break;
    ++stats_.inbound_evicted;
    close_inbound(slot, reason, "limit_lowered");
    ++closed;
  }
  return closed;
}

void conn_machine::cancel(entry_map::iterator i, const caf::error& reason) {
  auto& e = i->second;
  if (e.ph == phase::dialing) {
    dial_ended(e);
    fx_.cancel_dial(e.req.id, e.attempt);
  }
  e.req.state = conn_state::canceled;
  auto snapshot = e.req;
  forget(i);
  fx_.failed(snapshot, reason);
}

caf::error conn_machine::check_budget(bool permanent) const {
  if (permanent && cfg_.max_permanent
      && permanent_alive_ >= *cfg_.max_permanent)
    return make_error(errc::limit_reached,
                      fmt::format("max_permanent = {}: the permanent class "
                                  "is full",
                                  *cfg_.max_permanent));
  if (!permanent && cfg_.max_manual && manual_alive_ >= *cfg_.max_manual)
    return make_error(errc::limit_reached,
                      fmt::format("max_manual = {}: the manual class is full",
                                  *cfg_.max_manual));
  return caf::none;
}

uint64_t& conn_machine::alive_count(const conn_request& req) {
  if (req.automatic)
    return automatic_alive_;
  return req.permanent ? permanent_alive_ : manual_alive_;
}

void conn_machine::drain(time_point) {
  if (stopped_ || draining_)
    return;
  draining_ = true;
  std::vector<uint64_t> waiting;
  for (auto& [id, e] : entries_)
    if (e.ph != phase::established)
      waiting.push_back(id);
  std::sort(waiting.begin(), waiting.end());
  for (auto id : waiting)
    if (auto i = entries_.find(id); i != entries_.end())
      cancel(i, make_error(errc::draining, "canceled by a drain"));
  queue_.clear();
}

uint64_t conn_machine::close_all(const caf::error& reason,
                                 const std::string& rule, time_point now) {
  std::vector<uint64_t> ids;
  for (auto& [id, e] : entries_)
    if (e.ph == phase::established)
      ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (auto id : ids)
    if (auto i = entries_.find(id); i != entries_.end())
      close_established(i, false, false, reason, false, now);
  std::vector<uint64_t> slots;
  inbound_conns_.for_each(
    [&](uint64_t slot, const inbound_peer&) { slots.push_back(slot); });
  std::sort(slots.begin(), slots.end());
  for (auto slot : slots)
    close_inbound(slot, reason, rule);
  return ids.size() + slots.size();
}

uint64_t conn_machine::open_connections() const {
  uint64_t n = inbound_conns_.size();
  for (auto& kvp : entries_)
    if (kvp.second.ph == phase::established)
      ++n;
  return n;
}

// -- bans ---------------------------------------------------------------------

caf::expected<uint64_t> conn_machine::ban(const std::string& subnet,
                                          caf::timespan duration,
                                          std::string reason, time_point now) {
  if (stopped_)
    return make_error(errc::stopped, "ban after stop");
  auto group = parse_subnet(subnet);
  if (!group)
    return std::move(group.error());
  if (duration <= caf::timespan{0} || duration > max_ban_duration)
    return make_error(errc::invalid_config,
                      fmt::format("ban duration = {}, expected > 0 and at "
                                  "most {}",
                                  to_string_duration(duration),
                                  to_string_duration(max_ban_duration)));
  bans_.expire(now);
  if (bans_.size() >= cfg_.max_bans && !bans_.holds(*group))
    return make_error(
      errc::limit_reached,
      fmt::format("max_bans = {}: the ban list is full", cfg_.max_bans));
  if (auto err = bans_.add(*group, now + duration, reason))
    return err;
  fx_.banned(group->to_string(), reason, duration, 0);
  return close_banned(
    *group,
    make_error(errc::banned,
               fmt::format("{} banned: {}", group->to_string(), reason)),
    now);
}

caf::error conn_machine::unban(const std::string& subnet, time_point now) {
  auto group = parse_subnet(subnet);
  if (!group)
    return std::move(group.error());
  bans_.expire(now);
  if (!bans_.remove(*group))
    return make_error(errc::not_found,
                      fmt::format("unban {}: no ban of exactly {} is held",
                                  subnet, group->to_string()));
  return caf::none;
}

std::vector<ban_info> conn_machine::bans(time_point now) {
  bans_.expire(now);
  std::vector<ban_info> result;
  for (auto& x : bans_.list(now))
    result.push_back(
      ban_info{x.subnet.to_string(), std::move(x.reason), x.until - now});
  return result;
}

caf::error conn_machine::misbehaving(uint64_t id, uint32_t points,
                                     const std::string& reason,
                                     time_point now) {
  if (stopped_)
    return make_error(errc::stopped, "misbehaving after stop");
  // A peer the application closed for misbehaving is still known here
  // until its close report arrives: it can still be scored and banned.
  std::string remote;
  auto out = entries_.find(id);
  if (out != entries_.end() && out->second.ph == phase::established)
    remote = out->second.conn->remote_address();
  else if (auto in = inbound_conns_.find(id))
    remote = in->remote_address;
  else
    return make_error(
      errc::unknown_request,
      fmt::format("misbehaving of id {}: no open connection has it", id));
  auto score = scores_[id].increase(points, 0, now);
  if (score < cfg_.ban_threshold)
    return caf::none;
  auto why = fmt::format("misbehaving: {} (score {})", reason, score);
  std::optional<netgroup> host;
  if (auto addr = net_address::parse(remote))
    if (auto g = netgroup_of(*addr, 32, 128);
        g && g->type() != netgroup::family::hostname)
      host = *g;
  bans_.expire(now);
  if (host && (bans_.size() < cfg_.max_bans || bans_.holds(*host))) {
    bans_.add(*host, now + cfg_.ban_duration, why);
    fx_.banned(host->to_string(), why, cfg_.ban_duration, id);
    close_banned(
      *host,
      make_error(errc::banned,
                 fmt::format("{} banned: {}", host->to_string(), why)),
      now);
    if (!open_peer(id))
      return caf::none;
  }
  // No address to ban, no room, or (both of its addresses host names) a
  // ban that did not reach it: this connection still ends.
  auto err =
    make_error(errc::banned,
               fmt::format("{}: {}, not banned: {}", remote, why,
                           host ? "the ban list is full" : "no IP address"));
  close_one(id, err, now);
  return caf::none;
}

uint64_t conn_machine::close_banned(const netgroup& subnet,
                                    const caf::error& reason, time_point now) {
  auto inside = [&subnet](const std::string& address) {
    auto addr = net_address::parse(address);
    return addr && contains(subnet, *addr);
  };
  // Ids first: closing an automatic request creates its replacement, which
  // may rehash the table being walked.
  std::vector<uint64_t> ids;
  for (auto& [id, e] : entries_)
    if (e.ph == phase::established
        && (inside(e.conn->remote_address()) || inside(e.req.address)))
      ids.push_back(id);
  inbound_conns_.for_each([&](uint64_t slot, const inbound_peer& peer) {
    if (inside(peer.remote_address))
      ids.push_back(slot);
  });
  for (auto id : ids)
    close_one(id, reason, now);
  return ids.size();
}

void conn_machine::close_one(uint64_t id, const caf::error& reason,
                             time_point now) {
  if (!open_peer(id))
    return;
  ++stats_.banned_closed;
  if (auto i = entries_.find(id); i != entries_.end()) {
    // With retry, as if the peer had left: a permanent request waits out
    // its backoff (and is refused while the ban lasts), an automatic one
    // is replaced by another address.
    close_established(i, true, false, reason, false, now);
    return;
  }
  close_inbound(id, reason, "banned");
}

void conn_machine::close_inbound(uint64_t slot, const caf::error& reason,
                                 const std::string& rule) {
  auto in = inbound_conns_.find(slot);
  auto conn = in->conn.lock();
  auto remote = std::move(in->remote_address);
  inbound_closed(slot);
  if (conn)
    conn->close();
  fx_.evicted(slot, remote, reason, rule);
}

caf::error conn_machine::ban_refusal(const std::string& address,
                                     time_point now) const {
  if (bans_.size() == 0 || address.empty())
    return caf::none;
  auto addr = net_address::parse(address);
  if (!addr)
    return caf::none; // a host name: checked once it has connected
  return banned_error(address, bans_.find(*addr, now));
}

caf::error conn_machine::ban_refusal(const connection& conn,
                                     time_point now) const {
  auto v4 = conn.remote_ipv4();
  if (!v4)
    return ban_refusal(conn.remote_address(), now);
  return banned_error(conn.remote_address(), bans_.find_ipv4(*v4, now));
}

bool conn_machine::open_peer(uint64_t id) const {
  auto i = entries_.find(id);
  if (i != entries_.end())
    return i->second.ph == phase::established;
  return inbound_conns_.find(id) != nullptr;
}

void conn_machine::forget_score(uint64_t id) {
  if (!scores_.empty())
    scores_.erase(id);
  if (!reports_.empty())
    reports_.erase(id);
}

void conn_machine::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  // Established connections belong to the user already; everything still in
  // flight is abandoned here and closed when (if) it arrives.
  std::vector<std::pair<uint64_t, uint64_t>> dialing;
  for (auto& kvp : entries_)
    if (kvp.second.ph == phase::dialing)
      dialing.emplace_back(kvp.first, kvp.second.attempt);
  std::sort(dialing.begin(), dialing.end());
  for (auto& [id, attempt] : dialing)
    fx_.cancel_dial(id, attempt);
  entries_.clear();
  addresses_.clear();
  timers_.clear();
  queue_.clear();
  stats_.dials_in_flight = 0;
  automatic_dials_ = 0;
}

// -- queries ------------------------------------------------------------------

std::vector<conn_request> conn_machine::requests() const {
  std::vector<conn_request> result;
  result.reserve(entries_.size());
  for (auto& kvp : entries_)
    result.push_back(kvp.second.req);
  std::sort(
    result.begin(), result.end(),
    [](const conn_request& x, const conn_request& y) { return x.id < y.id; });
  return result;
}

std::vector<conn_machine::established_request>
conn_machine::established() const {
  std::vector<established_request> result;
  for (auto& kvp : entries_)
    if (kvp.second.ph == phase::established)
      result.push_back(
        {kvp.second.req, kvp.second.conn, kvp.second.established_at});
  std::sort(result.begin(), result.end(),
            [](const established_request& x, const established_request& y) {
              return x.req.id < y.req.id;
            });
  return result;
}

conn_stats conn_machine::stats() const {
  auto result = stats_;
  result.live_requests = entries_.size();
  for (auto& kvp : entries_) {
    if (kvp.second.ph == phase::established)
      ++result.outbound_established;
    else if (kvp.second.ph == phase::queued)
      ++result.dials_queued;
  }
  result.inbound_live = inbound_conns_.size();
  result.bans = bans_.size();
  return result;
}

// -- internals ----------------------------------------------------------------

conn_machine::entry& conn_machine::create(uint64_t id, std::string address,
                                          bool permanent, bool automatic) {
  entry e;
  e.req.id = id != 0 ? id : next_request_id();
  e.req.address = std::move(address);
  e.req.permanent = permanent;
  e.req.automatic = automatic;
  if (!e.req.address.empty())
    ++addresses_[e.req.address];
  ++alive_count(e.req);
  ++stats_.requests_created;
  auto key = e.req.id;
  return entries_.emplace(key, std::move(e)).first->second;
}

void conn_machine::forget(entry_map::iterator i) {
  auto& e = i->second;
  if (!e.req.address.empty()) {
    auto a = addresses_.find(e.req.address);
    if (a != addresses_.end() && --a->second == 0)
      addresses_.erase(a);
  }
  if (e.timer != 0)
    timers_.erase(e.timer);
  --alive_count(e.req);
  if (!tags_.empty())
    tags_.erase(e.req.id);
  if (!reports_.empty())
    reports_.erase(e.req.id);
  entries_.erase(i);
}

void conn_machine::fetch_or_dial(entry& e) {
  e.req.state = conn_state::pending;
  if (e.req.address.empty()) {
    e.ph = phase::fetching;
    fx_.fetch_address(e.req.id);
  } else {
    begin_dial(e);
  }
}

void conn_machine::begin_dial(entry& e) {
  e.req.state = conn_state::pending;
  if (stats_.dials_in_flight >= cfg_.max_pending_dials) {
    e.ph = phase::queued;
    queue_.push_back(e.req.id);
    return;
  }
  e.ph = phase::dialing;
  e.attempt = next_dial_id();
  ++stats_.dials_in_flight;
  if (e.req.automatic)
    ++automatic_dials_;
  ++stats_.dials_started;
  fx_.start_dial(e.req.id, e.attempt, e.req.address);
}

void conn_machine::pump() {
  while (stats_.dials_in_flight < cfg_.max_pending_dials && !queue_.empty()) {
    auto id = queue_.front();
    queue_.pop_front();
    auto i = entries_.find(id);
    if (i != entries_.end() && i->second.ph == phase::queued)
      begin_dial(i->second);
  }
}

void conn_machine::dial_ended(const entry& e) {
  --stats_.dials_in_flight;
  if (e.req.automatic)
    --automatic_dials_;
}

void conn_machine::wait(entry& e, caf::timespan delay, time_point now) {
  e.ph = phase::waiting;
  e.timer = ++next_timer_;
  timers_.emplace(e.timer, e.req.id);
  fx_.arm_timer(e.timer, now + delay);
}

void conn_machine::fail(entry_map::iterator i, const caf::error& reason,
                        time_point now) {
  auto& e = i->second;
  e.req.state = conn_state::failing;
  if (e.req.permanent) {
    fx_.failed(e.req, reason);
    retry(e, now);
    return;
  }
  // One-shot requests end here; automatic ones make room for a replacement.
  auto snapshot = e.req;
  forget(i);
  fx_.failed(snapshot, reason);
  if (snapshot.automatic)
    replace(count_failed_attempt(now, snapshot.address), now);
}

void conn_machine::retry(entry& e, time_point now) {
  if (e.req.retry_count < UINT32_MAX)
    ++e.req.retry_count;
  auto delay = policy_.delay(e.req.retry_count);
  ++stats_.retries_scheduled;
  wait(e, delay, now);
  fx_.retry_scheduled(e.req, delay);
}

void conn_machine::replace(bool throttled, time_point now) {
  if (stopped_ || draining_ || !has_source_
      || automatic_alive_ >= cfg_.target_outbound)
    return;
  auto& e = create(0, {}, false, true);
  if (throttled) {
    ++stats_.throttled;
    wait(e, cfg_.retry_duration, now);
  } else {
    fetch_or_dial(e);
  }
}

conn_machine::entry_map::iterator conn_machine::dialing(uint64_t id,
                                                        uint64_t attempt) {
  if (stopped_)
    return entries_.end();
  auto i = entries_.find(id);
  if (i == entries_.end() || i->second.ph != phase::dialing
      || i->second.attempt != attempt)
    return entries_.end();
  return i;
}

bool conn_machine::address_in_use(const std::string& address) const {
  return cfg_.reject_duplicate_addresses && addresses_.count(address) != 0;
}

} // namespace connmgr

namespace connmgr {

bool conn_machine::inbound_refused(uint32_t listener,
                                   const connection_ptr& conn,
                                   const caf::error& reason,
                                   const std::string& rule, time_point now) {
  caf::error why = reason;
  std::string by = rule;
  if (!why) {
    if (stopped_) {
      why = make_error(errc::stopped, "inbound after stop");
      by = "stopped";
    } else if ((why = ban_refusal(*conn, now))) {
      ++stats_.banned_refused;
      by = "banned";
    } else {
      return false;
    }
  }
  conn->close();
  ++stats_.inbound_rejected;
  fx_.rejected(listener, conn, why, by);
  return true;
}

} // namespace connmgr
