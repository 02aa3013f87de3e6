#pragma once

#include <functional>
#include <optional>
#include <string_view>

#include <caf/expected.hpp>

#include "connmgr/net/net_address.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socks5.hpp"
#include "connmgr/net/stream_handshake.hpp"

namespace connmgr {

/// Runs a SOCKS5 client exchange on a reactor socket. Bytes after the final
/// reply cannot arrive early: the reactor reads at most `wanted()` bytes.
class socks5_stream : public stream_handshake {
public:
  explicit socks5_stream(socks5::client_handshake hs);

  std::vector<uint8_t> take_output() override;

  size_t wanted() const override;

  status feed(const uint8_t* data, size_t size, caf::error& err) override;

  /// The CONNECT's bound address or the RESOLVE's answer, once done.
  const socks5::address& result() const noexcept {
    return hs_.result();
  }

private:
  socks5::client_handshake hs_;
};

/// Resolves `host` through the Tor SOCKS5 proxy at `proxy` with Tor's
/// RESOLVE command, without blocking: the exchange runs on `io` with
/// deadlines and partial reads, accepts IPv4 and IPv6 answers, and refuses
/// names over 255 bytes before sending anything. `done` runs once: on the
/// reactor thread, or at once on the caller's thread when the input is
/// refused before anything is sent. It gets the address (with the port the
/// proxy sent; Tor sends 0) or an error (`resolve_failed` when Tor could not
/// resolve it, `timed_out`, `proxy_failed`, ...).
void tor_resolve(reactor& io, const net_address& proxy, std::string_view host,
                 reactor::clock::time_point deadline,
                 std::function<void(caf::expected<net_address>)> done,
                 std::optional<socks5::credentials> creds = std::nullopt);

} // namespace connmgr
