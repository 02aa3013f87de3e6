#include "connmgr/messages/conn_request.hpp"

#include <fmt/format.h>

namespace connmgr {

std::string to_string(const conn_request& x) {
  return fmt::format("#{} {} ({}{}, {}, retry {})", x.id,
                     x.address.empty() ? "<no address>" : x.address,
                     x.permanent ? "permanent" : "one-shot",
                     x.automatic ? ", automatic" : "", to_string(x.state),
                     x.retry_count);
}

} // namespace connmgr
