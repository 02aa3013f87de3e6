#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include <netinet/in.h>
#include <sys/socket.h>

#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/meta/load_callback.hpp>
#include <caf/meta/type_name.hpp>

namespace connmgr {

/// A dialable or listenable address: an IPv4 or IPv6 literal or a host name,
/// plus a port.
///
/// Every value is canonical: two addresses that name the same endpoint in the
/// same way compare equal, and `parse(to_string())` gives back an equal value
/// (with `allow_port_zero` when the port is 0). The type applies no policy
/// (nothing about which addresses are routable, banned or preferred); it only
/// guarantees that what it holds is well formed.
class net_address {
public:
  /// What the host part is. IPv4-mapped IPv6 addresses are `ipv6`.
  enum class kind : uint8_t { ipv4, ipv6, hostname };

  /// The IPv4 wildcard "0.0.0.0:0": an IP address, not a loopback, printing
  /// as "0.0.0.0:0" and equal to `parse("0.0.0.0:0", true)`. It stands for
  /// "no address yet"; it is not dialable, and binding to it listens on every
  /// interface at an ephemeral port.
  net_address() = default;

  /// Parses "1.2.3.4:8333", "[::1]:8333", "[2001:db8::1]:8333" or
  /// "seed.example.org:8333" strictly: input that some other parser would read
  /// differently (octal-looking octets, unbracketed IPv6, zone ids, numeric
  /// host names, whitespace) is refused rather than guessed at.
  ///
  /// The port must be 1..65535, or 0..65535 with `allow_port_zero` (for
  /// listening on an ephemeral port). Host names are lower-cased and lose one
  /// trailing dot; IPv6 literals are re-printed as `inet_ntop` prints them.
  ///
  /// On failure returns `errc::invalid_address` whose context starts with the
  /// quoted input and says what was wrong and what was expected, e.g.
  /// `"1.2.3.4:99999": port 99999 out of range, expected 1..65535`.
  static caf::expected<net_address> parse(std::string_view text,
                                          bool allow_port_zero = false);

  /// Converts an `AF_INET` or `AF_INET6` socket address of `len` bytes, as
  /// `accept`, `getpeername` or `getsockname` fill it. Any port, 0 included,
  /// is taken as the operating system reports it. IPv4-mapped IPv6 addresses
  /// stay IPv6. Fails with `errc::invalid_address` for a null pointer, a
  /// length too short for the family, another family, or an IPv6 address with
  /// a scope id (zone ids are not representable, see `parse`).
  static caf::expected<net_address> from_sockaddr(const sockaddr* sa,
                                                  socklen_t len);

  /// Whether the host is an IPv4 literal, an IPv6 literal or a host name.
  kind type() const noexcept {
    return kind_;
  }

  /// The canonical host text: "1.2.3.4", "::1" (no brackets, as `inet_ntop`
  /// prints it) or "example.org" (lower case, no trailing dot).
  const std::string& host() const noexcept {
    return host_;
  }

  /// The port in host byte order; 0 only where the value allowed it.
  uint16_t port() const noexcept {
    return port_;
  }

  /// True for IPv4 and IPv6 literals, i.e. exactly when `to_sockaddr` works.
  bool is_ip() const noexcept {
    return kind_ != kind::hostname;
  }

  /// True for 127.0.0.0/8 and ::1 only. Host names (even "localhost") are not
  /// resolved here and never count; neither do IPv4-mapped forms such as
  /// ::ffff:127.0.0.1.
  bool is_loopback() const noexcept;

  /// "1.2.3.4:8333", "[::1]:8333" or "example.org:8333"; parsing the result
  /// gives back an equal value.
  std::string to_string() const;

  /// For IP literals, writes a zero-padded `sockaddr_in` or `sockaddr_in6`
  /// (port in network byte order) into `out` and returns its length. For host
  /// names, fails with `errc::invalid_address` saying the name needs
  /// resolving; `out` is then left untouched.
  caf::expected<socklen_t> to_sockaddr(sockaddr_storage& out) const;

  /// Same kind, same host and same port.
  friend bool operator==(const net_address& x, const net_address& y);

  /// Negation of `==`.
  friend bool operator!=(const net_address& x, const net_address& y);

  /// A strict total order consistent with `==`, for ordered containers: by
  /// kind (IPv4, IPv6, host name), then numerically by IP address or
  /// lexicographically by host name, then by port.
  friend bool operator<(const net_address& x, const net_address& y);

private:
  net_address(kind k, const std::array<uint8_t, 16>& bytes, std::string host,
              uint16_t port_number);

  kind kind_ = kind::ipv4;
  /// The IP address in network byte order (IPv4 in the first four bytes);
  /// all zero for host names. Kept so `to_sockaddr` and the ordering need no
  /// reparsing of `host_`.
  std::array<uint8_t, 16> bytes_{};
  std::string host_ = "0.0.0.0";
  uint16_t port_ = 0;
};

/// Same as `x.to_string()`; found by ADL, so CAF and fmt-based logging can
/// print addresses.
std::string to_string(const net_address& x);

/// "1.2.3.4:5678" for the IPv4 address `ip` and `port` (both in host byte
/// order), the text `net_address::to_string` gives, without building a
/// `net_address`: for paths that run once per connection.
std::string ipv4_to_string(uint32_t ip, uint16_t port);

/// Lets a `net_address` travel in CAF messages. It crosses the wire as its
/// text form and is re-parsed on arrival (with port 0 allowed), so a
/// deserialized value is as well formed as a parsed one: malformed input
/// fails deserialization with `errc::invalid_address` instead of producing a
/// value that `parse` would have refused.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, net_address& x) {
  std::string text;
  if constexpr (Inspector::reads_state)
    text = x.to_string();
  auto reparse = caf::meta::load_callback([&]() -> caf::error {
    auto parsed = net_address::parse(text, true);
    if (!parsed)
      return std::move(parsed.error());
    x = std::move(*parsed);
    return caf::none;
  });
  return f(caf::meta::type_name("net_address"), text, reparse);
}

} // namespace connmgr
