#include "tests/support/timed_dial.hpp"

#include <caf/scoped_actor.hpp>

namespace connmgr::test {

dial_result timed_dial(caf::actor_system& sys, const dialer_actor& dialer,
                       const std::string& address, caf::timespan timeout) {
  using namespace std::chrono_literals;
  using steady = std::chrono::steady_clock;
  caf::expected<connection_ptr> result{caf::error{}};
  caf::scoped_actor self{sys};
  auto t0 = steady::now();
  self
    ->request(dialer, timeout + 10s, dial_atom::value, uint64_t{1}, address,
              timeout)
    .receive([&](connection_ptr& c) { result = std::move(c); },
             [&](caf::error& err) { result = std::move(err); });
  return {std::move(result), steady::now() - t0};
}

} // namespace connmgr::test
