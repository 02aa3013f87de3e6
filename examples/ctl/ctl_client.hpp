#pragma once

#include <cstdio>

#include "examples/ctl/ctl_args.hpp"

namespace connmgr {

/// Runs the command of `args` against every node, writing the table (or
/// JSON) to `out` and one line per problem to `err`. Returns the exit
/// status: 0 done, 1 a node could not be reached, refused the TLS handshake
/// (the line says which side refused what) or refused the command, 2 when a
/// TLS file cannot be loaded (naming the flag).
int run_ctl(const ctl_args& args, std::FILE* out, std::FILE* err);

} // namespace connmgr
