#include "examples/node/node_metrics.hpp"

#include <exception>
#include <limits>
#include <utility>
#include <vector>

#include <CivetServer.h>
#include <civetweb.h>
#include <prometheus/exposer.h>

#include "messages/error_code.hpp"

namespace connmgr {

namespace {

prometheus::Family<prometheus::Counter>&
counter_family(prometheus::Registry& registry, const char* name,
               const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>&
gauge_family(prometheus::Registry& registry, const char* name,
             const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

/// 100 us to 10 s in 1-2.5-5 steps.
prometheus::Histogram::BucketBoundaries dial_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1.0,    2.5,   5.0,  10.0};
}

/// Collects civetweb's log lines while `metrics_server::start` runs on this
/// thread: its exception only says "Possible problem binding to port", while
/// the log names the cause ("cannot bind to 127.0.0.1:9100: 98 (Address
/// already in use)"). Null on every other thread and at every other time.
thread_local std::vector<std::string>* civetweb_log = nullptr;

int capture_civetweb_log(const mg_connection*, const char* message) {
  if (civetweb_log == nullptr || message == nullptr)
    return 0; // civetweb's default handling (no error log file: nothing)
  civetweb_log->emplace_back(message);
  return 1;
}

/// The reason label of a counter: the event's code, or "unknown".
const std::string& reason_label(const node_event& x) {
  static const std::string unknown = "unknown";
  return x.reason_code.empty() ? unknown : x.reason_code;
}

} // namespace

// -- node_metrics -------------------------------------------------------------

node_metrics::node_metrics(std::shared_ptr<prometheus::Registry> registry,
                           std::string node_label)
  : registry_(registry ? std::move(registry)
                       : std::make_shared<prometheus::Registry>()),
    label_(std::move(node_label)) {
  auto& reg = *registry_;
  auto& connections = counter_family(
    reg, "connmgr_connections_total",
    "Connections established, by direction (outbound: dialed, inbound: "
    "accepted).");
  outbound_connections_ = &connections.Add(labels({{"direction", "outbound"}}));
  inbound_connections_ = &connections.Add(labels({{"direction", "inbound"}}));
  rejected_ = &counter_family(reg, "connmgr_rejected_total",
                              "Inbound connections rejected.")
                 .Add(labels());
  dial_failures_ = &counter_family(reg, "connmgr_dial_failures_total",
                                   "Dials that failed, by error code.");
  retries_ = &counter_family(reg, "connmgr_retries_total",
                             "Redials scheduled with backoff.")
                .Add(labels());
  disconnections_ = &counter_family(reg, "connmgr_disconnections_total",
                                    "Established connections that ended.")
                       .Add(labels());
  peer_drops_ = &counter_family(
    reg, "connmgr_peer_drops_total",
    "Connections closed by this node's peer protocol, by reason.");
  addresses_learned_ = &counter_family(
                          reg, "connmgr_addresses_learned_total",
                          "Addresses added to the address book (gossip, DNS).")
                          .Add(labels());
  dial_duration_ = &prometheus::BuildHistogram()
                      .Name("connmgr_dial_duration_seconds")
                      .Help("Duration of successful dials.")
                      .Register(reg)
                      .Add(labels(), dial_buckets());
  auto gauge = [&](const char* name, const char* help) {
    return &gauge_family(reg, name, help).Add(labels());
  };
  outbound_ = gauge("connmgr_outbound_connections",
                    "Established outbound connections.");
  target_outbound_ = gauge("connmgr_target_outbound",
                           "Configured automatic outbound target.");
  inbound_ = gauge("connmgr_inbound_connections",
                   "Established inbound connections.");
  max_inbound_ = gauge("connmgr_max_inbound",
                       "Inbound connection limit (+Inf when unlimited).");
  pending_dials_ = gauge("connmgr_pending_dials",
                         "Dials in flight plus requests waiting for a slot.");
  failed_attempts_ = gauge(
    "connmgr_failed_attempts",
    "Consecutive failed attempts of automatic requests right now.");
  peers_ready_ = gauge("connmgr_peers_ready",
                       "Peers whose hello was exchanged.");
  known_addresses_ = gauge("connmgr_known_addresses",
                           "Addresses in the address book.");
}

prometheus::Labels node_metrics::labels(prometheus::Labels extra) const {
  if (!label_.empty())
    extra.emplace("node", label_);
  return extra;
}

void node_metrics::record(const node_event& x) {
  const auto& kind = x.event;
  if (kind == "connected") {
    outbound_connections_->Increment();
    if (x.dial_us)
      dial_duration_->Observe(static_cast<double>(*x.dial_us) / 1e6);
  } else if (kind == "accepted") {
    inbound_connections_->Increment();
  } else if (kind == "rejected") {
    rejected_->Increment();
  } else if (kind == "failed") {
    if (x.dial_us)
      dial_failures_->Add(labels({{"reason", reason_label(x)}})).Increment();
  } else if (kind == "retry") {
    retries_->Increment();
  } else if (kind == "disconnected") {
    disconnections_->Increment();
  } else if (kind == "peer_dropped") {
    peer_drops_->Add(labels({{"reason", reason_label(x)}})).Increment();
  } else if (kind == "learned") {
    if (x.count)
      addresses_learned_->Increment(static_cast<double>(*x.count));
  }
}

void node_metrics::update(const node_status& x) {
  auto set = [](prometheus::Gauge* g, uint64_t value) {
    g->Set(static_cast<double>(value));
  };
  set(outbound_, x.outbound);
  set(target_outbound_, x.target_outbound);
  set(inbound_, x.inbound);
  if (x.max_inbound)
    set(max_inbound_, *x.max_inbound);
  else
    max_inbound_->Set(std::numeric_limits<double>::infinity());
  set(pending_dials_, x.pending_dials);
  set(failed_attempts_, x.failed_attempts);
  set(peers_ready_, x.peers_ready);
  set(known_addresses_, x.known_addresses);
}

// -- metrics_server -----------------------------------------------------------

metrics_server::metrics_server(std::unique_ptr<prometheus::Exposer> exposer,
                               std::shared_ptr<prometheus::Registry> registry,
                               net_address address)
  : exposer_(std::move(exposer)),
    registry_(std::move(registry)),
    address_(std::move(address)) {
  // Nothing else: start() registers the collectable before handing it over.
}

bool metrics_server::supports_ipv6() {
  return mg_check_feature(8) != 0;
}

metrics_server::~metrics_server() {
  // Stop the civetweb threads before the registry they read can go away.
  exposer_.reset();
}

caf::expected<std::unique_ptr<metrics_server>>
metrics_server::start(const net_address& where,
                      std::shared_ptr<prometheus::Registry> registry) {
  auto what = where.to_string();
  auto fail = [&what](const std::string& cause) {
    return make_error(errc::invalid_config,
                      "metrics-listen " + what + ": " + cause);
  };
  if (!registry)
    return fail("no registry to serve");
  if (where.type() == net_address::kind::ipv6 && !supports_ipv6())
    return fail("cannot listen: the civetweb library in use was built "
                "without IPv6 support; use an IPv4 address");
  // civetweb's "listening_ports" takes "1.2.3.4:9100", "[::1]:9100" and
  // "localhost:9100", which is exactly how net_address prints.
  std::unique_ptr<prometheus::Exposer> exposer;
  std::vector<std::string> log;
  CivetCallbacks callbacks;
  callbacks.log_message = capture_civetweb_log;
  civetweb_log = &log;
  try {
    exposer = std::make_unique<prometheus::Exposer>(what, 2, &callbacks);
  } catch (const std::exception& ex) {
    civetweb_log = nullptr;
    // The first line is the cause; the next ones only say that it failed.
    return fail("cannot listen: " + (log.empty() ? ex.what() : log.front()));
  }
  civetweb_log = nullptr;
  auto ports = exposer->GetListeningPorts();
  if (ports.empty() || ports.front() <= 0 || ports.front() > 65535)
    return fail("cannot listen: the server reports no listening port");
  auto bound = where;
  if (bound.port() != ports.front()) {
    auto host = where.type() == net_address::kind::ipv6
                  ? "[" + where.host() + "]"
                  : where.host();
    auto parsed = net_address::parse(host + ":"
                                     + std::to_string(ports.front()));
    if (!parsed)
      return fail("cannot read the bound port: " + describe(parsed.error()));
    bound = std::move(*parsed);
  }
  exposer->RegisterCollectable(registry);
  return std::unique_ptr<metrics_server>{
    new metrics_server(std::move(exposer), std::move(registry),
                       std::move(bound))};
}

} // namespace connmgr
