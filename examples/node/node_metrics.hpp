#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "examples/node/node_event.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

/// The Prometheus metrics of one node, kept in a registry that several nodes
/// of one process (swarm mode) may share. Every sample of this node carries
/// the label `node="<label>"`; an empty label leaves the label out (one node
/// per process).
///
/// Counters, updated by `record`:
/// - `connmgr_connections_total{direction="outbound"|"inbound"}`: `connected`
///   and `accepted` events;
/// - `connmgr_rejected_total{reason=<reason_code>}`: `rejected` events
///   (reason "unknown" when the event has none);
/// - `connmgr_dial_failures_total{reason=<reason_code>}`: `failed` events
///   that followed a dial (`dial_us` set); reason "unknown" when the event
///   has no reason code;
/// - `connmgr_retries_total`: `retry` events;
/// - `connmgr_disconnections_total`: `disconnected` events;
/// - `connmgr_peer_drops_total{reason=<reason_code>}`: `peer_dropped` events
///   (reason "unknown" when the event has none);
/// - `connmgr_addresses_learned_total`: the `count` of `learned` events;
/// - `connmgr_gossip_dropped_total{reason=<reason_code>}`: the `count` of
///   `gossip_dropped` events, i.e. gossiped addresses refused and why
///   (`hostname`, `loopback`, `private`, `multicast`, `port_zero`,
///   `own_address`, `rate_limited`, ...; "unknown" when the event has no
///   code); an event without a count counts 1;
/// - `connmgr_evictions_total{reason=<reason_code>}`: `evicted` events, i.e.
///   inbound peers evicted to make room, by the rule that chose them
///   ("unknown" when the event has no code).
///
/// Histogram, updated by `record`: `connmgr_dial_duration_seconds`, the
/// `dial_us` of `connected` events, buckets 100 us, 250 us, 500 us, 1 ms, ...
/// 5 s, 10 s (1-2.5-5 steps).
///
/// Gauges, set by `update` from a `node_status`: `connmgr_outbound_connections`,
/// `connmgr_target_outbound`, `connmgr_inbound_connections`,
/// `connmgr_max_inbound` (+Inf when the inbound count is unlimited, so the
/// series never disappears and `inbound / max_inbound` stays meaningful),
/// `connmgr_pending_dials`, `connmgr_failed_attempts`, `connmgr_peers_ready`
/// and `connmgr_known_addresses`. Gauges read 0 until the first `update`.
///
/// Thread-safe: `record` and `update` may run concurrently on any threads
/// (prometheus-cpp metrics and families lock or use atomics internally).
class node_metrics {
public:
  /// Registers this node's metrics in `registry`, labeled `node="<label>"`.
  /// Nodes sharing a registry must use distinct labels, and the registry must
  /// keep prometheus-cpp's default `InsertBehavior::Merge` so the metric
  /// families are shared rather than registered twice. A null `registry`
  /// gets a new one of our own (see `registry()`).
  node_metrics(std::shared_ptr<prometheus::Registry> registry,
               std::string node_label);

  node_metrics(const node_metrics&) = delete;
  node_metrics& operator=(const node_metrics&) = delete;

  /// The registry holding the metrics, e.g. for a `metrics_server`.
  const std::shared_ptr<prometheus::Registry>& registry() const noexcept {
    return registry_;
  }

  /// The value of the `node` label; empty when there is none.
  const std::string& node_label() const noexcept {
    return label_;
  }

  /// Updates the counters and the histogram for one event; events of other
  /// kinds are ignored.
  void record(const node_event& x);

  /// Sets the gauges from a status snapshot.
  void update(const node_status& x);

private:
  /// The labels of one sample: `extra` plus the node label, if any.
  prometheus::Labels labels(prometheus::Labels extra = {}) const;

  std::shared_ptr<prometheus::Registry> registry_;
  std::string label_;
  prometheus::Counter* outbound_connections_;
  prometheus::Counter* inbound_connections_;
  prometheus::Family<prometheus::Counter>* rejected_;
  prometheus::Family<prometheus::Counter>* dial_failures_;
  prometheus::Counter* retries_;
  prometheus::Counter* disconnections_;
  prometheus::Family<prometheus::Counter>* peer_drops_;
  prometheus::Counter* addresses_learned_;
  prometheus::Family<prometheus::Counter>* gossip_dropped_;
  prometheus::Family<prometheus::Counter>* evictions_;
  prometheus::Histogram* dial_duration_;
  prometheus::Gauge* outbound_;
  prometheus::Gauge* target_outbound_;
  prometheus::Gauge* inbound_;
  prometheus::Gauge* max_inbound_;
  prometheus::Gauge* pending_dials_;
  prometheus::Gauge* failed_attempts_;
  prometheus::Gauge* peers_ready_;
  prometheus::Gauge* known_addresses_;
};

/// Limits of a `metrics_server`.
struct metrics_server_options {
  /// How long one client may take from its connection being accepted to the
  /// last byte of its response being sent; then it is closed. Keeps idle and
  /// slow clients (slowloris) from holding a slot for long.
  std::chrono::milliseconds client_timeout{5000};
  /// Clients held at once. One more closes the one accepted first, so a
  /// flood of idle connections never locks a scraper out.
  size_t max_clients = 64;
  /// Bytes of request head (request line and header fields) a client may
  /// send; more gets `431` and the connection is closed.
  size_t max_request_head = 8192;
};

/// An HTTP server exposing a registry at `/metrics` in the Prometheus text
/// format (version 0.0.4), on one thread of its own that never blocks: an
/// idle or slow client delays nobody, a scrape only locks the registry for
/// as long as collecting it takes (never while sending), and the node never
/// waits on the server. Every connection serves one request (`Connection:
/// close`); `GET` and `HEAD` of `/metrics` (any query string) answer 200,
/// other paths 404, other methods 405, malformed requests 400.
///
/// Stopping it is destroying it: at once (no poll period to wait out), with
/// every socket it accepted and its listening socket closed before the
/// destructor returns, however many clients are connected.
class metrics_server {
public:
  /// Listens on `where` (port 0 picks a free port, see `address()`) and
  /// serves `registry` at `/metrics`. `where` may be an IPv4 or IPv6
  /// address or a host name (resolved here, IPv4 preferred). Fails with
  /// `errc::invalid_config` whose context names the address and the cause,
  /// e.g. `metrics-listen 127.0.0.1:9100: cannot listen: cannot bind to
  /// 127.0.0.1:9100: Address already in use`.
  static caf::expected<std::unique_ptr<metrics_server>>
  start(const net_address& where,
        std::shared_ptr<prometheus::Registry> registry,
        metrics_server_options options = {});

  /// Stops serving: wakes the server thread, which closes every client and
  /// the listening socket, and waits for it.
  ~metrics_server();

  metrics_server(const metrics_server&) = delete;
  metrics_server& operator=(const metrics_server&) = delete;

  /// The address listened on, with the port actually bound (never 0).
  const net_address& address() const noexcept {
    return address_;
  }

  /// The registry being served.
  const std::shared_ptr<prometheus::Registry>& registry() const noexcept {
    return registry_;
  }

  /// Clients connected right now (accepted and not yet closed).
  size_t clients() const noexcept;

private:
  struct impl;

  metrics_server(std::unique_ptr<impl> state,
                 std::shared_ptr<prometheus::Registry> registry,
                 net_address address);

  std::unique_ptr<impl> impl_;
  std::shared_ptr<prometheus::Registry> registry_;
  net_address address_;
};

} // namespace connmgr
