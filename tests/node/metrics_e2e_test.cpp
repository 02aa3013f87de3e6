// End-to-end tests of connmgr-node's metrics endpoint under idle and slow
// clients: the real program on 127.0.0.1 with `--connmgr.metrics-listen=
// 127.0.0.1:0`, its bound address read from its "metrics" log line, and plain
// TCP clients that connect and say nothing (or half a request). A scrape must
// not wait for them, and SIGTERM must not either: the node exits 0 (its own
// check fails it when a descriptor is left open) and at once.

#include <doctest/doctest.h>

#ifdef CONNMGR_NODE_BINARY

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "connmgr/net/socket_ops.hpp"
#include "tests/node/node_process.hpp"
#include "tests/node/raw_client.hpp"

using namespace connmgr::e2e;

namespace {

using connmgr::test::raw_client;

/// A node that dials nothing, listens nowhere and serves metrics on
/// 127.0.0.1 at a free port; running, with that port read from its log.
class metrics_node : public node_process {
public:
  metrics_node()
    : node_process({opt("metrics-listen", "\"127.0.0.1:0\""),
                    opt("target-outbound", "0"),
                    opt("status-interval", "100ms")}) {
    boot(false);
    auto line = wait_for(event_is("metrics"), eventually);
    REQUIRE_MESSAGE(line, tail());
    metrics_addr = json_get(*line, "addr").value_or("");
    REQUIRE(metrics_addr.rfind("127.0.0.1:", 0) == 0);
    metrics_port = static_cast<uint16_t>(
      std::stoi(metrics_addr.substr(metrics_addr.rfind(':') + 1)));
    REQUIRE(metrics_port != 0);
    // The first status line comes from the running node: start-up is over,
    // so SIGTERM from now on is a graceful stop (during start-up the node
    // exits at once, without its descriptor check).
    REQUIRE_MESSAGE(wait_for(event_is("status"), eventually), tail());
  }

  std::string metrics_addr;
  uint16_t metrics_port = 0;
};

/// Opens `n` connections to `port` that never send a byte.
std::vector<std::unique_ptr<raw_client>> idle_clients(uint16_t port, size_t n) {
  std::vector<std::unique_ptr<raw_client>> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(std::make_unique<raw_client>(port));
  return out;
}

/// Scrapes /metrics over a fresh connection; returns the reply and how long
/// it took (the reply is nothing when none came within 40 s).
std::pair<std::optional<std::string>, clock_type::duration>
scrape(uint16_t port) {
  auto t0 = clock_type::now();
  raw_client c{port};
  c.send_text("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  auto reply = c.read_to_end(40s);
  return {reply, clock_type::now() - t0};
}

/// Sends SIGTERM and checks a clean exit (status 0: no descriptor left open,
/// nothing on stderr, "stopped" last); returns how long the exit took.
clock_type::duration stop_clean(process& p) {
  auto t0 = clock_type::now();
  REQUIRE(p.signal(SIGTERM));
  auto status = p.wait_exit(exit_timeout);
  auto took = clock_type::now() - t0;
  REQUIRE_MESSAGE(status, "no exit within 30 s of SIGTERM\n" << p.tail());
  CHECK_MESSAGE(*status == 0, p.tail());
  CHECK_MESSAGE(p.err_lines().empty(), p.tail());
  auto lines = p.texts();
  REQUIRE(!lines.empty());
  CHECK_MESSAGE(json_event(lines.back()) == "stopped", p.tail());
  return took;
}

long long to_ms(clock_type::duration d) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

} // namespace

TEST_CASE("metrics e2e: idle connections do not delay a scrape") {
  metrics_node n;
  // More idle connections than a thread-per-connection server would have
  // threads for (each would hold one until a request timeout), plus half a
  // request.
  auto idle = idle_clients(n.metrics_port, 4);
  idle.push_back(std::make_unique<raw_client>(n.metrics_port));
  idle.back()->send_text("GET /metrics HTTP/1.1\r\n");
  auto [reply, took] = scrape(n.metrics_port);
  REQUIRE_MESSAGE(reply, "no reply within 40 s\n" << n.tail());
  INFO(*reply);
  CHECK(reply->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(reply->find("# TYPE connmgr_connections_total counter")
        != std::string::npos);
  CAPTURE(to_ms(took));
  CHECK(took < 2s);
  // And again: the first scrape did not merely find a free worker.
  auto [again, took2] = scrape(n.metrics_port);
  REQUIRE(again);
  CAPTURE(to_ms(took2));
  CHECK(took2 < 2s);
  stop_clean(n);
}

TEST_CASE("metrics e2e: idle connections at SIGTERM: exit 0 at once, no "
          "descriptor left open") {
  metrics_node n;
  auto held = connmgr::held_descriptor_count(n.pid());
  REQUIRE(held > 0);
  auto idle = idle_clients(n.metrics_port, 6);
  idle.push_back(std::make_unique<raw_client>(n.metrics_port));
  idle.back()->send_text("GET /met");
  // Wait until the node accepted every one (its descriptor count shows
  // them), so SIGTERM finds them in the server and not in the backlog.
  auto deadline = clock_type::now() + eventually;
  while (connmgr::held_descriptor_count(n.pid()) < held + idle.size()) {
    REQUIRE_MESSAGE(clock_type::now() < deadline,
                    "the node did not accept the connections\n"
                      << n.tail());
    std::this_thread::sleep_for(5ms);
  }
  auto stop_took = stop_clean(n);
  CAPTURE(to_ms(stop_took));
  CHECK(stop_took < 2s);
  // The node closed them: each client reads the end of its connection.
  for (auto& c : idle)
    CHECK(c->read_to_end(5s));
}

TEST_CASE("metrics e2e: an idle node with metrics stops without delay") {
  // Right after boot, so that a server whose stop waits for the end of a
  // poll period (seconds long) would be caught in the middle of its first.
  metrics_node n;
  auto took = stop_clean(n);
  CAPTURE(to_ms(took));
  CHECK(took < 500ms);
}

#endif // CONNMGR_NODE_BINARY
