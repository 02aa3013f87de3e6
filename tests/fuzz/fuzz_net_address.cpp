// Fuzzes net_address::parse on arbitrary text.
//
// Properties, for allow_port_zero false and true:
// - failure is errc::invalid_address;
// - success round-trips: parse(to_string(), same flag) succeeds and gives an
//   equal address that prints the same text (to_string is canonical);
// - the port is nonzero unless allowed; host() is never empty;
// - equality and ordering agree (neither a < b nor b < a);
// - what parses without port 0 also parses with it, to an equal value;
// - IP literals convert to a sockaddr and back (from_sockaddr) equal;
//   host names refuse to_sockaddr.

#include <string_view>

#include <sys/socket.h>

#include "fuzz_check.hpp"
#include "connmgr/net/net_address.hpp"

using namespace connmgr;

namespace {

void check(std::string_view text, bool allow_zero) {
  auto a = net_address::parse(text, allow_zero);
  if (!a) {
    FUZZ_CHECK(errc_of(a.error()) == errc::invalid_address);
    return;
  }
  FUZZ_CHECK(allow_zero || a->port() != 0);
  FUZZ_CHECK(!a->host().empty());
  auto printed = a->to_string();
  FUZZ_CHECK(printed == to_string(*a));
  auto b = net_address::parse(printed, allow_zero);
  if (!b) {
    std::fprintf(stderr, "round trip: \"%s\" refused: %s\n", printed.c_str(),
                 describe(b.error()).c_str());
    FUZZ_CHECK(static_cast<bool>(b));
  }
  FUZZ_CHECK(*a == *b);
  FUZZ_CHECK(!(*a != *b));
  FUZZ_CHECK(!(*a < *b) && !(*b < *a));
  FUZZ_CHECK(b->to_string() == printed);
  FUZZ_CHECK(b->type() == a->type() && b->host() == a->host()
             && b->port() == a->port());
  sockaddr_storage ss{};
  auto len = a->to_sockaddr(ss);
  FUZZ_CHECK(static_cast<bool>(len) == a->is_ip());
  if (len) {
    auto c = net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&ss), *len);
    FUZZ_CHECK(static_cast<bool>(c));
    FUZZ_CHECK(*c == *a);
  }
  if (!allow_zero) {
    auto z = net_address::parse(text, true);
    FUZZ_CHECK(static_cast<bool>(z) && *z == *a);
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  check(text, false);
  check(text, true);
  return 0;
}
