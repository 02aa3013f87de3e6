// connmgr-ctl: the operator's tool for running connmgr nodes, over each
// node's remote control (CAF's middleman, mutual TLS).
#include <cstdio>
#include <string>
#include <vector>

#include "connmgr/messages/error_code.hpp"
#include "examples/ctl/ctl_args.hpp"
#include "examples/ctl/ctl_client.hpp"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = connmgr::parse_ctl_args(args);
  if (!parsed) {
    std::fprintf(stderr, "connmgr-ctl: %s\n(see connmgr-ctl --help)\n",
                 connmgr::describe(parsed.error()).c_str());
    return 2;
  }
  if (parsed->help) {
    std::fputs(connmgr::ctl_usage().c_str(), stdout);
    return 0;
  }
  return connmgr::run_ctl(*parsed, stdout, stderr);
}
