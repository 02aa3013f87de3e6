#pragma once

// One dial through a real dialer actor, waited for, with the time it took.
//
// How the socket suites (tcp, SOCKS5) measure a dial, from the test's thread.

#include <chrono>
#include <string>
#include <utility>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>

#include "connmgr/messages/dialer_actor.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr::test {

/// What a dial gave (a connection or the error) and how long it took.
using dial_result =
  std::pair<caf::expected<connection_ptr>, std::chrono::steady_clock::duration>;

/// Asks `dialer` (request id 1) for `address` with the dial's own deadline
/// `timeout`, and waits for the answer from a scoped actor of `sys` (10 s
/// longer than the deadline, so the dialer's own timeout is what shows).
dial_result timed_dial(caf::actor_system& sys, const dialer_actor& dialer,
                       const std::string& address, caf::timespan timeout);

} // namespace connmgr::test
