#include "tests/support/temp_dir.hpp"

#include <algorithm>
#include <fstream>
#include <vector>

#include <doctest/doctest.h>
#include <stdlib.h>

namespace connmgr::test {

temp_dir::temp_dir(const std::string& prefix) {
  auto pattern =
    (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  REQUIRE(mkdtemp(buf.data()) != nullptr);
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string temp_dir::write(const std::string& name,
                            const std::string& content) {
  auto file = (path_ / name).string();
  std::ofstream out{file, std::ios::binary};
  out << content;
  return file;
}

std::string temp_dir::path(const std::string& name) const {
  return (path_ / name).string();
}

std::vector<std::string> temp_dir::entries() const {
  std::vector<std::string> result;
  for (auto& e : std::filesystem::directory_iterator{path_})
    result.push_back(e.path().filename().string());
  std::sort(result.begin(), result.end());
  return result;
}

} // namespace connmgr::test
