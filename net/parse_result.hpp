#pragma once

#include <cstddef>
#include <cstdint>

#include <caf/error.hpp>

namespace connmgr {

/// How far a decoder got with the bytes it was given.
enum class parse_status : uint8_t {
  /// The message is incomplete; `need` says how long the input must be.
  need_more,
  /// The message is complete and valid; `value` holds it.
  done,
  /// The message is invalid or reports a failure; `error` says which.
  failed,
};

/// The outcome of running a decoder over the bytes received so far. Decoders
/// never read past `size`, and never ask for more than the message holds:
/// reading exactly `need - size` more bytes never swallows data that follows
/// the message.
template <class T>
struct parse_result {
  /// Which of the fields below is meaningful.
  parse_status status = parse_status::need_more;
  /// With `need_more`: the total input length (counting the bytes already
  /// given) the decoder must see before it can say more; always larger than
  /// the input given. With `done`: equals `consumed`.
  size_t need = 0;
  /// With `done`: the length of the message; input bytes past it are not
  /// part of it and were not looked at.
  size_t consumed = 0;
  /// With `done`: the decoded message.
  T value{};
  /// With `failed`: an `errc` error whose context names what was wrong.
  caf::error error;

  /// True while the message is incomplete.
  bool need_more() const noexcept {
    return status == parse_status::need_more;
  }
  /// True once the message is complete and valid.
  bool done() const noexcept {
    return status == parse_status::done;
  }
  /// True once the message is known to be invalid or a failure report.
  bool failed() const noexcept {
    return status == parse_status::failed;
  }
};

} // namespace connmgr
