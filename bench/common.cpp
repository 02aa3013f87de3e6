#include "bench/common.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace connmgr::bench {

using namespace std::chrono_literals;

void die(const std::string& msg) {
  std::fprintf(stderr, "connmgr-bench: %s\n", msg.c_str());
  std::exit(1);
}

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double cpu_us(const rusage& ru) {
  auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec);
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

long ctx_switches(const rusage& ru) {
  return ru.ru_nvcsw + ru.ru_nivcsw;
}

void perf_window(bool enable) {
  static const char* path = std::getenv("CONNMGR_BENCH_PERF_CTL");
  if (path == nullptr || *path == '\0')
    return;
  int fd = ::open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return;
  const char* cmd = enable ? "enable\n" : "disable\n";
  auto len = std::strlen(cmd);
  if (::write(fd, cmd, len) != static_cast<ssize_t>(len))
    std::fprintf(stderr, "connmgr-bench: cannot write to %s\n", path);
  ::close(fd);
}

rusage self_usage() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru;
}

long peak_rss_kb() {
  return self_usage().ru_maxrss;
}

namespace {

long status_field(const char* name) {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  auto len = std::strlen(name);
  while (std::getline(in, line))
    if (line.compare(0, len, name) == 0)
      return std::strtol(line.c_str() + len, nullptr, 10);
  return -1;
}

} // namespace

long current_rss_kb() {
  return status_field("VmRSS:");
}

long thread_count() {
  return status_field("Threads:");
}

std::string sibling_program(const std::string& name) {
  char buf[4096];
  auto len = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (len <= 0)
    die("cannot read /proc/self/exe");
  std::string exe(buf, static_cast<size_t>(len));
  return exe.substr(0, exe.rfind('/') + 1) + name;
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    if (static_cast<unsigned char>(c) < 0x20)
      out += ' ';
    else
      out += c;
  }
  return out + "\"";
}

std::string json_object::format_double(double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.3f", x);
  return buf;
}

void json_object::add_list(const std::string& key,
                           const std::vector<double>& xs) {
  std::string out = "[";
  for (size_t i = 0; i < xs.size(); ++i) {
    if (i > 0)
      out += ",";
    out += format_double(xs[i]);
  }
  fields.emplace_back(key, out + "]");
}

void json_object::print() const {
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0)
      out += ", ";
    out += json_str(fields[i].first) + ": " + fields[i].second;
  }
  out += "}\n";
  std::fputs(out.c_str(), stdout);
  std::fflush(stdout);
}

// --- child processes ---------------------------------------------------------

child_process::child_process(const std::string& path,
                             const std::vector<std::string>& args) {
  int in_pipe[2];
  int out_pipe[2];
  if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0)
    die("pipe2 failed");
  std::vector<std::string> argv_store;
  argv_store.push_back(path);
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv_ptrs;
  for (auto& a : argv_store)
    argv_ptrs.push_back(a.data());
  argv_ptrs.push_back(nullptr);
  auto parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0)
    die("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(1);
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::execv(path.c_str(), argv_ptrs.data());
    std::fprintf(stderr, "connmgr-bench: cannot run %s: %s\n", path.c_str(),
                 std::strerror(errno));
    ::_exit(127);
  }
  ::close(in_pipe[0]);
  ::close(out_pipe[1]);
  to_child_ = in_pipe[1];
  from_child_ = out_pipe[0];
}

child_process::~child_process() {
  stop();
}

std::string child_process::read_line(std::chrono::milliseconds timeout,
                                     const std::string& what) {
  auto deadline = steady::now() + timeout;
  for (;;) {
    auto nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      auto line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    pollfd p{from_child_, POLLIN, 0};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - steady::now())
                  .count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) {
      stop();
      die(what + ": no answer in time");
    }
    char buf[256];
    auto r = ::read(from_child_, buf, sizeof(buf));
    if (r <= 0) {
      stop();
      die(what + ": the child exited");
    }
    buffered_.append(buf, static_cast<size_t>(r));
  }
}

void child_process::write_line(const std::string& line) {
  auto s = line + "\n";
  if (::write(to_child_, s.data(), s.size()) != static_cast<ssize_t>(s.size()))
    die("cannot write to a child process");
}

void child_process::stop() {
  if (pid_ <= 0)
    return;
  if (to_child_ >= 0) {
    ::close(to_child_);
    to_child_ = -1;
  }
  auto t0 = steady::now();
  bool termed = false;
  for (;;) {
    int status = 0;
    auto r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_ || (r < 0 && errno != EINTR))
      break;
    auto waited = steady::now() - t0;
    if (waited > 10s) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    if (waited > 5s && !termed) {
      ::kill(pid_, SIGTERM);
      termed = true;
    }
    std::this_thread::sleep_for(2ms);
  }
  if (from_child_ >= 0) {
    ::close(from_child_);
    from_child_ = -1;
  }
  pid_ = -1;
}

sink_process::sink_process(const std::string& path) : proc(path, {}) {
  auto line = proc.read_line(10s, "the sink");
  auto v = std::strtol(line.c_str(), nullptr, 10);
  if (v <= 0 || v > 65535) {
    proc.stop();
    die("the sink printed a bad port: " + line);
  }
  port = static_cast<uint16_t>(v);
}

// --- sockets and arguments ---------------------------------------------------

void abort_on_close(int fd) {
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

void reset_and_close(int fd) {
  abort_on_close(fd);
  ::close(fd);
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons(port);
  return sa;
}

sockaddr_in loopback_source(size_t index) {
  if (index >= max_loopback_sources)
    die("loopback source index " + std::to_string(index)
        + " >= " + std::to_string(max_loopback_sources));
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  auto third = static_cast<uint32_t>(index / 250);
  auto fourth = static_cast<uint32_t>(1 + index % 250);
  sa.sin_addr.s_addr =
    htonl((127u << 24) | (10u << 16) | (third << 8) | fourth);
  return sa;
}

long env_num(const char* name, long fallback, long lo) {
  const char* val = std::getenv(name);
  if (val == nullptr || *val == '\0')
    return fallback;
  char* end = nullptr;
  errno = 0;
  auto v = std::strtol(val, &end, 10);
  if (errno != 0 || end == val || *end != '\0' || v < lo)
    die(std::string{"bad value for $"} + name + ": '" + val
        + "', expected an integer >= " + std::to_string(lo));
  return v;
}

std::vector<std::pair<std::string, std::string>> parse_kv_args(int argc,
                                                               char** argv) {
  std::vector<std::pair<std::string, std::string>> result;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto eq = a.find('=');
    if (a.rfind("--", 0) != 0 || eq == std::string::npos)
      die("bad argument '" + a + "', expected --key=value");
    result.emplace_back(a.substr(2, eq - 2), a.substr(eq + 1));
  }
  return result;
}

long parse_num(const std::string& key, const std::string& val, long lo) {
  char* end = nullptr;
  errno = 0;
  auto v = std::strtol(val.c_str(), &end, 10);
  if (errno != 0 || end == val.c_str() || *end != '\0' || v < lo)
    die("bad value for --" + key + ": '" + val + "'");
  return v;
}

namespace {

/// "a, b or c".
std::string one_of(std::initializer_list<const char*> names) {
  std::string out;
  size_t i = 0;
  for (auto* name : names) {
    if (i > 0)
      out += i + 1 == names.size() ? " or " : ", ";
    out += name;
    ++i;
  }
  return out;
}

} // namespace

void option_table::add(const std::string& key, setter f) {
  setters_.emplace_back(key, std::move(f));
}

void option_table::text(const std::string& key, std::string& field) {
  add(key, [&field](const std::string&, const std::string& v) { field = v; });
}

void option_table::choice(const std::string& key, std::string& field,
                          std::initializer_list<const char*> allowed) {
  std::vector<std::string> names(allowed.begin(), allowed.end());
  auto message = "--" + key + " must be " + one_of(allowed);
  add(key, [&field, names, message](const std::string&, const std::string& v) {
    if (std::find(names.begin(), names.end(), v) == names.end())
      die(message);
    field = v;
  });
}

void option_table::caf_options(std::vector<std::string>& caf_args) {
  caf_args_ = &caf_args;
}

void option_table::parse(int argc, char** argv) const {
  for (auto& [key, val] : parse_kv_args(argc, argv)) {
    auto i = std::find_if(setters_.begin(), setters_.end(),
                          [&key = key](auto& s) { return s.first == key; });
    if (i != setters_.end())
      i->second(key, val);
    else if (caf_args_ != nullptr && key.find('.') != std::string::npos)
      caf_args_->push_back("--" + key + "=" + val);
    else
      die("unknown option --" + key);
  }
}

// --- load processes ----------------------------------------------------------

void ready_then_wait_for_go() {
  std::printf("ready\n");
  std::fflush(stdout);
  char buf[256];
  if (::read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
    std::_Exit(0);
}

void wait_for_stdin_eof() {
  char buf[256];
  while (::read(STDIN_FILENO, buf, sizeof(buf)) > 0) {
    // nothing to do until EOF
  }
}

} // namespace connmgr::bench
