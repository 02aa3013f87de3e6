#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "examples/node/node_log.hpp"
#include "tests/node/sample_status.hpp"
#include "tests/support/flat_json.hpp"

using namespace connmgr;
using connmgr::test::keys_of;
using connmgr::test::member;
using connmgr::test::parse_flat_object;

namespace {

node_event make(std::string kind) {
  node_event x;
  x.event = std::move(kind);
  return x;
}

/// An event of connection request `id` to `addr`, permanent or one-shot.
node_event request_event(std::string kind, uint64_t id, std::string addr,
                         bool permanent) {
  auto x = make(std::move(kind));
  x.id = id;
  x.addr = std::move(addr);
  x.permanent = permanent;
  return x;
}

/// An event of the peer at `addr`, dialed by this node (outbound) or not.
node_event peer_event(std::string kind, std::string addr, bool outbound) {
  auto x = make(std::move(kind));
  x.addr = std::move(addr);
  x.outbound = outbound;
  return x;
}

/// `to_json(x)` must be a valid flat object; returns its keys in order.
std::string json_keys(const node_event& x) {
  auto parsed = parse_flat_object(to_json(x));
  REQUIRE_MESSAGE(parsed, "not valid JSON: " << to_json(x));
  return keys_of(*parsed);
}

} // namespace

TEST_CASE("node log: json_quote escapes quotes, backslashes and control "
          "characters and passes other bytes through") {
  CHECK(json_quote("") == R"("")");
  CHECK(json_quote("plain text") == R"("plain text")");
  CHECK(json_quote("say \"hi\"") == R"("say \"hi\"")");
  CHECK(json_quote("C:\\dir\\") == R"("C:\\dir\\")");
  CHECK(json_quote("a\nb\tc\r") == R"("a\u000ab\u0009c\u000d")");
  CHECK(json_quote(std::string{"\x00\x01\x1f", 3})
        == R"("\u0000\u0001\u001f")");
  // DEL, "/" and UTF-8 (even broken UTF-8) stay as they are.
  CHECK(json_quote("\x7f/\xc3\xa9\xff") == "\"\x7f/\xc3\xa9\xff\"");
  // Parsing the result gives back every byte.
  std::string all;
  for (int c = 1; c < 256; ++c)
    all += static_cast<char>(c);
  all += '\0';
  auto parsed = parse_flat_object("{\"k\":" + json_quote(all) + "}");
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 1);
  CHECK((*parsed)[0].value == all);
}

TEST_CASE("node log: to_json of an event without fields has only its kind") {
  CHECK(to_json(make("stopped")) == R"({"event":"stopped"})");
  CHECK(to_json(make("")) == R"({"event":""})");
  // Zero id, zero peer node and empty strings count as "not set".
  auto x = make("stopped");
  x.id = 0;
  x.peer_node = 0;
  CHECK(to_json(x) == R"({"event":"stopped"})");
}

TEST_CASE("node log: to_json of manager events") {
  SUBCASE("connected") {
    auto x = request_event("connected", 3, "127.0.0.1:9001", true);
    x.dial_us = 1234;
    CHECK(to_json(x)
          == R"({"event":"connected","id":3,"addr":"127.0.0.1:9001",)"
             R"("permanent":true,"dial_us":1234})");
  }
  SUBCASE("accepted (inbound: no id, no permanent flag)") {
    auto x = make("accepted");
    x.addr = "[::1]:50000";
    CHECK(to_json(x) == R"({"event":"accepted","addr":"[::1]:50000"})");
  }
  SUBCASE("rejected") {
    auto x = make("rejected");
    x.addr = "10.0.0.1:40000";
    x.reason = "inbound_limit";
    x.reason_code = "inbound_limit";
    CHECK(to_json(x)
          == R"({"event":"rejected","addr":"10.0.0.1:40000",)"
             R"("reason":"inbound_limit","reason_code":"inbound_limit"})");
  }
  SUBCASE("failed after a dial") {
    auto x = request_event("failed", 4, "127.0.0.1:9002", false);
    x.reason = "dial_failed: connect: \"refused\"";
    x.reason_code = "refused";
    x.dial_us = 0;
    CHECK(
      to_json(x)
      == R"({"event":"failed","id":4,"addr":"127.0.0.1:9002",)"
         R"("permanent":false,"reason":"dial_failed: connect: \"refused\"",)"
         R"("reason_code":"refused","dial_us":0})");
  }
  SUBCASE("retry") {
    auto x = request_event("retry", 3, "127.0.0.1:9001", true);
    x.delay_ms = 500;
    CHECK(to_json(x)
          == R"({"event":"retry","id":3,"addr":"127.0.0.1:9001",)"
             R"("permanent":true,"delay_ms":500})");
  }
  SUBCASE("disconnected") {
    auto x = request_event("disconnected", 9, "127.0.0.1:9001", true);
    x.reason = "connection_closed";
    x.reason_code = "connection_closed";
    CHECK(json_keys(x) == "event,id,addr,permanent,reason,reason_code");
  }
}

TEST_CASE("node log: to_json of peer and address book events") {
  SUBCASE("peer_ready") {
    auto x = peer_event("peer_ready", "127.0.0.1:9003", true);
    x.peer_node = 0x1f2e3d4c5b6a7980;
    CHECK(to_json(x)
          == R"({"event":"peer_ready","addr":"127.0.0.1:9003",)"
             R"("peer_node":"1f2e3d4c5b6a7980","outbound":true})");
  }
  SUBCASE("peer_dropped before the hello (no node id yet), inbound") {
    auto x = peer_event("peer_dropped", "127.0.0.1:50001", false);
    x.reason = "handshake timeout";
    x.reason_code = "handshake_timeout";
    CHECK(
      to_json(x)
      == R"({"event":"peer_dropped","addr":"127.0.0.1:50001",)"
         R"("reason":"handshake timeout","reason_code":"handshake_timeout",)"
         R"("outbound":false})");
  }
  SUBCASE("learned and seeded") {
    auto x = make("learned");
    x.addr = "127.0.0.1:9003";
    x.count = 12;
    CHECK(to_json(x)
          == R"({"event":"learned","addr":"127.0.0.1:9003","count":12})");
    auto y = make("seeded");
    y.addr = "seed.example.org";
    y.count = 0;
    CHECK(to_json(y)
          == R"({"event":"seeded","addr":"seed.example.org","count":0})");
  }
  SUBCASE("every field at once, in the documented order") {
    auto x = request_event("connected", 1, "a", true);
    x.reason = "r";
    x.reason_code = "c";
    x.delay_ms = 2;
    x.dial_us = 3;
    x.peer_node = 4;
    x.outbound = true;
    x.count = 5;
    CHECK(json_keys(x)
          == "event,id,addr,permanent,reason,reason_code,delay_ms,dial_us,"
             "peer_node,outbound,count");
  }
}

TEST_CASE("node log: to_json keeps 64-bit values exact") {
  auto x = make("peer_closed");
  x.id = std::numeric_limits<uint64_t>::max();
  x.peer_node = std::numeric_limits<uint64_t>::max();
  x.count = std::numeric_limits<uint64_t>::max();
  x.delay_ms = std::numeric_limits<int64_t>::min();
  CHECK(to_json(x)
        == R"({"event":"peer_closed","id":18446744073709551615,)"
           R"("delay_ms":-9223372036854775808,"peer_node":"ffffffffffffffff",)"
           R"("count":18446744073709551615})");
  auto y = make("peer_closed");
  y.peer_node = 1;
  CHECK(to_json(y)
        == R"({"event":"peer_closed","peer_node":"0000000000000001"})");
}

TEST_CASE("node log: to_json with a timestamp puts ts right after event") {
  auto x = make("retry");
  x.id = 3;
  x.delay_ms = 500;
  CHECK(to_json(x, 1700000000123)
        == R"({"event":"retry","ts":1700000000123,"id":3,"delay_ms":500})");
  CHECK(to_json(make("stopped"), 0) == R"({"event":"stopped","ts":0})");
}

TEST_CASE("node log: to_json output parses back to the original strings") {
  auto x = make("peer_dropped");
  x.addr = "host\"name\\:1";
  x.reason = "bad frame:\n\x01\x7f caf\xc3\xa9";
  x.reason_code = "protocol";
  x.peer_node = 0xabcdef;
  auto parsed = parse_flat_object(to_json(x, -5));
  REQUIRE(parsed);
  CHECK(keys_of(*parsed) == "event,ts,addr,reason,reason_code,peer_node");
  CHECK(member(*parsed, "addr")->value == x.addr);
  CHECK(member(*parsed, "reason")->value == x.reason);
  CHECK(member(*parsed, "ts")->value == "-5");
  CHECK_FALSE(member(*parsed, "ts")->is_string);
  CHECK(member(*parsed, "peer_node")->value == "0000000000abcdef");
  CHECK(member(*parsed, "peer_node")->is_string);
}

TEST_CASE("node log: to_text of manager events") {
  auto x = request_event("connected", 3, "127.0.0.1:9001", true);
  x.dial_us = 1234;
  CHECK(to_text(x) == "connected #3 127.0.0.1:9001 (permanent) in 1.2 ms");

  auto r = request_event("retry", 3, "127.0.0.1:9001", false);
  r.delay_ms = 500;
  CHECK(to_text(r) == "retry #3 127.0.0.1:9001 (one-shot) in 500 ms");

  auto f = make("failed");
  f.id = 4;
  f.addr = "127.0.0.1:9002";
  f.reason = "connection refused";
  f.reason_code = "refused";
  CHECK(to_text(f) == "failed #4 127.0.0.1:9002: refused: connection refused");
  // A reason that already starts with its code does not repeat it.
  f.reason = "refused";
  f.dial_us = 3000;
  CHECK(to_text(f) == "failed #4 127.0.0.1:9002 in 3 ms: refused");
  f.reason = "refused: by peer";
  CHECK(to_text(f) == "failed #4 127.0.0.1:9002 in 3 ms: refused: by peer");
  f.reason = "refusedx";
  CHECK(to_text(f) == "failed #4 127.0.0.1:9002 in 3 ms: refused: refusedx");
  f.reason.clear();
  CHECK(to_text(f) == "failed #4 127.0.0.1:9002 in 3 ms: refused");

  auto a = make("accepted");
  a.addr = "[::1]:50000";
  CHECK(to_text(a) == "accepted [::1]:50000");
  CHECK(to_text(make("stopped")) == "stopped");

  // Both a dial duration and a retry delay (not produced today, but allowed).
  auto both = make("failed");
  both.id = 1;
  both.dial_us = 2'500'000;
  both.delay_ms = 1500;
  CHECK(to_text(both) == "failed #1 in 2.5 s, retry in 1.5 s");
}

TEST_CASE("node log: to_text of peer and address book events") {
  auto p = peer_event("peer_ready", "127.0.0.1:9003", true);
  p.peer_node = 0x1f2e3d4c5b6a7980;
  CHECK(to_text(p)
        == "peer_ready 127.0.0.1:9003 node 1f2e3d4c5b6a7980 outbound");

  auto d = peer_event("peer_dropped", "127.0.0.1:50001", false);
  d.reason_code = "ping_timeout";
  d.reason = "no pong for 30 s";
  CHECK(
    to_text(d)
    == "peer_dropped 127.0.0.1:50001 inbound: ping_timeout: no pong for 30 s");

  auto l = make("learned");
  l.addr = "127.0.0.1:9003";
  l.count = 12;
  CHECK(to_text(l) == "learned 12 addresses from 127.0.0.1:9003");
  l.count = 1;
  l.addr.clear();
  CHECK(to_text(l) == "learned 1 address");

  auto s = make("seeded");
  s.addr = "seed.example.org";
  s.count = 0;
  CHECK(to_text(s) == "seeded 0 addresses from seed.example.org");
}

TEST_CASE("node log: to_text durations") {
  auto line = [](int64_t us) {
    auto x = make("connected");
    x.dial_us = us;
    return to_text(x);
  };
  CHECK(line(0) == "connected in 0 us");
  CHECK(line(999) == "connected in 999 us");
  CHECK(line(1000) == "connected in 1 ms");
  CHECK(line(1250) == "connected in 1.2 ms"); // round half to even
  CHECK(line(999'999) == "connected in 1000 ms");
  CHECK(line(1'000'000) == "connected in 1 s");
  CHECK(line(61'234'567) == "connected in 61.23 s");
  CHECK(line(-1500) == "connected in -1.5 ms");
  CHECK(line(std::numeric_limits<int64_t>::min()).rfind("connected in -", 0)
        == 0);
  auto delay = [](int64_t ms) {
    auto x = make("retry");
    x.delay_ms = ms;
    return to_text(x);
  };
  CHECK(delay(0) == "retry in 0 ms");
  CHECK(delay(999) == "retry in 999 ms");
  CHECK(delay(1000) == "retry in 1 s");
  CHECK(delay(90'500) == "retry in 90.5 s");
}

TEST_CASE("node log: to_text stays on one line whatever the strings hold") {
  auto x = make("peer_dropped");
  x.addr = "a\\b";
  x.reason_code = "protocol";
  x.reason = "bad\r\nframe\t\x01\x7f caf\xc3\xa9";
  auto text = to_text(x);
  CHECK(text
        == "peer_dropped a\\\\b: protocol: bad\\r\\nframe\\t\\x01\\x7f "
           "caf\xc3\xa9");
  CHECK(text.find('\n') == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
}

TEST_CASE("node log: status_line") {
  auto s = test::sample_status(0);
  CHECK(status_line(s)
        == "status: outbound 3/8, inbound 2/unlimited, pending dials 1, "
           "failures 4, retries 2, failed attempts 0, peers 5, addresses 12");
  s.max_inbound = 10;
  CHECK(status_line(s)
        == "status: outbound 3/8, inbound 2/10, pending dials 1, "
           "failures 4, retries 2, failed attempts 0, peers 5, addresses 12");
  s.max_inbound = 0;
  CHECK(status_line(node_status{})
          .rfind("status: outbound 0/0, inbound 0/unlimited,", 0)
        == 0);
}

TEST_CASE("node log: status_json") {
  auto s = test::sample_status(7);
  CHECK(status_json(s)
        == R"({"event":"status","outbound":3,"target_outbound":8,"inbound":2,)"
           R"("max_inbound":null,"pending_dials":1,"failures":4,"retries":2,)"
           R"("failed_attempts":7,"peers_ready":5,"known_addresses":12})");
  s.max_inbound = 0;
  auto parsed = parse_flat_object(status_json(s, 42));
  REQUIRE(parsed);
  CHECK(keys_of(*parsed)
        == "event,ts,outbound,target_outbound,inbound,max_inbound,"
           "pending_dials,failures,retries,failed_attempts,peers_ready,"
           "known_addresses");
  CHECK(member(*parsed, "max_inbound")->value == "0");
  CHECK(member(*parsed, "ts")->value == "42");
}
