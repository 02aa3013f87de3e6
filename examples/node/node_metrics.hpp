#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <caf/expected.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "messages/node_event.hpp"
#include "net/net_address.hpp"

namespace prometheus {
class Exposer;
} // namespace prometheus

namespace connmgr {

/// The Prometheus metrics of one node, kept in a registry that several nodes
/// of one process (swarm mode) may share. Every sample of this node carries
/// the label `node="<label>"`; an empty label leaves the label out (one node
/// per process).
///
/// Counters, updated by `record`:
/// - `connmgr_connections_total{direction="outbound"|"inbound"}`: `connected`
///   and `accepted` events;
/// - `connmgr_rejected_total`: `rejected` events;
/// - `connmgr_dial_failures_total{reason=<reason_code>}`: `failed` events
///   that followed a dial (`dial_us` set); reason "unknown" when the event
///   has no reason code;
/// - `connmgr_retries_total`: `retry` events;
/// - `connmgr_disconnections_total`: `disconnected` events;
/// - `connmgr_peer_drops_total{reason=<reason_code>}`: `peer_dropped` events
///   (reason "unknown" when the event has none);
/// - `connmgr_addresses_learned_total`: the `count` of `learned` events.
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
  prometheus::Counter* rejected_;
  prometheus::Family<prometheus::Counter>* dial_failures_;
  prometheus::Counter* retries_;
  prometheus::Counter* disconnections_;
  prometheus::Family<prometheus::Counter>* peer_drops_;
  prometheus::Counter* addresses_learned_;
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

/// An HTTP server exposing a registry at `/metrics` in the Prometheus text
/// format (prometheus-cpp's `Exposer`, on civetweb threads of its own).
/// Stopping it is destroying it.
class metrics_server {
public:
  /// Listens on `where` (port 0 picks a free port, see `address()`) and
  /// serves `registry` at `/metrics`. `where` may be an IPv4 address, a host
  /// name civetweb resolves, or an IPv6 address when `supports_ipv6()`.
  /// Fails with `errc::invalid_config` whose context names the address and
  /// the cause, e.g. `metrics-listen 127.0.0.1:9100: cannot listen: cannot
  /// bind to 127.0.0.1:9100: 98 (Address already in use)`.
  static caf::expected<std::unique_ptr<metrics_server>>
  start(const net_address& where, std::shared_ptr<prometheus::Registry> registry);

  /// Whether the civetweb library serving the metrics can listen on IPv6
  /// addresses. Debian's civetweb 1.15 package is built without IPv6, so
  /// there `start` refuses IPv6 addresses with a clear error.
  static bool supports_ipv6();

  /// Stops listening and waits for the server threads.
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

private:
  metrics_server(std::unique_ptr<prometheus::Exposer> exposer,
                 std::shared_ptr<prometheus::Registry> registry,
                 net_address address);

  std::unique_ptr<prometheus::Exposer> exposer_;
  std::shared_ptr<prometheus::Registry> registry_;
  net_address address_;
};

} // namespace connmgr
