#include "connmgr/net/socks5_stream.hpp"

#include <cstring>

#include <netinet/in.h>
#include <unistd.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

socks5_stream::socks5_stream(socks5::client_handshake hs) : hs_(std::move(hs)) {
  // nop
}

std::vector<uint8_t> socks5_stream::take_output() {
  return hs_.take_output();
}

size_t socks5_stream::wanted() const {
  return hs_.wanted();
}

stream_handshake::status socks5_stream::feed(const uint8_t* data, size_t size,
                                             caf::error& err) {
  auto progress = hs_.feed(data, size);
  switch (progress.state) {
    case socks5::client_handshake::status::done:
      if (progress.consumed < size) {
        err = make_error(errc::proxy_failed,
                         "proxy sent data past its final reply");
        return status::failed;
      }
      return status::done;
    case socks5::client_handshake::status::failed:
      err = hs_.error();
      return status::failed;
    default:
      return status::need_more;
  }
}

namespace {

caf::expected<net_address> to_net_address(const socks5::address& a) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (a.type == socks5::address_type::ipv4) {
    auto& in = reinterpret_cast<sockaddr_in&>(sa);
    in.sin_family = AF_INET;
    in.sin_port = htons(a.port);
    std::memcpy(&in.sin_addr, a.ip.data(), 4);
    len = sizeof(sockaddr_in);
  } else if (a.type == socks5::address_type::ipv6) {
    auto& in6 = reinterpret_cast<sockaddr_in6&>(sa);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(a.port);
    std::memcpy(&in6.sin6_addr, a.ip.data(), 16);
    len = sizeof(sockaddr_in6);
  } else {
    return make_error(errc::proxy_failed,
                      "RESOLVE answered with a host name, expected an IP");
  }
  return net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&sa), len);
}

} // namespace

void tor_resolve(reactor& io, const net_address& proxy, std::string_view host,
                 reactor::clock::time_point deadline,
                 std::function<void(caf::expected<net_address>)> done,
                 std::optional<socks5::credentials> creds) {
  auto hs = socks5::client_handshake::resolve(host, std::move(creds));
  if (!hs) {
    done(std::move(hs.error()));
    return;
  }
  sockaddr_storage sa{};
  if (auto len = proxy.to_sockaddr(sa); !len) {
    done(std::move(len.error()));
    return;
  }
  auto stream = std::make_shared<socks5_stream>(std::move(*hs));
  io.connect(
    {sa}, deadline, proxy.to_string(),
    [stream, done](caf::expected<connection_ptr> conn) {
      if (!conn) {
        done(std::move(conn.error()));
        return;
      }
      (*conn)->close(); // RESOLVE needs no stream
      done(to_net_address(stream->result()));
    },
    stream, false);
}

} // namespace connmgr
