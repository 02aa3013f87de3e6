#include "connmgr/net/address_class.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

// The prefix ::ffff:0:0/96 of IPv4-mapped IPv6 addresses.
bool is_v4_mapped(const std::array<uint8_t, 16>& b) noexcept {
  for (size_t i = 0; i < 10; ++i)
    if (b[i] != 0)
      return false;
  return b[10] == 0xff && b[11] == 0xff;
}

address_class classify_v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) noexcept {
  if (a == 0)
    return (b | c | d) == 0 ? address_class::unspecified
                            : address_class::reserved;
  if (a == 127)
    return address_class::loopback;
  if (a == 10 || (a == 172 && (b & 0xf0) == 16) || (a == 192 && b == 168))
    return address_class::private_network;
  if (a == 100 && (b & 0xc0) == 64)
    return address_class::shared;
  if (a == 169 && b == 254)
    return address_class::link_local;
  if ((a == 192 && b == 0 && c == 2) || (a == 198 && b == 51 && c == 100)
      || (a == 203 && b == 0 && c == 113))
    return address_class::documentation;
  if ((a & 0xf0) == 224)
    return address_class::multicast;
  if (a == 255 && b == 255 && c == 255 && d == 255)
    return address_class::broadcast;
  if ((a & 0xf0) == 240)
    return address_class::reserved;
  return address_class::routable;
}

address_class classify_v6(const std::array<uint8_t, 16>& b) noexcept {
  if (is_v4_mapped(b))
    return classify_v4(b[12], b[13], b[14], b[15]);
  bool zero_head =
    std::all_of(b.begin(), b.begin() + 15, [](uint8_t x) { return x == 0; });
  if (zero_head && b[15] == 0)
    return address_class::unspecified;
  if (zero_head && b[15] == 1)
    return address_class::loopback;
  if ((b[0] & 0xfe) == 0xfc)
    return address_class::private_network;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80)
    return address_class::link_local;
  if (b[0] == 0xff)
    return address_class::multicast;
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
    return address_class::documentation;
  return address_class::routable;
}

// Keeps the first `bits` bits of `b` and clears the rest.
void keep_prefix(std::array<uint8_t, 16>& b, unsigned bits) noexcept {
  for (size_t i = 0; i < b.size(); ++i) {
    auto first_bit = static_cast<unsigned>(i) * 8;
    if (first_bit >= bits)
      b[i] = 0;
    else if (bits - first_bit < 8)
      b[i] = static_cast<uint8_t>(b[i] & (0xff << (8 - (bits - first_bit))));
  }
}

} // namespace

bool ip_bytes(const net_address& addr, std::array<uint8_t, 16>& out) noexcept {
  out.fill(0);
  if (!addr.is_ip())
    return false;
  sockaddr_storage ss;
  // Cannot fail for an IP literal (see net_address::to_sockaddr).
  auto len = addr.to_sockaddr(ss);
  if (!len)
    return false;
  if (addr.type() == net_address::kind::ipv4) {
    sockaddr_in sin;
    std::memcpy(&sin, &ss, sizeof(sin));
    std::memcpy(out.data(), &sin.sin_addr, 4);
  } else {
    sockaddr_in6 sin6;
    std::memcpy(&sin6, &ss, sizeof(sin6));
    std::memcpy(out.data(), &sin6.sin6_addr, 16);
  }
  return true;
}

address_class classify(const net_address& addr) noexcept {
  std::array<uint8_t, 16> b;
  if (!ip_bytes(addr, b))
    return address_class::hostname;
  if (addr.type() == net_address::kind::ipv4)
    return classify_v4(b[0], b[1], b[2], b[3]);
  return classify_v6(b);
}

const char* to_string(address_class x) noexcept {
  switch (x) {
    case address_class::unspecified:
      return "unspecified";
    case address_class::loopback:
      return "loopback";
    case address_class::private_network:
      return "private";
    case address_class::shared:
      return "shared";
    case address_class::link_local:
      return "link_local";
    case address_class::multicast:
      return "multicast";
    case address_class::broadcast:
      return "broadcast";
    case address_class::reserved:
      return "reserved";
    case address_class::documentation:
      return "documentation";
    case address_class::routable:
      return "routable";
    case address_class::hostname:
      return "hostname";
  }
  return "unknown";
}

bool is_publicly_routable(const net_address& addr) noexcept {
  return classify(addr) == address_class::routable;
}

// -- netgroup ------------------------------------------------------------------

caf::expected<netgroup> netgroup_of(const net_address& addr, unsigned bits_ipv4,
                                    unsigned bits_ipv6) {
  if (bits_ipv4 < 1 || bits_ipv4 > 32)
    return make_error(
      errc::invalid_config,
      fmt::format("netgroup bits_ipv4 = {}, expected 1..32", bits_ipv4));
  if (bits_ipv6 < 1 || bits_ipv6 > 128)
    return make_error(
      errc::invalid_config,
      fmt::format("netgroup bits_ipv6 = {}, expected 1..128", bits_ipv6));
  netgroup result;
  std::array<uint8_t, 16> b;
  if (!ip_bytes(addr, b)) {
    result.family_ = netgroup::family::hostname;
    result.bits_ = 0;
    result.name_ = addr.host();
    return result;
  }
  if (addr.type() == net_address::kind::ipv6 && is_v4_mapped(b)) {
    std::memmove(b.data(), b.data() + 12, 4);
    std::fill(b.begin() + 4, b.end(), uint8_t{0});
    result.family_ = netgroup::family::ipv4;
  } else if (addr.type() == net_address::kind::ipv6) {
    result.family_ = netgroup::family::ipv6;
  } else {
    result.family_ = netgroup::family::ipv4;
  }
  auto bits = result.family_ == netgroup::family::ipv4 ? bits_ipv4 : bits_ipv6;
  keep_prefix(b, bits);
  result.bits_ = static_cast<uint8_t>(bits);
  result.prefix_ = b;
  return result;
}

std::string netgroup::to_string() const {
  switch (family_) {
    case family::ipv4:
      return fmt::format("{}.{}.{}.{}/{}", prefix_[0], prefix_[1], prefix_[2],
                         prefix_[3], bits_);
    case family::ipv6: {
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(AF_INET6, prefix_.data(), buf, sizeof(buf));
      return fmt::format("{}/{}", buf, bits_);
    }
    case family::hostname:
      break;
  }
  return name_;
}

std::string to_string(const netgroup& x) {
  return x.to_string();
}

caf::expected<netgroup> parse_subnet(std::string_view text) {
  auto fail = [text](const std::string& why) {
    return make_error(errc::invalid_address,
                      fmt::format("\"{}\": {}", text, why));
  };
  static constexpr const char* expected_form =
    "expected an IPv4 or IPv6 address with an optional /bits, like "
    "10.0.0.0/8, 2001:db8::/32 or 1.2.3.4";
  auto slash = text.find('/');
  auto host = text.substr(0, slash);
  bool v6_text = host.find(':') != std::string_view::npos;
  auto form =
    v6_text ? "[" + std::string{host} + "]:1" : std::string{host} + ":1";
  auto addr = net_address::parse(form);
  if (!addr || !addr->is_ip())
    return fail(expected_form);
  auto full = netgroup_of(*addr, 32, 128);
  if (!full)
    return fail(expected_form);
  bool v4 = full->type() == netgroup::family::ipv4;
  // Mapped IPv4 is written with IPv6 bit counts: ::ffff:0:0/96 is IPv4 /0.
  unsigned offset = v4 && v6_text ? 96 : 0;
  unsigned max = v6_text ? 128 : 32;
  unsigned bits = max;
  if (slash != std::string_view::npos) {
    auto digits = text.substr(slash + 1);
    bool ok = !digits.empty() && digits.size() <= 3
      && (digits.size() == 1 || digits[0] != '0');
    unsigned value = 0;
    for (auto c : digits) {
      ok = ok && c >= '0' && c <= '9';
      value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (!ok || value <= offset || value > max)
      return fail(fmt::format("prefix length /{}, expected /{}..{}", digits,
                              offset + 1, max));
    bits = value;
  }
  auto group = netgroup_of(*addr, v4 ? bits - offset : 32, v4 ? 128 : bits);
  if (!group)
    return fail(expected_form);
  if (group->prefix() != full->prefix())
    return fail(
      fmt::format("bits set past /{}, expected {}", bits, group->to_string()));
  return group;
}

bool contains(const netgroup& subnet, const net_address& addr) noexcept {
  if (subnet.type() == netgroup::family::hostname)
    return false;
  bool v4 = subnet.type() == netgroup::family::ipv4;
  auto g = netgroup_of(addr, v4 ? subnet.bits() : 32, v4 ? 128 : subnet.bits());
  return g && *g == subnet;
}

size_t netgroup::hash() const noexcept {
  if (family_ == family::hostname)
    return std::hash<std::string>{}(name_) ^ 0x9e3779b97f4a7c15ULL;
  // FNV-1a over family, bits and prefix: cheap and good enough for an
  // unkeyed container hash.
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](uint8_t x) {
    h ^= x;
    h *= 0x100000001b3ULL;
  };
  mix(static_cast<uint8_t>(family_));
  mix(bits_);
  size_t n = family_ == family::ipv4 ? 4 : 16;
  for (size_t i = 0; i < n; ++i)
    mix(prefix_[i]);
  return static_cast<size_t>(h);
}

bool operator==(const netgroup& x, const netgroup& y) noexcept {
  return x.family_ == y.family_ && x.bits_ == y.bits_ && x.prefix_ == y.prefix_
    && x.name_ == y.name_;
}

bool operator<(const netgroup& x, const netgroup& y) noexcept {
  return std::tie(x.family_, x.bits_, x.prefix_, x.name_)
    < std::tie(y.family_, y.bits_, y.prefix_, y.name_);
}

} // namespace connmgr
