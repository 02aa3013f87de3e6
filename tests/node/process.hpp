#pragma once

// A small harness for end-to-end tests of the real `connmgr-node` program:
// runs it as a child process in its own temporary working directory, with
// stdout and stderr on pipes drained by a reader thread (poll()), so a test
// can wait for the line that proves a behaviour, with a deadline. A
// `process` never leaks its child: the destructor kills (SIGKILL) and reaps
// it, also when a REQUIRE throws out of the test.
//
// Also: predicates on the flat JSON objects of `--connmgr.log-format=json`
// lines (read with tests/support/flat_json.hpp).

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/flat_json.hpp"
#include "tests/support/loopback_listener.hpp"

namespace connmgr::e2e {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// -- flat JSON ------------------------------------------------------------------

// Lines are read with the one reader of tests/support/flat_json.hpp.
using connmgr::test::json_event;
using connmgr::test::json_get;
using connmgr::test::json_int;

/// Predicate on a line: a JSON object with "event" == `name`.
inline std::function<bool(const std::string&)> event_is(std::string name) {
  return [name = std::move(name)](const std::string& line) {
    return json_event(line) == name;
  };
}

/// Predicate: event `name` whose members equal the given (key, value) pairs
/// (values compared as decoded strings or raw literals).
inline std::function<bool(const std::string&)>
event_with(std::string name,
           std::vector<std::pair<std::string, std::string>> fields) {
  return [name = std::move(name),
          fields = std::move(fields)](const std::string& line) {
    if (json_event(line) != name)
      return false;
    for (auto& [k, v] : fields)
      if (json_get(line, k) != v)
        return false;
    return true;
  };
}

// -- helpers --------------------------------------------------------------------

/// The path of the program under test.
inline std::string node_binary() {
#ifdef CONNMGR_NODE_BINARY
  return CONNMGR_NODE_BINARY;
#else
  return {};
#endif
}

/// A socket on 127.0.0.1 that only holds its port (no listen()).
inline test::loopback_options bound_only() {
  test::loopback_options o;
  o.listening = false;
  return o;
}

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then
/// closed). Another process may take it meanwhile: callers retry.
inline uint16_t free_port() {
  auto s = test::open_loopback(bound_only());
  if (s.fd >= 0)
    ::close(s.fd);
  return s.port;
}

/// A TCP port on 127.0.0.1 with nobody listening: bound without listen()
/// and kept bound for the object's life, so a connect is refused and no
/// other process can take the port meanwhile.
class closed_port {
public:
  closed_port() : socket_(bound_only()) {
    // nop
  }
  uint16_t port() const {
    return socket_.port();
  }

private:
  test::loopback_listener socket_;
};

/// One line of output and when the harness read it.
struct line_record {
  std::string text;
  clock_type::time_point at;
};

/// What to run.
struct process_options {
  /// Files to create in the working directory first: (name, content).
  std::vector<std::pair<std::string, std::string>> files;
};

// -- process ----------------------------------------------------------------------

class process {
public:
  /// Starts `binary` with `args` (without the program name) in a fresh
  /// temporary directory. Check `ok()` (and `error()`).
  process(std::string binary, std::vector<std::string> args,
          process_options opts = {})
    : args_(std::move(args)) {
    char tmpl[] = "/tmp/connmgr-e2e-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      error_ = std::string{"mkdtemp: "} + std::strerror(errno);
      return;
    }
    dir_ = tmpl;
    for (auto& [name, content] : opts.files) {
      std::ofstream f{dir_ + "/" + name, std::ios::binary};
      f << content;
    }
    int out[2];
    int err[2];
    if (::pipe2(out, O_CLOEXEC) != 0) {
      error_ = std::string{"pipe: "} + std::strerror(errno);
      return;
    }
    if (::pipe2(err, O_CLOEXEC) != 0) {
      ::close(out[0]);
      ::close(out[1]);
      error_ = std::string{"pipe: "} + std::strerror(errno);
      return;
    }
    // Everything the child needs, prepared before fork: between fork and
    // exec only async-signal-safe calls (the test may have threads).
    std::vector<std::string> argv_store;
    argv_store.push_back(binary);
    for (auto& a : args_)
      argv_store.push_back(a);
    std::vector<char*> argv;
    for (auto& a : argv_store)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    auto dir = dir_;
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    auto parent = ::getpid();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Dies with the test runner, even when that is killed (a ctest
      // timeout): no node outlives its test.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent)
        ::_exit(126);
      // Own process group: a stray ^C at the terminal does not hit it,
      // and the signals we send are the only ones it gets.
      ::setpgid(0, 0);
      // Default dispositions and an empty mask, whatever the test runner
      // had (the program blocks SIGINT/SIGTERM itself).
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      if (::chdir(dir.c_str()) != 0)
        ::_exit(126);
      if (devnull >= 0)
        ::dup2(devnull, 0);
      ::dup2(out[1], 1);
      ::dup2(err[1], 2);
      ::execv(argv[0], argv.data());
      static const char msg[] = "exec failed\n";
      auto n = ::write(2, msg, sizeof(msg) - 1);
      (void)n;
      ::_exit(127);
    }
    if (devnull >= 0)
      ::close(devnull);
    ::close(out[1]);
    ::close(err[1]);
    if (pid_ < 0) {
      error_ = std::string{"fork: "} + std::strerror(errno);
      ::close(out[0]);
      ::close(err[0]);
      pid_ = -1;
      return;
    }
    started_ = clock_type::now();
    reader_ = std::thread{[this, o = out[0], e = err[0]] { read_loop(o, e); }};
  }

  process(const process&) = delete;
  process& operator=(const process&) = delete;

  ~process() {
    if (pid_ > 0 && !exited_) {
      ::kill(pid_, SIGKILL);
      ::kill(pid_, SIGCONT); // a stopped child dies at once either way
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
    }
    stop_reader_ = true;
    if (reader_.joinable())
      reader_.join();
    if (!dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  bool ok() const {
    return pid_ > 0;
  }

  const std::string& error() const {
    return error_;
  }

  pid_t pid() const {
    return pid_;
  }

  /// The working directory of the child.
  const std::string& dir() const {
    return dir_;
  }

  /// The command line, for messages.
  std::string command() const {
    std::string out = "connmgr-node";
    for (auto& a : args_)
      out += " " + a;
    return out;
  }

  /// Sends `sig` to the child (if it still runs).
  bool signal(int sig) {
    if (pid_ <= 0 || exited_)
      return false;
    return ::kill(pid_, sig) == 0;
  }

  /// Waits up to `timeout` for a stdout line after the cursor that
  /// satisfies `pred`; moves the cursor past it and returns it. Nothing on
  /// timeout or when stdout ended first.
  template <class Pred>
  std::optional<std::string> wait_for(Pred&& pred,
                                      clock_type::duration timeout) {
    auto r = wait_for_record(std::forward<Pred>(pred), timeout);
    if (!r)
      return std::nullopt;
    return r->text;
  }

  /// Like `wait_for`, with the time the line was read.
  template <class Pred>
  std::optional<line_record> wait_for_record(Pred&& pred,
                                             clock_type::duration timeout) {
    auto deadline = clock_type::now() + timeout;
    std::unique_lock<std::mutex> guard{mtx_};
    for (;;) {
      while (cursor_ < out_lines_.size()) {
        auto& rec = out_lines_[cursor_++];
        if (pred(rec.text))
          return rec;
      }
      if (out_eof_)
        return std::nullopt;
      if (cv_.wait_until(guard, deadline) == std::cv_status::timeout
          && cursor_ >= out_lines_.size())
        return std::nullopt;
    }
  }

  /// Index of the next line `wait_for` looks at.
  size_t cursor() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return cursor_;
  }

  /// Lets the next `wait_for` start at line `index` (0: from the start).
  void seek(size_t index) {
    std::lock_guard<std::mutex> guard{mtx_};
    cursor_ = index;
  }

  /// Every stdout line read so far.
  std::vector<line_record> lines() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return out_lines_;
  }

  /// Every stdout line read so far, text only.
  std::vector<std::string> texts() const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::vector<std::string> result;
    for (auto& r : out_lines_)
      result.push_back(r.text);
    return result;
  }

  /// Every stderr line read so far.
  std::vector<std::string> err_lines() const {
    std::lock_guard<std::mutex> guard{mtx_};
    return err_lines_;
  }

  /// The last `n` lines of stdout and all of stderr, for failure messages.
  std::string tail(size_t n = 15) const {
    std::lock_guard<std::mutex> guard{mtx_};
    std::string out = "$ " + command_unlocked() + "\n";
    auto first = out_lines_.size() > n ? out_lines_.size() - n : 0;
    if (first > 0)
      out += "  [" + std::to_string(first) + " earlier lines]\n";
    for (auto i = first; i < out_lines_.size(); ++i)
      out += "  " + out_lines_[i].text + "\n";
    for (auto& l : err_lines_)
      out += "  stderr: " + l + "\n";
    return out;
  }

  /// Waits up to `timeout` for the child to exit and for its output to end;
  /// returns its exit status (128 + N when killed by signal N). On timeout
  /// kills it with SIGKILL, reaps it and returns nothing.
  std::optional<int> wait_exit(clock_type::duration timeout) {
    if (pid_ <= 0)
      return std::nullopt;
    auto deadline = clock_type::now() + timeout;
    while (!exited_) {
      int status = 0;
      auto r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        status_ =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        break;
      }
      if (r < 0 && errno != EINTR) {
        exited_ = true;
        status_ = -1;
        break;
      }
      if (clock_type::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::kill(pid_, SIGCONT);
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
        exited_ = true;
        status_ = std::nullopt;
        break;
      }
      std::this_thread::sleep_for(10ms);
    }
    // The pipes end once the child is gone (it starts no children).
    std::unique_lock<std::mutex> guard{mtx_};
    cv_.wait_until(guard, std::max(deadline, clock_type::now() + 2s),
                   [this] { return out_eof_ && err_eof_; });
    return status_;
  }

  /// Kills the child at once (SIGKILL) and reaps it.
  void kill_now() {
    if (pid_ <= 0 || exited_)
      return;
    ::kill(pid_, SIGKILL);
    ::kill(pid_, SIGCONT);
    wait_exit(10s);
  }

  bool exited() const {
    return exited_;
  }

  /// When the child was started.
  clock_type::time_point started() const {
    return started_;
  }

private:
  std::string command_unlocked() const {
    std::string out = "connmgr-node";
    for (auto& a : args_)
      out += " " + a;
    return out;
  }

  void read_loop(int out_fd, int err_fd) {
    std::string out_buf;
    std::string err_buf;
    pollfd fds[2];
    fds[0] = {out_fd, POLLIN, 0};
    fds[1] = {err_fd, POLLIN, 0};
    bool out_open = true;
    bool err_open = true;
    char chunk[4096];
    auto flush_lines = [this](std::string& buf, bool is_out, bool eof) {
      std::vector<std::string> fresh;
      size_t start = 0;
      for (;;) {
        auto nl = buf.find('\n', start);
        if (nl == std::string::npos)
          break;
        fresh.push_back(buf.substr(start, nl - start));
        start = nl + 1;
      }
      buf.erase(0, start);
      if (eof && !buf.empty()) {
        fresh.push_back(buf);
        buf.clear();
      }
      if (fresh.empty() && !eof)
        return;
      std::lock_guard<std::mutex> guard{mtx_};
      auto now = clock_type::now();
      for (auto& l : fresh) {
        if (is_out)
          out_lines_.push_back({std::move(l), now});
        else
          err_lines_.push_back(std::move(l));
      }
      if (eof)
        (is_out ? out_eof_ : err_eof_) = true;
      cv_.notify_all();
    };
    while ((out_open || err_open) && !stop_reader_) {
      fds[0].fd = out_open ? out_fd : -1;
      fds[1].fd = err_open ? err_fd : -1;
      auto n = ::poll(fds, 2, 100);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        break;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0)
          continue;
        auto got = ::read(fds[i].fd, chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
          continue;
        auto& buf = i == 0 ? out_buf : err_buf;
        if (got <= 0) {
          flush_lines(buf, i == 0, true);
          (i == 0 ? out_open : err_open) = false;
          continue;
        }
        buf.append(chunk, static_cast<size_t>(got));
        flush_lines(buf, i == 0, false);
      }
    }
    ::close(out_fd);
    ::close(err_fd);
    std::lock_guard<std::mutex> guard{mtx_};
    out_eof_ = true;
    err_eof_ = true;
    cv_.notify_all();
  }

  std::vector<std::string> args_;
  std::string dir_;
  std::string error_;
  pid_t pid_ = -1;
  bool exited_ = false;
  std::optional<int> status_;
  clock_type::time_point started_;
  std::thread reader_;
  std::atomic<bool> stop_reader_{false};
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  std::vector<line_record> out_lines_;
  std::vector<std::string> err_lines_;
  size_t cursor_ = 0;
  bool out_eof_ = false;
  bool err_eof_ = false;
};

} // namespace connmgr::e2e
