#pragma once

// One connmgr-node process with JSON output, for every suite that runs the
// real program (tests/node/e2e_test.cpp, tests/fault/, tests/multihost/):
// how to configure it, how to boot it (its id and bound address), how to
// wait for its events and how to prove it stopped cleanly, and the shell
// commands and system tools the suites run beside it. The process itself is
// tests/node/process.hpp; a suite's own needs (a wrapper such as `prlimit`
// or `ip netns exec`, which address it must listen on) stay with the suite.

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/flat_json.hpp"
#include "tests/node/process.hpp"

namespace connmgr::e2e {

/// How long "eventually" may take on a loaded 2-core machine.
constexpr auto eventually = 30s;

/// How long a node may take to exit after SIGTERM or a config error.
constexpr auto exit_timeout = 30s;

// -- configuration and commands ---------------------------------------------------

/// `--connmgr.KEY=VALUE`.
inline std::string opt(const std::string& key, const std::string& value) {
  return "--connmgr." + key + "=" + value;
}

/// A CAF list of quoted strings: ["a", "b"].
inline std::string list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (auto& x : items) {
    if (out.size() > 1)
      out += ", ";
    out += "\"" + x + "\"";
  }
  return out + "]";
}

/// Milliseconds since the Unix epoch: the clock of the nodes' `ts`.
inline int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

/// Runs `cmd` through the shell (with the sbin directories on the PATH,
/// where `ip` and `nft` live); returns its stdout (stderr too with `2>&1` in
/// `cmd`) and its exit status (-1 when it did not exit).
inline std::pair<std::string, int> run_command(const std::string& cmd) {
  std::string out;
  auto full = "PATH=\"$PATH:/usr/sbin:/sbin:/usr/bin:/bin\"; " + cmd;
  auto* f = ::popen(full.c_str(), "r");
  if (f == nullptr)
    return {out, -1};
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0)
    out.append(buf, n);
  auto status = ::pclose(f);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

/// The full path of system tool `name` (ip, nft, prlimit), looked up in
/// the usual directories (process.hpp execs without a PATH search); `name`
/// itself when none has it.
inline std::string tool(const std::string& name) {
  for (auto dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    auto path = dir + name;
    if (::access(path.c_str(), X_OK) == 0)
      return path;
  }
  return name;
}

// -- events ----------------------------------------------------------------------

/// The lines of `p` from index `from` on that are event `name` (optionally
/// with `fields`).
inline std::vector<std::string>
events_of(const process& p, const std::string& name,
          std::vector<std::pair<std::string, std::string>> fields = {},
          size_t from = 0) {
  auto pred = event_with(name, std::move(fields));
  auto lines = p.texts();
  std::vector<std::string> out;
  for (auto i = from; i < lines.size(); ++i)
    if (pred(lines[i]))
      out.push_back(lines[i]);
  return out;
}

/// The integer member `key` of `line` (fails the test when missing).
inline int64_t int_of(const std::string& line, const std::string& key) {
  auto v = json_int(line, key);
  REQUIRE_MESSAGE(v, "no integer \"" << key << "\" in " << line);
  return *v;
}

// -- the node --------------------------------------------------------------------

/// One connmgr-node with JSON output. `wrapper` (e.g. `{tool("prlimit"),
/// "--nofile=64:64", "--"}` or `{tool("ip"), "netns", "exec", "ns"}`; the
/// program by its full path) runs before it; each of those execs the node
/// in its own process, so `pid()` is the node's.
class node_process : public process {
public:
  /// Runs `binary` (by default the node under test) with `args`, behind
  /// `wrapper` (a command that runs what follows it) when one is given.
  explicit node_process(std::vector<std::string> args,
                        std::vector<std::string> wrapper = {},
                        process_options o = {},
                        const std::string& binary = node_binary())
    : process(wrapper.empty() ? binary : wrapper.front(),
              argv_of(std::move(args), wrapper, binary), std::move(o)) {
    // nop
  }

  /// Waits for "started" (reads the node id) and, when `listens`, for the
  /// first "listening" line (reads the bound address).
  void boot(bool listens = true) {
    REQUIRE_MESSAGE(ok(), error());
    auto started = wait_for(event_is("started"), eventually);
    REQUIRE_MESSAGE(started, "no started line\n" << tail());
    id = json_get(*started, "peer_node").value_or("");
    REQUIRE_MESSAGE(id.size() == 16, *started);
    if (!listens)
      return;
    auto listening = wait_for(event_is("listening"), eventually);
    REQUIRE_MESSAGE(listening, "no listening line\n" << tail());
    listening_line = *listening;
    addr = json_get(*listening, "addr").value_or("");
    auto colon = addr.rfind(':');
    REQUIRE_MESSAGE(colon != std::string::npos, *listening);
    port = static_cast<uint16_t>(std::stoi(addr.substr(colon + 1)));
    REQUIRE(port != 0);
  }

  /// Every line so far that is event `name` (optionally with `fields`).
  std::vector<std::string>
  events(const std::string& name,
         std::vector<std::pair<std::string, std::string>> fields = {}) const {
    return events_of(*this, name, std::move(fields));
  }

  std::string id;
  std::string addr;
  uint16_t port = 0;
  std::string listening_line;

private:
  static std::vector<std::string>
  argv_of(std::vector<std::string> args,
          const std::vector<std::string>& wrapper, const std::string& binary) {
    std::vector<std::string> out;
    if (!wrapper.empty()) {
      out.assign(wrapper.begin() + 1, wrapper.end());
      out.push_back(binary);
    }
    out.push_back(opt("log-format", "json"));
    // Every test node lives on loopback, usually all on 127.0.0.1: gossip
    // of loopback addresses is what they exchange, and one address is one
    // network group. Tests of the policies themselves override these caps,
    // and pass `opt("allow-local-addresses", "false")` (not a node
    // option: CAF takes bools only as bare flags) to leave the flag out.
    auto no_local = opt("allow-local-addresses", "false");
    auto keep_local =
      std::find(args.begin(), args.end(), no_local) == args.end();
    if (keep_local)
      out.push_back("--connmgr.allow-local-addresses");
    out.push_back(opt("outbound-per-netgroup", "64"));
    // Likewise, every inbound connection comes from 127.0.0.1 unless a
    // test binds its clients elsewhere: no per-IP cap or rate by default.
    out.push_back(opt("max-inbound-per-ip", "unlimited"));
    out.push_back(opt("inbound-rate-per-ip", "unlimited"));
    for (auto& a : args)
      if (a != no_local)
        out.push_back(std::move(a));
    return out;
  }
};

/// Waits for an event; fails the test with the node's tail when it does not
/// come.
inline std::string
expect_event(process& p, const std::string& name,
             std::vector<std::pair<std::string, std::string>> fields = {},
             clock_type::duration timeout = eventually) {
  auto line = p.wait_for(event_with(name, fields), timeout);
  std::string what = name;
  for (auto& [k, v] : fields)
    what += " " + k + "=" + v;
  REQUIRE_MESSAGE(line, "no \"" << what << "\" event\n" << p.tail(30));
  return *line;
}

/// Exactly one line on `p`'s stderr, containing every string of `expect`
/// (each checked on its own, so a failure names the one missing).
inline void check_one_error_line(const process& p,
                                 const std::vector<std::string>& expect) {
  auto err = p.err_lines();
  CHECK_MESSAGE(err.size() == 1, p.tail());
  for (auto& e : expect)
    CHECK_MESSAGE((err.size() == 1 && err[0].find(e) != std::string::npos),
                  "\"" << e << "\" not in stderr\n"
                       << p.tail());
}

/// Sends `sig` (again, if sent already: the process must not have been
/// reaped yet), then: exit status 0 (the node also checks at exit that every
/// descriptor it opened is closed again, else it exits 1), nothing on
/// stderr, "stopped" the last line, and every line of its output one
/// well-formed flat JSON object starting with "event" and "ts" (however
/// many lines it wrote).
inline void stop_ok(process& p, int sig = SIGTERM) {
  CAPTURE(sig);
  REQUIRE(p.signal(sig));
  auto status = p.wait_exit(exit_timeout);
  REQUIRE_MESSAGE(status,
                  "did not exit within 30 s of the signal\n"
                    << p.tail());
  CHECK_MESSAGE(*status == 0, p.tail());
  CHECK_MESSAGE(p.err_lines().empty(), p.tail());
  auto lines = p.texts();
  REQUIRE_MESSAGE(!lines.empty(), p.tail());
  CHECK_MESSAGE(json_event(lines.back()) == "stopped", p.tail());
  std::string bad;
  size_t bad_count = 0;
  for (auto& l : lines) {
    auto obj = connmgr::test::parse_flat_object(l);
    if (obj && obj->size() >= 2 && (*obj)[0].key == "event"
        && (*obj)[1].key == "ts")
      continue;
    if (bad_count++ == 0)
      bad = l;
  }
  CHECK_MESSAGE(bad_count == 0,
                bad_count << " malformed lines of " << lines.size() << ", e.g. "
                          << bad);
}

/// Sends `sig` to every one of `nodes` first, so they stop side by side,
/// then checks each with `stop_ok`.
inline void stop_all_ok(std::initializer_list<process*> nodes,
                        int sig = SIGTERM) {
  for (auto* p : nodes)
    p->signal(sig);
  for (auto* p : nodes)
    stop_ok(*p, sig);
}

} // namespace connmgr::e2e
