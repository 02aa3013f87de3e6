// The node's metrics: the counters and gauges the events drive, the
// Prometheus text they render to, and the /metrics server against idle,
// slow and too many clients on loopback. Over 500 lines because the server's
// cases need the raw client and deadlines set up above them.

#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include "examples/node/node_metrics.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/socket_ops.hpp"
#include "tests/node/raw_client.hpp"
#include "tests/node/sample_status.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

node_event make(std::string kind) {
  node_event x;
  x.event = std::move(kind);
  return x;
}

/// The registry in the Prometheus text format.
std::string exposition(const prometheus::Registry& registry) {
  std::ostringstream out;
  prometheus::TextSerializer{}.Serialize(out, registry.Collect());
  return out.str();
}

/// Whether `text` has `line` as one whole line.
bool has_line(const std::string& text, const std::string& line) {
  return ("\n" + text).find("\n" + line + "\n") != std::string::npos;
}

/// Runs `command` through the shell; returns its exit status and output.
std::pair<int, std::string> run(const std::string& command) {
  std::string output;
  auto* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr)
    return {-1, "popen failed"};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0)
    output.append(buf, n);
  return {pclose(pipe), output};
}

/// Fetches `url` with curl, bypassing any proxy from the environment.
std::pair<int, std::string> fetch(const std::string& url) {
  return run("curl -sS --noproxy '*' --max-time 10 '" + url + "' 2>&1");
}

/// The error of `x` as text, or "" when `x` holds a value (doctest may
/// evaluate a message even when the assertion holds, e.g. with `-s`).
template <class T>
std::string error_text(const caf::expected<T>& x) {
  return x ? std::string{} : describe(x.error());
}

net_address addr(const std::string& text) {
  auto result = net_address::parse(text, true);
  REQUIRE(result);
  return *result;
}

/// Records `times` events of `kind` whose reason_code is `reason`.
void record_with_reason(node_metrics& m, const std::string& kind,
                        const std::string& reason, int times) {
  auto x = make(kind);
  x.reason_code = reason;
  for (int i = 0; i < times; ++i)
    m.record(x);
}

/// A metrics server for `registry` on 127.0.0.1 (a free port); it must
/// start.
caf::expected<std::unique_ptr<metrics_server>>
serve_on_loopback(std::shared_ptr<prometheus::Registry> registry,
                  metrics_server_options opts = {}) {
  auto server =
    metrics_server::start(addr("127.0.0.1:0"), std::move(registry), opts);
  REQUIRE_MESSAGE(server, error_text(server));
  return server;
}

using test_clock = std::chrono::steady_clock;

using test::raw_client;

/// Waits up to `timeout` for `server.clients()` to read `n`.
bool wait_for_clients(const metrics_server& server, size_t n,
                      test_clock::duration timeout = 10s) {
  auto deadline = test_clock::now() + timeout;
  while (server.clients() != n) {
    if (test_clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(2ms);
  }
  return true;
}

} // namespace

TEST_CASE("node metrics: record counts events by kind with the node label") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "3"};
  CHECK(m.registry() == registry);
  CHECK(m.node_label() == "3");
  auto connected = make("connected");
  connected.dial_us = 1500;
  m.record(connected);
  m.record(connected);
  m.record(make("accepted"));
  m.record(make("rejected"));
  auto refused = make("failed");
  refused.reason_code = "refused";
  refused.dial_us = 100;
  m.record(refused);
  m.record(refused);
  auto timed_out = refused;
  timed_out.reason_code = "timed_out";
  m.record(timed_out);
  auto no_code = refused;
  no_code.reason_code.clear();
  m.record(no_code);
  auto without_dial = make("failed"); // e.g. canceled before any dial
  without_dial.reason_code = "canceled";
  m.record(without_dial);
  m.record(make("retry"));
  m.record(make("retry"));
  m.record(make("retry"));
  m.record(make("disconnected"));
  auto dropped = make("peer_dropped");
  dropped.reason_code = "duplicate";
  m.record(dropped);
  dropped.reason_code = "self";
  m.record(dropped);
  m.record(dropped);
  auto learned = make("learned");
  learned.count = 12;
  m.record(learned);
  learned.count = 3;
  m.record(learned);
  auto seeded = make("seeded"); // the lookup, not the book: not counted
  seeded.count = 100;
  m.record(seeded);
  m.record(make("peer_ready"));
  m.record(make("peer_closed"));
  m.record(make("stopped"));
  m.record(make("no_such_kind"));

  auto text = exposition(*registry);
  INFO(text);
  CHECK(has_line(
    text, R"(connmgr_connections_total{direction="outbound",node="3"} 2)"));
  CHECK(has_line(
    text, R"(connmgr_connections_total{direction="inbound",node="3"} 1)"));
  CHECK(
    has_line(text, R"(connmgr_rejected_total{node="3",reason="unknown"} 1)"));
  CHECK(has_line(
    text, R"(connmgr_dial_failures_total{node="3",reason="refused"} 2)"));
  CHECK(has_line(
    text, R"(connmgr_dial_failures_total{node="3",reason="timed_out"} 1)"));
  CHECK(has_line(
    text, R"(connmgr_dial_failures_total{node="3",reason="unknown"} 1)"));
  CHECK(text.find(R"(reason="canceled")") == std::string::npos);
  CHECK(has_line(text, R"(connmgr_retries_total{node="3"} 3)"));
  CHECK(has_line(text, R"(connmgr_disconnections_total{node="3"} 1)"));
  CHECK(has_line(text,
                 R"(connmgr_peer_drops_total{node="3",reason="duplicate"} 1)"));
  CHECK(
    has_line(text, R"(connmgr_peer_drops_total{node="3",reason="self"} 2)"));
  CHECK(has_line(text, R"(connmgr_addresses_learned_total{node="3"} 15)"));
  CHECK(has_line(text, "# TYPE connmgr_connections_total counter"));
  // The histogram: two dials of 1.5 ms.
  CHECK(has_line(text, "# TYPE connmgr_dial_duration_seconds histogram"));
  CHECK(has_line(text, R"(connmgr_dial_duration_seconds_count{node="3"} 2)"));
  CHECK(has_line(text, R"(connmgr_dial_duration_seconds_sum{node="3"} 0.003)"));
  CHECK(has_line(
    text, R"(connmgr_dial_duration_seconds_bucket{node="3",le="0.001"} 0)"));
  CHECK(has_line(
    text, R"(connmgr_dial_duration_seconds_bucket{node="3",le="0.0025"} 2)"));
  CHECK(has_line(
    text, R"(connmgr_dial_duration_seconds_bucket{node="3",le="0.0001"} 0)"));
  CHECK(has_line(
    text, R"(connmgr_dial_duration_seconds_bucket{node="3",le="10"} 2)"));
  CHECK(has_line(
    text, R"(connmgr_dial_duration_seconds_bucket{node="3",le="+Inf"} 2)"));
}

TEST_CASE("node metrics: gossip drops, rejections and evictions by reason") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "4"};
  auto gossip = make("gossip_dropped");
  gossip.addr = "203.0.113.5:8333";
  gossip.reason_code = "private";
  gossip.count = 7;
  m.record(gossip);
  gossip.count = 3;
  m.record(gossip);
  gossip.reason_code = "rate_limited";
  gossip.count = 250;
  m.record(gossip);
  gossip.reason_code = "hostname";
  gossip.count.reset(); // one address when the event has no count
  m.record(gossip);
  gossip.reason_code.clear();
  gossip.count = 2;
  m.record(gossip);
  // Twice with one reason, once with another, once with none.
  record_with_reason(m, "rejected", "inbound_full", 2);
  record_with_reason(m, "rejected", "banned", 1);
  record_with_reason(m, "rejected", "", 1);
  record_with_reason(m, "evicted", "youngest_netgroup", 2);
  record_with_reason(m, "evicted", "slowest_ping", 1);
  record_with_reason(m, "evicted", "", 1);
  auto text = exposition(*registry);
  INFO(text);
  CHECK(has_line(text, "# TYPE connmgr_gossip_dropped_total counter"));
  CHECK(has_line(
    text, R"(connmgr_gossip_dropped_total{node="4",reason="private"} 10)"));
  CHECK(has_line(
    text,
    R"(connmgr_gossip_dropped_total{node="4",reason="rate_limited"} 250)"));
  CHECK(has_line(
    text, R"(connmgr_gossip_dropped_total{node="4",reason="hostname"} 1)"));
  CHECK(has_line(
    text, R"(connmgr_gossip_dropped_total{node="4",reason="unknown"} 2)"));
  CHECK(has_line(
    text, R"(connmgr_rejected_total{node="4",reason="inbound_full"} 2)"));
  CHECK(
    has_line(text, R"(connmgr_rejected_total{node="4",reason="banned"} 1)"));
  CHECK(
    has_line(text, R"(connmgr_rejected_total{node="4",reason="unknown"} 1)"));
  CHECK(has_line(text, "# TYPE connmgr_evictions_total counter"));
  CHECK(has_line(
    text, R"(connmgr_evictions_total{node="4",reason="youngest_netgroup"} 2)"));
  CHECK(has_line(
    text, R"(connmgr_evictions_total{node="4",reason="slowest_ping"} 1)"));
  CHECK(
    has_line(text, R"(connmgr_evictions_total{node="4",reason="unknown"} 1)"));
  // Other counters stay where they were: these are not learned addresses.
  CHECK(has_line(text, R"(connmgr_addresses_learned_total{node="4"} 0)"));
}

TEST_CASE("node metrics: update sets the gauges, max_inbound +Inf when "
          "unlimited") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "0"};
  // Before any update, every gauge reads 0.
  CHECK(has_line(exposition(*registry), R"(connmgr_max_inbound{node="0"} 0)"));
  auto s = test::sample_status(6);
  m.update(s);
  auto text = exposition(*registry);
  INFO(text);
  CHECK(has_line(text, "# TYPE connmgr_outbound_connections gauge"));
  CHECK(has_line(text, R"(connmgr_outbound_connections{node="0"} 3)"));
  CHECK(has_line(text, R"(connmgr_target_outbound{node="0"} 8)"));
  CHECK(has_line(text, R"(connmgr_inbound_connections{node="0"} 2)"));
  CHECK(has_line(text, R"(connmgr_max_inbound{node="0"} +Inf)"));
  CHECK(has_line(text, R"(connmgr_pending_dials{node="0"} 1)"));
  CHECK(has_line(text, R"(connmgr_failed_attempts{node="0"} 6)"));
  CHECK(has_line(text, R"(connmgr_peers_ready{node="0"} 5)"));
  CHECK(has_line(text, R"(connmgr_known_addresses{node="0"} 12)"));
  s.max_inbound = 125;
  s.outbound = 0;
  m.update(s);
  text = exposition(*registry);
  CHECK(has_line(text, R"(connmgr_max_inbound{node="0"} 125)"));
  CHECK(has_line(text, R"(connmgr_outbound_connections{node="0"} 0)"));
}

TEST_CASE("node metrics: nodes sharing a registry are told apart by the "
          "node label") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics a{registry, "0"};
  node_metrics b{registry, "1"};
  a.record(make("accepted"));
  b.record(make("accepted"));
  b.record(make("accepted"));
  node_status s;
  s.known_addresses = 7;
  b.update(s);
  auto text = exposition(*registry);
  INFO(text);
  CHECK(has_line(
    text, R"(connmgr_connections_total{direction="inbound",node="0"} 1)"));
  CHECK(has_line(
    text, R"(connmgr_connections_total{direction="inbound",node="1"} 2)"));
  CHECK(has_line(text, R"(connmgr_known_addresses{node="0"} 0)"));
  CHECK(has_line(text, R"(connmgr_known_addresses{node="1"} 7)"));
  // One family each: HELP and TYPE appear once.
  auto first = text.find("# TYPE connmgr_connections_total counter");
  REQUIRE(first != std::string::npos);
  CHECK(text.find("# TYPE connmgr_connections_total counter", first + 1)
        == std::string::npos);
}

TEST_CASE("node metrics: an empty label leaves the node label out") {
  node_metrics m{nullptr, ""};
  REQUIRE(m.registry() != nullptr);
  m.record(make("retry"));
  auto dropped = make("peer_dropped");
  m.record(dropped);
  auto text = exposition(*m.registry());
  INFO(text);
  CHECK(has_line(text, "connmgr_retries_total 1"));
  CHECK(has_line(text, R"(connmgr_peer_drops_total{reason="unknown"} 1)"));
  CHECK(text.find("node=") == std::string::npos);
}

TEST_CASE("node metrics: record and update from many threads at once") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "7"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&m, t] {
      for (int i = 0; i < 1000; ++i) {
        auto x = make("failed");
        x.dial_us = i;
        x.reason_code = "code" + std::to_string(i % 3);
        m.record(x);
        m.record(make("connected"));
        node_status s;
        s.known_addresses = static_cast<uint64_t>(t);
        m.update(s);
      }
    });
  for (auto& th : threads)
    th.join();
  auto text = exposition(*registry);
  INFO(text);
  CHECK(has_line(
    text, R"(connmgr_connections_total{direction="outbound",node="7"} 4000)"));
  CHECK(has_line(
    text, R"(connmgr_dial_failures_total{node="7",reason="code0"} 1336)"));
  CHECK(has_line(
    text, R"(connmgr_dial_failures_total{node="7",reason="code2"} 1332)"));
}

TEST_CASE("node metrics: the server serves /metrics to a real HTTP client") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "5"};
  auto learned = make("learned");
  learned.count = 42;
  m.record(learned);
  auto server = metrics_server::start(addr("127.0.0.1:0"), registry);
  REQUIRE_MESSAGE(server, error_text(server));
  auto bound = (*server)->address();
  CHECK(bound.host() == "127.0.0.1");
  REQUIRE(bound.port() != 0);
  CHECK((*server)->registry() == registry);
  auto [status, body] = fetch("http://" + bound.to_string() + "/metrics");
  INFO(body);
  REQUIRE(status == 0);
  CHECK(has_line(body, R"(connmgr_addresses_learned_total{node="5"} 42)"));
  // Later updates show in the next scrape.
  m.record(learned);
  auto [status2, body2] = fetch("http://" + bound.to_string() + "/metrics");
  CHECK(status2 == 0);
  CHECK(has_line(body2, R"(connmgr_addresses_learned_total{node="5"} 84)"));
  // Once stopped, the port no longer answers.
  server->reset();
  auto [status3, body3] = fetch("http://" + bound.to_string() + "/metrics");
  CHECK(status3 != 0);
}

TEST_CASE("node metrics: a server on a busy port fails naming the address") {
  auto registry = std::make_shared<prometheus::Registry>();
  auto first = metrics_server::start(addr("127.0.0.1:0"), registry);
  REQUIRE_MESSAGE(first, error_text(first));
  auto busy = (*first)->address();
  auto second = metrics_server::start(busy, registry);
  REQUIRE_FALSE(second);
  CHECK(errc_of(second.error()) == errc::invalid_config);
  auto text = describe(second.error());
  INFO(text);
  CHECK(text.rfind("invalid_config: metrics-listen " + busy.to_string()
                     + ": cannot listen: ",
                   0)
        == 0);
  // The operating system's cause, not just "cannot listen".
  CHECK(text.find("Address already in use") != std::string::npos);
  // The first one still works.
  auto [status, body] = fetch("http://" + busy.to_string() + "/metrics");
  CHECK(status == 0);
}

TEST_CASE("node metrics: a server on IPv6 loopback serves") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "6"};
  m.record(make("rejected"));
  auto server = metrics_server::start(addr("[::1]:0"), registry);
  REQUIRE_MESSAGE(server, error_text(server));
  auto bound = (*server)->address();
  CHECK(bound.to_string().rfind("[::1]:", 0) == 0);
  auto [status, body] = fetch("http://" + bound.to_string() + "/metrics");
  INFO(body);
  REQUIRE(status == 0);
  CHECK(
    has_line(body, R"(connmgr_rejected_total{node="6",reason="unknown"} 1)"));
}

TEST_CASE("node metrics: a server on a host name reports the bound port") {
  auto registry = std::make_shared<prometheus::Registry>();
  auto server = metrics_server::start(addr("localhost:0"), registry);
  REQUIRE_MESSAGE(server, error_text(server));
  auto bound = (*server)->address();
  CHECK(bound.host() == "localhost");
  CHECK(bound.port() != 0);
  auto [status, body] =
    fetch("http://127.0.0.1:" + std::to_string(bound.port()) + "/metrics");
  CHECK(status == 0);
}

TEST_CASE("node metrics: a server without a registry fails") {
  auto server = metrics_server::start(addr("127.0.0.1:0"), nullptr);
  REQUIRE_FALSE(server);
  CHECK(describe(server.error())
        == "invalid_config: metrics-listen 127.0.0.1:0: no registry to serve");
}

TEST_CASE("node metrics: idle and half-sent requests do not delay a scrape") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "8"};
  m.record(make("retry"));
  auto server = serve_on_loopback(registry);
  auto port = (*server)->address().port();
  // More idle connections than a thread-per-connection server has threads,
  // plus two that stop in the middle of their request (slowloris).
  std::vector<std::unique_ptr<raw_client>> idle;
  for (int i = 0; i < 8; ++i)
    idle.push_back(std::make_unique<raw_client>(port));
  idle.push_back(std::make_unique<raw_client>(port));
  idle.back()->send_text("GET /metr");
  idle.push_back(std::make_unique<raw_client>(port));
  idle.back()->send_text("GET /metrics HTTP/1.1\r\nHost: x\r\n");
  REQUIRE(wait_for_clients(**server, idle.size()));
  {
    auto t0 = test_clock::now();
    raw_client scraper{port};
    scraper.send_text("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    auto reply = scraper.read_to_end(10s);
    auto took = test_clock::now() - t0;
    REQUIRE(reply);
    INFO(*reply);
    CHECK(reply->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(reply->find("Content-Type: text/plain; version=0.0.4")
          != std::string::npos);
    CHECK(has_line(*reply, R"(connmgr_retries_total{node="8"} 1)"));
    // Nothing waited on the idle ones (a loaded machine answers in ms).
    CHECK(took < 2s);
  }
  // The scraper is gone once it closed; the idle ones are all still there:
  // the scrape did not need their slots.
  CHECK(wait_for_clients(**server, idle.size()));
}

TEST_CASE("node metrics: a client that does not finish its request in time "
          "is closed") {
  auto registry = std::make_shared<prometheus::Registry>();
  metrics_server_options opts;
  opts.client_timeout = 300ms;
  auto server = serve_on_loopback(registry, opts);
  auto port = (*server)->address().port();
  raw_client idle{port};
  raw_client slow{port};
  slow.send_text("GET /metrics HTTP/1.1\r\n");
  auto t0 = test_clock::now();
  // Closed by the server without an answer, not before the timeout.
  auto idle_end = idle.read_to_end(10s);
  REQUIRE(idle_end);
  CHECK(idle_end->empty());
  auto slow_end = slow.read_to_end(10s);
  REQUIRE(slow_end);
  CHECK(slow_end->empty());
  CHECK(test_clock::now() - t0 >= 250ms);
  CHECK(wait_for_clients(**server, 0));
}

TEST_CASE("node metrics: beyond max_clients the oldest client is closed") {
  auto registry = std::make_shared<prometheus::Registry>();
  metrics_server_options opts;
  opts.max_clients = 3;
  auto server = serve_on_loopback(registry, opts);
  auto port = (*server)->address().port();
  raw_client oldest{port};
  REQUIRE(wait_for_clients(**server, 1));
  raw_client second{port};
  raw_client third{port};
  REQUIRE(wait_for_clients(**server, 3));
  // A scraper arriving now takes the oldest one's place and is answered.
  raw_client scraper{port};
  scraper.send_text("GET /metrics HTTP/1.0\r\n\r\n");
  auto reply = scraper.read_to_end(10s);
  REQUIRE(reply);
  CHECK(reply->rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  auto end = oldest.read_to_end(10s);
  REQUIRE(end);
  CHECK(end->empty());
  CHECK(wait_for_clients(**server, 2)); // second and third
}

TEST_CASE("node metrics: stopping the server closes every socket at once") {
  auto before = open_descriptors();
  auto registry = std::make_shared<prometheus::Registry>();
  auto server = serve_on_loopback(registry);
  auto port = (*server)->address().port();
  {
    std::vector<std::unique_ptr<raw_client>> idle;
    for (int i = 0; i < 12; ++i)
      idle.push_back(std::make_unique<raw_client>(port));
    idle.back()->send_text("GET /metrics HTTP/1.1\r\n");
    REQUIRE(wait_for_clients(**server, idle.size()));
    auto t0 = test_clock::now();
    server->reset();
    auto took = test_clock::now() - t0;
    // No poll period or request timeout to wait out: at once.
    CHECK(took < 500ms);
    // Closed by the server, not left open (a client whose request the
    // server had not read yet sees a reset).
    for (auto& c : idle)
      CHECK(c->closed_within(2s));
  }
  auto left = descriptors_left_open(before, 500ms);
  CHECK_MESSAGE(left.empty(), describe(left));
}

TEST_CASE("node metrics: the server answers other requests with HTTP "
          "errors") {
  auto registry = std::make_shared<prometheus::Registry>();
  node_metrics m{registry, "9"};
  auto server = serve_on_loopback(registry);
  auto port = (*server)->address().port();
  auto ask = [port](const std::string& request) {
    raw_client c{port};
    c.send_text(request);
    auto reply = c.read_to_end(10s);
    REQUIRE(reply);
    return *reply;
  };
  auto head = ask("HEAD /metrics HTTP/1.1\r\n\r\n");
  CHECK(head.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(head.find("Content-Length: 0\r\n") == std::string::npos);
  CHECK(head.substr(head.find("\r\n\r\n") + 4).empty());
  auto query = ask("GET /metrics?name[]=x HTTP/1.1\r\n\r\n");
  CHECK(query.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
  CHECK(query.find("connmgr_retries_total{node=\"9\"} 0") != std::string::npos);
  CHECK(ask("GET / HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
  CHECK(ask("GET /metricsx HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 404 ", 0) == 0);
  auto post = ask("POST /metrics HTTP/1.1\r\n\r\n");
  CHECK(post.rfind("HTTP/1.1 405 ", 0) == 0);
  CHECK(post.find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(ask("GET /metrics\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(ask("\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0);
  CHECK(ask("GET /metrics HTTP/1.1\n\n").rfind("HTTP/1.1 200 ", 0) == 0);
  CHECK(ask("GET /metrics HTTP/1.1\r\nX: " + std::string(9000, 'a'))
          .rfind("HTTP/1.1 431 ", 0)
        == 0);
}
