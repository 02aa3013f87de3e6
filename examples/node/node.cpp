// The node facade: builds a node's parts (listeners, dialer, node actor,
// handler) and hands out a plain C++ handle to them; and the system DNS
// lookup for seeds.
#include "examples/node/node.hpp"

#include <algorithm>

#include <netinet/in.h>

#include <caf/actor_system.hpp>
#include <caf/scoped_actor.hpp>
#include <caf/send.hpp>

#include "connmgr/actors/conn_handler.hpp"
#include "connmgr/actors/stop_signal.hpp"
#include "connmgr/actors/tcp_acceptor.hpp"
#include "connmgr/actors/tcp_dialer.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/messages/events.hpp"
#include "connmgr/net/resolver.hpp"
#include "examples/node/node_actor.hpp"

namespace connmgr {

dns_lookup system_dns_lookup(std::shared_ptr<resolver> names) {
  return
    [names](const net_address& seed,
            std::function<void(caf::expected<std::vector<net_address>>)> done) {
      auto port = seed.port();
      names->resolve(
        seed.host(), port,
        [done](caf::expected<std::vector<sockaddr_storage>> res) {
          if (!res) {
            done(std::move(res.error()));
            return;
          }
          std::vector<net_address> out;
          for (auto& sa : *res) {
            auto len = sa.ss_family == AF_INET ? sizeof(sockaddr_in)
                                               : sizeof(sockaddr_in6);
            auto addr =
              net_address::from_sockaddr(reinterpret_cast<const sockaddr*>(&sa),
                                         static_cast<socklen_t>(len));
            if (addr && std::find(out.begin(), out.end(), *addr) == out.end())
              out.push_back(std::move(*addr));
          }
          done(std::move(out));
        });
    };
}

struct node::impl {
  caf::actor_system& sys;
  caf::actor actor;
  conn_handler_actor handler;
  uint64_t id;
  std::vector<net_address> bound;
  std::shared_ptr<stop_signal> done;

  impl(caf::actor_system& system, caf::actor act, conn_handler_actor hdl,
       uint64_t node_id, std::vector<net_address> addrs,
       std::shared_ptr<stop_signal> signal)
    : sys(system), actor(std::move(act)), handler(std::move(hdl)),
      id(node_id), bound(std::move(addrs)),
      done(std::move(signal)) {
    // nop
  }
};

caf::expected<node> node::make(caf::actor_system& sys, node_setup setup) {
  if (!setup.io)
    return make_error(errc::invalid_config,
                      "io = none, expected a running reactor");
  if (!setup.names)
    return make_error(errc::invalid_config,
                      "names = none, expected a resolver");
  if (auto err = validate(setup.settings.manager))
    return err;
  if (!setup.lookup)
    setup.lookup = system_dns_lookup(setup.names);
  auto node_id = setup.node_id != 0 ? setup.node_id : random_node_id();
  handler_setup hs;
  hs.config = setup.settings.manager;
  std::vector<net_address> bound;
  // Listeners first: a busy or bad address fails before anything runs.
  for (auto& addr : setup.settings.listen) {
    auto listener = spawn_tcp_acceptor(sys, setup.io, addr);
    if (!listener) {
      for (auto& l : hs.listeners)
        caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
      return make_error(errc::invalid_config,
                        "listen " + addr.to_string() + ": "
                          + describe(listener.error()));
    }
    hs.listeners.push_back(listener->acceptor);
    bound.push_back(listener->bound);
  }
  tcp_dialer_options dopts;
  dopts.proxy = setup.settings.proxy;
  hs.dialer = spawn_tcp_dialer(sys, setup.io, setup.names, dopts);
  auto done = std::make_shared<stop_signal>();
  node_parts parts{std::move(setup), node_id, bound, done};
  auto actor = spawn_node_actor(sys, std::move(parts));
  // The node actor handles every event besides its own messages.
  hs.events = caf::actor_cast<conn_events_actor>(actor);
  hs.address_source = caf::actor_cast<address_source_actor>(actor);
  auto dialer = hs.dialer;
  auto handler = spawn_conn_handler(sys, std::move(hs));
  if (!handler) {
    caf::anon_send_exit(actor, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(dialer, caf::exit_reason::user_shutdown);
    return std::move(handler.error());
  }
  caf::anon_send(actor, node_init_atom::value, *handler, dialer);
  return node{std::make_unique<impl>(sys, std::move(actor), *handler, node_id,
                                     std::move(bound), std::move(done))};
}

node::node(std::unique_ptr<impl> ptr) : impl_(std::move(ptr)) {
  // nop
}

node::node(node&&) noexcept = default;

node& node::operator=(node&& other) noexcept {
  if (this != &other) {
    if (impl_) {
      stop();
      wait();
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

node::~node() {
  if (impl_) {
    stop();
    wait();
  }
}

void node::start() {
  caf::anon_send(impl_->actor, start_atom::value);
}

std::shared_future<void> node::stop(std::string why) {
  caf::anon_send(impl_->actor, stop_atom::value, std::move(why));
  return impl_->done->future;
}

void node::wait() {
  impl_->done->future.wait();
}

std::shared_future<void> node::done() const {
  return impl_->done->future;
}

uint64_t node::id() const noexcept {
  return impl_->id;
}

const std::vector<net_address>& node::listening() const noexcept {
  return impl_->bound;
}

node_status node::status() {
  node_status result;
  caf::scoped_actor self{impl_->sys};
  // Bounded: a caller polling status must never hang on a node that is
  // going away.
  self->request(impl_->actor, std::chrono::seconds{10}, node_status_atom::value)
    .receive([&](node_status& x) { result = x; },
             [](caf::error&) {
               // Stopped: all zero.
             });
  return result;
}

caf::actor node::handle() const {
  return impl_->actor;
}

conn_handler_actor node::handler() const {
  return impl_->handler;
}

} // namespace connmgr
