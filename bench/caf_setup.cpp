#include "bench/caf_setup.hpp"

#include <sstream>

#include "bench/common.hpp"
#include "connmgr/messages/error_code.hpp"

namespace connmgr::bench {

measured_config::measured_config(const std::vector<std::string>& caf_args) {
  connmgr::add_error_category(*this);
  if (caf_args.empty())
    return;
  std::istringstream no_file;
  if (auto err = parse(caf_args, no_file))
    die("bad CAF option: " + render(err));
  if (!remainder.empty())
    die("unexpected CAF argument '" + remainder.front() + "'");
}

std::string joined(const std::vector<std::string>& caf_args) {
  std::string out;
  for (auto& a : caf_args)
    out += (out.empty() ? "" : " ") + a;
  return out;
}

std::shared_ptr<reactor> start_reactor() {
  auto io = reactor::start();
  if (!io)
    die(describe(io.error()));
  return std::move(*io);
}

} // namespace connmgr::bench
