#pragma once

#include <cstdint>
#include <string>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "connmgr/messages/conn_request.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr {

/// What the connection handler's decisions ask the world to do. The actor
/// implements it with spawns, messages and timers; tests implement it by
/// recording. Implementations must not call back into the machine from
/// inside these functions: results come back later as new inputs.
class conn_effects {
public:
  using time_point = caf::actor_clock::time_point;

  virtual ~conn_effects();

  /// Start dial attempt `attempt` (unique per dial) of request `id`.
  virtual void start_dial(uint64_t id, uint64_t attempt,
                          const std::string& address) = 0;

  /// Abandon dial attempt `attempt` of request `id`: no result is wanted.
  virtual void cancel_dial(uint64_t id, uint64_t attempt) = 0;

  /// Ask the address source for an address for request `id`.
  virtual void fetch_address(uint64_t id) = 0;

  /// Call `timer_fired(key)` at `at`.
  virtual void arm_timer(uint64_t key, time_point at) = 0;

  /// `conn` for `req` is established and now the user's.
  virtual void connected(const conn_request& req,
                         const connection_ptr& conn) = 0;

  /// The established connection of `req` was closed by the manager.
  virtual void disconnected(const conn_request& req,
                            const caf::error& reason) = 0;

  /// An attempt of `req` failed, or `req` was canceled or refused.
  virtual void failed(const conn_request& req, const caf::error& reason) = 0;

  /// A retry of `req` is due after `delay`.
  virtual void retry_scheduled(const conn_request& req,
                               caf::timespan delay) = 0;

  /// Inbound `conn` on `listener` got slot `slot`: the slot must be given
  /// back with `inbound_closed(slot)` when `conn` closes.
  virtual void accepted(uint32_t listener, uint64_t slot,
                        const connection_ptr& conn) = 0;

  /// Inbound `conn` on `listener` was refused by `rule` (see
  /// `rejected_event`); it is closed already.
  virtual void rejected(uint32_t listener, const connection_ptr& conn,
                        const caf::error& reason, const std::string& rule) = 0;

  /// The inbound connection of `slot` (from `remote_address`) was closed to
  /// make room by `rule`; its slot is free. Does nothing unless overridden.
  virtual void evicted(uint64_t slot, const std::string& remote_address,
                       const caf::error& reason, const std::string& rule);

  /// `subnet` was banned for `duration`: by the operator (`peer` 0) or for
  /// the misbehaviour of `peer`. Does nothing unless overridden.
  virtual void banned(const std::string& subnet, const std::string& reason,
                      caf::timespan duration, uint64_t peer);
};

} // namespace connmgr
