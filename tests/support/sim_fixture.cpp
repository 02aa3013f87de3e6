#include "tests/support/sim_fixture.hpp"

#include <algorithm>
#include <utility>

namespace connmgr::test {

caf::behavior event_recorder(caf::event_based_actor*,
                             std::shared_ptr<event_log> log) {
  // Each kind goes to its own list and, by name, to the common order.
  auto keep = [log](auto& list, const char* kind) {
    return [log, &list, kind](auto& ev) {
      log->order.emplace_back(kind);
      list.push_back(std::move(ev));
    };
  };
  auto& l = *log;
  return {
    [k = keep(l.connected, "connected")](connected_event& ev) { k(ev); },
    [k = keep(l.disconnected, "disconnected")](disconnected_event& ev) {
      k(ev);
    },
    [k = keep(l.failed, "failed")](failed_event& ev) { k(ev); },
    [k = keep(l.retries, "retry")](retry_event& ev) { k(ev); },
    [k = keep(l.accepted, "accepted")](accepted_event& ev) { k(ev); },
    [k = keep(l.rejected, "rejected")](rejected_event& ev) { k(ev); },
    [k = keep(l.evicted, "evicted")](evicted_event& ev) { k(ev); },
    [k = keep(l.banned, "banned")](banned_event& ev) { k(ev); },
    [k = keep(l.drains, "drain")](drain_event& ev) { k(ev); },
    [k = keep(l.stopped, "stopped")](stopped_event& ev) { k(ev); },
  };
}

sim_config::sim_config() {
  set("scheduler.policy", caf::atom("testing"));
  set("logger.verbosity", caf::atom("quiet"));
  connmgr::add_error_category(*this);
}

sim_fixture::~sim_fixture() {
  // A handler left running would keep timers armed and hang shutdown.
  if (handler)
    stop();
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(recorder, caf::exit_reason::user_shutdown);
  run();
}

void sim_fixture::run() {
  while (sched.try_run_once())
    ; // nop
}

void sim_fixture::advance(caf::timespan d, caf::timespan step) {
  run();
  while (d.count() > 0) {
    auto dt = std::min(d, step);
    sched.advance_time(dt);
    run();
    d -= dt;
  }
}

caf::actor_clock::time_point sim_fixture::now() {
  return sys.clock().now();
}

handler_setup sim_fixture::setup(manager_config config) {
  handler_setup result;
  result.config = config;
  result.dialer = dialer;
  result.events = caf::actor_cast<conn_events_actor>(recorder);
  return result;
}

handler_setup sim_fixture::automatic_setup(uint32_t target) {
  auto result = setup();
  result.config.target_outbound = target;
  result.get_address = counting_addresses();
  return result;
}

void sim_fixture::spawn(handler_setup s) {
  auto hdl = spawn_conn_handler(sys, std::move(s));
  REQUIRE_MESSAGE(hdl, (hdl ? std::string{} : describe(hdl.error())));
  handler = std::move(*hdl);
  run();
}

void sim_fixture::spawn_with_listener(manager_config config) {
  config.target_outbound = 0;
  auto s = setup(config);
  fake_listener =
    spawn_fake_acceptor(sys, std::make_shared<fake_acceptor_record>());
  s.listeners.push_back(fake_listener);
  spawn(s);
  start();
}

connection_ptr sim_fixture::inject(const std::string& from) {
  auto conn = make_memory_connection(from);
  caf::anon_send(fake_listener, inject_atom::value, conn);
  run();
  return conn;
}

uint64_t sim_fixture::slot_of(const connection_ptr& conn) {
  for (auto& ev : log->accepted)
    if (ev.conn == conn)
      return ev.slot;
  FAIL("not accepted");
  return 0;
}

void sim_fixture::start() {
  caf::anon_send(handler, start_atom::value);
  run();
}

uint64_t sim_fixture::connect(const std::string& address, bool permanent) {
  auto id = next_request_id();
  caf::anon_send(handler, connect_atom::value, id, address, permanent);
  run();
  return id;
}

void sim_fixture::disconnect(uint64_t id, bool trigger_reconnect) {
  caf::anon_send(handler, disconnect_atom::value, id, trigger_reconnect);
  run();
}

void sim_fixture::remove(uint64_t id) {
  caf::anon_send(handler, remove_atom::value, id);
  run();
}

uint64_t sim_fixture::connect_one_permanent(caf::timespan retry_duration) {
  auto s = setup();
  s.config.retry_duration = retry_duration;
  spawn(s);
  start();
  auto id = connect("127.0.0.1:18333", true);
  REQUIRE(log->connected.size() == 1);
  return id;
}

void sim_fixture::release_all(bool succeed) {
  caf::anon_send(dialer, release_atom::value, succeed);
  run();
}

std::vector<conn_request> sim_fixture::requests() {
  return ask<std::vector<conn_request>>(requests_atom::value);
}

conn_stats sim_fixture::stats() {
  return ask<conn_stats>(stats_atom::value);
}

conn_stats sim_fixture::stop() {
  auto result = ask<conn_stats>(stop_atom::value);
  handler = nullptr;
  return result;
}

conn_request sim_fixture::request_of(uint64_t id) {
  for (auto& req : requests())
    if (req.id == id)
      return req;
  return conn_request{};
}

std::vector<uint64_t> sim_fixture::established_ids() {
  std::vector<uint64_t> result;
  for (auto& req : requests())
    if (req.state == conn_state::established)
      result.push_back(req.id);
  return result;
}

void one_group_per_address(manager_config& config) {
  config.netgroup_bits_ipv4 = 32;
}

address_function counting_addresses() {
  auto n = std::make_shared<int>(0);
  return [n]() -> caf::expected<std::string> {
    ++*n;
    return "127.1." + std::to_string(*n / 250) + "." + std::to_string(*n % 250)
      + ":8333";
  };
}

fake_dial_plan refuse(const std::string&) {
  return {fake_dial_plan::fail, make_error(errc::refused)};
}

fake_dial_plan hold(const std::string&) {
  return {fake_dial_plan::hold, {}};
}

} // namespace connmgr::test
