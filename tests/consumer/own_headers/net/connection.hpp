// The application's own net/connection.hpp, which has nothing to do with connmgr's: connmgr's
// headers must never pick it up in place of connmgr/net/connection.hpp.
#pragma once
#error                                                                         \
  "connmgr included the application's net/connection.hpp instead of connmgr/net/connection.hpp"
