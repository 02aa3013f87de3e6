#include "connmgr/actors/tcp_dialer.hpp"

#include <deque>
#include <random>
#include <unordered_map>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "connmgr/actors/detached_reply.hpp"
#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/resolver.hpp"
#include "connmgr/net/socks5_stream.hpp"

using sockaddr_list = std::vector<sockaddr_storage>;

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(sockaddr_list)

namespace connmgr {

namespace {

using resolved_atom = caf::atom_constant<caf::atom("resolved")>;
using flushed_atom = caf::atom_constant<caf::atom("flushed")>;
using resolve_timeout_atom = caf::atom_constant<caf::atom("res_tout")>;

using tcp_dialer_actor =
  dialer_actor::extend<caf::reacts_to<resolved_atom, uint64_t, sockaddr_list>,
                       caf::reacts_to<resolved_atom, uint64_t, caf::error>,
                       caf::reacts_to<flushed_atom, uint64_t>,
                       caf::reacts_to<resolve_timeout_atom, uint64_t>>;

struct pending_dial {
  std::string address;
  /// Answers the dial; moves into the reactor's handler once connecting, so
  /// the result goes to the requester without passing through this actor.
  detached_reply reply;
  reactor::clock::time_point deadline;
  uint64_t token = 0; // reactor token once connecting
};

/// Dials IP literals straight on the reactor from the requester's thread;
/// host names, bad addresses and every dial through a proxy go to the actor.
class tcp_direct_dialer : public direct_dialer {
public:
  explicit tcp_direct_dialer(std::shared_ptr<reactor> io) : io_(std::move(io)) {
    // nop
  }

  uint64_t try_dial(uint64_t dial_id, const std::string& address,
                    caf::timespan timeout,
                    const caf::strong_actor_ptr& reply_to) override {
    auto target = net_address::parse(address);
    if (!target || !target->is_ip())
      return 0;
    sockaddr_storage sa{};
    target->to_sockaddr(sa);
    return io_->connect(
      {sa}, reactor::clock::now() + timeout, address,
      [reply_to, dial_id](caf::expected<connection_ptr> conn) {
        auto msg = conn
          ? caf::make_message(dialed_atom::value, dial_id, std::move(*conn))
          : caf::make_message(dialed_atom::value, dial_id,
                              std::move(conn.error()));
        reply_to->enqueue(nullptr, caf::make_message_id(), std::move(msg),
                          nullptr);
      });
  }

  void cancel(uint64_t token) override {
    io_->cancel(token);
  }

private:
  std::shared_ptr<reactor> io_;
};

struct tcp_dialer_state {
  std::shared_ptr<reactor> io;
  /// Null with a proxy: every dial then needs the handshake set up here.
  direct_dialer_ptr direct;
  std::shared_ptr<resolver> names;
  tcp_dialer_options options;
  sockaddr_storage proxy_addr{};
  /// Dials still resolving, and connecting ones (kept for `cancel`) until
  /// their deadline has passed: the reactor has answered them by then.
  std::unordered_map<uint64_t, pending_dial> dials;
  /// Dial ids in order of arrival with their deadlines, to forget connecting
  /// dials lazily (no message per finished dial).
  std::deque<std::pair<reactor::clock::time_point, uint64_t>> expiry;
  std::unordered_map<uint64_t, caf::typed_response_promise<bool>> flushes;
  uint64_t next_flush = 0;
  std::mt19937_64 rng{std::random_device{}()};
  static inline const char* name = "connmgr.tcp_dialer";

  // CAF destroys the state when the actor ends, before attached functors
  // run: the one place that still sees our dials.
  ~tcp_dialer_state() {
    if (!io)
      return;
    for (auto& kvp : dials)
      if (kvp.second.token != 0)
        io->cancel(kvp.second.token);
  }
};

using dialer_pointer = tcp_dialer_actor::stateful_pointer<tcp_dialer_state>;

void fail(dialer_pointer self, uint64_t id, caf::error err) {
  auto& st = self->state;
  auto i = st.dials.find(id);
  if (i == st.dials.end())
    return;
  i->second.reply.deliver(std::move(err));
  st.dials.erase(i);
}

/// Forgets connecting dials whose deadline passed: their reactor handler
/// ran or is about to run, and cancel has nothing left to abandon.
void forget_expired(dialer_pointer self, reactor::clock::time_point now) {
  auto& st = self->state;
  while (!st.expiry.empty() && st.expiry.front().first <= now) {
    auto i = st.dials.find(st.expiry.front().second);
    if (i != st.dials.end() && i->second.token != 0)
      st.dials.erase(i);
    st.expiry.pop_front();
  }
}

void start_connect(dialer_pointer self, uint64_t id, sockaddr_list addrs,
                   reactor::clock::time_point deadline,
                   std::shared_ptr<stream_handshake> hs) {
  auto& st = self->state;
  auto i = st.dials.find(id);
  if (i == st.dials.end())
    return;
  auto& address = i->second.address;
  i->second.token = st.io->connect(
    std::move(addrs), deadline, address,
    [reply =
       std::move(i->second.reply)](caf::expected<connection_ptr> conn) mutable {
      if (conn)
        reply.deliver(std::move(*conn));
      else
        reply.deliver(std::move(conn.error()));
    },
    std::move(hs));
}

std::string random_token(std::mt19937_64& rng) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string result(16, '0');
  for (auto& c : result)
    c = digits[rng() % 16];
  return result;
}

tcp_dialer_actor::behavior_type tcp_dialer(dialer_pointer self,
                                           std::shared_ptr<reactor> io,
                                           std::shared_ptr<resolver> names,
                                           tcp_dialer_options options) {
  auto& st = self->state;
  st.io = std::move(io);
  st.names = std::move(names);
  st.options = std::move(options);
  if (st.options.proxy)
    st.options.proxy->to_sockaddr(st.proxy_addr);
  else
    st.direct = std::make_shared<tcp_direct_dialer>(st.io);
  return {
    [self](direct_atom) { return self->state.direct; },
    [self](dial_atom, uint64_t id, std::string& address,
           caf::timespan timeout) -> caf::result<connection_ptr> {
      auto& s = self->state;
      auto target = net_address::parse(address);
      if (!target)
        return std::move(target.error());
      auto promise = self->make_response_promise<connection_ptr>();
      auto now = reactor::clock::now();
      forget_expired(self, now);
      auto deadline = now + timeout;
      // Ids should be unique; a reused one takes over the record (a
      // connecting dial under it still answers through the reactor).
      if (auto old = s.dials.find(id);
          old != s.dials.end() && old->second.token == 0)
        fail(self, id, make_error(errc::canceled, "dial id reused"));
      s.dials.insert_or_assign(
        id,
        pending_dial{
          address, detached_reply{promise, caf::strong_actor_ptr{self->ctrl()}},
          deadline, 0});
      s.expiry.emplace_back(deadline, id);
      if (s.options.proxy) {
        // The proxy resolves names: never leak them to local DNS.
        auto type = target->type() == net_address::kind::ipv4
          ? socks5::address_type::ipv4
          : target->type() == net_address::kind::ipv6
          ? socks5::address_type::ipv6
          : socks5::address_type::domain;
        auto dest =
          socks5::address::from_text(type, target->host(), target->port());
        std::optional<socks5::credentials> creds;
        if (s.options.isolate_streams)
          creds = socks5::credentials{random_token(s.rng), random_token(s.rng)};
        auto hs = dest
          ? socks5::client_handshake::connect(*dest, creds)
          : caf::expected<socks5::client_handshake>{std::move(dest.error())};
        if (!hs) {
          fail(self, id, std::move(hs.error()));
          return promise;
        }
        start_connect(self, id, {s.proxy_addr}, deadline,
                      std::make_shared<socks5_stream>(std::move(*hs)));
        return promise;
      }
      if (target->is_ip()) {
        sockaddr_storage sa{};
        target->to_sockaddr(sa);
        start_connect(self, id, {sa}, deadline, nullptr);
        return promise;
      }
      auto me = caf::actor_cast<tcp_dialer_actor>(self);
      // A slow resolver must not stretch the dial past its deadline.
      self->delayed_send(me, timeout, resolve_timeout_atom::value, id);
      s.names->resolve(target->host(), target->port(),
                       [me, id](caf::expected<sockaddr_list> addrs) {
                         if (addrs)
                           caf::anon_send(me, resolved_atom::value, id,
                                          std::move(*addrs));
                         else
                           caf::anon_send(me, resolved_atom::value, id,
                                          std::move(addrs.error()));
                       });
      return promise;
    },
    [self](resolved_atom, uint64_t id, sockaddr_list& addrs) {
      // The deadline counts from the dial: resolving spent part of it.
      auto& s = self->state;
      auto i = s.dials.find(id);
      if (i != s.dials.end())
        start_connect(self, id, std::move(addrs), i->second.deadline, nullptr);
    },
    [self](resolved_atom, uint64_t id, caf::error& err) {
      fail(self, id, std::move(err));
    },
    [self](resolve_timeout_atom, uint64_t id) {
      auto& s = self->state;
      auto i = s.dials.find(id);
      if (i != s.dials.end() && i->second.token == 0)
        fail(self, id,
             make_error(errc::timed_out,
                        "host name not resolved by the deadline"));
    },
    [self](cancel_atom, uint64_t id) {
      auto& s = self->state;
      auto i = s.dials.find(id);
      if (i == s.dials.end())
        return;
      if (i->second.token == 0) {
        fail(self, id, make_error(errc::canceled, "dial canceled"));
        return;
      }
      // The reactor answers it (canceled, unless it finished already).
      s.io->cancel(i->second.token);
      s.dials.erase(i);
    },
    [self](flush_atom) {
      // Every cancel before this posted its work to the reactor already;
      // the reactor runs posted work in order.
      auto& s = self->state;
      auto key = ++s.next_flush;
      auto promise = self->make_response_promise<bool>();
      s.flushes.emplace(key, promise);
      auto me = caf::actor_cast<tcp_dialer_actor>(self);
      s.io->barrier(
        [me, key] { caf::anon_send(me, flushed_atom::value, key); });
      return promise;
    },
    [self](flushed_atom, uint64_t key) {
      auto& s = self->state;
      auto i = s.flushes.find(key);
      if (i == s.flushes.end())
        return;
      i->second.deliver(true);
      s.flushes.erase(i);
    },
  };
}

} // namespace

dialer_actor spawn_tcp_dialer(caf::actor_system& sys,
                              std::shared_ptr<reactor> io,
                              std::shared_ptr<resolver> names,
                              tcp_dialer_options options) {
  auto hdl =
    sys.spawn(tcp_dialer, std::move(io), std::move(names), std::move(options));
  return caf::actor_cast<dialer_actor>(hdl);
}

} // namespace connmgr
