#include "connmgr/actors/fake_acceptor.hpp"

#include <vector>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

namespace connmgr {

namespace {

struct fake_acceptor_state {
  listener_sink_actor sink;
  std::vector<connection_ptr> backlog;
  static inline const char* name = "connmgr.fake_acceptor";
};

fake_acceptor_actor::behavior_type
fake_acceptor(fake_acceptor_actor::stateful_pointer<fake_acceptor_state> self,
              std::shared_ptr<fake_acceptor_record> record) {
  self->attach_functor([record](const caf::error&) { record->closed = true; });
  return {
    [self, record](listen_atom, listener_sink_actor& sink) {
      auto& st = self->state;
      st.sink = std::move(sink);
      record->delivered += st.backlog.size();
      if (!st.backlog.empty())
        self->send(st.sink, accepted_atom::value, std::move(st.backlog));
      st.backlog.clear();
    },
    [self, record](inject_atom, connection_ptr& conn) {
      auto& st = self->state;
      if (!st.sink) {
        st.backlog.push_back(std::move(conn));
        return;
      }
      ++record->delivered;
      self->send(st.sink, accepted_atom::value,
                 connection_batch{std::move(conn)});
    },
  };
}

} // namespace

fake_acceptor_actor
spawn_fake_acceptor(caf::actor_system& sys,
                    std::shared_ptr<fake_acceptor_record> record) {
  return sys.spawn(fake_acceptor, std::move(record));
}

} // namespace connmgr
