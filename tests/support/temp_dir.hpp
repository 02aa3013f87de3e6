// A fresh directory for a test's files, removed with everything in it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace connmgr::test {

/// A fresh directory under the system's temp directory, named after
/// `prefix`, removed on destruction with everything in it.
class temp_dir {
public:
  explicit temp_dir(const std::string& prefix = "connmgr-test");
  ~temp_dir();

  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;

  /// Writes `content` to the file `name` in this directory; returns its path.
  std::string write(const std::string& name, const std::string& content);

  /// The path of `name` in this directory (not created).
  std::string path(const std::string& name) const;

  /// The names of the entries in this directory, sorted.
  std::vector<std::string> entries() const;

private:
  std::filesystem::path path_;
};

} // namespace connmgr::test
