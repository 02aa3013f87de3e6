// connmgr-bench-micro: the decision cost of the handler's state machine
// (actors/conn_machine.hpp) per event, without actors, threads or sockets.
//
//   connmgr-bench-micro [--k=1000] [--rounds=31] [--addrman-entries=100000]
//                       [--ban-entries=100000]
//
// Effects are a no-op conn_effects that only remembers what the next input
// needs (dial ids, timer keys, inbound slots) in pre-reserved vectors. Each
// round drives K requests through one full life and times each kind of event
// as a batch of K with steady_clock (measurement code, not decision code):
//   connect        connect(0, address, non-permanent) -> start_dial
//   dial_succeeded dial_succeeded(id, attempt, conn)  -> connected
//   disconnect     disconnect(id, retry, trigger_reconnect): close, backoff,
//                  arm_timer (retry_duration 1 ns)
//   timer_fired    timer_fired(key) -> redial -> start_dial
//   remove         disconnect(id, no retry): close and forget
//   inbound        inbound(listener, conn) -> accepted (slot)
//
// And the address manager (actors/address_manager.hpp) holding
// --addrman-entries (default 100 000) entries, K operations a batch:
//   addrman_insert  add(fresh address, gossiping source) to a new table of
//                   4096 x 64 slots (38 % full): stored or refused for a
//                   taken slot, as the hash decides (the stored ones are
//                   removed again after the batch, untimed)
//   addrman_select  take(now, avoid = 8 groups) (released after the batch,
//                   untimed)
//   addrman_evict   add(fresh address) to a new table of 1600 x 64 slots
//                   (98 % full) one horizon after its entries were last
//                   seen, so that nearly every add replaces a terrible
//                   entry (addrman_evict_share says which share did)
// And the ban list (actors/ban_list.hpp) holding --ban-entries (default
// 100 000) bans: IPv4 hosts, IPv6 /64s and /128s and a few IPv4 /16s, so a
// lookup probes four prefix lengths:
//   ban_lookup      find(address, now) for K addresses, half of them banned
// And the handler's extra work per inbound connection when a gate function
// is set (actors/gate.hpp), before `inbound`:
//   gate_accept     inbound_refused(listener, conn) (the stopped and ban
//                   check, no bans held) plus an allow-all
//                   gate_accept_function(remote, local_address()) call; a
//                   memory connection has no socket, so the getsockname of
//                   a real one's local_address() is not in it, but in:
//   local_address   connection::local_address() of an accepted loopback TCP
//                   connection (getsockname and formatting), which the
//                   handler asks once per connection for an accept gate
// Prints one JSON line: ns per event, median [min..max] over the rounds.

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fmt/format.h>

#include "connmgr/actors/address_manager.hpp"
#include "connmgr/actors/ban_list.hpp"
#include "connmgr/actors/conn_machine.hpp"
#include "connmgr/actors/gate.hpp"
#include "bench/common.hpp"

using namespace connmgr;
using namespace connmgr::bench;

namespace {

struct noop_effects : conn_effects {
  std::vector<std::pair<uint64_t, uint64_t>> dials;
  std::vector<uint64_t> timers;
  std::vector<uint64_t> slots;

  void start_dial(uint64_t id, uint64_t attempt, const std::string&) override {
    dials.emplace_back(id, attempt);
  }
  void cancel_dial(uint64_t, uint64_t) override {}
  void fetch_address(uint64_t) override {}
  void arm_timer(uint64_t key, time_point) override {
    timers.push_back(key);
  }
  void connected(const conn_request&, const connection_ptr&) override {}
  void disconnected(const conn_request&, const caf::error&) override {}
  void failed(const conn_request&, const caf::error&) override {}
  void retry_scheduled(const conn_request&, caf::timespan) override {}
  void accepted(uint32_t, uint64_t slot, const connection_ptr&) override {
    slots.push_back(slot);
  }
  void rejected(uint32_t, const connection_ptr&, const caf::error&,
                const std::string&) override {}
};

template <class F>
double time_batch_ns(size_t k, F&& f) {
  auto t0 = steady::now();
  f();
  auto t1 = steady::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count()
    / static_cast<double>(k);
}

// The i-th of 2^32 distinct addresses, spread over all /16s so that groups
// and sources vary as in real gossip.
net_address nth_address(uint64_t i) {
  auto x = static_cast<uint32_t>(i * 2654435761u); // a bijection of 2^32
  auto parsed = net_address::parse(std::to_string(x >> 24) + "."
                                   + std::to_string((x >> 16) & 0xff) + "."
                                   + std::to_string((x >> 8) & 0xff) + "."
                                   + std::to_string(x & 0xff) + ":8333");
  if (!parsed)
    die("nth_address: bad address");
  return *parsed;
}

// Adds fresh addresses (counting on from `next`) until `m` holds `n`.
void fill(address_manager& m, size_t n, uint64_t& next,
          caf::actor_clock::time_point now) {
  while (m.size() < n) {
    auto i = next++;
    m.add(nth_address(i), nth_address(i % 4096 + (uint64_t{1} << 31)), now);
  }
}

// Times the address manager's insert, select and evict at `entries`
// entries, appending ns per operation to `ns` once per round.
void bench_address_manager(size_t entries, size_t k, size_t rounds,
                           std::map<std::string, std::vector<double>>& ns,
                           json_object& out) {
  using namespace std::chrono;
  caf::actor_clock::time_point now{};
  now += hours(1000);
  uint64_t next = 0;
  // Fresh addresses and sources, made before timing (parsing is not timed).
  auto fresh = [&next](size_t n) {
    std::vector<std::pair<net_address, net_address>> result;
    result.reserve(n);
    for (size_t i = 0; i < n; ++i, ++next)
      result.emplace_back(nth_address(next),
                          nth_address(next % 4096 + (uint64_t{1} << 31)));
    return result;
  };
  address_manager_config cfg;
  cfg.new_bucket_count = 4096;
  cfg.new_bucket_size = 64;
  cfg.new_buckets_per_source_group = 64;
  cfg.tried_bucket_count = 256;
  cfg.tried_bucket_size = 64;
  cfg.seed = 42;
  address_manager m{cfg};
  fill(m, entries, next, now);
  std::vector<netgroup> avoid;
  for (uint64_t i = 0; avoid.size() < 8; ++i)
    if (m.contains(nth_address(i)))
      avoid.push_back(m.group_of(nth_address(i)));
  // The eviction book: nearly full, all of it a horizon old when timed.
  auto ecfg = cfg;
  ecfg.new_bucket_count = (entries + entries / 40) / 64 + 1;
  ecfg.new_buckets_per_source_group = 64;
  address_manager e{ecfg};
  auto evict_now = now;
  fill(e, entries, next, evict_now);
  std::vector<net_address> taken;
  taken.reserve(k);
  uint64_t evict_adds = 0;
  uint64_t evicted = 0;
  for (size_t r = 0; r < rounds; ++r) {
    auto batch = fresh(k);
    std::vector<net_address> stored;
    stored.reserve(k);
    ns["addrman_insert"].push_back(time_batch_ns(k, [&] {
      for (auto& [a, src] : batch)
        if (m.add(a, src, now) == add_result::added)
          stored.push_back(a);
    }));
    for (auto& a : stored)
      m.remove(a);
    taken.clear();
    now += seconds(1);
    ns["addrman_select"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        taken.push_back(*m.take(now, avoid));
    }));
    for (auto& a : taken)
      m.release(a);
    batch = fresh(k);
    evict_now += ecfg.horizon + seconds(1);
    auto replaced_before =
      e.stats().adds[static_cast<size_t>(add_result::replaced)];
    ns["addrman_evict"].push_back(time_batch_ns(k, [&] {
      for (auto& [a, src] : batch)
        e.add(a, src, evict_now);
    }));
    evict_adds += k;
    evicted += e.stats().adds[static_cast<size_t>(add_result::replaced)]
      - replaced_before;
  }
  if (m.size() != entries)
    die("address manager: the insert book did not end at its size");
  out.add("addrman_entries", entries);
  out.add("addrman_evict_entries", e.size());
  out.add("addrman_evict_share",
          static_cast<double>(evicted) / static_cast<double>(evict_adds));
}

// Times ban lookups with `entries` bans, appending ns per lookup to `ns`
// once per round.
void bench_ban_list(size_t entries, size_t k, size_t rounds,
                    std::map<std::string, std::vector<double>>& ns,
                    json_object& out) {
  using namespace std::chrono;
  caf::actor_clock::time_point now{};
  now += hours(1000);
  auto until = now + hours(24);
  ban_list bans{42};
  auto v4 = [](uint64_t i) {
    return std::to_string(20 + (i >> 16 & 63)) + "."
      + std::to_string(i >> 8 & 255) + "." + std::to_string(i & 255) + ".7";
  };
  auto v6 = [](uint64_t i) {
    return fmt::format("2001:db8:{:x}:{:x}::", i >> 16 & 0xffff, i & 0xffff);
  };
  auto ban = [&bans, until](const std::string& text) {
    auto s = parse_subnet(text);
    if (!s || bans.add(*s, until, "bench"))
      die("ban list: cannot ban " + text);
  };
  for (uint64_t i = 0; bans.size() < entries; ++i) {
    ban(v4(i));
    if (i % 4 == 0)
      ban(v6(i) + "/64");
    if (i % 4 == 1)
      ban(v6(i) + "1/128");
    if (i % 1000 == 0)
      ban(std::to_string(100 + i / 1000 % 100) + "."
          + std::to_string(i / 1000 / 100 % 256) + ".0.0/16");
  }
  // Half banned (every other one is a banned host or an address in a
  // banned /64), half not; made before timing.
  std::vector<net_address> probes;
  for (size_t i = 0; i < k; ++i) {
    auto j = static_cast<uint64_t>(i) * 7919 % (entries / 2);
    auto text = i % 4 == 0 ? v4(j) + ":1"
      : i % 4 == 1         ? "[" + v6(j / 4 * 4) + "99]:1"
      : i % 4 == 2         ? "1.2." + std::to_string(i % 256) + ".9:1"
                           : "[2001:db9::" + std::to_string(i) + "]:1";
    auto a = net_address::parse(text);
    if (!a)
      die("ban list: bad probe " + text);
    probes.push_back(*a);
  }
  size_t hits = 0;
  for (size_t r = 0; r < rounds; ++r) {
    hits = 0;
    ns["ban_lookup"].push_back(time_batch_ns(k, [&] {
      for (auto& a : probes)
        hits += bans.find(a, now) != nullptr ? 1 : 0;
    }));
  }
  if (hits != (k + 3) / 4 + (k + 2) / 4)
    die("ban list: " + std::to_string(hits) + " of " + std::to_string(k)
        + " probes banned, expected half");
  out.add("ban_entries", bans.size());
}

// Times local_address() of one accepted loopback TCP connection, appending
// ns per call to `ns` once per round.
void bench_local_address(size_t k, size_t rounds,
                         std::map<std::string, std::vector<double>>& ns) {
  auto sa = loopback(0);
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  socklen_t len = sizeof(sa);
  if (lfd < 0 || ::bind(lfd, reinterpret_cast<sockaddr*>(&sa), len) != 0
      || ::listen(lfd, 1) != 0
      || ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    die("local_address: no loopback listener");
  int cfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (cfd < 0 || ::connect(cfd, reinterpret_cast<sockaddr*>(&sa), len) != 0)
    die("local_address: no loopback connection");
  int afd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  if (afd < 0)
    die("local_address: accept failed");
  auto conn = std::make_shared<connection>(afd, "127.0.0.1:1");
  size_t chars = 0;
  for (size_t r = 0; r < rounds; ++r)
    ns["local_address"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        chars += conn->local_address().size();
    }));
  if (chars == 0)
    die("local_address: empty");
  conn->close();
  ::close(cfd);
  ::close(lfd);
}

std::vector<connection_ptr> fresh_conns(size_t k) {
  std::vector<connection_ptr> result;
  result.reserve(k);
  for (size_t i = 0; i < k; ++i)
    result.push_back(make_memory_connection("10.0.0.1:8333"));
  return result;
}

/// Inbound connections from `k` distinct hosts, so every one is admitted.
// Hosts `first` .. `first + k - 1`: each round takes new ones, so the
// per-IP rate limit (a burst of 10) never refuses a host seen before.
std::vector<connection_ptr> inbound_conns_from_distinct_hosts(size_t first,
                                                              size_t k) {
  std::vector<connection_ptr> result;
  result.reserve(k);
  for (size_t i = first; i < first + k; ++i)
    result.push_back(
      make_memory_connection("10." + std::to_string(i / 65536 % 256) + "."
                             + std::to_string(i / 256 % 256) + "."
                             + std::to_string(i % 256) + ":8333"));
  return result;
}

} // namespace

int main(int argc, char** argv) {
  size_t k = 1000;
  size_t rounds = 31;
  size_t addrman_entries = 100000;
  size_t ban_entries = 100000;
  option_table opts;
  opts.number("k", k, 1);
  opts.number("rounds", rounds, 1);
  opts.number("addrman-entries", addrman_entries, 1);
  opts.number("ban-entries", ban_entries, 1);
  opts.parse(argc, argv);
  manager_config cfg;
  cfg.target_outbound = 0;
  cfg.retry_duration = std::chrono::nanoseconds{1};
  cfg.max_retry_duration = std::chrono::nanoseconds{1};
  cfg.stable_connection_period = caf::timespan{0};
  cfg.max_pending_dials = static_cast<uint32_t>(k + 1);
  cfg.max_manual.reset(); // K manual requests alive at once
  cfg.reject_duplicate_addresses = true; // the default: the check is timed
  // Every inbound connection admitted, per-IP and rate checks timed; no
  // eviction (its cost is a full node's, not one decision's).
  cfg.max_inbound = static_cast<uint32_t>(k + 1);
  cfg.max_pending_inbound = std::nullopt;
  if (auto err = validate(cfg))
    die("bad config");
  noop_effects fx;
  fx.dials.reserve(k);
  fx.timers.reserve(k);
  fx.slots.reserve(k);
  conn_machine m{cfg, false, fx};
  caf::actor_clock::time_point now{};
  m.start(now);
  std::vector<std::string> addresses;
  for (size_t i = 0; i < k; ++i)
    addresses.push_back("10.0." + std::to_string(i / 250) + "."
                        + std::to_string(i % 250 + 1) + ":8333");
  std::vector<uint64_t> ids(k);
  std::map<std::string, std::vector<double>> ns;
  for (size_t r = 0; r < rounds; ++r) {
    fx.dials.clear();
    ns["connect"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        (void)m.connect(0, addresses[i], false, now);
    }));
    if (fx.dials.size() != k)
      die("connect did not start K dials");
    for (size_t i = 0; i < k; ++i)
      ids[i] = fx.dials[i].first;
    auto conns = fresh_conns(k);
    auto dials = fx.dials;
    now += std::chrono::milliseconds{1};
    ns["dial_succeeded"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        m.dial_succeeded(dials[i].first, dials[i].second, conns[i], now);
    }));
    now += std::chrono::milliseconds{1};
    fx.timers.clear();
    ns["disconnect"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        m.disconnect(ids[i], true, true, now);
    }));
    if (fx.timers.size() != k)
      die("disconnect did not arm K timers");
    now += std::chrono::milliseconds{1};
    fx.dials.clear();
    ns["timer_fired"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        m.timer_fired(fx.timers[i], now);
    }));
    if (fx.dials.size() != k)
      die("timer_fired did not start K dials");
    auto conns2 = fresh_conns(k);
    dials = fx.dials;
    for (size_t i = 0; i < k; ++i)
      m.dial_succeeded(dials[i].first, dials[i].second, conns2[i], now);
    now += std::chrono::milliseconds{1};
    ns["remove"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        m.disconnect(ids[i], false, false, now);
    }));
    auto inbound_conns = inbound_conns_from_distinct_hosts(r * k, k);
    fx.slots.clear();
    ns["inbound"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i)
        m.inbound(0, inbound_conns[i], now);
    }));
    if (fx.slots.size() != k)
      die("inbound did not admit K connections");
    gate_accept_function gate = [](const std::string&, const std::string&) {
      return gate_verdict::allow();
    };
    size_t gated = 0;
    ns["gate_accept"].push_back(time_batch_ns(k, [&] {
      for (size_t i = 0; i < k; ++i) {
        auto& c = inbound_conns[i];
        if (m.inbound_refused(0, c, {}, {}, now))
          continue;
        gated += gate(c->remote_address(), c->local_address()).allowed ? 0 : 1;
      }
    }));
    if (gated != 0)
      die("gate_accept refused a connection");
    for (auto slot : fx.slots)
      m.inbound_closed(slot);
    if (m.stats().live_requests != 0 || m.stats().inbound_live != 0)
      die("the machine did not end the round empty");
  }
  json_object out;
  out.add("mode", "micro");
  out.add("k", k);
  out.add("rounds", rounds);
  bench_address_manager(addrman_entries, k, rounds, ns, out);
  bench_ban_list(ban_entries, k, rounds, ns, out);
  bench_local_address(k, rounds, ns);
  for (auto& [event, xs] : ns) {
    std::sort(xs.begin(), xs.end());
    out.add(event + "_ns", xs[xs.size() / 2]);
    out.add(event + "_ns_min", xs.front());
    out.add(event + "_ns_max", xs.back());
  }
  out.print();
  return 0;
}
