#pragma once

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>

#include "examples/node/node_settings.hpp"
#include "examples/node/node_log.hpp"
#include "examples/node/node_event.hpp"

namespace connmgr {

/// Writes the node's event and status lines to stdout, one whole line at a
/// time (several nodes or threads may write at once), flushed at once so
/// that a pipe reader sees each line as it happens.
class output {
public:
  explicit output(node_settings::log_format format, std::string prefix = {})
    : format_(format), prefix_(std::move(prefix)) {
    // nop
  }

  /// One event line; `prefix` goes before a text line.
  void event(const node_event& ev, const std::string& prefix = {}) {
    if (format_ == node_settings::log_format::json)
      line(to_json(ev, unix_ms()));
    else
      line(prefix_ + prefix + to_text(ev));
  }

  /// One status line.
  void status(const node_status& st) {
    if (format_ == node_settings::log_format::json)
      line(status_json(st, unix_ms()));
    else
      line(prefix_ + status_line(st));
  }

  /// Any other line, as is.
  void line(const std::string& text) {
    std::lock_guard<std::mutex> guard{mtx_};
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputc('\n', stdout);
    std::fflush(stdout);
  }

  /// Milliseconds since the Unix epoch (wall clock: for humans and logs,
  /// never for decisions).
  static int64_t unix_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch())
      .count();
  }

private:
  node_settings::log_format format_;
  std::string prefix_;
  std::mutex mtx_;
};

} // namespace connmgr
