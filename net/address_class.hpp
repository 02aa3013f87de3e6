#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <caf/expected.hpp>

#include "connmgr/net/net_address.hpp"

namespace connmgr {

// -- address classes ---------------------------------------------------------

/// What kind of host a `net_address` names, as far as its text tells without
/// resolving anything. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
/// classified as the IPv4 address they carry.
enum class address_class : uint8_t {
  /// 0.0.0.0 and ::.
  unspecified,
  /// 127.0.0.0/8 and ::1.
  loopback,
  /// RFC 1918 (10/8, 172.16/12, 192.168/16) and RFC 4193 (fc00::/7).
  private_network,
  /// RFC 6598 carrier-grade NAT space, 100.64/10.
  shared,
  /// 169.254/16 and fe80::/10.
  link_local,
  /// 224/4 and ff00::/8.
  multicast,
  /// The limited broadcast address 255.255.255.255.
  broadcast,
  /// Other IPv4 space that is never a host on the internet: 0/8 (but
  /// 0.0.0.0) and 240/4 (but 255.255.255.255).
  reserved,
  /// Ranges set aside for examples: 192.0.2/24, 198.51.100/24,
  /// 203.0.113/24 and 2001:db8::/32.
  documentation,
  /// Every IP literal outside the ranges above.
  routable,
  /// A host name (not an IP literal); it is not resolved.
  hostname,
};

/// The class of `addr`'s host (its port plays no part). Total: every value,
/// host names included, has exactly one class.
address_class classify(const net_address& addr) noexcept;

/// A short, stable, lower-case name for `x`, fit for metric labels and
/// reasons: "unspecified", "loopback", "private", "shared", "link_local",
/// "multicast", "broadcast", "reserved", "documentation", "routable" or
/// "hostname". These names do not change between versions.
const char* to_string(address_class x) noexcept;

/// True exactly when `addr` is an IP literal (IPv4, IPv6 or IPv4-mapped
/// IPv6) that `classify` puts in `address_class::routable`, i.e. an address
/// a peer on the public internet could reach. Host names are never
/// publicly routable here, since nothing is resolved.
bool is_publicly_routable(const net_address& addr) noexcept;

// -- network groups ----------------------------------------------------------

/// The network an address belongs to for diversity decisions: the first
/// `bits` bits of its IP address together with its family, or, for a host
/// name, the name itself.
///
/// A small value type: equality, a strict total order and a hash
/// (`std::hash<netgroup>`) all agree, and two addresses fall in the same
/// group exactly when `netgroup_of` gives equal values for them with the same
/// bit counts. Groups made with different bit counts never compare equal.
class netgroup {
public:
  /// The family of the group. IPv4-mapped IPv6 addresses group as `ipv4`.
  enum class family : uint8_t { ipv4, ipv6, hostname };

  /// The IPv4 group 0.0.0.0/32 (the group of the default `net_address`
  /// with 32 bits); a placeholder, not a meaningful group.
  netgroup() = default;

  /// Whether the group is an IPv4 prefix, an IPv6 prefix or a host name.
  family type() const noexcept {
    return family_;
  }

  /// The prefix length in bits: 1..32 for IPv4, 1..128 for IPv6, 0 for a
  /// host name.
  unsigned bits() const noexcept {
    return bits_;
  }

  /// The prefix in network byte order with every bit past `bits()` zero
  /// (IPv4 in the first four bytes); all zero for a host name.
  const std::array<uint8_t, 16>& prefix() const noexcept {
    return prefix_;
  }

  /// The host name of a `hostname` group; empty otherwise.
  const std::string& name() const noexcept {
    return name_;
  }

  /// "10.1.0.0/16", "2001:db8::/32" or "seed.example.org".
  std::string to_string() const;

  /// A hash consistent with `==` (not keyed: do not use it where an
  /// attacker chooses the inputs and the buckets matter).
  size_t hash() const noexcept;

  /// Same family, same bit count, same prefix, same name.
  friend bool operator==(const netgroup& x, const netgroup& y) noexcept;

  /// Negation of `==`.
  friend bool operator!=(const netgroup& x, const netgroup& y) noexcept {
    return !(x == y);
  }

  /// A strict total order consistent with `==`: by family (IPv4, IPv6, host
  /// name), then bit count, then prefix bytes, then name.
  friend bool operator<(const netgroup& x, const netgroup& y) noexcept;

private:
  friend caf::expected<netgroup>
  netgroup_of(const net_address& addr, unsigned bits_ipv4, unsigned bits_ipv6);

  family family_ = family::ipv4;
  uint8_t bits_ = 32;
  std::array<uint8_t, 16> prefix_{};
  std::string name_;
};

/// The network group of `addr`: its first `bits_ipv4` bits for IPv4 and
/// IPv4-mapped IPv6 addresses, its first `bits_ipv6` bits for other IPv6
/// addresses, and its name for a host name (the port never counts). Fails
/// with `errc::invalid_config` naming the bad argument, e.g.
/// `invalid_config: netgroup bits_ipv4 = 0, expected 1..32`, when
/// `bits_ipv4` is outside 1..32 or `bits_ipv6` outside 1..128 (both are
/// checked, whatever the family of `addr`).
caf::expected<netgroup> netgroup_of(const net_address& addr,
                                    unsigned bits_ipv4 = 16,
                                    unsigned bits_ipv6 = 32);

/// Same as `x.to_string()`; found by ADL for logging.
std::string to_string(const netgroup& x);

/// Reads an IP prefix as the netgroup it names: "10.0.0.0/8",
/// "2001:db8::/32", or a bare address ("1.2.3.4", "::1") for a single host
/// (/32 or /128). An IPv4-mapped IPv6 prefix ("::ffff:10.0.0.0/104") is the
/// IPv4 prefix it carries. The address part is read as strictly as
/// `net_address::parse` reads it. Fails with `errc::invalid_address` naming
/// the input and what was expected: a host name, a prefix length outside
/// 1..32 (IPv4) or 1..128 (IPv6), or bits set past the prefix length (for
/// "10.1.2.3/8" the error names "10.0.0.0/8").
caf::expected<netgroup> parse_subnet(std::string_view text);

/// Whether IP literal `addr` lies in IP prefix `subnet` (families compared
/// as `netgroup_of` sees them). False for host names on either side.
bool contains(const netgroup& subnet, const net_address& addr) noexcept;

/// Reads the IP address of `addr` in network byte order into `out` (IPv4 in
/// the first four bytes, the rest zero) and returns true; returns false and
/// zeroes `out` for a host name.
bool ip_bytes(const net_address& addr, std::array<uint8_t, 16>& out) noexcept;

} // namespace connmgr

namespace std {

/// Hashes a `netgroup` with `netgroup::hash`, so it can key unordered
/// containers.
template <>
struct hash<connmgr::netgroup> {
  size_t operator()(const connmgr::netgroup& x) const noexcept {
    return x.hash();
  }
};

} // namespace std
