#include "tests/support/descriptor_audit.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>

namespace connmgr::test {

std::vector<open_descriptor>
without_passing_pipes(std::vector<open_descriptor> fds) {
  fds.erase(std::remove_if(fds.begin(), fds.end(), is_passing_pipe), fds.end());
  return fds;
}

std::vector<open_descriptor>
new_descriptors(const std::vector<open_descriptor>& before) {
  return without_passing_pipes(
    descriptors_left_open(before, std::chrono::milliseconds{0}));
}

std::string tcp_state_name(unsigned st) {
  static const char* names[] = {
    "?",         "ESTABLISHED", "SYN_SENT",    "SYN_RECV",   "FIN_WAIT1",
    "FIN_WAIT2", "TIME_WAIT",   "CLOSE",       "CLOSE_WAIT", "LAST_ACK",
    "LISTEN",    "CLOSING",     "NEW_SYN_RECV"};
  return st < sizeof(names) / sizeof(names[0]) ? names[st] : "?";
}

std::string proc_address(const std::string& hex) {
  auto colon = hex.find(':');
  if (colon == std::string::npos)
    return hex;
  auto host = hex.substr(0, colon);
  auto port = std::stoul(hex.substr(colon + 1), nullptr, 16);
  char text[INET6_ADDRSTRLEN] = "?";
  if (host.size() == 8) {
    in_addr a{};
    a.s_addr = static_cast<uint32_t>(std::stoul(host, nullptr, 16));
    ::inet_ntop(AF_INET, &a, text, sizeof(text));
    return std::string{text} + ":" + std::to_string(port);
  }
  if (host.size() == 32) {
    in6_addr a{};
    for (int w = 0; w < 4; ++w) {
      auto word = static_cast<uint32_t>(
        std::stoul(host.substr(static_cast<size_t>(w) * 8, 8), nullptr, 16));
      std::memcpy(a.s6_addr + w * 4, &word, 4);
    }
    ::inet_ntop(AF_INET6, &a, text, sizeof(text));
    return "[" + std::string{text} + "]:" + std::to_string(port);
  }
  return hex;
}

std::map<uint64_t, tcp_entry> tcp_table(pid_t pid) {
  std::map<uint64_t, tcp_entry> out;
  for (auto file : {"tcp", "tcp6"}) {
    std::ifstream in{"/proc/" + std::to_string(pid) + "/net/" + file};
    std::string line;
    std::getline(in, line); // header
    while (std::getline(in, line)) {
      std::istringstream fields{line};
      std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
      uint64_t inode = 0;
      fields >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid
        >> timeout >> inode;
      if (!fields || inode == 0)
        continue;
      out[inode] = tcp_entry{
        proc_address(local), proc_address(remote),
        tcp_state_name(static_cast<unsigned>(std::stoul(st, nullptr, 16)))};
    }
  }
  return out;
}

size_t fd_view::at_or_above(int limit) const {
  return static_cast<size_t>(std::count_if(
    numbers.begin(), numbers.end(), [limit](int n) { return n >= limit; }));
}

std::string fd_view::summary() const {
  return std::to_string(total) + " fds: " + std::to_string(listening)
    + " listening, " + std::to_string(established.size()) + " established, "
    + std::to_string(other_tcp.size()) + " other tcp, "
    + std::to_string(non_tcp) + " other";
}

std::string fd_view::to_string() const {
  auto out = summary();
  for (auto& e : established)
    out += "\n    ESTABLISHED " + e;
  for (auto& e : other_tcp)
    out += "\n    " + e;
  out += "\n    other:";
  for (auto& e : non_tcp_names)
    out += " [" + e + "]";
  return out;
}

size_t fixed_fds(const fd_view& v) {
  return v.non_tcp + v.listening;
}

fd_view fds_of(pid_t pid) {
  fd_view v;
  auto fds = open_descriptors(pid);
  if (fds.empty())
    return v; // gone, or not ours to read
  auto table = tcp_table(pid);
  for (auto& d : without_passing_pipes(std::move(fds))) {
    ++v.total;
    v.numbers.push_back(d.fd);
    uint64_t inode = 0;
    if (std::sscanf(d.target.c_str(), "socket:[%lu]", &inode) != 1) {
      ++v.non_tcp;
      v.non_tcp_names.push_back(std::to_string(d.fd) + " -> " + d.target);
      continue;
    }
    auto i = table.find(inode);
    if (i == table.end()) {
      // Not (or not yet) a TCP socket of the table: a unix socket or a
      // socket created a moment ago; listed so a test sees it.
      v.other_tcp.push_back(d.target);
      continue;
    }
    auto& e = i->second;
    if (e.state == "LISTEN")
      ++v.listening;
    else if (e.state == "ESTABLISHED")
      v.established.push_back(e.local + " -> " + e.remote);
    else
      v.other_tcp.push_back(e.state + " " + e.local + " -> " + e.remote);
  }
  v.ok = true;
  return v;
}

} // namespace connmgr::test
