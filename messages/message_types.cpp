#include "connmgr/messages/message_types.hpp"

#include <vector>

#include <caf/actor_system_config.hpp>

#include "connmgr/messages/ban_info.hpp"
#include "connmgr/messages/conn_limits.hpp"
#include "connmgr/messages/conn_request.hpp"
#include "connmgr/messages/conn_stats.hpp"
#include "connmgr/messages/control_actor.hpp"
#include "connmgr/messages/control_event.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/gate_actor.hpp"
#include "connmgr/messages/peer_info.hpp"

namespace connmgr {

void add_message_types(caf::actor_system_config& cfg) {
  cfg.add_message_type<conn_request>("connmgr::conn_request");
  cfg.add_message_type<std::vector<conn_request>>(
    "std::vector<connmgr::conn_request>");
  cfg.add_message_type<conn_stats>("connmgr::conn_stats");
  cfg.add_message_type<peer_info>("connmgr::peer_info");
  cfg.add_message_type<std::vector<peer_info>>(
    "std::vector<connmgr::peer_info>");
  cfg.add_message_type<conn_limits>("connmgr::conn_limits");
  cfg.add_message_type<ban_info>("connmgr::ban_info");
  cfg.add_message_type<std::vector<ban_info>>("std::vector<connmgr::ban_info>");
  cfg.add_message_type<gate_verdict>("connmgr::gate_verdict");
  cfg.add_message_type<event_summary>("connmgr::event_summary");
  cfg.add_message_type<std::vector<std::pair<std::string, std::string>>>(
    "std::vector<std::pair<std::string,std::string>>");
  cfg.add_message_type<control_subscriber_actor>(
    "connmgr::control_subscriber_actor");
  add_error_category(cfg);
}

} // namespace connmgr
