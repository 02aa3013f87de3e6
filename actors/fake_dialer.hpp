#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/fwd.hpp>

#include "connmgr/messages/dialer_actor.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr {

/// Completes every held dial of a fake dialer: `(release, true)` with a
/// connection, `(release, false)` with `errc::refused`. Answers how many.
using release_atom = caf::atom_constant<caf::atom("release")>;

/// What one fake dial does.
struct fake_dial_plan {
  enum outcome_kind { connect, fail, hold };
  /// connect: answer at once with a new in-memory connection; fail: answer
  /// at once with `reason`; hold: keep the dial in flight until released.
  outcome_kind outcome = connect;
  caf::error reason;
};

/// The shared record of a fake network: decides each dial and remembers
/// every dial and connection, so tests can assert exact counts, instants and
/// that nothing leaked. Thread-safe.
class fake_network {
public:
  using time_point = caf::actor_clock::time_point;

  /// One dial the fake dialer received.
  struct dial_record {
    uint64_t dial_id;
    std::string address;
    time_point at;
  };

  /// Decides dials from now on; the default connects every dial.
  void set_policy(std::function<fake_dial_plan(const std::string&)> policy);

  /// Every dial so far, in arrival order.
  std::vector<dial_record> dials() const;

  /// Number of dials so far.
  size_t dial_count() const;

  /// Number of cancel messages received.
  size_t cancel_count() const;

  /// Every connection the dialer made. A connection destroyed by its last
  /// handle shows as expired (its destructor closed it).
  std::vector<std::weak_ptr<connection>> connections() const;

  /// Connections made that are neither closed nor destroyed.
  size_t open_connections() const;

  // -- used by the fake dialer --------------------------------------------

  /// Records a dial and returns its plan.
  fake_dial_plan on_dial(uint64_t dial_id, const std::string& address,
                         time_point now);

  /// Records a cancel.
  void on_cancel();

  /// Makes and records a connection to `address`.
  connection_ptr make_connection(const std::string& address);

private:
  mutable std::mutex mtx_;
  std::function<fake_dial_plan(const std::string&)> policy_;
  std::vector<dial_record> dials_;
  std::vector<std::weak_ptr<connection>> connections_;
  size_t cancels_ = 0;
};

/// The fake dialer's interface: a dialer plus `release` for held dials.
using fake_dialer_actor =
  dialer_actor::extend<caf::replies_to<release_atom, bool>::with<uint64_t>>;

/// Spawns a dialer that never touches the network: it asks `net` what to do
/// with each dial and records everything there. A canceled held dial is
/// answered with `errc::canceled` and makes no connection.
fake_dialer_actor spawn_fake_dialer(caf::actor_system& sys,
                                    std::shared_ptr<fake_network> net);

} // namespace connmgr
