// The address book: the plain class on hand-made instants, then the actor on
// CAF's test coordinator with simulated time.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "actors/address_book.hpp"
#include "tests/sim_fixture.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

using time_point = address_book::time_point;

/// An arbitrary fixed instant to count from.
const time_point t0 = time_point{} + 1000h;

net_address addr(const std::string& text) {
  auto result = net_address::parse(text);
  REQUIRE_MESSAGE(result, text);
  return *result;
}

/// Takes until the book has nothing to give; returns what it gave in order.
std::vector<net_address> drain(address_book& book, time_point now) {
  std::vector<net_address> result;
  for (;;) {
    auto got = book.take(now);
    if (!got) {
      CHECK(errc_of(got.error()) == errc::no_address);
      return result;
    }
    result.push_back(*got);
  }
}

address_book_config small_config() {
  address_book_config cfg;
  cfg.capacity = 100;
  cfg.backoff_base = 10s;
  cfg.backoff_cap = 40s;
  cfg.seed = 7;
  return cfg;
}

const address_entry& entry_of(const std::vector<address_entry>& xs,
                              const net_address& a) {
  for (auto& x : xs)
    if (x.address == a)
      return x;
  FAIL("no entry for " << a.to_string());
  return xs.front(); // not reached
}

} // namespace

TEST_CASE("address book: an empty book answers no_address") {
  address_book book{small_config()};
  auto got = book.take(t0);
  REQUIRE(!got);
  CHECK(errc_of(got.error()) == errc::no_address);
  CHECK(book.size() == 0);
  CHECK(book.snapshot().empty());
}

TEST_CASE("address book: an address is never handed out twice at once") {
  address_book book{small_config()};
  for (int i = 1; i <= 20; ++i)
    CHECK(book.add(addr("10.0.0." + std::to_string(i) + ":8333"), "dns", t0));
  CHECK(!book.add(addr("10.0.0.1:8333"), "peer", t0)); // duplicate ignored
  CHECK(book.size() == 20);
  CHECK(entry_of(book.snapshot(), addr("10.0.0.1:8333")).source == "dns");
  auto given = drain(book, t0);
  CHECK(given.size() == 20);
  CHECK(std::set<net_address>(given.begin(), given.end()).size() == 20);
  for (auto& a : given)
    CHECK(book.in_use(a));
  // Releasing one makes exactly that one available again, once.
  CHECK(book.release(given[3]));
  CHECK(!book.release(given[3]));
  auto again = drain(book, t0 + 1s);
  REQUIRE(again.size() == 1);
  CHECK(again[0] == given[3]);
  // Removed and re-learnt while in use: still not handed out.
  CHECK(book.remove(given[5]));
  CHECK(!book.contains(given[5]));
  CHECK(book.add(given[5], "peer", t0 + 2s));
  CHECK(drain(book, t0 + 2s).empty());
  // Connected without being taken (e.g. a manual connection): in use too.
  auto manual = addr("10.0.1.1:8333");
  CHECK(book.add(manual, "dns", t0));
  CHECK(!book.mark_connected(addr("10.0.1.2:8333"), t0)); // not stored
  CHECK(book.mark_connected(manual, t0));
  CHECK(drain(book, t0 + 3s).empty());
}

TEST_CASE("address book: never-failed addresses come first, then the oldest "
          "failure") {
  address_book book{small_config()};
  auto a = addr("10.0.0.1:8333");
  auto b = addr("10.0.0.2:8333");
  auto c = addr("10.0.0.3:8333");
  for (auto& x : {a, b, c})
    REQUIRE(book.add(x, "dns", t0));
  // Fail c at t0 and b at t0 + 1s, once each (backoff 10 s).
  REQUIRE(drain(book, t0).size() == 3);
  CHECK(book.mark_failed(c, t0));
  CHECK(book.mark_failed(b, t0 + 1s));
  CHECK(book.release(a));
  // Once both backoffs are over: a (never failed), c (older failure), b.
  auto order = drain(book, t0 + 11s);
  REQUIRE(order.size() == 3);
  CHECK(order[0] == a);
  CHECK(order[1] == c);
  CHECK(order[2] == b);
}

TEST_CASE("address book: a failed address waits out its doubling backoff to "
          "the exact instant") {
  address_book book{small_config()};
  CHECK(book.backoff(0) == 0s);
  CHECK(book.backoff(1) == 10s);
  CHECK(book.backoff(2) == 20s);
  CHECK(book.backoff(3) == 40s);
  CHECK(book.backoff(4) == 40s); // capped
  CHECK(book.backoff(UINT32_MAX) == 40s);
  auto a = addr("10.0.0.1:8333");
  REQUIRE(book.add(a, "dns", t0));
  auto now = t0;
  for (uint32_t n = 1; n <= 4; ++n) {
    auto got = book.take(now);
    REQUIRE(got);
    CHECK(*got == a);
    CHECK(book.mark_failed(a, now));
    auto e = entry_of(book.snapshot(), a);
    CHECK(e.failures == n);
    REQUIRE(e.retry_at);
    CHECK(*e.retry_at == now + book.backoff(n));
    CHECK(!e.in_use);
    auto wait = book.backoff(n);
    auto early = book.take(now + wait - 1ns);
    REQUIRE(!early);
    CHECK(errc_of(early.error()) == errc::no_address);
    now += wait; // due exactly now
  }
  auto got = book.take(now);
  REQUIRE(got);
  CHECK(*got == a);
  CHECK(entry_of(book.snapshot(), a).attempts == 5);
}

TEST_CASE("address book: a backing-off address is skipped for another one, "
          "not for nothing") {
  address_book book{small_config()};
  auto a = addr("10.0.0.1:8333");
  auto b = addr("10.0.0.2:8333");
  REQUIRE(book.add(a, "dns", t0));
  REQUIRE(book.add(b, "dns", t0));
  auto first = book.take(t0);
  REQUIRE(first);
  auto other = *first == a ? b : a;
  CHECK(book.mark_failed(*first, t0));
  auto second = book.take(t0 + 1s);
  REQUIRE(second);
  CHECK(*second == other);
  CHECK(book.release(other));
  // Within the failed one's backoff, the healthy one is given each time.
  auto third = book.take(t0 + 5s);
  REQUIRE(third);
  CHECK(*third == other);
}

TEST_CASE("address book: mark_connected resets the failures") {
  address_book book{small_config()};
  auto a = addr("10.0.0.1:8333");
  REQUIRE(book.add(a, "dns", t0));
  auto now = t0;
  for (int i = 0; i < 3; ++i) {
    REQUIRE(book.take(now));
    book.mark_failed(a, now);
    now += book.backoff(entry_of(book.snapshot(), a).failures);
  }
  CHECK(entry_of(book.snapshot(), a).failures == 3);
  REQUIRE(book.take(now));
  CHECK(book.mark_connected(a, now));
  auto e = entry_of(book.snapshot(), a);
  CHECK(e.failures == 0);
  CHECK(!e.retry_at);
  CHECK(e.in_use);
  REQUIRE(e.last_success);
  CHECK(*e.last_success == now);
  // Disconnected: available again at once, and one new failure waits only
  // the first step again.
  CHECK(book.release(a));
  REQUIRE(book.take(now));
  CHECK(book.mark_failed(a, now));
  CHECK(!book.take(now + 10s - 1ns));
  CHECK(book.take(now + 10s));
}

TEST_CASE("address book: excluded addresses are never handed out") {
  address_book book{small_config()};
  auto own = addr("192.0.2.1:8333");
  auto other = addr("10.0.0.1:8333");
  REQUIRE(book.add(own, "dns", t0));
  REQUIRE(book.add(other, "dns", t0));
  CHECK(book.exclude(own));
  CHECK(!book.contains(own));
  CHECK(book.is_excluded(own));
  CHECK(!book.add(own, "peer", t0)); // gossip cannot bring it back
  CHECK(!book.exclude(own));         // nothing left to drop
  auto given = drain(book, t0);
  REQUIRE(given.size() == 1);
  CHECK(given[0] == other);
  CHECK(book.release(other));
  // Even learnt anew, over time, it is not given.
  for (int i = 0; i < 5; ++i) {
    book.add(own, "peer", t0 + std::chrono::seconds(i));
    auto got = book.take(t0 + std::chrono::seconds(i));
    REQUIRE(got);
    CHECK(*got != own);
    book.release(*got);
  }
}

TEST_CASE("address book: a full book evicts its worst entry and never one in "
          "use") {
  auto cfg = small_config();
  cfg.capacity = 3;
  address_book book{cfg};
  auto a = addr("10.0.0.1:8333");
  auto b = addr("10.0.0.2:8333");
  auto c = addr("10.0.0.3:8333");
  auto d = addr("10.0.0.4:8333");
  auto e = addr("10.0.0.5:8333");
  REQUIRE(book.add(a, "dns", t0));
  REQUIRE(book.add(b, "dns", t0 + 1s));
  REQUIRE(book.add(c, "dns", t0 + 2s));
  // b failed once: the worst, although a is older.
  REQUIRE(drain(book, t0 + 3s).size() == 3);
  book.mark_failed(b, t0 + 3s);
  book.release(a);
  book.release(c);
  CHECK(book.add(d, "peer", t0 + 4s));
  CHECK(book.size() == 3);
  CHECK(!book.contains(b));
  CHECK(book.contains(a));
  // No failures left: one that connected before outlives one that did not,
  // so c (never connected, added before d) is next, then d; a stays.
  book.mark_connected(a, t0 + 5s);
  book.release(a);
  CHECK(book.add(e, "peer", t0 + 6s));
  CHECK(!book.contains(c));
  CHECK(book.contains(d));
  CHECK(book.contains(a));
  CHECK(book.size() == 3);
  // Every entry in use: nothing may go, so the newcomer is refused.
  REQUIRE(drain(book, t0 + 7s).size() == 3);
  CHECK(!book.add(b, "peer", t0 + 8s));
  CHECK(book.size() == 3);
  // Fill-up from nothing never passes the bound.
  address_book big{cfg};
  for (int i = 1; i <= 50; ++i)
    big.add(addr("10.1.0." + std::to_string(i) + ":8333"), "dns",
            t0 + std::chrono::seconds(i));
  CHECK(big.size() == 3);
  // The newest three stayed (the oldest was the worst every time).
  CHECK(big.contains(addr("10.1.0.50:8333")));
  CHECK(big.contains(addr("10.1.0.49:8333")));
  CHECK(big.contains(addr("10.1.0.48:8333")));
}

TEST_CASE("address book: the same seed and calls give the same order") {
  auto run = [](uint64_t seed) {
    auto cfg = small_config();
    cfg.seed = seed;
    address_book book{cfg};
    for (int i = 1; i <= 30; ++i)
      book.add(addr("10.0.0." + std::to_string(i) + ":8333"), "dns", t0);
    return drain(book, t0);
  };
  auto first = run(42);
  CHECK(first.size() == 30);
  CHECK(first == run(42));
  // The order is not simply the address order.
  auto sorted = first;
  std::sort(sorted.begin(), sorted.end());
  CHECK(first != sorted);
}

TEST_CASE("address book: bad configurations are named and refused") {
  address_book_config cfg;
  CHECK(!validate(cfg));
  cfg.capacity = 0;
  CHECK(describe(validate(cfg)).find("capacity") != std::string::npos);
  cfg = {};
  cfg.backoff_base = 0s;
  CHECK(errc_of(validate(cfg)) == errc::invalid_config);
  cfg = {};
  cfg.backoff_cap = 1s;
  CHECK(describe(validate(cfg)).find("backoff_cap") != std::string::npos);
  test::sim_config sys_cfg;
  caf::actor_system sys{sys_cfg};
  auto refused = spawn_address_book(sys, cfg);
  REQUIRE(!refused);
  CHECK(errc_of(refused.error()) == errc::invalid_config);
}

namespace {

/// The simulated-time fixture plus a way to ask the book and see the answer
/// or the error.
struct book_fixture : test::sim_fixture {
  address_book_actor book;

  book_fixture() {
    address_book_config book_cfg;
    book_cfg.backoff_base = 10s;
    book_cfg.backoff_cap = 40s;
    auto spawned = spawn_address_book(sys, book_cfg);
    REQUIRE(spawned);
    book = *spawned;
  }

  ~book_fixture() {
    caf::anon_send_exit(book, caf::exit_reason::user_shutdown);
    run();
  }

  template <class T, class... Ts>
  caf::expected<T> ask_book(Ts... xs) {
    caf::expected<T> result{T{}};
    bool answered = false;
    sys.spawn([&](caf::event_based_actor* self) {
      self->request(book, caf::infinite, xs...)
        .then(
          [&](T& x) {
            result = std::move(x);
            answered = true;
          },
          [&](caf::error& err) {
            result = std::move(err);
            answered = true;
          });
    });
    run();
    REQUIRE(answered);
    return result;
  }

  caf::expected<std::string> get_addr() {
    return ask_book<std::string>(get_address_atom::value);
  }
};

} // namespace

TEST_CASE_FIXTURE(book_fixture,
                  "address book: the actor answers get_addr and applies "
                  "updates on simulated time") {
  using std::string;
  // Empty: no address.
  auto none = get_addr();
  REQUIRE(!none);
  CHECK(errc_of(none.error()) == errc::no_address);
  // Learn one, refuse a malformed one, ignore a duplicate.
  CHECK(ask_book<bool>(add_address_atom::value, string{"10.0.0.1:8333"},
                       string{"dns"})
        == true);
  CHECK(ask_book<bool>(add_address_atom::value, string{"10.0.0.1:8333"},
                       string{"peer"})
        == false);
  auto bad = ask_book<bool>(add_address_atom::value, string{"not an address"},
                            string{"peer"});
  REQUIRE(!bad);
  CHECK(errc_of(bad.error()) == errc::invalid_address);
  // Handed out once, then in use.
  auto got = get_addr();
  REQUIRE(got);
  CHECK(*got == "10.0.0.1:8333");
  CHECK(errc_of(get_addr().error()) == errc::no_address);
  // Failed at now: back exactly 10 s later, not 1 ns earlier.
  CHECK(ask_book<bool>(address_failed_atom::value, *got) == true);
  sched.advance_time(10s - 1ns);
  run();
  CHECK(errc_of(get_addr().error()) == errc::no_address);
  sched.advance_time(1ns);
  run();
  auto retried = get_addr();
  REQUIRE(retried);
  CHECK(*retried == "10.0.0.1:8333");
  // Connected resets the failures: after release and one more failure, the
  // wait is the first step (10 s) again, not 20 s.
  CHECK(ask_book<bool>(address_connected_atom::value, *retried) == true);
  CHECK(ask_book<bool>(address_release_atom::value, *retried) == true);
  CHECK(ask_book<bool>(address_release_atom::value, *retried) == false);
  REQUIRE(get_addr());
  CHECK(ask_book<bool>(address_failed_atom::value, *retried) == true);
  sched.advance_time(10s);
  run();
  REQUIRE(get_addr());
  CHECK(ask_book<bool>(address_release_atom::value, *retried) == true);
  // Excluded: never given again, even when learnt anew.
  CHECK(ask_book<bool>(address_exclude_atom::value, *retried) == true);
  CHECK(ask_book<bool>(add_address_atom::value, *retried, string{"peer"})
        == false);
  CHECK(errc_of(get_addr().error()) == errc::no_address);
  // It serves as the handler's address source.
  address_source_actor source = book;
  CHECK(source.address() == book.address());
}

TEST_CASE_FIXTURE(book_fixture,
                  "address book: as the handler's address source it feeds "
                  "each automatic request a different address") {
  using std::string;
  for (auto& text : {"10.0.0.1:8333", "10.0.0.2:8333", "10.0.0.3:8333"})
    REQUIRE(*ask_book<bool>(add_address_atom::value, string{text},
                            string{"dns"}));
  auto s = setup();
  s.config.target_outbound = 3;
  s.address_source = book;
  spawn(s);
  start();
  advance(1s, 100ms);
  REQUIRE(log->connected.size() == 3);
  std::set<string> dialed;
  for (auto& d : net->dials())
    dialed.insert(d.address);
  CHECK(dialed
        == std::set<string>{"10.0.0.1:8333", "10.0.0.2:8333",
                            "10.0.0.3:8333"});
  // All three are in use now: nothing left to give.
  CHECK(errc_of(get_addr().error()) == errc::no_address);
}
