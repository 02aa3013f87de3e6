// Fuzzes read_node_settings on a config file whose content is the input.
//
// The file is written to one fixed path per process
// (/tmp/connmgr_fuzz_node_settings.<pid>.ini), overwritten each run.
// Properties: never crashes (ASan/UBSan watch memory and UB); either
// succeeds or fails with errc::invalid_config; a success is self-consistent
// (positive durations, peers in canonical form); and the result does not
// depend on config_file_required, since the file exists.

#include <cstdio>
#include <fstream>
#include <string>

#include <unistd.h>

#include "examples/node/node_settings.hpp"
#include "fuzz_check.hpp"

using namespace connmgr;

namespace {

const std::string& path() {
  static const std::string p =
    "/tmp/connmgr_fuzz_node_settings." + std::to_string(::getpid()) + ".ini";
  return p;
}

void check_result(const caf::expected<node_settings>& r) {
  if (!r) {
    if (errc_of(r.error()) != errc::invalid_config) {
      std::fprintf(stderr, "unexpected error: %s\n",
                   describe(r.error()).c_str());
      FUZZ_CHECK(errc_of(r.error()) == errc::invalid_config);
    }
    return;
  }
  FUZZ_CHECK(r->handshake_timeout.count() > 0);
  FUZZ_CHECK(r->status_interval.count() > 0);
  FUZZ_CHECK(r->ping_interval.count() > 0);
  for (const auto& p : r->peers) {
    auto a = net_address::parse(p);
    FUZZ_CHECK(static_cast<bool>(a) && a->to_string() == p);
  }
  for (const auto& a : r->connect)
    FUZZ_CHECK(a.port() != 0);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  {
    std::ofstream out{path(), std::ios::binary | std::ios::trunc};
    out.write(reinterpret_cast<const char*>(data),
              static_cast<std::streamsize>(size));
    FUZZ_CHECK(out.good());
  }
  auto r1 = read_node_settings(path(), true, {});
  check_result(r1);
  auto r2 = read_node_settings(path(), false, {});
  FUZZ_CHECK(static_cast<bool>(r1) == static_cast<bool>(r2));
  if (!r1)
    FUZZ_CHECK(fuzz::same_error(r1.error(), r2.error()));
  return 0;
}
