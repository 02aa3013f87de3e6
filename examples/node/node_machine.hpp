#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <caf/actor_clock.hpp>
#include <caf/error.hpp>
#include <caf/timespan.hpp>

#include "connmgr/actors/token_bucket.hpp"
#include "connmgr/net/net_address.hpp"
#include "examples/node/node_frames.hpp"

namespace connmgr {

/// Why a node closes a connection on its own.
enum class drop_reason : uint8_t {
  /// The hello carried our own node id: we dialed ourselves.
  self,
  /// We already hold a connection to that node; this one lost the tie-break.
  duplicate,
  /// The peer broke the wire format or the message order.
  protocol,
  /// No hello within the handshake timeout.
  handshake_timeout,
  /// No pong before the next ping was due.
  ping_timeout,
  /// The peer sent more frames than `peer_limits` allow.
  frame_rate,
  /// The peer sent more pings than `peer_limits` allow.
  ping_rate,
  /// The peer sent more addr frames than `peer_limits` allow.
  addr_rate,
  /// The peer did not read what we sent (`errc::slow_reader`).
  slow_reader,
};

/// "self", "duplicate", "protocol", "handshake_timeout", "ping_timeout",
/// "frame_rate", "ping_rate", "addr_rate" or "slow_reader".
std::string to_string(drop_reason x);

/// What one peer may make the node do: each limit is a token bucket (a rate
/// per second and a burst). A peer over the frame or ping limit is dropped
/// (`frame_rate`, `ping_rate`); addresses over the address limit are
/// ignored and reported (`node_effects::gossip_limited`), as Bitcoin Core
/// does; a peer over the addr frame limit is dropped (`addr_rate`).
struct peer_limits {
  /// Frames of any kind.
  double frames_per_second = 100;
  double frame_burst = 1000;
  /// Pings (each costs us a pong).
  double pings_per_second = 10;
  double ping_burst = 20;
  /// Addr frames: a peer tells of newcomers now and then; one that sends
  /// full frames as fast as the frame limit allows costs us a parse of
  /// each.
  double addr_frames_per_second = 1;
  double addr_frame_burst = 100;
  /// Gossiped addresses (Bitcoin Core's reference: 0.1 per second, a burst
  /// of 1000).
  double addresses_per_second = 0.1;
  double address_burst = 1000;
  /// A newcomer's listening address is relayed to at most this many other
  /// ready peers, so gossip costs the same whatever the peer count.
  size_t relay_fanout = 2;
  /// We send a peer a getaddr at most this often, and answer its getaddrs
  /// at most twice as often (so timer skew never makes us ignore an honest
  /// one); getaddrs beyond that are ignored. An answer costs us a list of up
  /// to `node_frames::max_addresses` entries.
  caf::timespan address_request_interval = std::chrono::seconds{5};
};

/// The node's own identity and protocol timing.
struct node_machine_config {
  /// Our node id, sent in every hello. Peers presenting it are ourselves.
  uint64_t node_id = 0;
  /// The port we accept connections on, sent in every hello; 0 if none.
  uint16_t listen_port = 0;
  /// A peer whose hello has not arrived this long after the connection
  /// opened is dropped.
  caf::timespan handshake_timeout = std::chrono::seconds{10};
  /// A ready peer gets a ping this often; when its pong is not back before
  /// the next ping is due it is dropped.
  caf::timespan ping_interval = std::chrono::seconds{30};
  /// Per-peer rate limits.
  peer_limits limits;
  /// Keys the choice of relays; secret, so that no peer can tell or steer
  /// whom an address reaches (the node id is public).
  uint64_t relay_secret = 0;
};

/// What the peer protocol asks the world to do. Implementations must not
/// call back into the machine from inside these functions.
class node_effects {
public:
  using time_point = caf::actor_clock::time_point;

  virtual ~node_effects();

  /// Send `msg` on the connection of `peer`.
  virtual void send(uint64_t peer, const node_frames::frame& msg) = 0;

  /// Close the connection of `peer` (the machine has forgotten it already).
  virtual void drop(uint64_t peer, drop_reason why,
                    const caf::error& reason) = 0;

  /// `peer` completed the hello: it is node `node_id`, and accepts
  /// connections at `listen_address` (unset when it announced port 0 or its
  /// host is unknown).
  virtual void ready(uint64_t peer, uint64_t node_id,
                     const std::optional<net_address>& listen_address) = 0;

  /// `peer` told us about `addresses`.
  virtual void learned(uint64_t peer, std::vector<net_address> addresses) = 0;

  /// Call `timer_fired(peer)` at `at` (or later).
  virtual void arm_timer(uint64_t peer, time_point at) = 0;

  /// `peer` gossiped `count` addresses beyond its address rate limit; they
  /// were ignored. Does nothing unless overridden.
  virtual void gossip_limited(uint64_t peer, size_t count);

  /// `peer` answered our ping after `rtt`. Does nothing unless overridden.
  virtual void ping_answered(uint64_t peer, caf::timespan rtt);
};

/// The decisions of the example node's peer protocol, without sockets,
/// threads or a clock: every input says what time it is, every output goes
/// through `node_effects`.
///
/// Protocol (frames from `node_frames`):
/// - Both sides send a hello at once. Until the peer's hello arrives nothing
///   else is accepted (anything else is a protocol error), and it must come
///   within `handshake_timeout`.
/// - A hello with our own id drops the connection (`self`). A hello from a
///   node we already hold a ready connection to never displaces that
///   connection (anybody can claim any id): the new one is dropped
///   (`duplicate`), unless the two are a simultaneous open, i.e. the new one
///   opened before the held one's hello arrived. Then both sides keep the
///   same one: the one dialed by the smaller node id; if both were dialed by
///   the same side, the older one.
/// - Once ready, the peer gets an `addr` with the listening addresses of our
///   other ready peers (at most `node_frames::max_addresses`), and its own
///   listening address is relayed to at most `limits.relay_fanout` other
///   ready peers, chosen by a hash keyed with `relay_secret`. Addresses
///   learned from `addr` are handed on through `learned` but never relayed,
///   so gossip cannot circulate.
/// - A node that has no address left to dial sends its ready peers a
///   `getaddr` (`request_addresses`); a ready peer answers it with the same
///   list a newcomer gets, at most once per half
///   `limits.address_request_interval`. With relays reaching only a few
///   peers, this is how a node learns of a node that joined after it.
/// - Every peer is held to `config().limits` (see `peer_limits`).
/// - Every `ping_interval` a ready peer gets a ping; a peer whose pong for
///   the previous ping has not arrived by then is dropped (`ping_timeout`).
///   Pings are answered with a pong of the same nonce.
/// - A second hello, or bytes that do not decode, drop the peer (`protocol`).
class node_machine {
public:
  using time_point = caf::actor_clock::time_point;

  node_machine(node_machine_config cfg, node_effects& fx);

  /// A connection opened. `peer` is a key chosen by the caller, unique among
  /// open connections; `remote_address` is where it leads (the dialed
  /// address, or the address an inbound connection came from). Sends our
  /// hello and starts the handshake deadline.
  void opened(uint64_t peer, bool outbound, std::string remote_address,
              time_point now);

  /// Bytes arrived on `peer`. Unknown peers are ignored.
  void received(uint64_t peer, const uint8_t* data, size_t size,
                time_point now);

  /// The connection of `peer` ended (closed by the peer or by us); forgets
  /// it. Returns whether it was known.
  bool closed(uint64_t peer);

  /// The timer armed for `peer` is due. Stale timers are ignored.
  void timer_fired(uint64_t peer, time_point now);

  /// We have no address left to dial: sends a getaddr to every ready peer
  /// not asked within `limits.address_request_interval`. Returns how many
  /// were asked.
  size_t request_addresses(time_point now);

  /// Connections whose hello was exchanged.
  size_t ready_count() const noexcept {
    return by_node_.size();
  }

  /// Open connections, ready or not.
  size_t open_count() const noexcept {
    return peers_.size();
  }

  /// The node id of `peer` once its hello arrived.
  std::optional<uint64_t> node_of(uint64_t peer) const;

  /// Frames `peer` sent us that were decoded (0 for an unknown peer).
  uint64_t frames_received(uint64_t peer) const;

  /// The configuration in effect.
  const node_machine_config& config() const noexcept {
    return cfg_;
  }

private:
  struct peer_state {
    bool outbound = false;
    std::string remote_address;
    time_point opened_at;
    /// When the hello arrived (ready).
    time_point ready_at;
    bool ready = false;
    uint64_t node_id = 0;
    std::optional<net_address> listen_address;
    node_frames::frame_reader reader;
    /// The handshake deadline, then the time the next ping is due.
    time_point deadline;
    /// The nonce of the ping whose pong we still wait for, and when it
    /// went out.
    std::optional<uint64_t> awaiting_pong;
    time_point ping_sent_at;
    token_bucket frames;
    token_bucket pings;
    token_bucket addr_frames;
    token_bucket addresses;
    /// When we last sent this peer a getaddr, and last answered one of its.
    std::optional<time_point> asked_at;
    std::optional<time_point> answered_at;
    uint64_t frames_received = 0;
  };

  void on_frame(uint64_t key, peer_state& p, node_frames::frame& msg,
                time_point now);
  void on_hello(uint64_t key, peer_state& p, const node_frames::hello& msg,
                time_point now);
  void become_ready(uint64_t key, peer_state& p, time_point now);
  void drop(uint64_t key, drop_reason why, caf::error reason);
  std::optional<net_address> listen_address_of(const peer_state& p,
                                               uint16_t port) const;
  bool keeps_first(uint64_t first_key, const peer_state& first,
                   uint64_t second_key, const peer_state& second) const;
  void relay(uint64_t newcomer, const net_address& addr);
  node_frames::addr first_hand_except(uint64_t key) const;

  node_machine_config cfg_;
  node_effects& fx_;
  std::map<uint64_t, peer_state> peers_;
  /// Ready peers by node id.
  std::unordered_map<uint64_t, uint64_t> by_node_;
  uint64_t next_nonce_ = 0;
};

} // namespace connmgr
