// Summaries of the handler's events for remote subscribers: they carry
// connections, their summaries carry only text and numbers.
#include <chrono>

#include "connmgr/actors/control.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/connection.hpp"

namespace connmgr {

namespace {

int64_t millis(caf::timespan x) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
}

int64_t micros(caf::timespan x) {
  return std::chrono::duration_cast<std::chrono::microseconds>(x).count();
}

/// The short name of `err`: our code's name, or CAF's rendering otherwise.
std::string code_name(const caf::error& err) {
  if (!err)
    return {};
  if (auto code = errc_of(err); code != errc::none)
    return to_string(code);
  return describe(err);
}

event_summary of_request(const char* kind, const conn_request& req) {
  event_summary out;
  out.event = kind;
  out.id = req.id;
  out.addr = req.address;
  out.details.emplace_back("permanent", req.permanent ? "true" : "false");
  return out;
}

} // namespace

event_summary summarize(const connected_event& x) {
  auto out = of_request("connected", x.request);
  out.details.emplace_back("dial_us", std::to_string(micros(x.dial_time)));
  return out;
}

event_summary summarize(const disconnected_event& x) {
  auto out = of_request("disconnected", x.request);
  out.reason = describe(x.reason);
  out.reason_code = code_name(x.reason);
  out.details.emplace_back("state", to_string(x.request.state));
  return out;
}

event_summary summarize(const failed_event& x) {
  auto out = of_request("failed", x.request);
  out.reason = describe(x.reason);
  out.reason_code = code_name(x.reason);
  out.details.emplace_back("state", to_string(x.request.state));
  out.details.emplace_back("dial_us", std::to_string(micros(x.dial_time)));
  return out;
}

event_summary summarize(const retry_event& x) {
  auto out = of_request("retry", x.request);
  out.details.emplace_back("delay_ms", std::to_string(millis(x.delay)));
  return out;
}

event_summary summarize(const accepted_event& x) {
  event_summary out;
  out.event = "accepted";
  out.id = x.slot;
  if (x.conn)
    out.addr = x.conn->remote_address();
  out.details.emplace_back("listener", std::to_string(x.listener));
  return out;
}

event_summary summarize(const rejected_event& x) {
  event_summary out;
  out.event = "rejected";
  out.addr = x.remote_address;
  out.reason = describe(x.reason);
  out.reason_code = x.rule;
  out.details.emplace_back("listener", std::to_string(x.listener));
  return out;
}

event_summary summarize(const evicted_event& x) {
  event_summary out;
  out.event = "evicted";
  out.id = x.slot;
  out.addr = x.remote_address;
  out.reason = describe(x.reason);
  out.reason_code = x.rule;
  return out;
}

event_summary summarize(const banned_event& x) {
  event_summary out;
  out.event = "banned";
  out.addr = x.subnet;
  out.reason = x.reason;
  out.details.emplace_back("peer", std::to_string(x.peer));
  out.details.emplace_back("duration_ms", std::to_string(millis(x.duration)));
  return out;
}

event_summary summarize(const drain_event& x) {
  event_summary out;
  out.event = "draining";
  out.reason_code = x.step;
  out.details.emplace_back("open", std::to_string(x.open));
  out.details.emplace_back("timeout_ms", std::to_string(millis(x.timeout)));
  return out;
}

event_summary summarize(const stopped_event&) {
  event_summary out;
  out.event = "stopped";
  return out;
}

} // namespace connmgr
