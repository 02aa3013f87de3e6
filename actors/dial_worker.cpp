#include "actors/dial_worker.hpp"

#include <caf/exit_reason.hpp>
#include <caf/sec.hpp>
#include <caf/send.hpp>

#include "messages/error_code.hpp"
#include "messages/manager_config.hpp"

namespace connmgr {

namespace {

// A dialer should answer by its deadline; this slack only catches dialers
// that never answer at all.
constexpr caf::timespan answer_grace = std::chrono::seconds{1};

caf::error translate(caf::error err, caf::timespan timeout) {
  if (err == caf::sec::request_timeout)
    return make_error(errc::timed_out, "dialer gave no answer within "
                                         + to_string_duration(timeout));
  if (err == caf::sec::request_receiver_down)
    return make_error(errc::dial_failed, "dialer is down");
  return err;
}

} // namespace

caf::behavior dial_worker(caf::event_based_actor* self,
                          conn_handler_actor handler, dialer_actor dialer,
                          uint64_t id, uint64_t attempt, std::string address,
                          caf::timespan timeout) {
  self->attach_functor([dialer, attempt](const caf::error& reason) {
    if (reason)
      caf::anon_send(dialer, cancel_atom::value, attempt);
  });
  self
    ->request(dialer, timeout + answer_grace, dial_atom::value, attempt,
              std::move(address), timeout)
    .then(
      [=](connection_ptr& conn) {
        self->send(handler, connected_atom::value, id, attempt,
                   std::move(conn));
        self->quit();
      },
      [=](caf::error& err) {
        self->send(handler, failed_atom::value, id, attempt,
                   translate(std::move(err), timeout));
        self->quit();
      });
  // No behavior of its own: the actor lives only for the pending answer.
  return {};
}

} // namespace connmgr
