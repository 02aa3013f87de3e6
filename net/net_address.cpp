#include "connmgr/net/net_address.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <tuple>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

// Error texts quote untrusted input (addresses come from peers and config
// files), so keep them on one line and bounded in size.
constexpr size_t max_quoted_bytes = 512;

std::string quote(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "\"";
  auto shown = s.substr(0, max_quoted_bytes);
  for (char c : shown) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += hex[u >> 4];
      out += hex[u & 0x0f];
    } else {
      out += c;
    }
  }
  if (shown.size() < s.size()) {
    out += "...\" (";
    out += std::to_string(s.size());
    out += " bytes)";
  } else {
    out += '"';
  }
  return out;
}

caf::error reject(std::string_view input, const std::string& problem) {
  return make_error(errc::invalid_address, quote(input) + ": " + problem);
}

// Only ASCII classes: the locale must not change what an address is.
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

bool is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool is_letter(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f'
    || c == '\r';
}

bool is_label_char(char c) {
  return is_letter(c) || is_digit(c) || c == '-' || c == '_';
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool all_digits_and_dots(std::string_view s) {
  for (char c : s)
    if (!is_digit(c) && c != '.')
      return false;
  return true;
}

// Resolvers fall back to inet_aton, which reads "0x7f.1" or "127.1" as IP
// addresses. A host name whose last label is a number would therefore dial an
// IP literal that never went through our IPv4 checks; the URL standard
// refuses such names for the same reason.
bool ends_in_number(std::string_view host) {
  if (!host.empty() && host.back() == '.')
    host.remove_suffix(1);
  auto last_dot = host.rfind('.');
  auto last =
    last_dot == std::string_view::npos ? host : host.substr(last_dot + 1);
  if (last.empty())
    return false;
  if (last.size() >= 2 && last[0] == '0'
      && (last[1] == 'x' || last[1] == 'X')) {
    for (char c : last.substr(2))
      if (!is_hex_digit(c))
        return false;
    return true;
  }
  for (char c : last)
    if (!is_digit(c))
      return false;
  return true;
}

std::string port_range(bool allow_port_zero) {
  return allow_port_zero ? "0..65535" : "1..65535";
}

// Returns an empty string on success, otherwise what was wrong.
std::string parse_port(std::string_view text, bool allow_port_zero,
                       uint16_t& out) {
  auto expected = ", expected " + port_range(allow_port_zero);
  if (text.empty())
    return "missing port after ':'" + expected;
  for (char c : text)
    if (!is_digit(c))
      return "port " + quote(text) + " is not a decimal number" + expected;
  // Five digits bound the value below overflow, and a longer run of leading
  // zeros is more likely a typo than intent.
  if (text.size() > 5)
    return "port " + quote(text) + " has more than 5 digits" + expected;
  uint32_t value = 0;
  for (char c : text)
    value = value * 10 + static_cast<uint32_t>(c - '0');
  if (value > 65535 || (value == 0 && !allow_port_zero))
    return "port " + std::to_string(value) + " out of range" + expected;
  out = static_cast<uint16_t>(value);
  return {};
}

// Strict dotted decimal: exactly four octets 0..255, no leading zeros (which
// inet_aton and many tools read as octal), no trailing dot.
std::string check_ipv4(std::string_view host) {
  constexpr const char* expected = ", expected four decimal octets a.b.c.d";
  if (host.back() == '.')
    return "IPv4 address " + quote(host) + " ends in '.'" + expected;
  // Count first: "1234" is better explained as one octet than as 1234 > 255.
  auto octets =
    static_cast<size_t>(std::count(host.begin(), host.end(), '.')) + 1;
  if (octets != 4)
    return "IPv4 address " + quote(host) + " has " + std::to_string(octets)
      + (octets == 1 ? " octet" : " octets") + expected;
  size_t pos = 0;
  while (true) {
    auto dot = host.find('.', pos);
    auto octet = host.substr(
      pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    if (octet.empty())
      return "empty octet in IPv4 address " + quote(host) + expected;
    if (octet.size() > 1 && octet[0] == '0')
      return "octet " + quote(octet) + " in " + quote(host)
        + " has a leading zero (octal or decimal is ambiguous)"
        + ", expected decimal 0..255 without leading zeros";
    // Four digits without a leading zero already exceed 255; stopping there
    // keeps the sum from overflowing on absurdly long octets.
    int value = 0;
    for (char c : octet.substr(0, 4))
      value = value * 10 + (c - '0');
    if (value > 255)
      return "octet " + quote(octet) + " in " + quote(host)
        + " out of range, expected 0..255";
    if (dot == std::string_view::npos)
      break;
    pos = dot + 1;
  }
  return {};
}

// RFC 1123 host names, plus '_' which real DNS names (SRV-style labels, some
// seeds) do use.
std::string check_hostname(std::string_view host) {
  const std::string expected_chars =
    ", expected letters, digits, '-', '_' and '.' only";
  for (char c : host)
    if (!is_label_char(c) && c != '.')
      return "character " + quote(std::string_view{&c, 1}) + " in host name "
        + quote(host) + " not allowed" + expected_chars;
  auto name = host;
  if (name.size() > 1 && name.back() == '.')
    name.remove_suffix(1);
  if (name.size() > 253)
    return "host name of " + std::to_string(name.size())
      + " characters is too long, expected at most 253";
  size_t pos = 0;
  while (true) {
    auto dot = name.find('.', pos);
    auto label = name.substr(
      pos, dot == std::string_view::npos ? std::string_view::npos : dot - pos);
    if (label.empty())
      return "empty label in host name " + quote(host)
        + ", expected labels separated by single dots";
    if (label.size() > 63)
      return "label of " + std::to_string(label.size()) + " characters in host"
        + " name " + quote(host) + " is too long, expected 1..63";
    if (label.front() == '-' || label.back() == '-')
      return "label " + quote(label) + " in host name " + quote(host)
        + " starts or ends with '-', expected a letter, digit or '_'"
        + " at both ends";
    if (dot == std::string_view::npos)
      break;
    pos = dot + 1;
  }
  bool has_letter = false;
  for (char c : name)
    has_letter = has_letter || is_letter(c);
  if (!has_letter)
    return "host name " + quote(host)
      + " has no letter, expected an IPv4 address or a name with at"
        " least one letter";
  return {};
}

std::string ntop(int family, const void* bytes) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (family == AF_INET) {
    // Every accepted connection prints its peer: glibc's inet_ntop goes
    // through sprintf, several times the cost of these few digits.
    auto octets = static_cast<const uint8_t*>(bytes);
    char* out = buf;
    for (int i = 0; i < 4; ++i) {
      if (i > 0)
        *out++ = '.';
      unsigned v = octets[i];
      if (v >= 100)
        *out++ = static_cast<char>('0' + v / 100);
      if (v >= 10)
        *out++ = static_cast<char>('0' + v / 10 % 10);
      *out++ = static_cast<char>('0' + v % 10);
    }
    return std::string(buf, out);
  }
  // Cannot fail: the family is one we support and the buffer is big enough.
  inet_ntop(family, bytes, buf, sizeof(buf));
  return buf;
}

} // namespace

net_address::net_address(kind k, const std::array<uint8_t, 16>& bytes,
                         std::string host, uint16_t port_number)
  : kind_(k), bytes_(bytes), host_(std::move(host)), port_(port_number) {
  // nop
}

caf::expected<net_address> net_address::parse(std::string_view text,
                                              bool allow_port_zero) {
  if (text.empty())
    return reject(text,
                  "empty address, expected host:port such as"
                  " 1.2.3.4:8333, [::1]:8333 or example.org:8333");
  for (size_t i = 0; i < text.size(); ++i)
    if (is_space(text[i]))
      return reject(text,
                    "whitespace at offset " + std::to_string(i)
                      + ", expected none anywhere in an address");
  std::array<uint8_t, 16> bytes{};
  std::string_view port_text;
  if (text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos)
      return reject(text, "unclosed '[', expected \"[IPv6]:port\"");
    auto inside = text.substr(1, close - 1);
    auto rest = text.substr(close + 1);
    if (inside.empty())
      return reject(text,
                    "empty host in brackets, expected an IPv6 address"
                    " as in \"[::1]:8333\"");
    if (auto pct = inside.find('%'); pct != std::string_view::npos)
      return reject(text,
                    "IPv6 zone id " + quote(inside.substr(pct))
                      + " is not supported, expected an IPv6 address"
                        " without '%zone'");
    if (inet_pton(AF_INET6, std::string{inside}.c_str(), bytes.data()) != 1) {
      if (inside.find(':') == std::string_view::npos)
        return reject(text,
                      quote(inside)
                        + " in brackets is not an IPv6 address,"
                          " expected brackets only around IPv6"
                          " literals");
      return reject(text,
                    quote(inside)
                      + " is not a valid IPv6 address, expected e.g."
                        " \"[2001:db8::1]:8333\"");
    }
    if (rest.empty())
      return reject(text, "missing port after ']', expected \"[IPv6]:port\"");
    if (rest.front() != ':')
      return reject(text,
                    "unexpected " + quote(rest)
                      + " after ']', expected ':' and a port");
    port_text = rest.substr(1);
    uint16_t port_number = 0;
    if (auto problem = parse_port(port_text, allow_port_zero, port_number);
        !problem.empty())
      return reject(text, problem);
    return net_address{kind::ipv6, bytes, ntop(AF_INET6, bytes.data()),
                       port_number};
  }
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos)
    return reject(text, "missing port, expected host:port");
  auto host_text = text.substr(0, colon);
  port_text = text.substr(colon + 1);
  if (host_text.empty())
    return reject(text,
                  "empty host, expected an IPv4 address, a bracketed"
                  " IPv6 address or a host name before ':'");
  if (host_text.find(':') != std::string_view::npos)
    return reject(text,
                  "host " + quote(host_text)
                    + " contains ':', expected IPv6 addresses in"
                      " brackets as in \"[::1]:8333\"");
  kind k = kind::hostname;
  std::string host;
  if (all_digits_and_dots(host_text)) {
    if (auto problem = check_ipv4(host_text); !problem.empty())
      return reject(text, problem);
    // Our checks are at least as strict as inet_pton's, so it accepts, and
    // strict dotted decimal is the canonical form already.
    host = std::string{host_text};
    inet_pton(AF_INET, host.c_str(), bytes.data());
    k = kind::ipv4;
  } else if (ends_in_number(host_text)) {
    return reject(text,
                  "host " + quote(host_text)
                    + " ends in a numeric label but is not a dotted"
                      " decimal IPv4 address, expected a.b.c.d with"
                      " octets 0..255 or a host name whose last label"
                      " is not a number");
  } else {
    if (auto problem = check_hostname(host_text); !problem.empty())
      return reject(text, problem);
    if (host_text.back() == '.')
      host_text.remove_suffix(1);
    host.reserve(host_text.size());
    for (char c : host_text)
      host += to_lower(c);
  }
  uint16_t port_number = 0;
  if (auto problem = parse_port(port_text, allow_port_zero, port_number);
      !problem.empty())
    return reject(text, problem);
  return net_address{k, bytes, std::move(host), port_number};
}

caf::expected<net_address> net_address::from_sockaddr(const sockaddr* sa,
                                                      socklen_t len) {
  auto fail = [](const std::string& problem) {
    return make_error(errc::invalid_address, "socket address: " + problem);
  };
  if (sa == nullptr)
    return fail("null pointer, expected an AF_INET or AF_INET6 address");
  auto family_end = offsetof(sockaddr, sa_family) + sizeof(sa_family_t);
  if (static_cast<size_t>(len) < family_end)
    return fail(std::to_string(len) + " bytes cannot hold an address family,"
                + " expected an AF_INET or AF_INET6 address");
  std::array<uint8_t, 16> bytes{};
  switch (sa->sa_family) {
    case AF_INET: {
      if (static_cast<size_t>(len) < sizeof(sockaddr_in))
        return fail("AF_INET address of " + std::to_string(len)
                    + " bytes, expected at least "
                    + std::to_string(sizeof(sockaddr_in)));
      // memcpy: callers often pass a sockaddr_storage or a byte buffer whose
      // alignment and dynamic type we cannot rely on.
      sockaddr_in sin;
      std::memcpy(&sin, sa, sizeof(sin));
      std::memcpy(bytes.data(), &sin.sin_addr, 4);
      return net_address{kind::ipv4, bytes, ntop(AF_INET, bytes.data()),
                         ntohs(sin.sin_port)};
    }
    case AF_INET6: {
      if (static_cast<size_t>(len) < sizeof(sockaddr_in6))
        return fail("AF_INET6 address of " + std::to_string(len)
                    + " bytes, expected at least "
                    + std::to_string(sizeof(sockaddr_in6)));
      sockaddr_in6 sin6;
      std::memcpy(&sin6, sa, sizeof(sin6));
      std::memcpy(bytes.data(), &sin6.sin6_addr, 16);
      auto host = ntop(AF_INET6, bytes.data());
      // Dropping the scope would yield a value that dials a different
      // interface (or none), so refuse like parse refuses zone ids.
      if (sin6.sin6_scope_id != 0)
        return fail("IPv6 address " + host + " with scope id "
                    + std::to_string(sin6.sin6_scope_id)
                    + ", zone ids are not supported");
      return net_address{kind::ipv6, bytes, std::move(host),
                         ntohs(sin6.sin6_port)};
    }
    default:
      return fail("address family " + std::to_string(sa->sa_family)
                  + " not supported, expected AF_INET or AF_INET6");
  }
}

bool net_address::is_loopback() const noexcept {
  switch (kind_) {
    case kind::ipv4:
      return bytes_[0] == 127;
    case kind::ipv6: {
      static constexpr std::array<uint8_t, 16> loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                        0, 0, 0, 0, 0, 0, 0, 1};
      return bytes_ == loopback;
    }
    case kind::hostname:
      break;
  }
  return false;
}

std::string net_address::to_string() const {
  auto port_text = std::to_string(port_);
  if (kind_ == kind::ipv6)
    return "[" + host_ + "]:" + port_text;
  return host_ + ":" + port_text;
}

caf::expected<socklen_t> net_address::to_sockaddr(sockaddr_storage& out) const {
  switch (kind_) {
    case kind::ipv4: {
      sockaddr_in sin;
      std::memset(&sin, 0, sizeof(sin));
      sin.sin_family = AF_INET;
      sin.sin_port = htons(port_);
      std::memcpy(&sin.sin_addr, bytes_.data(), 4);
      std::memset(&out, 0, sizeof(out));
      std::memcpy(&out, &sin, sizeof(sin));
      return static_cast<socklen_t>(sizeof(sin));
    }
    case kind::ipv6: {
      sockaddr_in6 sin6;
      std::memset(&sin6, 0, sizeof(sin6));
      sin6.sin6_family = AF_INET6;
      sin6.sin6_port = htons(port_);
      std::memcpy(&sin6.sin6_addr, bytes_.data(), 16);
      std::memset(&out, 0, sizeof(out));
      std::memcpy(&out, &sin6, sizeof(sin6));
      return static_cast<socklen_t>(sizeof(sin6));
    }
    case kind::hostname:
      break;
  }
  return make_error(errc::invalid_address,
                    quote(to_string())
                      + ": host name needs resolving, expected an IPv4 or"
                        " IPv6 address");
}

bool operator==(const net_address& x, const net_address& y) {
  return x.kind_ == y.kind_ && x.port_ == y.port_ && x.bytes_ == y.bytes_
    && x.host_ == y.host_;
}

bool operator!=(const net_address& x, const net_address& y) {
  return !(x == y);
}

bool operator<(const net_address& x, const net_address& y) {
  return std::tie(x.kind_, x.bytes_, x.host_, x.port_)
    < std::tie(y.kind_, y.bytes_, y.host_, y.port_);
}

std::string to_string(const net_address& x) {
  return x.to_string();
}

namespace {

/// Writes the decimal digits of `x` at `out`; returns the end.
char* put_decimal(char* out, uint32_t x) {
  char digits[10];
  int n = 0;
  do {
    digits[n++] = static_cast<char>('0' + x % 10);
    x /= 10;
  } while (x != 0);
  while (n > 0)
    *out++ = digits[--n];
  return out;
}

} // namespace

std::string ipv4_to_string(uint32_t ip, uint16_t port) {
  char buf[32];
  char* p = buf;
  for (int shift = 24; shift >= 0; shift -= 8) {
    p = put_decimal(p, (ip >> shift) & 0xffu);
    *p++ = shift > 0 ? '.' : ':';
  }
  p = put_decimal(p, port);
  return std::string(buf, static_cast<size_t>(p - buf));
}

} // namespace connmgr
