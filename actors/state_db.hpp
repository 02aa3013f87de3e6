#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <caf/error.hpp>
#include <caf/expected.hpp>

struct sqlite3;

namespace connmgr {

// -- what the state file holds --------------------------------------------------

/// One known address with what was learned of it. Times are wall-clock
/// milliseconds since the Unix epoch (actor clocks do not survive a
/// restart); 0 means never.
struct stored_address {
  /// "1.2.3.4:8333", "[::1]:8333" or "host.example:8333".
  std::string address;
  /// Who told us of it; empty when we added it ourselves.
  std::string source;
  int64_t last_seen_ms = 0;
  int64_t last_attempt_ms = 0;
  int64_t last_success_ms = 0;
  uint32_t attempts = 0;
  /// Failures in a row, and when the next dial may start (its backoff).
  uint32_t failures = 0;
  int64_t retry_at_ms = 0;
  /// In the table of addresses that worked.
  bool tried = false;
};

/// One ban: `subnet` ("10.0.0.0/8", "1.2.3.4/32") refused until `until_ms`.
struct stored_ban {
  std::string subnet;
  int64_t until_ms = 0;
  std::string reason;
};

/// Everything the file holds.
struct state_snapshot {
  /// Ordered by address.
  std::vector<stored_address> addresses;
  /// The outbound peers ready at the last stop, to dial first; in order.
  std::vector<std::string> anchors;
  /// Ordered by subnet, ended ones included (the reader drops them).
  std::vector<stored_ban> bans;
};

/// Changes written together, in one transaction: all of them or none.
struct state_changes {
  std::vector<stored_address> put_addresses;
  std::vector<std::string> erase_addresses;
  std::vector<stored_ban> put_bans;
  std::vector<std::string> erase_bans;
  /// When set, the new anchors, replacing the old ones.
  std::optional<std::vector<std::string>> anchors;

  bool empty() const noexcept {
    return put_addresses.empty() && erase_addresses.empty() && put_bans.empty()
      && erase_bans.empty() && !anchors;
  }
};

// -- the file -------------------------------------------------------------------

/// The state file: an SQLite database in WAL mode, with connmgr's
/// application id and a schema version.
///
/// Guarantees: what `apply` returned from without an error is on disk in
/// the write-ahead log and survives a crash of the process (`kill -9`) at
/// any later instant; a partly applied `apply` never shows. A file that is
/// not connmgr's (another program's database, random bytes, a corrupt
/// database) is never written to: `open` moves it aside and starts an empty
/// one. A file of a newer schema is refused and left as it is. Blocking:
/// use it from a thread of its own, never from an actor that others wait
/// on. Not thread-safe.
class state_db {
public:
  /// The schema this version writes, and reads (older ones are migrated).
  static constexpr int schema_version = 1;

  /// What `open` found.
  struct opened;

  /// Opens or creates the state file at `path`. A file that is not a
  /// connmgr state file, or a corrupt one, is renamed to
  /// "<path>.corrupt-<unix seconds>" (its WAL and shared-memory files too)
  /// and an empty one is created; `opened::moved_aside` names it. Fails
  /// with `errc::state_too_new` for a newer schema and `errc::state_failed`
  /// when the file cannot be created, read or moved (the context names the
  /// path and the reason).
  static caf::expected<opened> open(const std::string& path);

  state_db(state_db&&) noexcept;
  state_db& operator=(state_db&&) noexcept;
  ~state_db();

  /// Everything stored.
  caf::expected<state_snapshot> load();

  /// Writes `changes` in one transaction and commits it; on failure nothing
  /// of them is stored.
  caf::error apply(const state_changes& changes);

  /// The file's path.
  const std::string& path() const noexcept {
    return path_;
  }

private:
  state_db(sqlite3* db, std::string path);

  caf::error exec(const char* sql);

  sqlite3* db_ = nullptr;
  std::string path_;
};

struct state_db::opened {
  state_db db;
  /// Where a file that was not a usable state file went; empty if none.
  std::string moved_aside;
  /// The schema version the file had before (0 for a new file).
  int found_version = 0;
};

} // namespace connmgr
