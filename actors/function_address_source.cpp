#include "connmgr/actors/function_address_source.hpp"

namespace connmgr {

address_source_actor::behavior_type
function_address_source(address_source_actor::pointer, address_function fn) {
  return {
    [fn](get_address_atom) -> caf::result<std::string> {
      auto addr = fn();
      if (!addr)
        return std::move(addr.error());
      return std::move(*addr);
    },
  };
}

} // namespace connmgr
