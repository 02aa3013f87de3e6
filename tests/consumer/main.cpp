// Downstream smoke test: include an installed connmgr header, call into the
// library, check the result.
#include <messages/error_code.hpp>

#include <iostream>
#include <string>

int main() {
  const std::string name = connmgr::to_string(connmgr::errc::refused);
  std::cout << name << '\n';
  return name == "refused" ? 0 : 1;
}
