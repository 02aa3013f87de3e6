#include "connmgr/messages/control_event.hpp"

namespace connmgr {

bool operator==(const event_summary& x, const event_summary& y) {
  return x.event == y.event && x.ts_ms == y.ts_ms && x.id == y.id
    && x.addr == y.addr && x.reason == y.reason
    && x.reason_code == y.reason_code && x.details == y.details;
}

std::string to_string(const event_summary& x) {
  std::string out = x.event;
  if (x.id != 0)
    out += " #" + std::to_string(x.id);
  if (!x.addr.empty())
    out += " " + x.addr;
  if (!x.reason_code.empty())
    out += " [" + x.reason_code + "]";
  if (!x.reason.empty())
    out += " (" + x.reason + ")";
  for (auto& [key, value] : x.details)
    out += " " + key + "=" + value;
  return out;
}

std::string detail_of(const event_summary& x, const std::string& name) {
  for (auto& [key, value] : x.details)
    if (key == name)
      return value;
  return {};
}

} // namespace connmgr
