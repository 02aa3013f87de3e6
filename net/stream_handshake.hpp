#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include <caf/error.hpp>

namespace connmgr {

/// A short protocol exchange run on a freshly connected socket before it is
/// handed over (a proxy's CONNECT, a Tor RESOLVE). The reactor drives it
/// without blocking: it writes `take_output()`, feeds every byte it reads,
/// and stops at `done` or `failed`, all within the dial's deadline.
class stream_handshake {
public:
  enum class status { need_more, done, failed };

  virtual ~stream_handshake();

  /// Bytes to send now; empty when nothing is due.
  virtual std::vector<uint8_t> take_output() = 0;

  /// How many bytes may be read now without reading past the end of the
  /// exchange (data after it belongs to the stream): at least 1 while the
  /// exchange waits for input.
  virtual size_t wanted() const = 0;

  /// Consumes `size` received bytes (never more than `wanted()`). Returns `done` once the exchange is
  /// complete (bytes past its end are a protocol error: a proxy must not
  /// speak first), or `failed` with `err` set.
  virtual status feed(const uint8_t* data, size_t size, caf::error& err) = 0;
};

} // namespace connmgr
