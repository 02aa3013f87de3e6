// The application's own messages/events.hpp, which has nothing to do with connmgr's: connmgr's
// headers must never pick it up in place of connmgr/messages/events.hpp.
#pragma once
#error                                                                         \
  "connmgr included the application's messages/events.hpp instead of connmgr/messages/events.hpp"
