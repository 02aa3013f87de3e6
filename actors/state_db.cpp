#include "connmgr/actors/state_db.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <utility>

#include <sqlite3.h>
#include <sys/stat.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

namespace {

/// "cmgr": marks a database as a connmgr state file.
constexpr int application_id = 0x636d6772;

// Version 1. Each later version adds one entry to `migrations` (the SQL
// that turns version N into N + 1) and bumps `state_db::schema_version`.
constexpr const char* schema_v1 = R"sql(
CREATE TABLE addresses(
  address TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  last_seen_ms INTEGER NOT NULL,
  last_attempt_ms INTEGER NOT NULL,
  last_success_ms INTEGER NOT NULL,
  attempts INTEGER NOT NULL,
  failures INTEGER NOT NULL,
  retry_at_ms INTEGER NOT NULL,
  tried INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE anchors(
  position INTEGER PRIMARY KEY,
  address TEXT NOT NULL
);
CREATE TABLE bans(
  subnet TEXT PRIMARY KEY,
  until_ms INTEGER NOT NULL,
  reason TEXT NOT NULL
) WITHOUT ROWID;
)sql";

/// migrations[i] turns version i + 1 into version i + 2: one entry for each
/// version after the first.
constexpr std::array<const char*, state_db::schema_version - 1> migrations{};

caf::error failed(const std::string& path, const std::string& what) {
  return make_error(errc::state_failed, "state file \"" + path + "\": " + what);
}

std::string message_of(sqlite3* db) {
  return db != nullptr ? sqlite3_errmsg(db) : "out of memory";
}

/// A prepared statement, finalized on every path.
class statement {
public:
  statement(sqlite3* db, const char* sql) {
    rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~statement() {
    sqlite3_finalize(stmt_);
  }
  statement(const statement&) = delete;
  statement& operator=(const statement&) = delete;

  bool ok() const noexcept {
    return rc_ == SQLITE_OK;
  }
  int rc() const noexcept {
    return rc_;
  }
  void bind(int i, const std::string& x) {
    sqlite3_bind_text(stmt_, i, x.data(), static_cast<int>(x.size()),
                      SQLITE_TRANSIENT);
  }
  void bind(int i, int64_t x) {
    sqlite3_bind_int64(stmt_, i, x);
  }
  /// SQLITE_ROW, SQLITE_DONE or an error code.
  int step() {
    return sqlite3_step(stmt_);
  }
  /// Runs the statement to its end and resets it for the next bindings.
  bool run() {
    auto rc = sqlite3_step(stmt_);
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    return rc == SQLITE_DONE;
  }
  int64_t integer(int col) {
    return sqlite3_column_int64(stmt_, col);
  }
  std::string text(int col) {
    auto p = sqlite3_column_text(stmt_, col);
    auto n = sqlite3_column_bytes(stmt_, col);
    return p != nullptr
      ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n))
      : std::string{};
  }

private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

/// The integer a one-value query gives; `rc` is SQLITE_OK, or the SQLite
/// result code of its failure (the value is then 0).
int64_t query_integer(sqlite3* db, const char* sql, int& rc) {
  statement q{db, sql};
  if (!q.ok()) {
    rc = q.rc();
    return 0;
  }
  rc = q.step();
  if (rc != SQLITE_ROW)
    return 0;
  rc = SQLITE_OK;
  return q.integer(0);
}

/// Runs `sql` once for each of `xs`, bound by `bind`; false at the first
/// failure.
template <class T, class Bind>
bool for_each_row(sqlite3* db, const char* sql, const std::vector<T>& xs,
                  Bind bind) {
  if (xs.empty())
    return true;
  statement q{db, sql};
  if (!q.ok())
    return false;
  for (auto& x : xs) {
    bind(q, x);
    if (!q.run())
      return false;
  }
  return true;
}

/// Runs the query `sql` and calls `f` with it for each row; false when it
/// cannot be prepared or fails before its end.
template <class F>
bool for_each_result(sqlite3* db, const char* sql, F f) {
  statement q{db, sql};
  if (!q.ok())
    return false;
  int rc;
  while ((rc = q.step()) == SQLITE_ROW)
    f(q);
  return rc == SQLITE_DONE;
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

/// Renames `path` and its WAL and shared-memory files out of the way;
/// returns the new name of `path`.
caf::expected<std::string> move_aside(const std::string& path) {
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  auto base = path + ".corrupt-" + std::to_string(secs);
  auto aside = base;
  for (int n = 1; exists(aside); ++n)
    aside = base + "." + std::to_string(n);
  for (const char* suffix : {"", "-wal", "-shm"}) {
    auto from = path + suffix;
    if (!exists(from))
      continue;
    if (std::rename(from.c_str(), (aside + suffix).c_str()) != 0)
      return failed(path,
                    "cannot move it aside to \"" + aside + suffix
                      + "\": " + std::strerror(errno));
  }
  return aside;
}

/// How a file looked when opened.
enum class verdict { usable, fresh, not_ours, too_new };

/// Opens `path`, creating it when missing; null and the reason on failure.
sqlite3* open_file(const std::string& path, std::string& why) {
  sqlite3* db = nullptr;
  auto rc = sqlite3_open_v2(
    path.c_str(), &db,
    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    why = message_of(db);
    sqlite3_close(db);
    return nullptr;
  }
  // Another process on the same file waits for at most this long.
  sqlite3_busy_timeout(db, 5000);
  return db;
}

/// Classifies the open database `db`; `version` is its schema version.
verdict classify(sqlite3* db, int& version, std::string& why) {
  int rc = SQLITE_OK;
  auto app = query_integer(db, "PRAGMA application_id", rc);
  if (rc != SQLITE_OK) {
    why = message_of(db);
    return verdict::not_ours; // not a database at all, or a broken one
  }
  version = static_cast<int>(query_integer(db, "PRAGMA user_version", rc));
  auto objects = rc == SQLITE_OK
    ? query_integer(db, "SELECT count(*) FROM sqlite_master", rc)
    : 0;
  if (rc != SQLITE_OK) {
    why = message_of(db);
    return verdict::not_ours;
  }
  if (app == 0 && version == 0 && objects == 0)
    return verdict::fresh;
  if (app != application_id) {
    why = "application id " + std::to_string(app) + ", expected "
      + std::to_string(application_id) + " (connmgr)";
    return verdict::not_ours;
  }
  if (version > state_db::schema_version)
    return verdict::too_new;
  if (version < 1) {
    why = "connmgr's application id without a schema version";
    return verdict::not_ours;
  }
  statement check{db, "PRAGMA quick_check(1)"};
  if (!check.ok() || check.step() != SQLITE_ROW || check.text(0) != "ok") {
    why = "integrity check failed: " + message_of(db);
    return verdict::not_ours;
  }
  return verdict::usable;
}

} // namespace

caf::expected<state_db::opened> state_db::open(const std::string& path) {
  std::string moved_aside;
  for (int round = 0; round < 2; ++round) {
    std::string why;
    auto db = open_file(path, why);
    if (db == nullptr)
      return failed(path, "cannot open: " + why);
    state_db result{db, path};
    int version = 0;
    auto v = classify(db, version, why);
    if (v == verdict::too_new)
      return make_error(errc::state_too_new,
                        "state file \"" + path + "\" has schema version "
                          + std::to_string(version) + ", this connmgr reads "
                          + std::to_string(schema_version)
                          + " and older; left untouched");
    if (v == verdict::not_ours) {
      if (round > 0)
        return failed(path, "unusable after moving the old file aside: " + why);
      sqlite3_close(result.db_);
      result.db_ = nullptr;
      auto aside = move_aside(path);
      if (!aside)
        return std::move(aside.error());
      moved_aside = std::move(*aside);
      continue;
    }
    // WAL: a commit is one append, and readers never block the writer.
    // NORMAL syncs at checkpoints only: a commit survives a crash of the
    // process, not necessarily of the machine.
    {
      statement wal{db, "PRAGMA journal_mode=WAL"};
      if (!wal.ok() || wal.step() != SQLITE_ROW || wal.text(0) != "wal")
        return failed(path, "cannot switch to WAL mode: " + message_of(db));
    }
    if (auto err = result.exec("PRAGMA synchronous=NORMAL"))
      return err;
    if (v == verdict::fresh) {
      if (auto err = result.exec("BEGIN IMMEDIATE"))
        return err;
      std::string create = schema_v1;
      create += "PRAGMA application_id = " + std::to_string(application_id)
        + ";PRAGMA user_version = 1;";
      if (auto err = result.exec(create.c_str())) {
        result.exec("ROLLBACK");
        return err;
      }
      if (auto err = result.exec("COMMIT"))
        return err;
    }
    for (auto i = static_cast<size_t>(std::max(version, 1) - 1);
         i < migrations.size(); ++i) {
      std::string step = "BEGIN IMMEDIATE;";
      step += migrations[i];
      step += "PRAGMA user_version = " + std::to_string(i + 2) + ";COMMIT;";
      if (auto err = result.exec(step.c_str())) {
        result.exec("ROLLBACK");
        return err;
      }
    }
    return opened{std::move(result), std::move(moved_aside),
                  v == verdict::fresh ? 0 : version};
  }
  return failed(path, "cannot open");
}

state_db::state_db(sqlite3* db, std::string path)
  : db_(db), path_(std::move(path)) {
  // nop
}

state_db::state_db(state_db&& other) noexcept
  : db_(std::exchange(other.db_, nullptr)), path_(std::move(other.path_)) {
  // nop
}

state_db& state_db::operator=(state_db&& other) noexcept {
  if (this != &other) {
    sqlite3_close(db_);
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
  }
  return *this;
}

state_db::~state_db() {
  // Closing the last connection checkpoints the WAL into the database.
  sqlite3_close(db_);
}

caf::error state_db::exec(const char* sql) {
  char* msg = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &msg) == SQLITE_OK)
    return caf::none;
  std::string what = msg != nullptr ? msg : message_of(db_);
  sqlite3_free(msg);
  return failed(path_, what);
}

caf::expected<state_snapshot> state_db::load() {
  state_snapshot result;
  auto ok =
    for_each_result(db_,
                    "SELECT address, source, last_seen_ms, last_attempt_ms, "
                    "last_success_ms, attempts, failures, retry_at_ms, tried "
                    "FROM addresses ORDER BY address",
                    [&](statement& q) {
                      stored_address a;
                      a.address = q.text(0);
                      a.source = q.text(1);
                      a.last_seen_ms = q.integer(2);
                      a.last_attempt_ms = q.integer(3);
                      a.last_success_ms = q.integer(4);
                      a.attempts = static_cast<uint32_t>(q.integer(5));
                      a.failures = static_cast<uint32_t>(q.integer(6));
                      a.retry_at_ms = q.integer(7);
                      a.tried = q.integer(8) != 0;
                      result.addresses.push_back(std::move(a));
                    })
    && for_each_result(
      db_, "SELECT address FROM anchors ORDER BY position",
      [&](statement& q) { result.anchors.push_back(q.text(0)); })
    && for_each_result(
      db_,
      "SELECT subnet, until_ms, reason FROM bans "
      "ORDER BY subnet",
      [&](statement& q) {
        result.bans.push_back(stored_ban{q.text(0), q.integer(1), q.text(2)});
      });
  if (!ok)
    return failed(path_, message_of(db_));
  return result;
}

caf::error state_db::apply(const state_changes& changes) {
  if (changes.empty())
    return caf::none;
  if (auto err = exec("BEGIN IMMEDIATE"))
    return err;
  auto write = [&]() -> bool {
    auto erase_one = [](statement& q, const std::string& key) {
      q.bind(1, key);
    };
    int64_t position = 0;
    return for_each_row(db_,
                        "INSERT OR REPLACE INTO addresses VALUES "
                        "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        changes.put_addresses,
                        [](statement& q, const stored_address& a) {
                          q.bind(1, a.address);
                          q.bind(2, a.source);
                          q.bind(3, a.last_seen_ms);
                          q.bind(4, a.last_attempt_ms);
                          q.bind(5, a.last_success_ms);
                          q.bind(6, int64_t{a.attempts});
                          q.bind(7, int64_t{a.failures});
                          q.bind(8, a.retry_at_ms);
                          q.bind(9, int64_t{a.tried ? 1 : 0});
                        })
      && for_each_row(db_, "DELETE FROM addresses WHERE address = ?1",
                      changes.erase_addresses, erase_one)
      && for_each_row(db_, "INSERT OR REPLACE INTO bans VALUES (?1, ?2, ?3)",
                      changes.put_bans,
                      [](statement& q, const stored_ban& b) {
                        q.bind(1, b.subnet);
                        q.bind(2, b.until_ms);
                        q.bind(3, b.reason);
                      })
      && for_each_row(db_, "DELETE FROM bans WHERE subnet = ?1",
                      changes.erase_bans, erase_one)
      && (!changes.anchors
          || (!exec("DELETE FROM anchors")
              && for_each_row(db_, "INSERT INTO anchors VALUES (?1, ?2)",
                              *changes.anchors,
                              [&position](statement& q, const std::string& a) {
                                q.bind(1, position++);
                                q.bind(2, a);
                              })));
  };
  if (!write()) {
    auto err = failed(path_, message_of(db_));
    exec("ROLLBACK");
    return err;
  }
  return exec("COMMIT");
}

} // namespace connmgr
