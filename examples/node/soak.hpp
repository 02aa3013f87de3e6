#pragma once

// What soak mode (`connmgr-node --soak=DURATION`, a variant of the swarm)
// measures and how it judges it: the process's own descriptors, threads and
// resident memory, read from /proc/self, and whether they stayed flat.

#include <cstddef>
#include <string>
#include <vector>

#include "connmgr/net/net_address.hpp"

namespace connmgr {

/// One reading of this process's resources.
struct resource_usage {
  /// Entries of /proc/self/fd, passing pipes aside (is_passing_pipe).
  size_t descriptors = 0;
  /// `Threads:` of /proc/self/status.
  size_t threads = 0;
  /// `VmRSS:` of /proc/self/status, in KiB.
  size_t rss_kib = 0;
};

/// Reads /proc/self now.
resource_usage read_resource_usage();

/// The larger of each field.
resource_usage max_of(const resource_usage& a, const resource_usage& b);

/// The verdict on one resource: flat when the end is within `tolerance` of
/// the steady state (either way).
struct flatness {
  std::string resource;
  size_t steady = 0;
  size_t end = 0;
  size_t max = 0;
  size_t tolerance = 0;
  /// False for a figure that says nothing about us in this build (resident
  /// memory under a sanitizer, whose allocator holds freed blocks back):
  /// reported, never failed.
  bool judged = true;
  bool flat() const {
    return !judged || (end > steady ? end - steady : steady - end) <= tolerance;
  }
};

/// Judges each resource: descriptors and threads may differ by 1 % of the
/// steady state (rounded down: equality below 100), resident memory by 1 %
/// or 1 MiB, whichever is larger (not judged in a build with ASan or TSan).
std::vector<flatness> judge(const resource_usage& steady,
                            const resource_usage& end,
                            const resource_usage& max);

/// The verdicts as a table (resource, steady, end, max, tolerance, verdict),
/// one line per entry.
std::vector<std::string> format_table(const std::vector<flatness>& rows);

/// TCP ports on 127.0.0.1 that refuse every connection: bound but never
/// listening, and held for the object's life so that nobody else takes
/// them. Soak nodes know them as peers, so some of their dials fail.
class refusing_ports {
public:
  explicit refusing_ports(size_t n);
  ~refusing_ports();
  refusing_ports(const refusing_ports&) = delete;
  refusing_ports& operator=(const refusing_ports&) = delete;

  const std::vector<net_address>& addresses() const {
    return addresses_;
  }

private:
  std::vector<int> fds_;
  std::vector<net_address> addresses_;
};

} // namespace connmgr
