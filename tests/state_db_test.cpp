// The state file on a real disk: a new file gets the schema, what is applied
// comes back after a reopen, changes are all or nothing, and files that are
// not ours are moved aside while a newer schema is refused untouched.

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "connmgr/actors/state_db.hpp"
#include "connmgr/messages/error_code.hpp"
#include "tests/support/temp_dir.hpp"

using namespace connmgr;
using connmgr::test::temp_dir;

namespace {

state_db::opened must_open(const std::string& path) {
  auto r = state_db::open(path);
  REQUIRE_MESSAGE(r, describe(r.error()));
  return std::move(*r);
}

std::string read_file(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, {}};
}

/// Runs `sql` on `path` with SQLite directly, as another program would.
void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* msg = nullptr;
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &msg);
  CHECK_MESSAGE(rc == SQLITE_OK, (msg != nullptr ? msg : ""));
  sqlite3_free(msg);
  sqlite3_close(db);
}

/// The text of a one-value query on `path`.
std::string raw_query(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  sqlite3_stmt* q = nullptr;
  std::string result;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr) == SQLITE_OK
      && sqlite3_step(q) == SQLITE_ROW)
    result = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
  sqlite3_finalize(q);
  sqlite3_close(db);
  return result;
}

stored_address address(const std::string& text, uint32_t failures = 0) {
  stored_address a;
  a.address = text;
  a.source = "seed.example.org:8333";
  a.last_seen_ms = 1'700'000'000'000;
  a.last_attempt_ms = 1'700'000'001'000;
  a.attempts = 3;
  a.failures = failures;
  a.retry_at_ms = failures > 0 ? 1'700'000'060'000 : 0;
  return a;
}

} // namespace

TEST_CASE("state file: a new file gets schema version 1 in WAL mode and "
          "holds nothing") {
  temp_dir dir{"connmgr-state"};
  auto path = dir.path("state.db");
  {
    auto o = must_open(path);
    CHECK(o.found_version == 0);
    CHECK(o.moved_aside.empty());
    auto snap = o.db.load();
    REQUIRE(snap);
    CHECK(snap->addresses.empty());
    CHECK(snap->anchors.empty());
    CHECK(snap->bans.empty());
  }
  CHECK(raw_query(path, "PRAGMA user_version") == "1");
  CHECK(raw_query(path, "PRAGMA journal_mode") == "wal");
  CHECK(raw_query(path, "PRAGMA application_id") == "1668114290");
  CHECK(must_open(path).found_version == 1);
}

TEST_CASE("state file: addresses, anchors and bans come back after a "
          "reopen, replaced and erased as applied") {
  temp_dir dir{"connmgr-state"};
  auto path = dir.path("state.db");
  {
    auto o = must_open(path);
    state_changes c;
    c.put_addresses = {address("10.0.0.1:8333"), address("10.0.0.2:8333", 4),
                       address("[2001:db8::1]:8333")};
    c.put_bans = {{"10.9.0.0/16", 1'800'000'000'000, "operator"},
                  {"10.8.0.1/32", 1'800'000'000'001, "misbehaving: protocol"}};
    c.anchors = std::vector<std::string>{"10.0.0.2:8333", "10.0.0.1:8333"};
    REQUIRE_FALSE(o.db.apply(c));
    state_changes d;
    auto replaced = address("10.0.0.1:8333");
    replaced.tried = true;
    replaced.last_success_ms = 1'700'000'002'000;
    d.put_addresses = {replaced};
    d.erase_addresses = {"[2001:db8::1]:8333", "10.0.0.99:1"};
    d.erase_bans = {"10.9.0.0/16"};
    REQUIRE_FALSE(o.db.apply(d));
  }
  auto o = must_open(path);
  auto snap = o.db.load();
  REQUIRE(snap);
  REQUIRE(snap->addresses.size() == 2);
  auto& a = snap->addresses[0];
  CHECK(a.address == "10.0.0.1:8333");
  CHECK(a.tried);
  CHECK(a.last_success_ms == 1'700'000'002'000);
  CHECK(a.source == "seed.example.org:8333");
  auto& b = snap->addresses[1];
  CHECK(b.address == "10.0.0.2:8333");
  CHECK(b.failures == 4);
  CHECK(b.retry_at_ms == 1'700'000'060'000);
  CHECK(b.attempts == 3);
  CHECK_FALSE(b.tried);
  CHECK(snap->anchors
        == std::vector<std::string>{"10.0.0.2:8333", "10.0.0.1:8333"});
  REQUIRE(snap->bans.size() == 1);
  CHECK(snap->bans[0].subnet == "10.8.0.1/32");
  CHECK(snap->bans[0].until_ms == 1'800'000'000'001);
  CHECK(snap->bans[0].reason == "misbehaving: protocol");
  // New anchors replace the old ones, not add to them.
  state_changes e;
  e.anchors = std::vector<std::string>{"10.0.0.3:8333"};
  REQUIRE_FALSE(o.db.apply(e));
  CHECK(o.db.load()->anchors == std::vector<std::string>{"10.0.0.3:8333"});
}

TEST_CASE("state file: random bytes are moved aside, kept as they were, and "
          "an empty state file takes their place") {
  temp_dir dir{"connmgr-state"};
  std::string junk(10000, '\0');
  for (size_t i = 0; i < junk.size(); ++i)
    junk[i] = static_cast<char>((i * 7919) % 251);
  auto path = dir.write("state.db", junk);
  auto o = must_open(path);
  REQUIRE_FALSE(o.moved_aside.empty());
  CHECK(o.moved_aside.rfind(path + ".corrupt-", 0) == 0);
  CHECK(read_file(o.moved_aside) == junk);
  CHECK(o.found_version == 0);
  REQUIRE(o.db.load());
  CHECK(o.db.load()->addresses.empty());
  state_changes c;
  c.put_addresses = {address("10.0.0.1:8333")};
  CHECK_FALSE(o.db.apply(c));
}

TEST_CASE("state file: another program's database is moved aside, not "
          "written to") {
  temp_dir dir{"connmgr-state"};
  auto path = dir.path("state.db");
  raw_exec(path,
           "CREATE TABLE wallet(key TEXT, value TEXT);"
           "INSERT INTO wallet VALUES ('seed', 'precious');");
  auto o = must_open(path);
  REQUIRE_FALSE(o.moved_aside.empty());
  CHECK(raw_query(o.moved_aside, "SELECT value FROM wallet") == "precious");
  CHECK(dir.entries().size() >= 2);
}

TEST_CASE("state file: a newer schema is refused and left untouched") {
  temp_dir dir{"connmgr-state"};
  auto path = dir.path("state.db");
  { must_open(path); }
  raw_exec(path, "PRAGMA user_version = 2");
  auto before = dir.entries();
  auto bytes = read_file(path);
  auto r = state_db::open(path);
  REQUIRE_FALSE(r);
  CHECK(errc_of(r.error()) == errc::state_too_new);
  auto text = describe(r.error());
  CHECK_MESSAGE(text.find("schema version 2") != std::string::npos, text);
  CHECK_MESSAGE(text.find(path) != std::string::npos, text);
  CHECK(dir.entries() == before);
  CHECK(read_file(path) == bytes);
}

TEST_CASE("state file: a path that cannot be created fails naming it") {
  temp_dir dir{"connmgr-state"};
  auto path = dir.path("missing/dir/state.db");
  auto r = state_db::open(path);
  REQUIRE_FALSE(r);
  CHECK(errc_of(r.error()) == errc::state_failed);
  auto text = describe(r.error());
  CHECK_MESSAGE(text.find(path) != std::string::npos, text);
}
