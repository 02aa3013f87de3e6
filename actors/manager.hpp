#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/fwd.hpp>
#include <caf/timespan.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/messages/ban_info.hpp"
#include "connmgr/messages/conn_request.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/peer_info.hpp"

namespace connmgr {

/// Callbacks of the plain C++ interface. They run on a CAF worker thread, one
/// at a time, in the order the handler decided the events. Do not block in
/// them, and never wait for the manager's stop from inside one.
struct manager_callbacks {
  /// An outbound request connected; the connection is the callee's.
  std::function<void(const conn_request&, connection_ptr)> on_connection;
  /// An established outbound connection was closed by the manager.
  std::function<void(const conn_request&, const caf::error&)> on_disconnection;
  /// An inbound connection on listener `index` was admitted.
  std::function<void(uint32_t index, connection_ptr)> on_accept;
  /// An inbound connection on listener `index` was admitted into inbound
  /// slot `slot`: the slot to pass to `manager::inbound_ready` once its
  /// handshake is done. When set, it is called instead of `on_accept`.
  std::function<void(uint32_t index, uint64_t slot, connection_ptr)> on_inbound;
  /// An inbound connection on listener `index` was refused and closed.
  std::function<void(uint32_t index, const std::string& remote,
                     const caf::error&)>
    on_reject;
  /// An attempt failed, or a request was canceled or refused.
  std::function<void(const conn_request&, const caf::error&)> on_failure;
  /// A retry was scheduled after the given delay.
  std::function<void(const conn_request&, caf::timespan)> on_retry;
  /// `subnet` was banned for `duration`: by `ban` (`peer` 0) or because
  /// peer `peer` misbehaved up to the threshold.
  std::function<void(const std::string& subnet, const std::string& reason,
                     caf::timespan duration, uint64_t peer)>
    on_ban;
};

/// The connection manager for plain C++ code: a thin, thread-safe facade over
/// one connection handler actor. Every member function may be called from any
/// thread (except from inside a callback where noted) and any number of
/// times; calls after stop do nothing.
class manager {
public:
  /// Spawns the handler from `setup` (whose `events` must be unset: the
  /// manager receives them to call `callbacks`). Fails like
  /// `spawn_conn_handler`.
  static caf::expected<manager> make(caf::actor_system& sys,
                                     handler_setup setup,
                                     manager_callbacks callbacks);

  manager(manager&&) noexcept;
  manager& operator=(manager&&) noexcept;
  manager(const manager&) = delete;
  manager& operator=(const manager&) = delete;

  /// Stops and waits (never destroy a manager from inside its callbacks).
  ~manager();

  /// Starts automatic outbound requests and listeners. Idempotent.
  void start();

  /// Begins a graceful stop. The future becomes ready, with the final
  /// counters, once every child actor is gone, every connection the manager
  /// still owned is closed and the last callback has returned.
  std::shared_future<conn_stats> stop();

  /// Blocks until the manager has stopped (by `stop` or otherwise).
  void wait();

  /// Makes a manual request and returns its id, or the reason it was refused
  /// (`errc::invalid_address`, `errc::duplicate_address`, `errc::stopped`,
  /// ...; a refusal is also reported to `on_failure`). Blocks briefly: the
  /// handler answers before the dial starts.
  caf::expected<uint64_t> connect(std::string address, bool permanent = false);

  /// Disconnects `id` and retries per its rules (see `conn_handler_actor`).
  void disconnect(uint64_t id, bool trigger_reconnect = false);

  /// Disconnects or cancels `id` without retry.
  void remove(uint64_t id);

  /// Marks the inbound connection of `slot` (from `on_inbound`) as having
  /// finished the application's handshake: it stops counting against
  /// `max_pending_inbound`, so it is never evicted as a slow handshake.
  /// Ignored for a slot that is already free.
  void inbound_ready(uint64_t slot);

  /// Bans `subnet` (an address or a CIDR prefix) for `duration` and closes
  /// every open connection inside it; returns how many, or why it was
  /// refused (see `conn_handler_actor`). Blocks briefly.
  caf::expected<uint64_t> ban(std::string subnet, caf::timespan duration,
                              std::string reason);

  /// Lifts the ban of exactly `subnet`; `errc::not_found` if there is none.
  /// Blocks briefly.
  caf::error unban(std::string subnet);

  /// Every ban in force; empty once stopped. Blocks briefly.
  std::vector<ban_info> bans();

  /// Peer `id` (a request id, or an inbound slot from `on_inbound`) broke
  /// the protocol: adds `points` to its score, which bans its address at
  /// `ban_threshold`. Ignored for an id that is no open connection.
  void misbehaving(uint64_t id, uint32_t points, std::string reason);

  /// Snapshot of every live request; empty once stopped. Blocks briefly:
  /// not for use inside callbacks.
  std::vector<conn_request> requests();

  /// Every open connection, outbound then inbound (see `peer_info`); empty
  /// once stopped. Blocks briefly: not for use inside callbacks.
  std::vector<peer_info> peers();

  /// Counters and gauges; once stopped, the final ones. Blocks briefly: not
  /// for use inside callbacks.
  conn_stats stats();

  /// The handler, for actor code that wants to talk to it directly.
  const conn_handler_actor& handle() const noexcept;

private:
  struct impl;
  explicit manager(std::unique_ptr<impl> ptr);
  std::unique_ptr<impl> impl_;
};

} // namespace connmgr
