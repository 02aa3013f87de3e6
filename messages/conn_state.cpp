#include "connmgr/messages/conn_state.hpp"

namespace connmgr {

std::string to_string(conn_state x) {
  switch (x) {
    case conn_state::pending:
      return "pending";
    case conn_state::failing:
      return "failing";
    case conn_state::canceled:
      return "canceled";
    case conn_state::established:
      return "established";
    case conn_state::disconnected:
      return "disconnected";
  }
  return "conn_state(" + std::to_string(static_cast<int>(x)) + ")";
}

} // namespace connmgr
