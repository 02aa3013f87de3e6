#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace connmgr {

/// Limits of one byte stream (see `reactor::stream`): what a peer can make
/// us hold for it, in both directions.
struct stream_options {
  /// At most this many bytes are handed to `on_data` and not yet reported
  /// back through `stream_handle::consumed`: once they are outstanding the
  /// reactor stops reading the socket (the kernel's buffers then push back
  /// on the peer), and it reads again once the consumer has caught up to
  /// half of it. Input held for consumers is thus at most streams × window
  /// bytes (in buffers that take at most four times that: a read is handed
  /// over in the buffer it went into when it fills a quarter of it).
  /// At least 1.
  size_t receive_window = size_t{256} * 1024;
  /// At most this many bytes wait unsent: a `send` that would queue more is
  /// refused (`send_status::full`) and nothing of it is kept. At least 1.
  size_t max_send_buffer = size_t{1} << 20;
  /// A stream that refused a send and has not drained below half of
  /// `max_send_buffer` this long after ends with `errc::slow_reader`: a peer
  /// that does not read what we send cannot keep its slot. At least 1 ms.
  std::chrono::milliseconds slow_reader_timeout = std::chrono::seconds{30};
};

/// What became of the bytes given to `stream_handle::send`.
enum class send_status : uint8_t {
  /// Queued in order behind everything sent before.
  queued,
  /// Refused: the stream's send buffer is full (nothing was queued).
  full,
  /// Refused: the stream has ended, or the handle is empty.
  ended,
};

/// "queued", "full" or "ended".
const char* to_string(send_status x);

struct stream_link;

/// The sending and consuming side of one byte stream of a `reactor`. A cheap
/// copyable handle, safe to use from any thread, also after the stream
/// ended or the reactor was destroyed (it then refuses everything). An empty
/// (default-constructed) handle refuses everything too.
class stream_handle {
public:
  stream_handle() = default;

  /// Queues a copy of `size` bytes at `data` unless that would take the
  /// unsent bytes of the stream beyond `max_send_buffer`. Bytes of
  /// successive sends go out in order. However many sends are queued, at
  /// most one piece of work per stream waits for the reactor thread.
  send_status send(const uint8_t* data, size_t size);

  /// Like `send(bytes.data(), bytes.size())`.
  send_status send(const std::vector<uint8_t>& bytes) {
    return send(bytes.data(), bytes.size());
  }

  /// Like `send(bytes.data(), bytes.size())`, but a large buffer is queued
  /// as it is instead of copied. `bytes` is left empty if it was queued.
  send_status send(std::vector<uint8_t>&& bytes);

  /// Reports that `size` bytes handed to `on_data` have been dealt with, so
  /// the reactor may read that much more (see
  /// `stream_options::receive_window`). Reporting more than was delivered
  /// counts as reporting all of it.
  void consumed(size_t size);

  /// Bytes queued and not yet written to the socket.
  size_t unsent() const noexcept;

  /// Bytes handed to `on_data` and not yet reported consumed.
  size_t unconsumed() const noexcept;

  /// The stream's token (as `reactor_stats` and callbacks know it); 0 for
  /// an empty handle.
  uint64_t token() const noexcept;

  /// Whether the stream ended (or the handle is empty).
  bool ended() const noexcept;

  /// Whether the handle refers to a stream.
  explicit operator bool() const noexcept {
    return link_ != nullptr;
  }

private:
  friend class reactor;

  template <class Append>
  send_status enqueue(size_t size, Append append);

  explicit stream_handle(std::shared_ptr<stream_link> link)
    : link_(std::move(link)) {
    // nop
  }

  std::shared_ptr<stream_link> link_;
};

} // namespace connmgr
