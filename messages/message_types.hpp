#pragma once

#include <caf/fwd.hpp>

namespace connmgr {

/// Makes every serializable value of connmgr's messages known to an actor
/// system, so a handler can be queried from another process or machine
/// through CAF's middleman: `conn_request` (and vectors of it, the answer to
/// `requests`), `conn_stats` (the answer to `stats` and `stop`), and the
/// error category (`add_error_category`), so errors print by name.
///
/// Call it on the config of every actor system that exchanges these values
/// with another one, before the system starts. Connections and the events
/// that carry them are process-local and stay unregistered.
void add_message_types(caf::actor_system_config& cfg);

} // namespace connmgr
