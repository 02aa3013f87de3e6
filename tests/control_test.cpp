// The remote control's event hub: a subscriber gets events only within the
// credit it grants, waiting events are bounded, and one that does not keep
// up is dropped instead of buffered.

#include <doctest/doctest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/actors/control.hpp"
#include "connmgr/actors/fake_dialer.hpp"
#include "connmgr/messages/error_code.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using grant_atom = caf::atom_constant<caf::atom("t_grant")>;

/// What the subscriber saw.
struct seen {
  std::mutex mtx;
  std::vector<uint64_t> seqs;
  std::vector<std::string> kinds;
  std::string dropped;

  template <class F>
  bool wait(F pred) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{mtx};
        if (pred())
          return true;
      }
      if (std::chrono::steady_clock::now() > deadline)
        return false;
      std::this_thread::sleep_for(1ms);
    }
  }
};

/// Records events; grants credit only when the test says so.
caf::behavior recorder(caf::event_based_actor* self, control_actor control,
                       std::shared_ptr<seen> out) {
  auto id = std::make_shared<uint64_t>(0);
  return {
    [=](control_event_atom, uint64_t sub, uint64_t seq, event_summary& ev) {
      *id = sub;
      std::lock_guard<std::mutex> guard{out->mtx};
      out->seqs.push_back(seq);
      out->kinds.push_back(ev.event);
    },
    [=](control_dropped_atom, uint64_t, std::string& why) {
      std::lock_guard<std::mutex> guard{out->mtx};
      out->dropped = why;
    },
    [=](grant_atom, uint32_t n) {
      self->send(control, credit_atom::value, *id, n);
    },
  };
}

event_summary ev(int i) {
  event_summary x;
  x.event = "e" + std::to_string(i);
  return x;
}

} // namespace

TEST_CASE("control: events within credit, a bounded queue, slow subscribers "
          "dropped") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto net = std::make_shared<fake_network>();
  handler_setup setup;
  setup.dialer = spawn_fake_dialer(sys, net);
  auto handler = spawn_conn_handler(sys, std::move(setup));
  REQUIRE(handler);
  control_options opts;
  opts.max_credit = 4;
  opts.max_queued = 8;
  auto drops = std::make_shared<seen>();
  opts.on_dropped = [drops](uint64_t, const std::string& why) {
    std::lock_guard<std::mutex> guard{drops->mtx};
    drops->dropped = why;
  };
  auto ctl = spawn_control(sys, *handler, opts);
  REQUIRE(ctl);
  auto out = std::make_shared<seen>();
  auto rec = sys.spawn(recorder, ctl->control, out);
  {
    caf::scoped_actor self{sys};
    // Asking for more than the cap gets the cap.
    self
      ->request(ctl->control, 10s, subscribe_atom::value,
                caf::actor_cast<control_subscriber_actor>(rec), uint32_t{100})
      .receive([](uint64_t id) { CHECK(id == 1); },
               [](caf::error& err) { FAIL(caf::to_string(err)); });
  }
  for (int i = 1; i <= 12; ++i)
    caf::anon_send(ctl->feed, ev(i));
  // The credit of 4 is sent, 8 wait.
  REQUIRE(out->wait([&] { return out->seqs.size() == 4; }));
  std::this_thread::sleep_for(50ms);
  {
    std::lock_guard<std::mutex> guard{out->mtx};
    CHECK(out->seqs == std::vector<uint64_t>{1, 2, 3, 4});
    CHECK(out->kinds.back() == "e4");
  }
  // Each grant releases that many waiting events, in order.
  caf::anon_send(rec, grant_atom::value, uint32_t{4});
  REQUIRE(out->wait([&] { return out->seqs.size() == 8; }));
  caf::anon_send(rec, grant_atom::value, uint32_t{4});
  REQUIRE(out->wait([&] { return out->seqs.size() == 12; }));
  {
    std::lock_guard<std::mutex> guard{out->mtx};
    CHECK(out->kinds.back() == "e12");
    CHECK(out->dropped.empty());
  }
  // No credit left: 8 may wait, the 9th drops the subscriber.
  for (int i = 13; i <= 21; ++i)
    caf::anon_send(ctl->feed, ev(i));
  REQUIRE(out->wait([&] { return !out->dropped.empty(); }));
  CHECK(out->dropped.find("too slow") != std::string::npos);
  REQUIRE(drops->wait([&] { return !drops->dropped.empty(); }));
  {
    std::lock_guard<std::mutex> guard{out->mtx};
    CHECK(out->seqs.size() == 12);
  }
  // Gone for good: a later grant releases nothing.
  caf::anon_send(rec, grant_atom::value, uint32_t{4});
  caf::anon_send(ctl->feed, ev(22));
  std::this_thread::sleep_for(100ms);
  {
    std::lock_guard<std::mutex> guard{out->mtx};
    CHECK(out->seqs.size() == 12);
  }
  caf::anon_send_exit(ctl->control, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rec, caf::exit_reason::user_shutdown);
  caf::scoped_actor self{sys};
  self->request(*handler, 10s, stop_atom::value)
    .receive([](conn_stats&) {}, [](caf::error&) {});
}

TEST_CASE("control: bounds out of range are refused naming the option") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  auto net = std::make_shared<fake_network>();
  handler_setup setup;
  setup.dialer = spawn_fake_dialer(sys, net);
  auto handler = spawn_conn_handler(sys, std::move(setup));
  REQUIRE(handler);
  control_options opts;
  opts.max_credit = 0;
  auto res = spawn_control(sys, *handler, opts);
  REQUIRE_FALSE(res);
  CHECK(describe(res.error()).find("max_credit") != std::string::npos);
  CHECK_FALSE(spawn_control(sys, conn_handler_actor{}, {}));
  caf::scoped_actor self{sys};
  self->request(*handler, 10s, stop_atom::value)
    .receive([](conn_stats&) {}, [](caf::error&) {});
}
