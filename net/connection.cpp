#include "connmgr/net/connection.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "connmgr/net/net_address.hpp"

namespace connmgr {

connection::connection(int fd, std::string remote_address)
  : fd_(fd), remote_address_(std::move(remote_address)) {
  // nop
}

connection::connection(int fd, std::string remote_address, uint32_t remote_ipv4)
  : fd_(fd), remote_address_(std::move(remote_address)),
    remote_ipv4_(remote_ipv4), has_remote_ipv4_(true) {
  // nop
}

connection::connection(int fd, std::string remote_address, uint32_t remote_ipv4,
                       uint32_t local_ipv4, uint16_t local_port)
  : fd_(fd), remote_address_(std::move(remote_address)),
    remote_ipv4_(remote_ipv4), has_remote_ipv4_(true), has_local_ipv4_(true),
    local_port_(local_port), local_ipv4_(local_ipv4) {
  // nop
}

connection::~connection() {
  close();
}

bool connection::mark_closed(int& fd, hook_list<std::function<void()>>& hooks) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (closed_.exchange(true, std::memory_order_acq_rel))
    return false;
  fd = fd_;
  fd_ = -1;
  hooks = std::move(hooks_);
  hooks_ = {};
  return true;
}

bool connection::close() {
  int fd = -1;
  hook_list<std::function<void()>> hooks;
  if (!mark_closed(fd, hooks))
    return false;
  if (fd >= 0)
    ::close(fd);
  // Hooks run outside the lock: they may send messages or inspect us.
  hooks.run();
  return true;
}

int connection::native_handle() const noexcept {
  std::lock_guard<std::mutex> guard{mtx_};
  return fd_;
}

connection::traffic_counters connection::traffic() const noexcept {
  traffic_counters x;
  x.bytes_in = bytes_in_.load(std::memory_order_relaxed);
  x.bytes_out = bytes_out_.load(std::memory_order_relaxed);
  x.last_recv_ns = last_recv_ns_.load(std::memory_order_relaxed);
  x.last_send_ns = last_send_ns_.load(std::memory_order_relaxed);
  return x;
}

std::string connection::local_address() const {
  if (has_local_ipv4_) {
    // Made with a descriptor (accepted): open until `closed_` says not.
    if (closed_.load(std::memory_order_acquire))
      return {};
    return ipv4_to_string(local_ipv4_, local_port_);
  }
  sockaddr_storage sa{};
  socklen_t len = sizeof(sa);
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (closed_.load(std::memory_order_acquire) || fd_ < 0
        || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0)
      return {};
  }
  if (sa.ss_family == AF_INET) {
    auto& in = reinterpret_cast<const sockaddr_in&>(sa);
    return ipv4_to_string(ntohl(in.sin_addr.s_addr), ntohs(in.sin_port));
  }
  auto addr = net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len);
  return addr ? addr->to_string() : std::string{};
}

int connection::release() {
  int fd = -1;
  hook_list<std::function<void()>> hooks;
  if (!mark_closed(fd, hooks))
    return -1;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    released_ = true;
  }
  hooks.run();
  return fd;
}

void connection::on_close(std::function<void()> hook) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!closed_.load(std::memory_order_acquire)) {
      hooks_.add(std::move(hook));
      return;
    }
  }
  hook();
}

void connection::on_peer_gone(std::function<void(const caf::error&)> hook) {
  caf::error reason;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!peer_gone_) {
      peer_hooks_.add(std::move(hook));
      return;
    }
    reason = peer_reason_;
  }
  hook(reason);
}

void connection::peer_gone(const caf::error& reason) {
  hook_list<std::function<void(const caf::error&)>> hooks;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (peer_gone_ || closed_.load(std::memory_order_acquire))
      return;
    peer_gone_ = true;
    peer_reason_ = reason;
    hooks = std::move(peer_hooks_);
    peer_hooks_ = {};
  }
  hooks.run(reason);
}

connection_ptr make_memory_connection(std::string remote_address) {
  // An IPv4 peer carries its binary address, as an accepted socket's does.
  auto addr = net_address::parse(remote_address, true);
  sockaddr_storage ss{};
  if (addr && addr->type() == net_address::kind::ipv4
      && addr->to_sockaddr(ss)) {
    auto ip = ntohl(reinterpret_cast<const sockaddr_in&>(ss).sin_addr.s_addr);
    return std::make_shared<connection>(-1, std::move(remote_address), ip);
  }
  return std::make_shared<connection>(-1, std::move(remote_address));
}

} // namespace connmgr
