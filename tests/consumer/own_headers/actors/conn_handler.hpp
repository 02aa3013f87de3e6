// The application's own actors/conn_handler.hpp, which has nothing to do with connmgr's: connmgr's
// headers must never pick it up in place of connmgr/actors/conn_handler.hpp.
#pragma once
#error                                                                         \
  "connmgr included the application's actors/conn_handler.hpp instead of connmgr/actors/conn_handler.hpp"
