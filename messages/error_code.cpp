#include "connmgr/messages/error_code.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/message.hpp>
#include <caf/make_message.hpp>

namespace connmgr {

std::string to_string(errc x) {
  switch (x) {
    case errc::none:
      return "none";
    case errc::refused:
      return "refused";
    case errc::timed_out:
      return "timed_out";
    case errc::unreachable:
      return "unreachable";
    case errc::resolve_failed:
      return "resolve_failed";
    case errc::canceled:
      return "canceled";
    case errc::stopped:
      return "stopped";
    case errc::no_address:
      return "no_address";
    case errc::invalid_config:
      return "invalid_config";
    case errc::unknown_request:
      return "unknown_request";
    case errc::duplicate_address:
      return "duplicate_address";
    case errc::duplicate_request:
      return "duplicate_request";
    case errc::inbound_limit:
      return "inbound_limit";
    case errc::invalid_address:
      return "invalid_address";
    case errc::dial_failed:
      return "dial_failed";
    case errc::connection_closed:
      return "connection_closed";
    case errc::proxy_failed:
      return "proxy_failed";
    case errc::slow_reader:
      return "slow_reader";
    case errc::banned:
      return "banned";
    case errc::limit_reached:
      return "limit_reached";
    case errc::not_found:
      return "not_found";
    case errc::limit_lowered:
      return "limit_lowered";
    case errc::draining:
      return "draining";
    case errc::vetoed:
      return "vetoed";
    case errc::state_failed:
      return "state_failed";
    case errc::state_too_new:
      return "state_too_new";
  }
  return "errc(" + std::to_string(static_cast<int>(x)) + ")";
}

caf::error make_error(errc x) {
  return caf::error{static_cast<uint8_t>(x), errc_category};
}

caf::error make_error(errc x, std::string context) {
  return caf::error{static_cast<uint8_t>(x), errc_category,
                    caf::make_message(std::move(context))};
}

namespace {

std::string render(uint8_t code, const caf::message& ctx) {
  auto result = to_string(static_cast<errc>(code));
  if (ctx.size() == 1 && ctx.match_element<std::string>(0)) {
    result += ": ";
    result += ctx.get_as<std::string>(0);
  }
  return result;
}

} // namespace

void add_error_category(caf::actor_system_config& cfg) {
  cfg.add_error_category(
    errc_category, [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      return render(code, ctx);
    });
}

errc errc_of(const caf::error& err) {
  if (err && err.category() == errc_category)
    return static_cast<errc>(err.code());
  return errc::none;
}

std::string describe(const caf::error& err) {
  if (!err)
    return "none";
  if (err.category() == errc_category)
    return render(err.code(), err.context());
  return caf::to_string(err);
}

} // namespace connmgr
