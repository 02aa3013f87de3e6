#include "examples/node/node_machine.hpp"

#include <algorithm>
#include <functional>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

node_effects::~node_effects() {
  // nop
}

void node_effects::gossip_limited(uint64_t, size_t) {
  // nop
}

void node_effects::ping_answered(uint64_t, caf::timespan) {
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
    case drop_reason::frame_rate:
      return "frame_rate";
    case drop_reason::ping_rate:
      return "ping_rate";
    case drop_reason::addr_rate:
      return "addr_rate";
    case drop_reason::slow_reader:
      return "slow_reader";
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
  auto& lim = cfg_.limits;
  p.frames = token_bucket{lim.frames_per_second, lim.frame_burst, now};
  p.pings = token_bucket{lim.pings_per_second, lim.ping_burst, now};
  p.addr_frames =
    token_bucket{lim.addr_frames_per_second, lim.addr_frame_burst, now};
  p.addresses = token_bucket{lim.addresses_per_second, lim.address_burst, now};
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
  p.ping_sent_at = now;
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

uint64_t node_machine::frames_received(uint64_t peer) const {
  auto i = peers_.find(peer);
  return i == peers_.end() ? 0 : i->second.frames_received;
}

void node_machine::on_frame(uint64_t key, peer_state& p,
                            node_frames::frame& msg, time_point now) {
  ++p.frames_received;
  if (!p.frames.take(1, now)) {
    drop(key, drop_reason::frame_rate,
         make_error(errc::connection_closed,
                    fmt::format("{} sent more than {} frames at {}/s",
                                p.remote_address, cfg_.limits.frame_burst,
                                cfg_.limits.frames_per_second)));
    return;
  }
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
    if (!p.pings.take(1, now)) {
      drop(key, drop_reason::ping_rate,
           make_error(errc::connection_closed,
                      fmt::format("{} sent more than {} pings at {}/s",
                                  p.remote_address, cfg_.limits.ping_burst,
                                  cfg_.limits.pings_per_second)));
      return;
    }
    fx_.send(key, node_frames::pong{ping->nonce});
  } else if (std::holds_alternative<node_frames::getaddr>(msg)) {
    auto every = cfg_.limits.address_request_interval / 2;
    if (p.answered_at && now - *p.answered_at < every)
      return; // asked too often: the frame limit bounds what this costs
    p.answered_at = now;
    if (auto known = first_hand_except(key); !known.addresses.empty())
      fx_.send(key, known);
  } else if (auto pong = std::get_if<node_frames::pong>(&msg)) {
    // A pong for an older ping (or none) is harmless and changes nothing.
    if (p.awaiting_pong == pong->nonce) {
      p.awaiting_pong.reset();
      fx_.ping_answered(key, now - p.ping_sent_at);
    }
  } else if (auto addr = std::get_if<node_frames::addr>(&msg)) {
    if (!p.addr_frames.take(1, now)) {
      drop(
        key, drop_reason::addr_rate,
        make_error(errc::connection_closed,
                   fmt::format("{} sent more than {} addr frames at {}/s",
                               p.remote_address, cfg_.limits.addr_frame_burst,
                               cfg_.limits.addr_frames_per_second)));
      return;
    }
    auto& list = addr->addresses;
    auto allowed = p.addresses.take_up_to(list.size(), now);
    if (allowed < list.size()) {
      fx_.gossip_limited(key, list.size() - allowed);
      list.resize(allowed);
    }
    if (!list.empty())
      fx_.learned(key, std::move(list));
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
    // Only a simultaneous open may replace the held connection (the two
    // handshakes overlapped): anybody can claim an id, and an established
    // peer must not be displaced by it.
    bool simultaneous = p.opened_at <= other.ready_at;
    if (!simultaneous || keeps_first(other_key, other, key, p)) {
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
  p.ready_at = now;
  by_node_.emplace(p.node_id, key);
  p.deadline = now + cfg_.ping_interval;
  fx_.ready(key, p.node_id, p.listen_address);
  // Tell the newcomer whom we know first-hand, and a few others about it.
  if (auto known = first_hand_except(key); !known.addresses.empty())
    fx_.send(key, known);
  if (p.listen_address)
    relay(key, *p.listen_address);
  fx_.arm_timer(key, p.deadline);
}

node_frames::addr node_machine::first_hand_except(uint64_t key) const {
  node_frames::addr known;
  for (auto& [node, other_key] : by_node_) {
    if (other_key == key)
      continue;
    auto& other = peers_.at(other_key);
    if (other.listen_address
        && known.addresses.size() < node_frames::max_addresses)
      known.addresses.push_back(*other.listen_address);
  }
  return known;
}

size_t node_machine::request_addresses(time_point now) {
  size_t asked = 0;
  for (auto& [key, p] : peers_) {
    if (!p.ready
        || (p.asked_at
            && now - *p.asked_at < cfg_.limits.address_request_interval))
      continue;
    p.asked_at = now;
    fx_.send(key, node_frames::getaddr{});
    ++asked;
  }
  return asked;
}

void node_machine::relay(uint64_t newcomer, const net_address& addr) {
  auto fanout = cfg_.limits.relay_fanout;
  if (fanout == 0)
    return;
  // The peers with the highest keyed scores: a peer cannot tell whom else
  // an address reaches, and nobody picks the relays by connecting often.
  auto seed = std::hash<std::string>{}(addr.to_string()) ^ cfg_.relay_secret;
  auto score = [seed](uint64_t key) {
    auto x = seed + key * 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
  };
  std::vector<std::pair<uint64_t, uint64_t>> best; // (score, key)
  for (auto& [node, other_key] : by_node_) {
    if (other_key == newcomer)
      continue;
    best.emplace_back(score(other_key), other_key);
  }
  auto count = std::min(fanout, best.size());
  std::partial_sort(best.begin(), best.begin() + static_cast<ptrdiff_t>(count),
                    best.end(), std::greater<>{});
  for (size_t i = 0; i < count; ++i)
    fx_.send(best[i].second, node_frames::addr{{addr}});
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
