#include "connmgr/actors/tcp_acceptor.hpp"

#include <unistd.h>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "connmgr/messages/error_code.hpp"
#include "connmgr/net/reactor.hpp"
#include "connmgr/net/socket_ops.hpp"

namespace connmgr {

namespace {

using closed_atom = caf::atom_constant<caf::atom("closed")>;

using tcp_acceptor_actor = acceptor_actor::extend<caf::reacts_to<closed_atom>>;

struct tcp_acceptor_state {
  std::shared_ptr<reactor> io;
  int fd = -1; // ours until handed to the reactor
  uint64_t token = 0; // the reactor's once listening
  bool closing = false;
  static inline const char* name = "connmgr.tcp_acceptor";

  // Never leak the socket, however the actor ends. CAF destroys the state
  // before attached functors run, so this is the place.
  ~tcp_acceptor_state() {
    if (token == 0 && fd >= 0)
      ::close(fd);
    else if (token != 0 && !closing && io)
      io->unlisten(token);
  }
};

using acceptor_pointer =
  tcp_acceptor_actor::stateful_pointer<tcp_acceptor_state>;

void close_and_quit(acceptor_pointer self, caf::error reason) {
  auto& st = self->state;
  if (st.closing)
    return;
  st.closing = true;
  if (st.token == 0) {
    if (st.fd >= 0)
      ::close(st.fd);
    st.fd = -1;
    self->quit(std::move(reason));
    return;
  }
  // Finish only once the reactor closed the socket.
  auto me = caf::actor_cast<tcp_acceptor_actor>(self);
  st.io->unlisten(st.token, [me] { caf::anon_send(me, closed_atom::value); });
}

tcp_acceptor_actor::behavior_type
tcp_acceptor(acceptor_pointer self, std::shared_ptr<reactor> io, int fd) {
  self->state.io = std::move(io);
  self->state.fd = fd;
  self->set_exit_handler([self](caf::exit_msg& msg) {
    close_and_quit(self, std::move(msg.reason));
  });
  return {
    [self](listen_atom, listener_sink_actor& sink) {
      auto& st = self->state;
      if (st.token != 0 || st.closing)
        return;
      st.token = st.io->listen(st.fd, [sink](connection_batch& batch) {
        // Dropped with the message if the sink is
        // gone: the last handle closes each.
        caf::anon_send(sink, accepted_atom::value, std::move(batch));
      });
      st.fd = -1;
    },
    [self](closed_atom) {
      self->state.token = 0;
      self->quit(caf::exit_reason::user_shutdown);
    },
  };
}

} // namespace

caf::expected<tcp_listener> spawn_tcp_acceptor(caf::actor_system& sys,
                                               std::shared_ptr<reactor> io,
                                               const net_address& addr,
                                               int backlog) {
  sockaddr_storage sa{};
  auto len = addr.to_sockaddr(sa);
  if (!len)
    return std::move(len.error());
  auto fd = open_tcp_listener(sa, *len, backlog);
  if (!fd)
    return make_error(errc::invalid_address,
                      "listen on " + addr.to_string() + ": "
                        + describe(fd.error()));
  auto local = local_sockaddr(*fd);
  caf::expected<net_address> bound = addr;
  if (local)
    bound =
      net_address::from_sockaddr(reinterpret_cast<sockaddr*>(&*local), *len);
  if (!bound) {
    ::close(*fd);
    return std::move(bound.error());
  }
  auto hdl = sys.spawn(tcp_acceptor, std::move(io), *fd);
  return tcp_listener{caf::actor_cast<acceptor_actor>(hdl), *bound};
}

} // namespace connmgr
