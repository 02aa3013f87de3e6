// connmgr-demo: the connection manager at work on an in-memory network.
//
// It shows, in about three seconds: the outbound target being filled from an
// address source while some addresses refuse, a permanent peer that is down
// at first and is redialed with linear backoff, inbound connections admitted
// up to the limit and refused beyond it, a disconnect that is replaced at
// once, and a stop that leaves nothing behind.

#include <chrono>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/send.hpp>

#include <fmt/format.h>

#include "actors/fake_acceptor.hpp"
#include "actors/fake_dialer.hpp"
#include "actors/manager.hpp"
#include "messages/error_code.hpp"

using namespace connmgr;
using namespace std::chrono_literals;

namespace {

const auto demo_start = std::chrono::steady_clock::now();
std::mutex print_mtx;

template <class... Ts>
void say(fmt::format_string<Ts...> fstr, Ts&&... xs) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::steady_clock::now() - demo_start)
              .count();
  std::lock_guard<std::mutex> guard{print_mtx};
  fmt::print("[{:>5} ms] {}\n", ms, fmt::format(fstr, std::forward<Ts>(xs)...));
  std::fflush(stdout);
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  add_error_category(cfg);
  caf::actor_system sys{cfg};

  // The network: every third address from the source refuses; the permanent
  // peer refuses its first three dials.
  auto net = std::make_shared<fake_network>();
  auto peer_dials = std::make_shared<std::atomic<int>>(0);
  net->set_policy([peer_dials](const std::string& addr) -> fake_dial_plan {
    if (addr == "127.0.0.1:18444")
      return ++*peer_dials <= 3
               ? fake_dial_plan{fake_dial_plan::fail, make_error(errc::refused)}
               : fake_dial_plan{};
    auto last = addr.substr(addr.rfind('.') + 1);
    if (std::stoi(last) % 3 == 0)
      return {fake_dial_plan::fail, make_error(errc::refused)};
    return {};
  });
  auto dialer = spawn_fake_dialer(sys, net);
  auto listener_record = std::make_shared<fake_acceptor_record>();
  auto acceptor = spawn_fake_acceptor(sys, listener_record);

  handler_setup setup;
  setup.dialer = dialer;
  setup.listeners.push_back(acceptor);
  setup.config.target_outbound = 4;
  setup.config.max_inbound = 2;
  setup.config.retry_duration = 200ms;
  setup.config.max_retry_duration = 1s;
  auto next = std::make_shared<std::atomic<int>>(0);
  setup.get_address = [next]() -> caf::expected<std::string> {
    return fmt::format("127.0.0.{}:8333", ++*next);
  };

  std::mutex conns_mtx;
  std::vector<std::pair<conn_request, connection_ptr>> outbound;
  manager_callbacks cb;
  cb.on_connection = [&](const conn_request& req, connection_ptr conn) {
    say("connected     {}", to_string(req));
    std::lock_guard<std::mutex> guard{conns_mtx};
    outbound.emplace_back(req, std::move(conn));
  };
  cb.on_disconnection = [](const conn_request& req, const caf::error& why) {
    say("disconnected  {} ({})", to_string(req), describe(why));
  };
  cb.on_failure = [](const conn_request& req, const caf::error& why) {
    say("failed        {} ({})", to_string(req), describe(why));
  };
  cb.on_retry = [](const conn_request& req, caf::timespan delay) {
    say("retry         #{} in {}", req.id, to_string_duration(delay));
  };
  std::vector<connection_ptr> inbound;
  cb.on_accept = [&](uint32_t listener, connection_ptr conn) {
    say("accepted      {} on listener {}", conn->remote_address(), listener);
    std::lock_guard<std::mutex> guard{conns_mtx};
    inbound.push_back(std::move(conn));
  };
  cb.on_reject = [](uint32_t listener, const std::string& from,
                    const caf::error& why) {
    say("rejected      {} on listener {} ({})", from, listener,
        describe(why));
  };

  auto mgr = manager::make(sys, setup, cb);
  if (!mgr) {
    fmt::print(stderr, "connmgr-demo: {}\n", describe(mgr.error()));
    return 1;
  }
  say("starting: target 4 outbound, max 2 inbound, backoff 200ms linear "
      "capped at 1s");
  mgr->start();
  mgr->connect("127.0.0.1:18444", true);
  std::this_thread::sleep_for(300ms);

  say("four peers dial in");
  for (int i = 1; i <= 4; ++i)
    caf::anon_send(acceptor, inject_atom::value,
                   make_memory_connection(fmt::format("127.0.0.1:{}",
                                                      50000 + i)));
  std::this_thread::sleep_for(300ms);

  uint64_t victim = 0;
  {
    std::lock_guard<std::mutex> guard{conns_mtx};
    for (auto& [req, conn] : outbound)
      if (req.automatic && !conn->closed()) {
        victim = req.id;
        break;
      }
  }
  if (victim != 0) {
    say("disconnecting #{}: an automatic request is replaced at once",
        victim);
    mgr->disconnect(victim);
  }
  std::this_thread::sleep_for(1500ms);

  say("requests now:");
  for (auto& req : mgr->requests())
    say("  {}", to_string(req));
  say("stopping");
  mgr->stop().wait();
  // Delivered connections are the user's: the manager leaves them open.
  say("stopped after {} dials; listener closed: {}; the user holds {} open "
      "connections",
      net->dial_count(), listener_record->closed ? "yes" : "no",
      net->open_connections());
  for (auto& kvp : outbound)
    kvp.second->close();
  outbound.clear();
  inbound.clear(); // the last handle closes each
  say("user closed them: {} open", net->open_connections());
  caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
  return 0;
}
