#pragma once

#include <string>
#include <utility>

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

namespace connmgr {

/// `(gate_dial, address)`: may the handler dial `address`?
using gate_dial_atom = caf::atom_constant<caf::atom("gate_dial")>;

/// `(gate_accpt, remote, local)`: may the handler admit the inbound
/// connection from `remote` that arrived on our address `local`?
using gate_accept_atom = caf::atom_constant<caf::atom("gate_accpt")>;

/// A gate's answer about one dial or one inbound connection. The default
/// allows; `veto(reason)` refuses, and `reason` becomes the context of the
/// `errc::vetoed` the handler reports (`failed_event` for a dial,
/// `rejected_event` with rule "gated" for an accept).
struct gate_verdict {
  /// False vetoes.
  bool allowed = true;
  /// Why it was vetoed; ignored when allowed.
  std::string reason;

  /// A verdict that allows.
  static gate_verdict allow() {
    return {};
  }

  /// A verdict that vetoes with `why`.
  static gate_verdict veto(std::string why) {
    return {false, std::move(why)};
  }
};

/// Lets CAF serialize verdicts, so a gate may live in another process
/// (registered by `add_message_types`).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, gate_verdict& x) {
  return f(caf::meta::type_name("gate_verdict"), x.allowed, x.reason);
}

/// A gate as an actor (`gate_setup::actor`): asked before every dial and
/// every admission once the gate functions (if any) allowed it. It may take
/// its time (ask another service, a database): the dial or the admission
/// waits for its answer up to `gate_setup::timeout`. Its answers are
/// verdicts, never errors: an error answer, no answer in time or a gate
/// that is gone counts as a veto (see `gate_setup`).
using gate_actor = caf::typed_actor<
  caf::replies_to<gate_dial_atom, std::string>::with<gate_verdict>,
  caf::replies_to<gate_accept_atom, std::string,
                  std::string>::with<gate_verdict>>;

} // namespace connmgr
