#include "connmgr/messages/conn_stats.hpp"

#include <algorithm>
#include <iterator>

namespace connmgr {

namespace {

struct counter {
  const char* name;
  uint64_t conn_stats::*member;
};

/// Every counter by name, in declaration order: the one list that printing
/// and comparing read.
constexpr counter counters[] = {
  {"requests_created", &conn_stats::requests_created},
  {"dials_started", &conn_stats::dials_started},
  {"dials_succeeded", &conn_stats::dials_succeeded},
  {"dials_failed", &conn_stats::dials_failed},
  {"late_connections_closed", &conn_stats::late_connections_closed},
  {"retries_scheduled", &conn_stats::retries_scheduled},
  {"throttled", &conn_stats::throttled},
  {"disconnections", &conn_stats::disconnections},
  {"inbound_accepted", &conn_stats::inbound_accepted},
  {"inbound_rejected", &conn_stats::inbound_rejected},
  {"inbound_evicted", &conn_stats::inbound_evicted},
  {"live_requests", &conn_stats::live_requests},
  {"outbound_established", &conn_stats::outbound_established},
  {"dials_in_flight", &conn_stats::dials_in_flight},
  {"dials_queued", &conn_stats::dials_queued},
  {"inbound_live", &conn_stats::inbound_live},
  {"failed_attempts", &conn_stats::failed_attempts},
  {"banned_refused", &conn_stats::banned_refused},
  {"banned_closed", &conn_stats::banned_closed},
  {"bans", &conn_stats::bans},
  {"gate_vetoes", &conn_stats::gate_vetoes},
};

// A counter added to the struct but not to the list fails here.
static_assert(sizeof(conn_stats) == std::size(counters) * sizeof(uint64_t),
              "every conn_stats counter must be in the list above");

} // namespace

bool operator==(const conn_stats& x, const conn_stats& y) {
  return std::all_of(
    std::begin(counters), std::end(counters),
    [&](const counter& c) { return x.*c.member == y.*c.member; });
}

std::string to_string(const conn_stats& x) {
  std::string out = "conn_stats(";
  for (const auto& c : counters) {
    if (&c != counters)
      out += ", ";
    out += c.name;
    out += '=';
    out += std::to_string(x.*c.member);
  }
  out += ')';
  return out;
}

} // namespace connmgr
