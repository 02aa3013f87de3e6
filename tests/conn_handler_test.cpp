// The reference's acceptance scenarios, in our own words, on simulated time.

#include <doctest/doctest.h>

#include "tests/sim_fixture.hpp"

using namespace connmgr;
using namespace connmgr::test;

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 1: a handler without a dialer is refused") {
  handler_setup s;
  auto refused = spawn_conn_handler(sys, s);
  REQUIRE(!refused);
  CHECK(errc_of(refused.error()) == errc::invalid_config);
  CHECK(describe(refused.error()).find("dialer") != std::string::npos);
  s.dialer = dialer;
  auto accepted = spawn_conn_handler(sys, s);
  REQUIRE(accepted);
  handler = *accepted;
}

TEST_CASE_FIXTURE(sim_fixture,
                  "scenario 7: target outbound 10 gives exactly 10 connections") {
  auto s = setup();
  s.config.target_outbound = 10;
  s.get_address = counting_addresses();
  spawn(s);
  start();
  advance(1s, 100ms);
  CHECK(log->connected.size() == 10);
  CHECK(net->dial_count() == 10);
  CHECK(stats().outbound_established == 10);
}
