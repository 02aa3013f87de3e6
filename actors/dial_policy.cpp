#include "connmgr/actors/dial_policy.hpp"

#include "connmgr/net/address_class.hpp"

namespace connmgr {

dial_policy::dial_policy(dial_policy_config cfg) : cfg_(std::move(cfg)) {
  // nop
}

const char* dial_policy::refusal(const net_address& addr) const {
  if (addr.port() == 0)
    return "port_zero";
  auto cls = classify(addr);
  switch (cls) {
    case address_class::hostname:
      return "hostname";
    case address_class::routable:
      break;
    case address_class::loopback:
    case address_class::private_network:
    case address_class::shared:
    case address_class::link_local:
    case address_class::documentation:
      if (!cfg_.allow_local_addresses)
        return to_string(cls);
      break;
    default:
      // Never a peer: unspecified, multicast, broadcast, reserved.
      return to_string(cls);
  }
  if (is_own(addr))
    return "own_address";
  return nullptr;
}

std::vector<net_address>
dial_policy::filter(std::vector<net_address> addrs,
                    std::map<std::string, size_t>& refused) const {
  std::vector<net_address> kept;
  kept.reserve(addrs.size());
  for (auto& addr : addrs) {
    if (auto why = refusal(addr))
      ++refused[why];
    else
      kept.push_back(std::move(addr));
  }
  return kept;
}

bool dial_policy::is_own(const net_address& addr) const {
  for (auto& own : cfg_.own_endpoints) {
    if (own.port() != addr.port())
      continue;
    if (own == addr)
      return true;
    auto cls = classify(own);
    if (cls == address_class::unspecified) {
      auto mine = classify(addr);
      if (mine == address_class::loopback || mine == address_class::unspecified)
        return true;
    }
  }
  return false;
}

} // namespace connmgr
