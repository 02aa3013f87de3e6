#include "connmgr/actors/fake_dialer.hpp"

#include <map>

#include <caf/actor_system.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include "connmgr/messages/error_code.hpp"

namespace connmgr {

void fake_network::set_policy(
  std::function<fake_dial_plan(const std::string&)> policy) {
  std::lock_guard<std::mutex> guard{mtx_};
  policy_ = std::move(policy);
}

std::vector<fake_network::dial_record> fake_network::dials() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return dials_;
}

size_t fake_network::dial_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return dials_.size();
}

size_t fake_network::cancel_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return cancels_;
}

std::vector<std::weak_ptr<connection>> fake_network::connections() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return connections_;
}

size_t fake_network::open_connections() const {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t result = 0;
  for (auto& weak : connections_)
    if (auto conn = weak.lock(); conn && !conn->closed())
      ++result;
  return result;
}

fake_dial_plan fake_network::on_dial(uint64_t dial_id,
                                     const std::string& address,
                                     time_point now) {
  std::function<fake_dial_plan(const std::string&)> policy;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    dials_.push_back(dial_record{dial_id, address, now});
    policy = policy_;
  }
  // The policy runs unlocked: it may query this record.
  return policy ? policy(address) : fake_dial_plan{};
}

void fake_network::on_cancel() {
  std::lock_guard<std::mutex> guard{mtx_};
  ++cancels_;
}

connection_ptr fake_network::make_connection(const std::string& address) {
  auto conn = make_memory_connection(address);
  std::lock_guard<std::mutex> guard{mtx_};
  connections_.push_back(conn);
  return conn;
}

namespace {

struct fake_dialer_state {
  std::shared_ptr<fake_network> net;
  struct held_dial {
    std::string address;
    caf::typed_response_promise<connection_ptr> promise;
  };
  std::map<uint64_t, held_dial> held;
  static inline const char* name = "connmgr.fake_dialer";
};

fake_dialer_actor::behavior_type
fake_dialer(fake_dialer_actor::stateful_pointer<fake_dialer_state> self,
            std::shared_ptr<fake_network> net) {
  self->state.net = std::move(net);
  return {
    [self](dial_atom, uint64_t dial_id, std::string& address,
           caf::timespan) -> caf::result<connection_ptr> {
      auto& st = self->state;
      auto plan = st.net->on_dial(dial_id, address, self->clock().now());
      switch (plan.outcome) {
        case fake_dial_plan::connect:
          return st.net->make_connection(address);
        case fake_dial_plan::fail:
          return plan.reason ? plan.reason : make_error(errc::refused);
        case fake_dial_plan::hold:
          break;
      }
      auto promise = self->make_response_promise<connection_ptr>();
      st.held.emplace(dial_id, fake_dialer_state::held_dial{address, promise});
      return promise;
    },
    [self](cancel_atom, uint64_t dial_id) {
      auto& st = self->state;
      st.net->on_cancel();
      auto i = st.held.find(dial_id);
      if (i == st.held.end())
        return;
      i->second.promise.deliver(make_error(errc::canceled));
      st.held.erase(i);
    },
    [](flush_atom) {
      return true; // cancels take effect at once here
    },
    [](direct_atom) {
      return direct_dialer_ptr{}; // every dial is a message, to be seen
    },
    [self](release_atom, bool succeed) {
      auto& st = self->state;
      auto held = std::move(st.held);
      st.held.clear();
      for (auto& kvp : held) {
        if (succeed)
          kvp.second.promise.deliver(
            st.net->make_connection(kvp.second.address));
        else
          kvp.second.promise.deliver(make_error(errc::refused));
      }
      return static_cast<uint64_t>(held.size());
    },
  };
}

} // namespace

fake_dialer_actor spawn_fake_dialer(caf::actor_system& sys,
                                    std::shared_ptr<fake_network> net) {
  return sys.spawn(fake_dialer, std::move(net));
}

} // namespace connmgr
