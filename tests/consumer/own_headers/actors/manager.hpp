// The application's own actors/manager.hpp, which has nothing to do with connmgr's: connmgr's
// headers must never pick it up in place of connmgr/actors/manager.hpp.
#pragma once
#error                                                                         \
  "connmgr included the application's actors/manager.hpp instead of connmgr/actors/manager.hpp"
