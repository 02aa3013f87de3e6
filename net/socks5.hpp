#pragma once

// The client side of SOCKS5 (RFC 1928) with username/password authentication
// (RFC 1929) and Tor's RESOLVE extension, as byte-level encoders and
// incremental decoders. Nothing here touches a socket: the reactor writes
// what the encoders return and feeds the decoders whatever it has read so
// far, so every decoder copes with a reply that arrives in pieces.
//
// Decisions the RFCs leave open, made once here:
// - With credentials we offer only method 0x02 (never 0x00 next to it), so a
//   proxy cannot fall back to no-auth: Tor isolates streams by the
//   credentials, and a silent fallback would mix circuits. Without
//   credentials we offer only 0x00. A proxy choosing a method we did not
//   offer is a protocol error.
// - The version byte of the RFC 1929 reply must be 0x01; 0x05 is tolerated
//   as well because some proxies echo the SOCKS version there, and the status
//   byte alone decides the outcome.
// - The reserved byte of a request reply is not checked: it carries no
//   meaning and the version byte already catches a peer that is not a SOCKS5
//   proxy.
// - A reply with a nonzero status fails as soon as the status byte is read,
//   without waiting for the address part: proxies often close right after a
//   short failure reply, and the status is all we need.
// - Requests are never pipelined: each is sent after the previous reply, so
//   proxies that do not support pipelining work too.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include "connmgr/net/parse_result.hpp"

namespace connmgr::socks5 {

/// A username/password pair for RFC 1929. Each part must be 1..255 bytes;
/// the encoders reject anything else with `errc::invalid_config` before a
/// byte is sent. With Tor, distinct pairs get distinct circuits.
struct credentials {
  /// The user name (UNAME), sent as is.
  std::string user;
  /// The password (PASSWD), sent as is.
  std::string password;
};

/// The address types of the wire format (ATYP); the values are the wire codes.
enum class address_type : uint8_t { ipv4 = 0x01, domain = 0x03, ipv6 = 0x04 };

/// A host and port as SOCKS5 carries them: the target of a CONNECT, or the
/// bound or resolved address of a reply.
struct address {
  /// Which of `ip` (IPv4: first 4 bytes, IPv6: all 16) or `domain` is used.
  address_type type = address_type::ipv4;
  /// Network byte order; bytes not used by `type` are zero.
  std::array<uint8_t, 16> ip{};
  /// The host name when `type == address_type::domain`, otherwise empty.
  std::string domain;
  /// In host byte order.
  uint16_t port = 0;

  /// An IPv4 address from its 4 bytes in network order.
  static address ipv4(const std::array<uint8_t, 4>& bytes, uint16_t port);

  /// An IPv6 address from its 16 bytes in network order.
  static address ipv6(const std::array<uint8_t, 16>& bytes, uint16_t port);

  /// A host name, unchecked here: the encoders reject names outside
  /// 1..255 bytes.
  static address name(std::string host, uint16_t port);

  /// Builds an address from text, e.g. what a parsed peer address holds:
  /// `host` is a dotted IPv4 literal, an IPv6 literal without brackets or
  /// zone, or a host name of 1..255 bytes, as `type` says. Anything else
  /// fails with `errc::invalid_address` naming the host.
  static caf::expected<address> from_text(address_type type,
                                          std::string_view host, uint16_t port);

  /// "1.2.3.4:80", "[2001:db8::1]:80" or "example.com:80".
  std::string to_string() const;

  /// Equal when type, the bytes `type` uses (or the name) and port agree.
  friend bool operator==(const address& x, const address& y);
  /// The negation of `==`.
  friend bool operator!=(const address& x, const address& y) {
    return !(x == y);
  }
};

// Decoders report through the shared `parse_status` / `parse_result`.
using connmgr::parse_result;
using connmgr::parse_status;

/// The method codes of the greeting (RFC 1928 section 3).
namespace method {
/// No authentication required.
constexpr uint8_t no_auth = 0x00;
/// Username/password, RFC 1929.
constexpr uint8_t user_password = 0x02;
/// The proxy's answer when none of the offered methods is acceptable.
constexpr uint8_t none_acceptable = 0xFF;
} // namespace method

/// The client greeting: `05 01 00` without credentials, `05 01 02` with
/// them (only one method is ever offered, see the top of this file).
std::vector<uint8_t> greeting(bool with_credentials);

/// Decodes the 2-byte method selection reply. Done with the chosen method
/// only if it is the one `greeting(with_credentials)` offered; fails with
/// `errc::proxy_failed` on a version byte other than 0x05, on 0xFF (no
/// acceptable method) or on a method we did not offer.
parse_result<uint8_t> parse_method_reply(const uint8_t* data, size_t size,
                                         bool with_credentials);

/// The RFC 1929 request `01 ulen user plen password`. Fails with
/// `errc::invalid_config` if the user name or password is empty or longer
/// than 255 bytes.
caf::expected<std::vector<uint8_t>> auth_request(const credentials& creds);

/// Decodes the 2-byte RFC 1929 reply. Done (with an empty value) only on
/// status 0x00; fails with `errc::proxy_failed` on any other status and on a
/// version byte other than 0x01 or 0x05.
parse_result<std::monostate> parse_auth_reply(const uint8_t* data, size_t size);

/// The CONNECT request `05 01 00 atyp addr port` for `target`. Fails with
/// `errc::invalid_address` if `target` is a host name outside 1..255 bytes
/// or has an unknown type.
caf::expected<std::vector<uint8_t>> connect_request(const address& target);

/// Decodes a CONNECT reply (10 bytes for IPv4, 22 for IPv6, 7 + length for a
/// name). Done with the proxy's bound address on status 0x00. Fails with
/// status 0x03/0x04 as `errc::unreachable`, 0x05 as `errc::refused`, 0x06 as
/// `errc::timed_out` and every other status as `errc::proxy_failed`, the
/// context reading e.g. "socks5 reply 0x05: connection refused"; malformed
/// replies (version byte, address type, empty name) fail as
/// `errc::proxy_failed` with a context naming the fault.
parse_result<address> parse_connect_reply(const uint8_t* data, size_t size);

/// Tor's RESOLVE request `05 F0 00 03 len name 00 00`. Fails with
/// `errc::invalid_address` if `host` is empty or longer than 255 bytes.
caf::expected<std::vector<uint8_t>> resolve_request(std::string_view host);

/// Decodes a RESOLVE reply: shaped like a CONNECT reply, with the resolved
/// IPv4 or IPv6 address in place of the bound address (its port is whatever
/// the proxy sent, 0 for Tor). Status 0x04, Tor's "could not resolve", fails
/// as `errc::resolve_failed`, other statuses and malformed replies as for
/// `parse_connect_reply`; a host name in the answer is malformed.
parse_result<address> parse_resolve_reply(const uint8_t* data, size_t size);

/// One whole client exchange: greeting, method reply, optional RFC 1929
/// authentication, then a CONNECT or RESOLVE request and its reply. It owns
/// no socket: the caller writes `take_output()` whenever it is not empty and
/// passes every byte read to `feed` until the state is `done` or `failed`.
/// Deadlines are the caller's business; an incomplete reply is never an
/// error by itself.
class client_handshake {
public:
  /// Where the exchange stands.
  enum class status {
    /// Waiting for bytes from the proxy (after writing `take_output()`).
    need_more,
    /// The final reply arrived; `result()` holds its address.
    done,
    /// The proxy failed or broke the protocol; `error()` says how.
    failed,
  };

  /// What a call to `feed` did.
  struct progress {
    /// The state after the call.
    status state;
    /// How many of the given bytes were used. Less than given only when
    /// the state is `done` or `failed`: with `done`, the rest follows the
    /// final reply and belongs to the tunneled stream.
    size_t consumed;
  };

  /// An exchange that ends with a CONNECT to `target`; with `creds`, it
  /// authenticates first. Fails (before anything is sent) like
  /// `connect_request` and `auth_request` do.
  static caf::expected<client_handshake>
  connect(const address& target,
          std::optional<credentials> creds = std::nullopt);

  /// An exchange that ends with a Tor RESOLVE of `host`; `result()` is then
  /// the resolved IPv4 or IPv6 address. Fails (before anything is sent) like
  /// `resolve_request` and `auth_request` do.
  static caf::expected<client_handshake>
  resolve(std::string_view host,
          std::optional<credentials> creds = std::nullopt);

  /// Hands over the bytes to send now and forgets them; empty when nothing
  /// is due. The greeting is due right after construction, each later
  /// request once the reply before it has been fed.
  std::vector<uint8_t> take_output();

  /// Consumes bytes received from the proxy, never more than the current
  /// reply needs, so bytes after the final reply are left to the caller.
  /// May complete several steps at once. After `done` or `failed` it
  /// consumes nothing.
  progress feed(const uint8_t* data, size_t size);

  /// The current state.
  status state() const noexcept {
    return state_;
  }

  /// How many more bytes the current reply needs at least (0 once `done` or
  /// `failed`). Reading exactly this many never reads past the final reply.
  size_t wanted() const noexcept;

  /// The CONNECT's bound address or the RESOLVE's answer; meaningful only
  /// once `done`.
  const address& result() const noexcept {
    return result_;
  }

  /// Why the exchange failed; meaningful only once `failed`.
  const caf::error& error() const noexcept {
    return error_;
  }

private:
  enum class step { method, auth, request };

  client_handshake() = default;

  void queue(const std::vector<uint8_t>& bytes);

  bool resolve_ = false;
  std::optional<std::vector<uint8_t>> auth_;
  std::vector<uint8_t> request_;
  std::vector<uint8_t> output_;
  std::vector<uint8_t> input_;
  step step_ = step::method;
  status state_ = status::need_more;
  size_t need_ = 2;
  address result_;
  caf::error error_;
};

} // namespace connmgr::socks5
