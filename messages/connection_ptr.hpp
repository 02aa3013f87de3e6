#pragma once

#include <memory>

#include <caf/allowed_unsafe_message_type.hpp>

namespace connmgr {

/// An open connection of the operating system layer (net/connection.hpp).
/// Messages only pass it along, so the vocabulary needs just its name:
/// code that reads or closes a connection includes net/connection.hpp.
class connection;

/// Shared ownership of a connection; the last reference closes it. Process
/// local: a message carrying one can never be serialized.
using connection_ptr = std::shared_ptr<connection>;

} // namespace connmgr

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(connmgr::connection_ptr)
