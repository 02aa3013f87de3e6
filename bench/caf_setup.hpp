#pragma once

// The setup that every measured actor system shares: its CAF options and
// the reactor it runs on.

#include <memory>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>

#include "connmgr/net/reactor.hpp"

namespace connmgr::bench {

/// Our error category plus `caf_args`, CAF options as CAF's own command line
/// takes them, e.g. "--scheduler.max-threads=2" (parsed by CAF, which
/// rejects an unknown key or a bad value; no config file is read). Dies on
/// an error.
class measured_config : public caf::actor_system_config {
public:
  explicit measured_config(const std::vector<std::string>& caf_args);
};

/// `caf_args` separated by spaces: the "caf" field of the JSON line.
std::string joined(const std::vector<std::string>& caf_args);

/// A started reactor; dies if it cannot start.
std::shared_ptr<reactor> start_reactor();

} // namespace connmgr::bench
