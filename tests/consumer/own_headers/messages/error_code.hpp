// The application's own messages/error_code.hpp, which has nothing to do with connmgr's: connmgr's
// headers must never pick it up in place of connmgr/messages/error_code.hpp.
#pragma once
#error                                                                         \
  "connmgr included the application's messages/error_code.hpp instead of connmgr/messages/error_code.hpp"
