#pragma once

#include <string>

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include "connmgr/messages/atoms.hpp"

namespace connmgr {

/// Where automatic outbound requests get their addresses (an address
/// manager). Answers `get_address` with an address to dial, or with an error
/// (e.g. `errc::no_address`) when it has none to give.
using address_source_actor =
  caf::typed_actor<caf::replies_to<get_address_atom>::with<std::string>>;

} // namespace connmgr
