// The node's Prometheus metrics: the counters and gauges (node_metrics)
// and the small HTTP server that serves /metrics (metrics_server), which
// must survive idle and slow clients and close every socket at stop. Over
// 500 lines because the server's bounded workers, deadlines and shutdown
// are one piece and need the registry they render.
#include "examples/node/node_metrics.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <limits>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <prometheus/text_serializer.h>

#include "connmgr/messages/error_code.hpp"

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
                              "Inbound connections rejected, by reason.");
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
  addresses_learned_ =
    &counter_family(reg, "connmgr_addresses_learned_total",
                    "Addresses added to the address book (gossip, DNS).")
       .Add(labels());
  gossip_dropped_ = &counter_family(
    reg, "connmgr_gossip_dropped_total",
    "Gossiped addresses refused, by reason (hostname, loopback, private, "
    "rate_limited, ...).");
  evictions_ = &counter_family(
    reg, "connmgr_evictions_total",
    "Inbound peers evicted to make room, by the rule that chose them.");
  dial_duration_ = &prometheus::BuildHistogram()
                      .Name("connmgr_dial_duration_seconds")
                      .Help("Duration of successful dials.")
                      .Register(reg)
                      .Add(labels(), dial_buckets());
  auto gauge = [&](const char* name, const char* help) {
    return &gauge_family(reg, name, help).Add(labels());
  };
  outbound_ =
    gauge("connmgr_outbound_connections", "Established outbound connections.");
  target_outbound_ =
    gauge("connmgr_target_outbound", "Configured automatic outbound target.");
  inbound_ =
    gauge("connmgr_inbound_connections", "Established inbound connections.");
  max_inbound_ = gauge("connmgr_max_inbound",
                       "Inbound connection limit (+Inf when unlimited).");
  pending_dials_ = gauge("connmgr_pending_dials",
                         "Dials in flight plus requests waiting for a slot.");
  failed_attempts_ =
    gauge("connmgr_failed_attempts",
          "Consecutive failed attempts of automatic requests right now.");
  peers_ready_ =
    gauge("connmgr_peers_ready", "Peers whose hello was exchanged.");
  known_addresses_ =
    gauge("connmgr_known_addresses", "Addresses in the address book.");
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
    rejected_->Add(labels({{"reason", reason_label(x)}})).Increment();
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
  } else if (kind == "gossip_dropped") {
    // A batch of addresses refused for one reason; one when uncounted.
    gossip_dropped_->Add(labels({{"reason", reason_label(x)}}))
      .Increment(static_cast<double>(x.count.value_or(1)));
  } else if (kind == "evicted") {
    evictions_->Add(labels({{"reason", reason_label(x)}})).Increment();
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

namespace {

using server_clock = std::chrono::steady_clock;

/// How long a client that got its whole response may take to close its end
/// before we close ours. Closing a socket with unread bytes resets it, which
/// may discard the response in flight; reading until the client's FIN
/// avoids that for clients that sent more than the request head.
constexpr auto linger_time = std::chrono::milliseconds{500};

/// Connections accepted per wake-up at most, so a flood of connects cannot
/// starve the clients already held.
constexpr int accept_batch = 32;

/// How long accepting pauses when descriptors or memory run out, instead of
/// spinning on a listener that stays readable.
constexpr auto accept_pause = std::chrono::milliseconds{100};

/// One accepted connection and how far its exchange got.
struct http_client {
  enum class phase { reading, writing, draining };

  int fd = -1;
  phase state = phase::reading;
  /// When it is closed, whatever it is doing.
  server_clock::time_point deadline;
  /// The request head received so far.
  std::string in;
  /// The response and how many of its bytes went out.
  std::string out;
  size_t sent = 0;
};

/// A whole HTTP/1.1 response that closes the connection.
std::string http_response(std::string_view status, std::string_view type,
                          std::string_view body, bool head_only,
                          std::string_view extra_fields = {}) {
  std::string out;
  out.reserve(160 + (head_only ? 0 : body.size()));
  out += "HTTP/1.1 ";
  out += status;
  out += "\r\nContent-Type: ";
  out += type;
  out += "\r\nContent-Length: ";
  out += std::to_string(body.size());
  out += "\r\nConnection: close\r\n";
  out += extra_fields;
  out += "\r\n";
  if (!head_only)
    out += body;
  return out;
}

std::string error_response(std::string_view status,
                           std::string_view extra_fields = {}) {
  return http_response(status, "text/plain; charset=utf-8",
                       std::string{status} + "\n", false, extra_fields);
}

/// The response to request head `head` (request line first; the header
/// fields are not needed: every response closes the connection).
std::string respond(std::string_view head,
                    const prometheus::Registry& registry) {
  auto eol = head.find('\n');
  auto line = head.substr(0, eol);
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  auto sp1 = line.find(' ');
  auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos
      || line.find(' ', sp2 + 1) != std::string_view::npos)
    return error_response("400 Bad Request");
  auto method = line.substr(0, sp1);
  auto target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  auto version = line.substr(sp2 + 1);
  if (version.rfind("HTTP/1.", 0) != 0 || target.empty())
    return error_response("400 Bad Request");
  bool head_only = method == "HEAD";
  if (method != "GET" && !head_only)
    return error_response("405 Method Not Allowed", "Allow: GET, HEAD\r\n");
  auto path = target.substr(0, target.find('?'));
  if (path != "/metrics")
    return error_response("404 Not Found");
  try {
    auto body = prometheus::TextSerializer{}.Serialize(registry.Collect());
    return http_response("200 OK", "text/plain; version=0.0.4; charset=utf-8",
                         body, head_only);
  } catch (const std::exception&) {
    return error_response("500 Internal Server Error");
  }
}

/// Where a request head ends (just past the empty line), searching from
/// `from`; npos while it is incomplete.
size_t head_end(const std::string& in, size_t from) {
  for (auto i = from; i < in.size(); ++i) {
    if (in[i] != '\n')
      continue;
    if (i >= 1 && in[i - 1] == '\n')
      return i + 1;
    if (i >= 2 && in[i - 1] == '\r' && in[i - 2] == '\n')
      return i + 1;
  }
  return std::string::npos;
}

std::string errno_text(int err) {
  return std::strerror(err);
}

} // namespace

/// The listening socket, the wake-up eventfd, the clients and the thread
/// serving them. Only the thread touches the clients; `stop` is the one way
/// in from outside.
struct metrics_server::impl {
  impl(int listener_fd, int wake_fd,
       std::shared_ptr<prometheus::Registry> served,
       metrics_server_options opts)
    : listener(listener_fd), wake(wake_fd), registry(std::move(served)),
      options(opts) {
    options.max_clients = std::max<size_t>(options.max_clients, 1);
  }

  ~impl() {
    stop();
  }

  /// Wakes the thread and waits until it closed every socket and ended.
  void stop() {
    if (!thread.joinable())
      return;
    stopping = true;
    uint64_t one = 1;
    while (::write(wake, &one, sizeof(one)) < 0 && errno == EINTR) {
    }
    thread.join();
  }

  void run();

  /// Reads, answers or drains `c` as far as its socket allows; false once
  /// it is done with (to be closed).
  bool serve(http_client& c, short revents, server_clock::time_point now);

  /// Sends what `c` still has to send; false on a send error.
  bool flush(http_client& c, server_clock::time_point now);

  /// Accepts up to `accept_batch` connections, closing the oldest clients
  /// beyond `max_clients`.
  void accept_clients(server_clock::time_point now);

  int listener;
  int wake;
  std::shared_ptr<prometheus::Registry> registry;
  metrics_server_options options;
  std::vector<http_client> clients; // oldest first
  server_clock::time_point accept_paused_until;
  std::atomic<bool> stopping{false};
  std::atomic<size_t> client_count{0};
  std::thread thread;
};

void metrics_server::impl::run() {
  std::vector<pollfd> fds;
  for (;;) {
    auto now = server_clock::now();
    auto expired = [now](http_client& c) {
      if (c.deadline > now)
        return false;
      ::close(c.fd);
      return true;
    };
    clients.erase(std::remove_if(clients.begin(), clients.end(), expired),
                  clients.end());
    client_count = clients.size();
    auto next = server_clock::time_point::max();
    bool accepting = now >= accept_paused_until;
    if (!accepting)
      next = accept_paused_until;
    fds.clear();
    fds.push_back({wake, POLLIN, 0});
    // poll() skips negative descriptors: a paused listener is not polled.
    fds.push_back({accepting ? listener : -1, POLLIN, 0});
    for (auto& c : clients) {
      short events = c.state == http_client::phase::writing ? POLLOUT : POLLIN;
      fds.push_back({c.fd, events, 0});
      next = std::min(next, c.deadline);
    }
    int timeout = -1;
    if (next != server_clock::time_point::max()) {
      auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now);
      timeout = static_cast<int>(
        std::clamp<int64_t>(ms.count(), 0, std::numeric_limits<int>::max()));
    }
    if (::poll(fds.data(), fds.size(), timeout) < 0) {
      // Only `stop` ends the loop, so the eventfd it writes to is still
      // ours; a failing poll (ENOMEM) is retried after a breath.
      if (errno != EINTR)
        std::this_thread::sleep_for(std::chrono::milliseconds{10});
      continue;
    }
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      while (::read(wake, &count, sizeof(count)) < 0 && errno == EINTR) {
      }
      if (stopping)
        break;
    }
    now = server_clock::now();
    // Clients first: fds[2 + i] belongs to clients[i] until one is added.
    for (size_t i = 0; i < clients.size(); ++i) {
      auto revents = fds[2 + i].revents;
      if (revents != 0 && !serve(clients[i], revents, now)) {
        ::close(clients[i].fd);
        clients[i].fd = -1;
      }
    }
    clients.erase(std::remove_if(clients.begin(), clients.end(),
                                 [](const http_client& c) { return c.fd < 0; }),
                  clients.end());
    if ((fds[1].revents & POLLIN) != 0)
      accept_clients(now);
    client_count = clients.size();
  }
  for (auto& c : clients)
    ::close(c.fd);
  clients.clear();
  client_count = 0;
  ::close(listener);
  ::close(wake);
}

bool metrics_server::impl::serve(http_client& c, short revents,
                                 server_clock::time_point now) {
  if ((revents & (POLLERR | POLLNVAL)) != 0)
    return false;
  if (c.state == http_client::phase::writing)
    return flush(c, now);
  char buf[4096];
  for (;;) {
    auto n = ::recv(c.fd, buf, sizeof(buf), 0);
    if (n == 0)
      return false; // the client closed (or, draining, acknowledged the end)
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (c.state == http_client::phase::draining)
      continue;
    auto from = c.in.size() >= 2 ? c.in.size() - 2 : 0;
    c.in.append(buf, static_cast<size_t>(n));
    auto end = head_end(c.in, from);
    if (end == std::string::npos && c.in.size() <= options.max_request_head)
      continue;
    if (end == std::string::npos || end > options.max_request_head)
      c.out = error_response("431 Request Header Fields Too Large");
    else
      c.out = respond(std::string_view{c.in}.substr(0, end), *registry);
    c.in.clear();
    c.in.shrink_to_fit();
    c.state = http_client::phase::writing;
    return flush(c, now);
  }
}

bool metrics_server::impl::flush(http_client& c, server_clock::time_point now) {
  while (c.sent < c.out.size()) {
    auto n =
      ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    c.sent += static_cast<size_t>(n);
  }
  c.out.clear();
  c.out.shrink_to_fit();
  ::shutdown(c.fd, SHUT_WR);
  c.state = http_client::phase::draining;
  c.deadline = std::min(c.deadline, now + linger_time);
  return true;
}

void metrics_server::impl::accept_clients(server_clock::time_point now) {
  for (int i = 0; i < accept_batch; ++i) {
    int fd =
      ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED)
        continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS
          || errno == ENOMEM)
        accept_paused_until = now + accept_pause;
      return;
    }
    if (clients.size() >= options.max_clients) {
      ::close(clients.front().fd);
      clients.erase(clients.begin());
    }
    http_client c;
    c.fd = fd;
    c.deadline = now + options.client_timeout;
    clients.push_back(std::move(c));
  }
}

metrics_server::metrics_server(std::unique_ptr<impl> state,
                               std::shared_ptr<prometheus::Registry> registry,
                               net_address address)
  : impl_(std::move(state)), registry_(std::move(registry)),
    address_(std::move(address)) {
  // nop
}

metrics_server::~metrics_server() {
  impl_->stop();
}

size_t metrics_server::clients() const noexcept {
  return impl_->client_count;
}

caf::expected<std::unique_ptr<metrics_server>>
metrics_server::start(const net_address& where,
                      std::shared_ptr<prometheus::Registry> registry,
                      metrics_server_options options) {
  auto what = where.to_string();
  auto fail = [&what](const std::string& cause) {
    return make_error(errc::invalid_config,
                      "metrics-listen " + what + ": " + cause);
  };
  if (!registry)
    return fail("no registry to serve");
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (where.is_ip()) {
    auto n = where.to_sockaddr(sa);
    if (!n)
      return fail("cannot listen: " + describe(n.error()));
    len = *n;
  } else {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* res = nullptr;
    auto rc = ::getaddrinfo(where.host().c_str(), nullptr, &hints, &res);
    if (rc != 0)
      return fail("cannot listen: cannot resolve " + where.host() + ": "
                  + ::gai_strerror(rc));
    // IPv4 first: clients asking for "localhost" mostly try 127.0.0.1.
    const addrinfo* pick = nullptr;
    for (auto family : {AF_INET, AF_INET6})
      for (auto* ai = res; ai != nullptr && pick == nullptr; ai = ai->ai_next)
        if (ai->ai_family == family)
          pick = ai;
    if (pick == nullptr || pick->ai_addrlen > sizeof(sa)) {
      ::freeaddrinfo(res);
      return fail("cannot listen: " + where.host()
                  + " has no IPv4 or IPv6 address");
    }
    std::memcpy(&sa, pick->ai_addr, pick->ai_addrlen);
    len = static_cast<socklen_t>(pick->ai_addrlen);
    ::freeaddrinfo(res);
    auto port = htons(where.port());
    if (sa.ss_family == AF_INET)
      reinterpret_cast<sockaddr_in&>(sa).sin_port = port;
    else
      reinterpret_cast<sockaddr_in6&>(sa).sin6_port = port;
  }
  int fd =
    ::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return fail("cannot listen: socket: " + errno_text(errno));
  int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&sa), len) != 0) {
    auto err = errno;
    ::close(fd);
    return fail("cannot listen: cannot bind to " + what + ": "
                + errno_text(err));
  }
  if (::listen(fd, 128) != 0) {
    auto err = errno;
    ::close(fd);
    return fail("cannot listen: listen: " + errno_text(err));
  }
  sockaddr_storage local{};
  socklen_t local_len = sizeof(local);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) != 0) {
    auto err = errno;
    ::close(fd);
    return fail("cannot read the bound port: " + errno_text(err));
  }
  auto bound_port = ntohs(local.ss_family == AF_INET
                            ? reinterpret_cast<sockaddr_in&>(local).sin_port
                            : reinterpret_cast<sockaddr_in6&>(local).sin6_port);
  auto bound = where;
  if (bound.port() != bound_port) {
    auto host = where.type() == net_address::kind::ipv6
      ? "[" + where.host() + "]"
      : where.host();
    auto parsed = net_address::parse(host + ":" + std::to_string(bound_port));
    if (!parsed) {
      ::close(fd);
      return fail("cannot read the bound port: " + describe(parsed.error()));
    }
    bound = std::move(*parsed);
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) {
    auto err = errno;
    ::close(fd);
    return fail("cannot start the server: eventfd: " + errno_text(err));
  }
  auto state = std::make_unique<impl>(fd, wake, registry, options);
  try {
    state->thread = std::thread{[s = state.get()] { s->run(); }};
  } catch (const std::system_error& ex) {
    ::close(fd);
    ::close(wake);
    return fail(std::string{"cannot start the server thread: "} + ex.what());
  }
  return std::unique_ptr<metrics_server>{new metrics_server(
    std::move(state), std::move(registry), std::move(bound))};
}

} // namespace connmgr
