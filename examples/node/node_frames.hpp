#pragma once

// The wire codec of the example node's peer protocol: pure functions over
// byte buffers, no sockets. Every frame is
//
//   "CMGR" (4 bytes) | type (1 byte) | payload length (4 bytes, big endian) |
//   payload (0..65536 bytes)
//
// and carries exactly one message:
//
//   type 1, hello: node_id (8 bytes BE), listen_port (2 bytes BE)
//   type 2, addr:  count (2 bytes BE, at most 1000), then per entry a
//                  length byte (1..255) and the address text
//   type 3, ping:  nonce (8 bytes BE)
//   type 4, pong:  nonce (8 bytes BE)
//   type 5, getaddr: no payload
//
// Wire-format violations fail as `errc::connection_closed` with a context
// starting "protocol: "; an addr entry whose text `net_address::parse`
// refuses fails as `errc::invalid_address`.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <variant>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "connmgr/net/net_address.hpp"
#include "connmgr/net/parse_result.hpp"

namespace connmgr::node_frames {

/// The four bytes every frame starts with.
constexpr uint8_t magic[4] = {'C', 'M', 'G', 'R'};

/// Length of the fixed frame header: magic, type byte, payload length.
constexpr size_t header_size = 9;

/// The largest payload a frame may carry (64 KiB).
constexpr size_t max_payload_size = 65536;

/// The largest whole frame: header plus the largest payload.
constexpr size_t max_frame_size = header_size + max_payload_size;

/// The most entries one addr message may carry.
constexpr size_t max_addresses = 1000;

/// The longest address text one addr entry may carry.
constexpr size_t max_address_text = 255;

/// The type byte of each message on the wire.
enum class message_type : uint8_t {
  hello = 1,
  addr = 2,
  ping = 3,
  pong = 4,
  getaddr = 5
};

/// The first message on a connection: who the sender is and where it accepts
/// connections.
struct hello {
  /// The sender's node id.
  uint64_t node_id = 0;
  /// The port the sender listens on; 0 when it accepts no connections.
  uint16_t listen_port = 0;

  /// Equal when both fields agree.
  friend bool operator==(const hello& x, const hello& y) {
    return x.node_id == y.node_id && x.listen_port == y.listen_port;
  }
  /// The negation of `==`.
  friend bool operator!=(const hello& x, const hello& y) {
    return !(x == y);
  }
};

/// Peer addresses the sender knows of, for the receiver's address book.
struct addr {
  /// At most `max_addresses` entries, each with a nonzero port and a text
  /// form of at most `max_address_text` bytes.
  std::vector<net_address> addresses;

  /// Equal when both lists hold the same addresses in the same order.
  friend bool operator==(const addr& x, const addr& y) {
    return x.addresses == y.addresses;
  }
  /// The negation of `==`.
  friend bool operator!=(const addr& x, const addr& y) {
    return !(x == y);
  }
};

/// A liveness probe; the receiver answers with a `pong` of the same nonce.
struct ping {
  /// Chosen by the sender to match the answer to the probe.
  uint64_t nonce = 0;

  /// Equal when the nonces agree.
  friend bool operator==(const ping& x, const ping& y) {
    return x.nonce == y.nonce;
  }
  /// The negation of `==`.
  friend bool operator!=(const ping& x, const ping& y) {
    return !(x == y);
  }
};

/// The answer to a `ping`.
struct pong {
  /// The nonce of the `ping` being answered.
  uint64_t nonce = 0;

  /// Equal when the nonces agree.
  friend bool operator==(const pong& x, const pong& y) {
    return x.nonce == y.nonce;
  }
  /// The negation of `==`.
  friend bool operator!=(const pong& x, const pong& y) {
    return !(x == y);
  }
};

/// A request for the receiver's first-hand addresses (an `addr` answers
/// it); sent by a node that has no address left to dial.
struct getaddr {
  /// Always equal: the request carries nothing.
  friend bool operator==(const getaddr&, const getaddr&) {
    return true;
  }
  /// The negation of `==`.
  friend bool operator!=(const getaddr&, const getaddr&) {
    return false;
  }
};

/// One message as it travels in one frame.
using frame = std::variant<hello, addr, ping, pong, getaddr>;

// `decode` reports through the shared `parse_status` / `parse_result`.
using connmgr::parse_result;
using connmgr::parse_status;

/// Checks that `x` can be encoded and would decode again: an addr message
/// with more than `max_addresses` entries, or whose payload would exceed
/// `max_payload_size`, fails as `errc::connection_closed` ("protocol: ...");
/// an entry with port 0 or a text form longer than `max_address_text` bytes
/// fails as `errc::invalid_address`. Other messages always pass.
caf::error validate(const frame& x);

/// The whole frame for `x`, header included. Returns an empty vector (never
/// a valid frame) when `validate(x)` fails.
std::vector<uint8_t> encode(const frame& x);

/// Decodes the frame at the start of `data` (`size` bytes, `data` may be null
/// when `size` is 0). Asks for the 9-byte header first, then for the whole
/// frame; checks magic, type and length as soon as the header is in, so a bad
/// header fails without waiting for its payload. On `done`, `consumed` bytes
/// belong to the frame and any rest is the next frame's.
parse_result<frame> decode(const uint8_t* data, size_t size);

/// Cuts a byte stream into frames. It holds at most one frame: `feed` takes
/// only the bytes the current frame still lacks, and the caller hands the
/// rest over after `next` has yielded that frame.
class frame_reader {
public:
  /// Takes up to `size` bytes from `data`, stopping where the current frame
  /// ends or as soon as its header turns out malformed. Returns how many were
  /// taken; fewer than `size` means `next` has a frame or an error to yield.
  /// Takes nothing while a frame or error is waiting, or after a failure.
  size_t feed(const uint8_t* data, size_t size);

  /// The next complete frame, or its error; `std::nullopt` while the frame
  /// is incomplete. After an error the stream is unusable: the reader keeps
  /// returning the same error and takes no more bytes.
  std::optional<caf::expected<frame>> next();

  /// How many more bytes the current frame needs at least; 0 while a frame or
  /// an error is waiting for `next`, or after a failure.
  size_t wanted() const;

  /// How many bytes are held right now (at most `max_frame_size`).
  size_t buffered() const noexcept {
    return buffer_.size();
  }

private:
  std::vector<uint8_t> buffer_;
  caf::error error_;
};

} // namespace connmgr::node_frames
