// Plain OpenSSL and sockets beside CAF: CAF only says that a connection
// failed; an operator needs to know whether the node is down, refused our
// certificate, or presented one our CA did not sign.
#include "examples/ctl/ctl_diagnose.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <fmt/format.h>

#include "connmgr/messages/manager_config.hpp"

namespace connmgr {

namespace {

int millis(caf::timespan x) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(x).count();
  return static_cast<int>(ms < 1 ? 1 : (ms > 3'600'000 ? 3'600'000 : ms));
}

std::string ssl_errors() {
  std::string out;
  while (auto code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    if (!out.empty())
      out += "; ";
    out += buf;
  }
  return out;
}

/// The reason part of OpenSSL's last error ("tlsv13 alert certificate
/// required"), emptying the queue.
std::string last_reason() {
  unsigned long last = 0;
  while (auto code = ERR_get_error())
    last = code;
  if (last == 0)
    return {};
  auto r = ERR_reason_error_string(last);
  return r != nullptr ? r : std::to_string(last);
}

/// A connected blocking socket to `where`, or -1 with `why`.
int connect_to(const net_address& where, caf::timespan timeout,
               std::string& why) {
  sockaddr_storage sa{};
  socklen_t len = 0;
  if (where.is_ip()) {
    auto res = where.to_sockaddr(sa);
    if (!res) {
      why = "bad address";
      return -1;
    }
    len = *res;
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    auto port = std::to_string(where.port());
    if (::getaddrinfo(where.host().c_str(), port.c_str(), &hints, &res) != 0
        || res == nullptr) {
      why = "cannot resolve " + where.host();
      return -1;
    }
    std::memcpy(&sa, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
    ::freeaddrinfo(res);
  }
  int fd = ::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    0);
  if (fd < 0) {
    why = std::strerror(errno);
    return -1;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), len) != 0
      && errno != EINPROGRESS) {
    why = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  auto n = ::poll(&p, 1, millis(timeout));
  if (n <= 0) {
    why = "no answer within " + to_string_duration(timeout);
    ::close(fd);
    return -1;
  }
  int err = 0;
  socklen_t elen = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
  if (err != 0) {
    why = std::strerror(err);
    ::close(fd);
    return -1;
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  timeval tv{};
  auto ms = millis(timeout);
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  return fd;
}

using ctx_ptr = std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)>;

std::string load(SSL_CTX* ctx, const std::string& cert, const std::string& key,
                 const std::string& ca) {
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
    return fmt::format("--cert = \"{}\": cannot load a PEM certificate ({})",
                       cert, ssl_errors());
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
    return fmt::format("--key = \"{}\": cannot load a PEM private key ({})",
                       key, ssl_errors());
  if (SSL_CTX_check_private_key(ctx) != 1)
    return fmt::format("--key = \"{}\": not the private key of --cert ({})",
                       key, ssl_errors());
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1)
    return fmt::format("--ca = \"{}\": cannot load a PEM CA certificate ({})",
                       ca, ssl_errors());
  return {};
}

} // namespace

std::string tcp_unreachable(const net_address& where, caf::timespan timeout) {
  std::string why;
  int fd = connect_to(where, timeout, why);
  if (fd < 0)
    return why;
  ::close(fd);
  return {};
}

std::string check_tls_files(const std::string& cert, const std::string& key,
                            const std::string& ca) {
  ctx_ptr ctx{SSL_CTX_new(TLS_client_method()), SSL_CTX_free};
  if (!ctx)
    return "cannot create a TLS context: " + ssl_errors();
  return load(ctx.get(), cert, key, ca);
}

std::string diagnose_tls(const net_address& where, const std::string& cert,
                         const std::string& key, const std::string& ca,
                         caf::timespan timeout) {
  ctx_ptr ctx{SSL_CTX_new(TLS_client_method()), SSL_CTX_free};
  if (!ctx)
    return "cannot create a TLS context: " + ssl_errors();
  if (auto err = load(ctx.get(), cert, key, ca); !err.empty())
    return err;
  // Verify by hand below, so a bad node certificate is named as such.
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  std::string why;
  int fd = connect_to(where, timeout, why);
  if (fd < 0)
    return "cannot reach it: " + why;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl{SSL_new(ctx.get()), SSL_free};
  SSL_set_fd(ssl.get(), fd);
  ERR_clear_error();
  auto rc = SSL_connect(ssl.get());
  std::string result;
  if (rc != 1) {
    auto reason = last_reason();
    if (reason.find("wrong version") != std::string::npos
        || reason.find("packet length") != std::string::npos
        || reason.find("unexpected eof") != std::string::npos
        || reason.empty())
      result = fmt::format("it does not speak TLS (a plain control?): the TLS "
                           "handshake failed ({})",
                           reason.empty() ? "connection closed" : reason);
    else
      result = fmt::format("the node refused the TLS handshake ({})", reason);
  } else if (SSL_get_verify_result(ssl.get()) != X509_V_OK) {
    result = fmt::format(
      "the node's certificate is not signed by --ca \"{}\" ({})", ca,
      X509_verify_cert_error_string(SSL_get_verify_result(ssl.get())));
  } else {
    // TLS 1.3: the node judges our certificate after our side finished;
    // its verdict is the first thing we read.
    char buf[1];
    ERR_clear_error();
    auto n = SSL_read(ssl.get(), buf, sizeof(buf));
    if (n <= 0) {
      auto reason = last_reason();
      result = fmt::format("the node refused our certificate --cert \"{}\" "
                           "({})",
                           cert,
                           reason.empty() ? "connection closed" : reason);
    } else {
      result = "the TLS handshake succeeded, but the control handshake did "
               "not (another program on that port?)";
    }
  }
  ::close(fd);
  return result;
}

} // namespace connmgr
