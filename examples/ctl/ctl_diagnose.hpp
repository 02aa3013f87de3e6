#pragma once

#include <string>

#include <caf/timespan.hpp>

#include "connmgr/net/net_address.hpp"

namespace connmgr {

/// Why a TCP connection to `where` cannot be opened within `timeout`
/// ("connection refused", "no answer within 10s", ...); empty when it can.
std::string tcp_unreachable(const net_address& where, caf::timespan timeout);

/// After CAF failed to connect: what went wrong in a TLS handshake with
/// `where` using our `cert`, `key` and `ca`, named by who refused what, e.g.
/// "the node refused our certificate (alert: unknown ca)" or "the node's
/// certificate is not signed by --ca (certificate verify failed)".
std::string diagnose_tls(const net_address& where, const std::string& cert,
                         const std::string& key, const std::string& ca,
                         caf::timespan timeout);

/// Checks that `cert`, `key` and `ca` load; empty when they do, otherwise
/// names the flag and the reason.
std::string check_tls_files(const std::string& cert, const std::string& key,
                            const std::string& ca);

} // namespace connmgr
