// Downstream smoke test: an application with headers of its own named like
// connmgr's (own_headers/messages/events.hpp, ...) includes the installed
// connmgr headers by their prefix, spawns a manager and checks an answer.
#include <connmgr/actors/manager.hpp>
#include <connmgr/messages/error_code.hpp>

#include <iostream>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>

int main() {
  const std::string name = connmgr::to_string(connmgr::errc::refused);
  if (name != "refused") {
    std::cerr << "to_string(errc::refused) = " << name << '\n';
    return 1;
  }
  std::cout << name << '\n';
  return 0;
}
