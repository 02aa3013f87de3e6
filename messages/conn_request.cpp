#include "connmgr/messages/conn_request.hpp"

#include <atomic>

#include <fmt/format.h>

namespace connmgr {

namespace {

std::atomic<uint64_t> last_request_id{0};

} // namespace

uint64_t next_request_id() {
  return ++last_request_id;
}

uint64_t last_drawn_request_id() noexcept {
  return last_request_id.load();
}

std::string to_string(const conn_request& x) {
  return fmt::format("#{} {} ({}{}, {}, retry {})", x.id,
                     x.address.empty() ? "<no address>" : x.address,
                     x.permanent ? "permanent" : "one-shot",
                     x.automatic ? ", automatic" : "", to_string(x.state),
                     x.retry_count);
}

} // namespace connmgr
