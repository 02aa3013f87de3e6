#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "connmgr/actors/control.hpp"
#include "connmgr/messages/conn_handler_actor.hpp"
#include "connmgr/messages/control_actor.hpp"
#include "connmgr/messages/control_event.hpp"
#include "connmgr/net/net_address.hpp"
#include "examples/node/node_event.hpp"
#include "examples/node/node_settings.hpp"

namespace connmgr {

/// The summary of `ev` that remote subscribers get: the node's own fields,
/// those that apply, as `event_summary` details, stamped `ts_ms`.
event_summary to_summary(const node_event& ev, int64_t ts_ms);

/// Loads the remote control's TLS files of `s` the way the node will use
/// them (certificate chain, its private key and that they match, the CA),
/// so that a bad file fails at start-up naming its key rather than every
/// connection later. Nothing to check without TLS. Fails with
/// `errc::invalid_config`, e.g. `connmgr.control-key = "k.pem": cannot load
/// the private key (...)`.
caf::error check_control_files(const node_settings& s);

/// Makes `cfg` ready for the remote control of `s`: loads CAF's middleman
/// (and its OpenSSL module with the TLS files when TLS is used) and the
/// serializable message types. Nothing when `control-listen` is unset.
/// Call it after `cfg.parse`, before the actor system exists.
void prepare_control(caf::actor_system_config& cfg, const node_settings& s);

/// Hands node events to a control's feed once there is one; thread-safe,
/// so the node's event callback can hold it from the start.
class control_tap {
public:
  /// From now on `push` goes to `feed`.
  void set(control_feed_actor feed);
  /// From now on `push` does nothing.
  void reset();
  /// Sends the summary of `ev` to the feed, if any. Never blocks for long.
  void push(const node_event& ev, int64_t ts_ms);

private:
  std::mutex mtx_;
  control_feed_actor feed_;
};

/// The node's published remote control: a `spawn_control` of the node's
/// handler, published with mutual TLS (or plain TCP on loopback when the
/// settings ask for it) on `control-listen`. Stops and unpublishes on
/// destruction.
class node_control {
public:
  /// Publishes the control of `handler` as `s` says; `on_dropped` reports
  /// subscribers dropped for being slow. Fails naming `control-listen` when
  /// the address cannot be bound.
  static caf::expected<std::unique_ptr<node_control>>
  start(caf::actor_system& sys, const node_settings& s,
        conn_handler_actor handler,
        std::function<void(uint64_t, const std::string&)> on_dropped);

  ~node_control();

  /// Where it listens, with the port the system chose for port 0.
  const net_address& address() const noexcept {
    return address_;
  }

  /// Whether clients must use mutual TLS.
  bool tls() const noexcept {
    return tls_;
  }

  /// Where events for subscribers go.
  control_feed_actor feed() const {
    return handles_.feed;
  }

  /// Unpublishes and stops the control (subscribers hear "node stopping").
  /// Idempotent.
  void stop();

private:
  node_control(caf::actor_system& sys, control_handles handles,
               net_address address, bool tls);
  caf::actor_system& sys_;
  control_handles handles_;
  net_address address_;
  bool tls_;
  bool stopped_ = false;
};

} // namespace connmgr
