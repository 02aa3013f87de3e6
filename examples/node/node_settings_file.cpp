// The node's config-file handling and start-up checks beyond its keys: where
// the file is, reading it safely, the descriptor budget and CAF's scheduler
// values.

#include "examples/node/node_settings.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>

#include <caf/atom.hpp>
#include <caf/config_value.hpp>
#include <caf/settings.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config_reader.hpp"

namespace connmgr {

namespace {

std::string qualified(std::string_view key) {
  return fmt::format("{}.{}", node_settings_category, key);
}

} // namespace

config_file_source find_config_file(const std::vector<std::string>& args) {
  const std::string flag = "--config-file=";
  for (auto& arg : args) {
    if (arg == "--" || arg.empty() || arg.front() != '-')
      break;
    if (arg.compare(0, flag.size(), flag) == 0)
      return {arg.substr(flag.size()), true};
  }
  return {"caf-application.ini", false};
}

caf::expected<std::string> read_config_file(const std::string& path,
                                            bool required) {
  // O_NONBLOCK: opening a FIFO for reading must not wait for a writer. It
  // has no effect on reading a regular file, the only kind read below.
  int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    auto code = errno;
    if (code == ENOENT && !required)
      return std::string{};
    return make_error(errc::invalid_config,
                      fmt::format("cannot open config file \"{}\": {}", path,
                                  std::strerror(code)));
  }
  struct closer {
    int fd;
    ~closer() {
      ::close(fd);
    }
  } guard{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0)
    return make_error(errc::invalid_config,
                      fmt::format("cannot read config file \"{}\": {}", path,
                                  std::strerror(errno)));
  // The null device reads as the empty file it is meant as.
  if (S_ISCHR(st.st_mode) && major(st.st_rdev) == 1 && minor(st.st_rdev) == 3)
    return std::string{};
  if (!S_ISREG(st.st_mode)) {
    const char* what = S_ISDIR(st.st_mode) ? "a directory"
      : S_ISFIFO(st.st_mode)               ? "a FIFO"
      : S_ISSOCK(st.st_mode)               ? "a socket"
      : S_ISCHR(st.st_mode)                ? "a character device"
      : S_ISBLK(st.st_mode)                ? "a block device"
                                           : "not a file";
    return make_error(errc::invalid_config,
                      fmt::format("config file \"{}\": not a regular file "
                                  "({})",
                                  path, what));
  }
  auto too_large = [&](uint64_t size) {
    return make_error(errc::invalid_config,
                      fmt::format("config file \"{}\": {} bytes, expected at "
                                  "most {} (1 MiB)",
                                  path, size, max_config_file_size));
  };
  if (st.st_size > static_cast<off_t>(max_config_file_size))
    return too_large(static_cast<uint64_t>(st.st_size));
  // Read one byte past the cap: the file may have grown since fstat.
  std::string content;
  content.resize(max_config_file_size + 1);
  size_t got = 0;
  while (got < content.size()) {
    auto n = ::read(fd, content.data() + got, content.size() - got);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return make_error(errc::invalid_config,
                        fmt::format("cannot read config file \"{}\": {}", path,
                                    std::strerror(errno)));
    }
    got += static_cast<size_t>(n);
  }
  if (got > max_config_file_size)
    return too_large(got);
  content.resize(got);
  return content;
}

caf::error check_descriptor_budget(const node_settings& s, size_t fd_limit) {
  if (fd_limit == 0)
    return caf::none;
  auto& mgr = s.manager;
  uint64_t inbound = mgr.max_inbound.value_or(0);
  auto wanted = uint64_t{mgr.target_outbound} + inbound + s.listen.size()
    + s.connect.size();
  auto room = fd_limit > node_descriptor_reserve
    ? uint64_t{fd_limit - node_descriptor_reserve}
    : uint64_t{0};
  if (wanted <= room)
    return caf::none;
  return make_error(
    errc::invalid_config,
    fmt::format("{} + {} + {} + {} = {} + {} + {} + {} = {}, expected at most "
                "{} to fit the open-file limit of {} ({} kept for the node "
                "itself)",
                qualified("target-outbound"), qualified("max-inbound"),
                qualified("listen"), qualified("connect"), mgr.target_outbound,
                mgr.max_inbound ? std::to_string(*mgr.max_inbound)
                                : std::string{"unlimited (0)"},
                s.listen.size(), s.connect.size(), wanted, room, fd_limit,
                node_descriptor_reserve));
}

size_t max_scheduler_threads(size_t cores) {
  return std::max(size_t{64}, 4 * cores);
}

caf::error check_scheduler_settings(const caf::settings& caf_content,
                                    size_t cores) {
  // The value of `category.key`, or null when absent.
  auto find = [&](std::string_view category,
                  std::string_view key) -> const caf::config_value* {
    auto cat = caf_content.find(category);
    if (cat == caf_content.end())
      return nullptr;
    auto dict = caf::get_if<caf::config_value::dictionary>(&cat->second);
    if (dict == nullptr)
      return nullptr;
    auto i = dict->find(key);
    return i == dict->end() ? nullptr : &i->second;
  };
  auto bad = [](std::string_view category, std::string_view key,
                const caf::config_value& x, const std::string& expected) {
    return make_error(errc::invalid_config,
                      fmt::format("{}.{} = \"{}\": {}", category, key,
                                  config_value_text(x), expected));
  };
  struct int_key {
    const char* category;
    const char* key;
    uint64_t min;
    uint64_t max;
  };
  auto max_int = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  const int_key int_keys[] = {
    {"scheduler", "max-threads", 1, max_scheduler_threads(cores)},
    {"scheduler", "max-throughput", 1, max_int},
    {"work-stealing", "aggressive-steal-interval", 1, max_int},
    {"work-stealing", "moderate-steal-interval", 1, max_int},
    {"work-stealing", "relaxed-steal-interval", 1, max_int},
  };
  for (auto& k : int_keys) {
    auto x = find(k.category, k.key);
    if (x == nullptr)
      continue;
    auto num = caf::get_if<caf::config_value::integer>(x);
    if (num == nullptr || *num < 0 || static_cast<uint64_t>(*num) < k.min
        || static_cast<uint64_t>(*num) > k.max)
      return bad(k.category, k.key, *x,
                 fmt::format("expected an integer in {}..{}", k.min, k.max));
  }
  if (auto x = find("scheduler", "policy")) {
    auto text = config_value_text(*x);
    bool textual = caf::holds_alternative<std::string>(*x)
      || caf::holds_alternative<caf::atom_value>(*x);
    if (!textual || (text != "stealing" && text != "sharing"))
      return bad("scheduler", "policy", *x, "expected stealing or sharing");
  }
  return caf::none;
}

} // namespace connmgr
