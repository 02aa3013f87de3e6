// The node's remote control: its TLS files checked at start-up, CAF's
// middleman (with OpenSSL) loaded only when asked, and the control of the
// node's handler published on control-listen.
#include "examples/node/node_control.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/send.hpp>

#include <fmt/format.h>

#include "connmgr/actors/control.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/message_types.hpp"

namespace connmgr {

namespace {

bool uses_tls(const node_settings& s) {
  return s.control_listen && !s.control_cert.empty();
}

/// OpenSSL's queued errors as one text, emptying the queue.
std::string openssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown error" : out;
}

caf::error bad_file(const char* key, const std::string& path,
                    const char* what) {
  return make_error(errc::invalid_config,
                    fmt::format("connmgr.{} = \"{}\": cannot load {} ({})", key,
                                path, what, openssl_errors()));
}

} // namespace

event_summary to_summary(const node_event& ev, int64_t ts_ms) {
  event_summary out;
  out.event = ev.event;
  out.ts_ms = ts_ms;
  out.id = ev.id;
  out.addr = ev.addr;
  out.reason = ev.reason;
  out.reason_code = ev.reason_code;
  auto flag = [](bool x) { return x ? "true" : "false"; };
  if (ev.permanent)
    out.details.emplace_back("permanent", flag(*ev.permanent));
  if (ev.delay_ms)
    out.details.emplace_back("delay_ms", std::to_string(*ev.delay_ms));
  if (ev.dial_us)
    out.details.emplace_back("dial_us", std::to_string(*ev.dial_us));
  if (ev.peer_node != 0)
    out.details.emplace_back("peer_node", fmt::format("{:016x}", ev.peer_node));
  if (ev.outbound)
    out.details.emplace_back("outbound", flag(*ev.outbound));
  if (ev.count)
    out.details.emplace_back("count", std::to_string(*ev.count));
  return out;
}

caf::error check_control_files(const node_settings& s) {
  if (!uses_tls(s))
    return caf::none;
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_method()), SSL_CTX_free};
  if (!ctx)
    return make_error(errc::invalid_config,
                      "connmgr.control-cert: cannot create a TLS context ("
                        + openssl_errors() + ")");
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), s.control_cert.c_str())
      != 1)
    return bad_file("control-cert", s.control_cert, "a PEM certificate");
  if (SSL_CTX_use_PrivateKey_file(ctx.get(), s.control_key.c_str(),
                                  SSL_FILETYPE_PEM)
      != 1)
    return bad_file("control-key", s.control_key, "a PEM private key");
  if (SSL_CTX_check_private_key(ctx.get()) != 1)
    return bad_file("control-key", s.control_key,
                    "the private key of connmgr.control-cert");
  if (SSL_CTX_load_verify_locations(ctx.get(), s.control_ca.c_str(), nullptr)
      != 1)
    return bad_file("control-ca", s.control_ca, "a PEM CA certificate");
  return caf::none;
}

void prepare_control(caf::actor_system_config& cfg, const node_settings& s) {
  if (!s.control_listen)
    return;
  add_message_types(cfg);
  cfg.load<caf::io::middleman>();
  if (!uses_tls(s))
    return;
  cfg.load<caf::openssl::manager>();
  // CAF's OpenSSL module requires a certificate signed by this CA from
  // every peer (and offers ours) once any of these is set.
  cfg.openssl_certificate = s.control_cert;
  cfg.openssl_key = s.control_key;
  cfg.openssl_cafile = s.control_ca;
  cfg.openssl_capath.clear();
  cfg.openssl_passphrase.clear();
}

void control_tap::set(control_feed_actor feed) {
  std::lock_guard<std::mutex> guard{mtx_};
  feed_ = std::move(feed);
}

void control_tap::reset() {
  std::lock_guard<std::mutex> guard{mtx_};
  feed_ = nullptr;
}

void control_tap::push(const node_event& ev, int64_t ts_ms) {
  control_feed_actor feed;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    feed = feed_;
  }
  if (feed)
    caf::anon_send(feed, to_summary(ev, ts_ms));
}

caf::expected<std::unique_ptr<node_control>>
node_control::start(caf::actor_system& sys, const node_settings& s,
                    conn_handler_actor handler,
                    std::function<void(uint64_t, const std::string&)>
                      on_dropped) {
  if (!s.control_listen)
    return make_error(errc::invalid_config,
                      "connmgr.control-listen = none, expected an address");
  control_options opts;
  opts.on_dropped = std::move(on_dropped);
  auto handles = spawn_control(sys, std::move(handler), std::move(opts));
  if (!handles)
    return std::move(handles.error());
  auto& where = *s.control_listen;
  auto tls = uses_tls(s);
  auto host = where.host();
  auto port = tls ? caf::openssl::publish(handles->control, where.port(),
                                          host.c_str(), false)
                  : sys.middleman().publish(handles->control, where.port(),
                                            host.c_str(), false);
  if (!port) {
    caf::anon_send_exit(handles->control, caf::exit_reason::user_shutdown);
    return make_error(errc::invalid_config,
                      fmt::format("connmgr.control-listen = \"{}\": cannot "
                                  "listen ({})",
                                  where.to_string(), sys.render(port.error())));
  }
  auto bound = net_address::parse(
    where.type() == net_address::kind::ipv6
      ? fmt::format("[{}]:{}", host, *port)
      : fmt::format("{}:{}", host, *port),
    false);
  return std::unique_ptr<node_control>{
    new node_control(sys, std::move(*handles), bound ? *bound : where, tls)};
}

node_control::node_control(caf::actor_system& sys, control_handles handles,
                           net_address address, bool tls)
  : sys_(sys), handles_(std::move(handles)), address_(std::move(address)),
    tls_(tls) {
  // nop
}

node_control::~node_control() {
  stop();
}

void node_control::stop() {
  if (stopped_)
    return;
  stopped_ = true;
  // Closes the listening socket (TLS or not: one broker owns both).
  sys_.middleman().unpublish(handles_.control, address_.port());
  caf::anon_send_exit(handles_.control, caf::exit_reason::user_shutdown);
}

} // namespace connmgr
