#include "actors/node_machine.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "messages/error_code.hpp"
#include "messages/manager_config.hpp"

namespace connmgr {

node_effects::~node_effects() {
  // nop
}

std::string to_string(drop_reason x) {
  switch (x) {
    case drop_reason::self:
      return "self";
    case drop_reason::duplicate:
      return "duplicate";
    case drop_reason::protocol:
      return "protocol";
    case drop_reason::handshake_timeout:
      return "handshake_timeout";
    case drop_reason::ping_timeout:
      return "ping_timeout";
  }
  return "unknown";
}

node_machine::node_machine(node_machine_config cfg, node_effects& fx)
  : cfg_(cfg), fx_(fx) {
  // nop
}

void node_machine::opened(uint64_t peer, bool outbound,
                          std::string remote_address, time_point now) {
  auto [i, added] = peers_.try_emplace(peer);
  if (!added)
    return;
  auto& p = i->second;
  p.outbound = outbound;
  p.remote_address = std::move(remote_address);
  p.opened_at = now;
  p.deadline = now + cfg_.handshake_timeout;
  fx_.send(peer, node_frames::hello{cfg_.node_id, cfg_.listen_port});
  fx_.arm_timer(peer, p.deadline);
}

void node_machine::received(uint64_t peer, const uint8_t* data, size_t size,
                            time_point now) {
  while (size > 0) {
    auto i = peers_.find(peer);
    if (i == peers_.end())
      return;
    auto& p = i->second;
    auto taken = p.reader.feed(data, size);
    data += taken;
    size -= taken;
    // Drain every frame the reader holds before feeding it more.
    while (auto next = p.reader.next()) {
      if (!*next) {
        drop(peer, drop_reason::protocol, std::move(next->error()));
        return;
      }
      on_frame(peer, p, **next, now);
      if (peers_.count(peer) == 0)
        return;
    }
    if (taken == 0 && size > 0)
      return; // defensive: the reader refused bytes without an error
  }
}

bool node_machine::closed(uint64_t peer) {
  auto i = peers_.find(peer);
  if (i == peers_.end())
    return false;
  if (i->second.ready) {
    auto j = by_node_.find(i->second.node_id);
    if (j != by_node_.end() && j->second == peer)
      by_node_.erase(j);
  }
  peers_.erase(i);
  return true;
}

void node_machine::timer_fired(uint64_t peer, time_point now) {
  auto i = peers_.find(peer);
  if (i == peers_.end() || now < i->second.deadline)
    return;
  auto& p = i->second;
  if (!p.ready) {
    drop(peer, drop_reason::handshake_timeout,
         make_error(errc::timed_out,
                    fmt::format("no hello from {} within {}", p.remote_address,
                                to_string_duration(cfg_.handshake_timeout))));
    return;
  }
  if (p.awaiting_pong) {
    drop(peer, drop_reason::ping_timeout,
         make_error(errc::timed_out,
                    fmt::format("no pong from {} within {}", p.remote_address,
                                to_string_duration(cfg_.ping_interval))));
    return;
  }
  auto nonce = ++next_nonce_;
  p.awaiting_pong = nonce;
  p.deadline = now + cfg_.ping_interval;
  fx_.send(peer, node_frames::ping{nonce});
  fx_.arm_timer(peer, p.deadline);
}

std::optional<uint64_t> node_machine::node_of(uint64_t peer) const {
  auto i = peers_.find(peer);
  if (i == peers_.end() || !i->second.ready)
    return std::nullopt;
  return i->second.node_id;
}

void node_machine::on_frame(uint64_t key, peer_state& p,
                            node_frames::frame& msg, time_point now) {
  if (auto hello = std::get_if<node_frames::hello>(&msg)) {
    if (p.ready) {
      drop(key, drop_reason::protocol,
           make_error(errc::connection_closed, "protocol: second hello"));
      return;
    }
    on_hello(key, p, *hello, now);
    return;
  }
  if (!p.ready) {
    drop(key, drop_reason::protocol,
         make_error(errc::connection_closed,
                    "protocol: message before the hello"));
    return;
  }
  if (auto ping = std::get_if<node_frames::ping>(&msg)) {
    fx_.send(key, node_frames::pong{ping->nonce});
  } else if (auto pong = std::get_if<node_frames::pong>(&msg)) {
    // A pong for an older ping (or none) is harmless and changes nothing.
    if (p.awaiting_pong == pong->nonce)
      p.awaiting_pong.reset();
  } else if (auto addr = std::get_if<node_frames::addr>(&msg)) {
    if (!addr->addresses.empty())
      fx_.learned(key, std::move(addr->addresses));
  }
}

void node_machine::on_hello(uint64_t key, peer_state& p,
                            const node_frames::hello& msg, time_point now) {
  if (msg.node_id == cfg_.node_id) {
    drop(key, drop_reason::self,
         make_error(errc::connection_closed,
                    fmt::format("{} is this node itself", p.remote_address)));
    return;
  }
  p.node_id = msg.node_id;
  p.listen_address = listen_address_of(p, msg.listen_port);
  auto existing = by_node_.find(msg.node_id);
  if (existing != by_node_.end()) {
    auto other_key = existing->second;
    auto& other = peers_.at(other_key);
    auto text = fmt::format("already connected to node {:016x}", msg.node_id);
    if (keeps_first(other_key, other, key, p)) {
      drop(key, drop_reason::duplicate,
           make_error(errc::connection_closed, std::move(text)));
      return;
    }
    // `drop` erases `other` from `by_node_` and `peers_`; `p` stays valid
    // (std::map never moves its elements).
    drop(other_key, drop_reason::duplicate,
         make_error(errc::connection_closed, std::move(text)));
  }
  become_ready(key, p, now);
}

void node_machine::become_ready(uint64_t key, peer_state& p, time_point now) {
  p.ready = true;
  by_node_.emplace(p.node_id, key);
  p.deadline = now + cfg_.ping_interval;
  fx_.ready(key, p.node_id, p.listen_address);
  // Tell the newcomer whom we know first-hand, and everyone else about it.
  node_frames::addr known;
  for (auto& [node, other_key] : by_node_) {
    if (other_key == key)
      continue;
    auto& other = peers_.at(other_key);
    if (other.listen_address
        && known.addresses.size() < node_frames::max_addresses)
      known.addresses.push_back(*other.listen_address);
    if (p.listen_address)
      fx_.send(other_key, node_frames::addr{{*p.listen_address}});
  }
  if (!known.addresses.empty())
    fx_.send(key, known);
  fx_.arm_timer(key, p.deadline);
}

void node_machine::drop(uint64_t key, drop_reason why, caf::error reason) {
  if (!closed(key))
    return;
  fx_.drop(key, why, reason);
}

std::optional<net_address>
node_machine::listen_address_of(const peer_state& p, uint16_t port) const {
  if (port == 0)
    return std::nullopt;
  auto remote = net_address::parse(p.remote_address);
  if (!remote)
    return std::nullopt;
  auto text = remote->type() == net_address::kind::ipv6
                ? fmt::format("[{}]:{}", remote->host(), port)
                : fmt::format("{}:{}", remote->host(), port);
  auto result = net_address::parse(text);
  if (!result)
    return std::nullopt;
  return std::move(*result);
}

bool node_machine::keeps_first(uint64_t first_key, const peer_state& first,
                               uint64_t second_key,
                               const peer_state& second) const {
  // Both ends must pick the same connection without talking: prefer the one
  // dialed by the smaller node id, which both ends can tell.
  auto remote = second.node_id;
  auto preferred = std::min(cfg_.node_id, remote);
  auto initiator = [&](const peer_state& p) {
    return p.outbound ? cfg_.node_id : remote;
  };
  bool first_preferred = initiator(first) == preferred;
  bool second_preferred = initiator(second) == preferred;
  if (first_preferred != second_preferred)
    return first_preferred;
  // Same dialer both times: keep the older one.
  if (first.opened_at != second.opened_at)
    return first.opened_at < second.opened_at;
  return first_key < second_key;
}

} // namespace connmgr
