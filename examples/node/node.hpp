#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <caf/actor.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>

#include "connmgr/actors/address_manager.hpp"
#include "connmgr/messages/conn_handler_actor.hpp"
#include "examples/node/node_settings.hpp"
#include "examples/node/node_event.hpp"
#include "connmgr/net/net_address.hpp"

namespace connmgr {

class reactor;
class resolver;

/// Looks up a DNS seed: calls `done` once, on any thread, with every address
/// `seed`'s host resolves to (each with `seed`'s port) or with an error.
using dns_lookup = std::function<void(
  const net_address& seed,
  std::function<void(caf::expected<std::vector<net_address>>)> done)>;

/// A lookup through `names` (the system resolver, off the actor threads).
dns_lookup system_dns_lookup(std::shared_ptr<resolver> names);

/// Everything one node is made of.
struct node_setup {
  /// What the operator configured.
  node_settings settings;
  /// The node id sent in hellos; 0 draws a random one.
  uint64_t node_id = 0;
  /// Required: the I/O thread for sockets. Many nodes may share one.
  std::shared_ptr<reactor> io;
  /// Required: resolves host names for dials. Many nodes may share one.
  std::shared_ptr<resolver> names;
  /// How DNS seeds are looked up; unset means `system_dns_lookup(names)`.
  dns_lookup lookup;
  /// Called on the node's actor thread for every event, in order. Must not
  /// block; with several nodes in one process it runs concurrently for
  /// different nodes.
  std::function<void(const node_event&)> on_event;
  /// Called on the node's actor thread every `status_interval`.
  std::function<void(const node_status&)> on_status;
  /// Other endpoints of this node (its metrics address, say): never dialed,
  /// whatever gossip says. Listening addresses count without being listed.
  std::vector<net_address> own_endpoints;
};

/// One peer-to-peer node: a connection manager (TCP dialer and listeners)
/// whose automatic outbound connections draw from an address book, and the
/// example peer protocol (see `node_machine`) on every connection, carried
/// by the reactor's streams.
///
/// The address book learns from `peers`, DNS seeds, hellos and gossip; it
/// never hands out our own listening addresses nor `connect` addresses
/// (those are dialed permanently anyway), and holds an address as in use for
/// as long as any connection to that node is open. A connection that fails
/// before its hello counts as a failure of its address (backoff).
///
/// Thread-safe: every member function may be called from any thread.
class node {
public:
  /// Opens the listeners (so a busy or bad address fails here, naming it),
  /// spawns the node's actors and returns a node that has not started yet.
  /// Fails with `errc::invalid_config` when `io` or `names` is missing or
  /// the settings do not validate.
  static caf::expected<node> make(caf::actor_system& sys, node_setup setup);

  node(node&&) noexcept;
  node& operator=(node&&) noexcept;
  node(const node&) = delete;
  node& operator=(const node&) = delete;

  /// Stops and waits.
  ~node();

  /// Starts listening, dialing `connect` peers, automatic outbound
  /// connections, DNS seeding and the status timer. Idempotent.
  void start();

  /// Begins a graceful stop: reports a `stopping` event with `why` as its
  /// reason, after which only `stopped` is reported. The future becomes
  /// ready once the manager and the dialer have stopped (every child actor
  /// gone), every connection of the node is closed and the last callback
  /// has returned.
  std::shared_future<void> stop(std::string why = {});

  /// Blocks until the node has stopped.
  void wait();

  /// Ready once the node has stopped, by `stop` or on its own (its handler
  /// stopped, e.g. after a drain).
  std::shared_future<void> done() const;

  /// This node's id.
  uint64_t id() const noexcept;

  /// Where the node listens, with the ports the system chose for port 0.
  const std::vector<net_address>& listening() const noexcept;

  /// A fresh status snapshot; all zero once stopped. Blocks briefly.
  node_status status();

  /// The node actor (it handles the manager's events and serves as its
  /// address source).
  caf::actor handle() const;

  /// The node's connection handler, for its remote control.
  conn_handler_actor handler() const;

private:
  struct impl;
  explicit node(std::unique_ptr<impl> ptr);
  std::unique_ptr<impl> impl_;
};

} // namespace connmgr
