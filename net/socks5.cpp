#include "connmgr/net/socks5.hpp"

#include <algorithm>
#include <cstdio>
#include <utility>

#include <arpa/inet.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr::socks5 {

namespace {

constexpr uint8_t socks_version = 0x05;
constexpr uint8_t auth_version = 0x01;
constexpr uint8_t cmd_connect = 0x01;
constexpr uint8_t cmd_resolve = 0xF0;
constexpr uint8_t reply_succeeded = 0x00;
constexpr size_t max_field = 255;

// Offsets of a request reply: VER REP RSV ATYP, then the address.
constexpr size_t reply_head = 4;

std::string hex(uint8_t x) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "0x%02X", static_cast<unsigned>(x));
  return buf;
}

template <class T>
parse_result<T> need_more(size_t total) {
  parse_result<T> r;
  r.status = parse_status::need_more;
  r.need = total;
  return r;
}

template <class T>
parse_result<T> done(T value, size_t consumed) {
  parse_result<T> r;
  r.status = parse_status::done;
  r.need = consumed;
  r.consumed = consumed;
  r.value = std::move(value);
  return r;
}

template <class T>
parse_result<T> failed(caf::error err) {
  parse_result<T> r;
  r.status = parse_status::failed;
  r.error = std::move(err);
  return r;
}

caf::error malformed(std::string_view what, std::string detail) {
  std::string ctx{what};
  ctx += ": ";
  ctx += detail;
  return make_error(errc::proxy_failed, std::move(ctx));
}

// Checked before the length goes into a single length byte, where it would
// silently wrap.
caf::error check_field(std::string_view value, errc code,
                       std::string_view label) {
  if (!value.empty() && value.size() <= max_field)
    return {};
  return make_error(code,
                    "socks5 " + std::string{label} + " is "
                      + std::to_string(value.size())
                      + " bytes, expected 1..255");
}

void append_port(std::vector<uint8_t>& out, uint16_t port) {
  out.push_back(static_cast<uint8_t>(port >> 8));
  out.push_back(static_cast<uint8_t>(port & 0xFF));
}

void append_field(std::vector<uint8_t>& out, std::string_view value) {
  out.push_back(static_cast<uint8_t>(value.size()));
  out.insert(out.end(), value.begin(), value.end());
}

const char* reply_meaning(uint8_t code) {
  switch (code) {
    case 0x00:
      return "succeeded";
    case 0x01:
      return "general SOCKS server failure";
    case 0x02:
      return "connection not allowed by ruleset";
    case 0x03:
      return "network unreachable";
    case 0x04:
      return "host unreachable";
    case 0x05:
      return "connection refused";
    case 0x06:
      return "TTL expired";
    case 0x07:
      return "command not supported";
    case 0x08:
      return "address type not supported";
    // Tor sends these onion-service codes only on a SocksPort with
    // ExtendedErrors; naming them saves a trip to the spec when debugging.
    case 0xF0:
      return "onion service descriptor not found";
    case 0xF1:
      return "onion service descriptor is invalid";
    case 0xF2:
      return "onion service introduction failed";
    case 0xF3:
      return "onion service rendezvous failed";
    case 0xF4:
      return "onion service client authorization missing";
    case 0xF5:
      return "onion service client authorization wrong";
    case 0xF6:
      return "onion service address is invalid";
    case 0xF7:
      return "onion service introduction timed out";
    default:
      return "unknown reply code";
  }
}

caf::error reply_error(uint8_t code, bool resolve) {
  errc x = errc::proxy_failed;
  switch (code) {
    case 0x03:
      x = errc::unreachable;
      break;
    // Tor answers a RESOLVE it could not complete with "host unreachable".
    case 0x04:
      x = resolve ? errc::resolve_failed : errc::unreachable;
      break;
    case 0x05:
      x = errc::refused;
      break;
    case 0x06:
      x = errc::timed_out;
      break;
    default:
      break;
  }
  std::string ctx = resolve ? "socks5 RESOLVE reply " : "socks5 reply ";
  ctx += hex(code);
  ctx += ": ";
  ctx += reply_meaning(code);
  return make_error(x, std::move(ctx));
}

// Both request replies share one layout; only RESOLVE forbids a name in it.
parse_result<address> parse_request_reply(const uint8_t* data, size_t size,
                                          bool resolve) {
  const std::string_view what =
    resolve ? "socks5 RESOLVE reply" : "socks5 reply";
  if (size >= 1 && data[0] != socks_version)
    return failed<address>(
      malformed(what, "version byte " + hex(data[0]) + ", expected 0x05"));
  if (size < 2)
    return need_more<address>(2);
  if (data[1] != reply_succeeded)
    return failed<address>(reply_error(data[1], resolve));
  if (size < reply_head)
    return need_more<address>(reply_head);
  size_t addr_len = 0;
  size_t addr_at = reply_head;
  switch (data[3]) {
    case static_cast<uint8_t>(address_type::ipv4):
      addr_len = 4;
      break;
    case static_cast<uint8_t>(address_type::ipv6):
      addr_len = 16;
      break;
    case static_cast<uint8_t>(address_type::domain):
      if (resolve)
        return failed<address>(
          malformed(what,
                    "address type 0x03 (host name), expected an IPv4 or IPv6 "
                    "answer"));
      if (size < reply_head + 1)
        return need_more<address>(reply_head + 1);
      addr_len = data[reply_head];
      if (addr_len == 0)
        return failed<address>(malformed(what, "host name of length 0"));
      addr_at = reply_head + 1;
      break;
    default:
      return failed<address>(
        malformed(what, "unknown address type " + hex(data[3])));
  }
  const size_t total = addr_at + addr_len + 2;
  if (size < total)
    return need_more<address>(total);
  address addr;
  addr.type = static_cast<address_type>(data[3]);
  if (addr.type == address_type::domain)
    addr.domain.assign(reinterpret_cast<const char*>(data + addr_at), addr_len);
  else
    std::copy(data + addr_at, data + addr_at + addr_len, addr.ip.begin());
  addr.port = static_cast<uint16_t>((data[total - 2] << 8) | data[total - 1]);
  return done(std::move(addr), total);
}

} // namespace

// --- address -----------------------------------------------------------------

address address::ipv4(const std::array<uint8_t, 4>& bytes, uint16_t port) {
  address result;
  result.type = address_type::ipv4;
  std::copy(bytes.begin(), bytes.end(), result.ip.begin());
  result.port = port;
  return result;
}

address address::ipv6(const std::array<uint8_t, 16>& bytes, uint16_t port) {
  address result;
  result.type = address_type::ipv6;
  result.ip = bytes;
  result.port = port;
  return result;
}

address address::name(std::string host, uint16_t port) {
  address result;
  result.type = address_type::domain;
  result.domain = std::move(host);
  result.port = port;
  return result;
}

caf::expected<address>
address::from_text(address_type type, std::string_view host, uint16_t port) {
  // inet_pton wants a terminated string.
  const std::string text{host};
  auto bad = [&](const char* expected) {
    return make_error(errc::invalid_address,
                      "socks5 host \"" + text + "\" is not " + expected);
  };
  switch (type) {
    case address_type::ipv4: {
      std::array<uint8_t, 4> bytes{};
      if (inet_pton(AF_INET, text.c_str(), bytes.data()) != 1)
        return bad("an IPv4 address");
      return ipv4(bytes, port);
    }
    case address_type::ipv6: {
      std::array<uint8_t, 16> bytes{};
      if (inet_pton(AF_INET6, text.c_str(), bytes.data()) != 1)
        return bad("an IPv6 address");
      return ipv6(bytes, port);
    }
    case address_type::domain:
      if (auto err = check_field(host, errc::invalid_address, "host name"))
        return err;
      return name(text, port);
  }
  return make_error(errc::invalid_address,
                    "socks5 address type " + hex(static_cast<uint8_t>(type))
                      + " is unknown");
}

std::string address::to_string() const {
  std::string host;
  switch (type) {
    case address_type::ipv4:
    case address_type::ipv6: {
      char buf[INET6_ADDRSTRLEN] = {};
      const bool v6 = type == address_type::ipv6;
      if (inet_ntop(v6 ? AF_INET6 : AF_INET, ip.data(), buf, sizeof(buf)))
        host = v6 ? "[" + std::string{buf} + "]" : std::string{buf};
      break;
    }
    case address_type::domain:
      host = domain;
      break;
  }
  return host + ":" + std::to_string(port);
}

bool operator==(const address& x, const address& y) {
  if (x.type != y.type || x.port != y.port)
    return false;
  switch (x.type) {
    case address_type::ipv4:
      return std::equal(x.ip.begin(), x.ip.begin() + 4, y.ip.begin());
    case address_type::ipv6:
      return x.ip == y.ip;
    case address_type::domain:
      return x.domain == y.domain;
  }
  return x.ip == y.ip && x.domain == y.domain;
}

// --- encoders and decoders ---------------------------------------------------

std::vector<uint8_t> greeting(bool with_credentials) {
  return {socks_version, 0x01,
          with_credentials ? method::user_password : method::no_auth};
}

parse_result<uint8_t> parse_method_reply(const uint8_t* data, size_t size,
                                         bool with_credentials) {
  constexpr std::string_view what = "socks5 method reply";
  if (size >= 1 && data[0] != socks_version)
    return failed<uint8_t>(
      malformed(what, "version byte " + hex(data[0]) + ", expected 0x05"));
  if (size < 2)
    return need_more<uint8_t>(2);
  const uint8_t chosen = data[1];
  if (chosen == method::none_acceptable)
    return failed<uint8_t>(malformed(
      what,
      with_credentials ? "no acceptable method (0xFF) for username/password"
                       : "no acceptable method (0xFF) without authentication"));
  const uint8_t offered =
    with_credentials ? method::user_password : method::no_auth;
  if (chosen != offered)
    return failed<uint8_t>(malformed(what,
                                     "method " + hex(chosen) + " chosen, only "
                                       + hex(offered) + " offered"));
  return done(chosen, 2);
}

caf::expected<std::vector<uint8_t>> auth_request(const credentials& creds) {
  if (auto err = check_field(creds.user, errc::invalid_config, "user name"))
    return err;
  if (auto err = check_field(creds.password, errc::invalid_config, "password"))
    return err;
  std::vector<uint8_t> out;
  out.reserve(3 + creds.user.size() + creds.password.size());
  out.push_back(auth_version);
  append_field(out, creds.user);
  append_field(out, creds.password);
  return out;
}

parse_result<std::monostate> parse_auth_reply(const uint8_t* data,
                                              size_t size) {
  constexpr std::string_view what = "socks5 auth reply";
  if (size >= 1 && data[0] != auth_version && data[0] != socks_version)
    return failed<std::monostate>(
      malformed(what, "version byte " + hex(data[0]) + ", expected 0x01"));
  if (size < 2)
    return need_more<std::monostate>(2);
  if (data[1] != 0x00)
    return failed<std::monostate>(
      malformed(what, "status " + hex(data[1]) + ": authentication failed"));
  return done(std::monostate{}, 2);
}

caf::expected<std::vector<uint8_t>> connect_request(const address& target) {
  std::vector<uint8_t> out{socks_version, cmd_connect, 0x00,
                           static_cast<uint8_t>(target.type)};
  switch (target.type) {
    case address_type::ipv4:
      out.insert(out.end(), target.ip.begin(), target.ip.begin() + 4);
      break;
    case address_type::ipv6:
      out.insert(out.end(), target.ip.begin(), target.ip.end());
      break;
    case address_type::domain:
      if (auto err =
            check_field(target.domain, errc::invalid_address, "host name"))
        return err;
      append_field(out, target.domain);
      break;
    default:
      return make_error(errc::invalid_address,
                        "socks5 address type "
                          + hex(static_cast<uint8_t>(target.type))
                          + " is unknown");
  }
  append_port(out, target.port);
  return out;
}

parse_result<address> parse_connect_reply(const uint8_t* data, size_t size) {
  return parse_request_reply(data, size, false);
}

caf::expected<std::vector<uint8_t>> resolve_request(std::string_view host) {
  if (auto err = check_field(host, errc::invalid_address, "host name"))
    return err;
  std::vector<uint8_t> out{socks_version, cmd_resolve, 0x00,
                           static_cast<uint8_t>(address_type::domain)};
  append_field(out, host);
  // Tor ignores the port of a RESOLVE; zero says so.
  append_port(out, 0);
  return out;
}

parse_result<address> parse_resolve_reply(const uint8_t* data, size_t size) {
  return parse_request_reply(data, size, true);
}

// --- client_handshake --------------------------------------------------------

caf::expected<client_handshake>
client_handshake::connect(const address& target,
                          std::optional<credentials> creds) {
  client_handshake hs;
  if (creds) {
    auto auth = auth_request(*creds);
    if (!auth)
      return auth.error();
    hs.auth_ = std::move(*auth);
  }
  auto request = connect_request(target);
  if (!request)
    return request.error();
  hs.request_ = std::move(*request);
  hs.output_ = greeting(creds.has_value());
  return hs;
}

caf::expected<client_handshake>
client_handshake::resolve(std::string_view host,
                          std::optional<credentials> creds) {
  client_handshake hs;
  hs.resolve_ = true;
  if (creds) {
    auto auth = auth_request(*creds);
    if (!auth)
      return auth.error();
    hs.auth_ = std::move(*auth);
  }
  auto request = resolve_request(host);
  if (!request)
    return request.error();
  hs.request_ = std::move(*request);
  hs.output_ = greeting(creds.has_value());
  return hs;
}

void client_handshake::queue(const std::vector<uint8_t>& bytes) {
  // Appended, not assigned: if a proxy answers ahead of our request, one
  // feed can finish two steps before the caller takes the output.
  output_.insert(output_.end(), bytes.begin(), bytes.end());
}

std::vector<uint8_t> client_handshake::take_output() {
  std::vector<uint8_t> out;
  out.swap(output_);
  return out;
}

size_t client_handshake::wanted() const noexcept {
  return state_ == status::need_more ? need_ - input_.size() : 0;
}

client_handshake::progress client_handshake::feed(const uint8_t* data,
                                                  size_t size) {
  size_t used = 0;
  // Taking only up to `need_` keeps bytes after the final reply out of
  // `input_`: decoders never ask for more than the message holds.
  while (state_ == status::need_more && used < size) {
    const size_t take = std::min(need_ - input_.size(), size - used);
    input_.insert(input_.end(), data + used, data + used + take);
    used += take;
    const uint8_t* in = input_.data();
    const size_t n = input_.size();
    parse_status st = parse_status::need_more;
    caf::error err;
    switch (step_) {
      case step::method: {
        auto r = parse_method_reply(in, n, auth_.has_value());
        st = r.status;
        need_ = r.need;
        err = std::move(r.error);
        if (st == parse_status::done) {
          step_ = auth_ ? step::auth : step::request;
          queue(auth_ ? *auth_ : request_);
        }
        break;
      }
      case step::auth: {
        auto r = parse_auth_reply(in, n);
        st = r.status;
        need_ = r.need;
        err = std::move(r.error);
        if (st == parse_status::done) {
          step_ = step::request;
          queue(request_);
        }
        break;
      }
      case step::request: {
        auto r =
          resolve_ ? parse_resolve_reply(in, n) : parse_connect_reply(in, n);
        st = r.status;
        need_ = r.need;
        err = std::move(r.error);
        if (st == parse_status::done) {
          result_ = std::move(r.value);
          state_ = status::done;
        }
        break;
      }
    }
    if (st == parse_status::failed) {
      state_ = status::failed;
      error_ = std::move(err);
      output_.clear();
    } else if (st == parse_status::done) {
      input_.clear();
      // Every reply starts with a 2-byte version/status pair.
      need_ = 2;
    }
  }
  return {state_, used};
}

} // namespace connmgr::socks5
