#pragma once

#include <functional>
#include <string>

#include <caf/expected.hpp>

#include "connmgr/messages/address_source_actor.hpp"

namespace connmgr {

/// A plain function that yields the next address to dial, or an error.
using address_function = std::function<caf::expected<std::string>()>;

/// An address source actor that answers each request by calling `fn`.
address_source_actor::behavior_type
function_address_source(address_source_actor::pointer self,
                        address_function fn);

} // namespace connmgr
