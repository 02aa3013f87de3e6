#include "examples/node/node_frames.hpp"

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>

#include "connmgr/messages/error_code.hpp"

namespace connmgr::node_frames {

namespace {

/// Payload length of hello: node id and port.
constexpr size_t hello_payload = 10;
/// Payload length of ping and pong: the nonce.
constexpr size_t nonce_payload = 8;
/// Bytes of the entry count that opens an addr payload.
constexpr size_t count_size = 2;

caf::error protocol_error(const std::string& what) {
  return make_error(errc::connection_closed, "protocol: " + what);
}

std::string hex32(uint32_t x) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08X", static_cast<unsigned>(x));
  return buf;
}

void put_u16(std::vector<uint8_t>& out, uint16_t x) {
  out.push_back(static_cast<uint8_t>(x >> 8));
  out.push_back(static_cast<uint8_t>(x & 0xFF));
}

void put_u32(std::vector<uint8_t>& out, uint32_t x) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<uint8_t>((x >> shift) & 0xFF));
}

void put_u64(std::vector<uint8_t>& out, uint64_t x) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<uint8_t>((x >> shift) & 0xFF));
}

uint16_t get_u16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

uint32_t get_u32(const uint8_t* p) {
  uint32_t x = 0;
  for (size_t i = 0; i < 4; ++i)
    x = (x << 8) | p[i];
  return x;
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t x = 0;
  for (size_t i = 0; i < 8; ++i)
    x = (x << 8) | p[i];
  return x;
}

/// The payload length a message type requires, or nullopt for addr (whose
/// length varies) -- only called for known types.
std::optional<size_t> fixed_payload(message_type t) {
  switch (t) {
    case message_type::hello:
      return hello_payload;
    case message_type::ping:
    case message_type::pong:
      return nonce_payload;
    case message_type::getaddr:
      return 0;
    case message_type::addr:
      break;
  }
  return std::nullopt;
}

const char* type_name(message_type t) {
  switch (t) {
    case message_type::hello:
      return "hello";
    case message_type::addr:
      return "addr";
    case message_type::ping:
      return "ping";
    case message_type::pong:
      return "pong";
    case message_type::getaddr:
      return "getaddr";
  }
  return "?";
}

/// The context of an `errc` error without the leading "name: " that
/// `describe` puts in front of it.
std::string context_of(const caf::error& err) {
  auto text = describe(err);
  auto prefix = to_string(errc_of(err)) + ": ";
  if (text.compare(0, prefix.size(), prefix) == 0)
    text.erase(0, prefix.size());
  return text;
}

/// Decodes an addr payload of exactly `size` bytes.
caf::expected<addr> decode_addr(const uint8_t* p, size_t size) {
  if (size < count_size)
    return protocol_error("addr payload of " + std::to_string(size)
                          + " bytes, expected at least 2");
  size_t count = get_u16(p);
  if (count > max_addresses)
    return protocol_error("addr with " + std::to_string(count)
                          + " entries, expected at most "
                          + std::to_string(max_addresses));
  addr result;
  result.addresses.reserve(count);
  size_t pos = count_size;
  for (size_t i = 0; i < count; ++i) {
    auto entry = "addr entry " + std::to_string(i);
    if (pos >= size)
      return protocol_error(entry + " is missing, payload ends after "
                            + std::to_string(i) + " of "
                            + std::to_string(count));
    size_t len = p[pos++];
    if (len == 0)
      return protocol_error(entry + " has length 0, expected 1..255");
    if (len > size - pos)
      return protocol_error(entry + " of " + std::to_string(len)
                            + " bytes runs past the payload end");
    std::string_view text{reinterpret_cast<const char*>(p + pos), len};
    pos += len;
    auto parsed = net_address::parse(text);
    if (!parsed)
      return make_error(errc::invalid_address,
                        entry + ": " + context_of(parsed.error()));
    result.addresses.push_back(std::move(*parsed));
  }
  if (pos != size)
    return protocol_error("addr payload has " + std::to_string(size - pos)
                          + " trailing bytes after " + std::to_string(count)
                          + " entries");
  return result;
}

/// Appends the payload of `x` to `out`.
struct payload_writer {
  std::vector<uint8_t>& out;

  void operator()(const hello& x) {
    put_u64(out, x.node_id);
    put_u16(out, x.listen_port);
  }
  void operator()(const addr& x) {
    put_u16(out, static_cast<uint16_t>(x.addresses.size()));
    for (const auto& a : x.addresses) {
      auto text = a.to_string();
      out.push_back(static_cast<uint8_t>(text.size()));
      out.insert(out.end(), text.begin(), text.end());
    }
  }
  void operator()(const ping& x) {
    put_u64(out, x.nonce);
  }
  void operator()(const pong& x) {
    put_u64(out, x.nonce);
  }
  void operator()(const getaddr&) {
    // no payload
  }
};

message_type type_of(const frame& x) {
  switch (x.index()) {
    case 0:
      return message_type::hello;
    case 1:
      return message_type::addr;
    case 2:
      return message_type::ping;
    case 3:
      return message_type::pong;
    default:
      return message_type::getaddr;
  }
}

} // namespace

caf::error validate(const frame& x) {
  auto msg = std::get_if<addr>(&x);
  if (msg == nullptr)
    return caf::none;
  if (msg->addresses.size() > max_addresses)
    return protocol_error("addr with " + std::to_string(msg->addresses.size())
                          + " entries, expected at most "
                          + std::to_string(max_addresses));
  size_t payload = count_size;
  for (size_t i = 0; i < msg->addresses.size(); ++i) {
    const auto& a = msg->addresses[i];
    auto text = a.to_string();
    auto entry = "addr entry " + std::to_string(i) + ": \"" + text + "\"";
    if (a.port() == 0)
      return make_error(errc::invalid_address,
                        entry + " has port 0, expected 1..65535");
    if (text.size() > max_address_text)
      return make_error(errc::invalid_address,
                        entry + " is " + std::to_string(text.size())
                          + " bytes long, expected at most 255");
    payload += 1 + text.size();
  }
  if (payload > max_payload_size)
    return protocol_error("frame of " + std::to_string(payload)
                          + " bytes, expected at most "
                          + std::to_string(max_payload_size));
  return caf::none;
}

std::vector<uint8_t> encode(const frame& x) {
  if (validate(x))
    return {};
  std::vector<uint8_t> out(magic, magic + sizeof(magic));
  out.push_back(static_cast<uint8_t>(type_of(x)));
  put_u32(out, 0); // Patched below once the payload length is known.
  std::visit(payload_writer{out}, x);
  auto len = static_cast<uint32_t>(out.size() - header_size);
  for (size_t i = 0; i < 4; ++i)
    out[5 + i] = static_cast<uint8_t>((len >> (24 - 8 * i)) & 0xFF);
  return out;
}

parse_result<frame> decode(const uint8_t* data, size_t size) {
  parse_result<frame> result;
  auto fail = [&](caf::error err) {
    result.status = parse_status::failed;
    result.error = std::move(err);
    return std::move(result);
  };
  if (size < header_size) {
    result.need = header_size;
    return result;
  }
  if (!std::equal(magic, magic + sizeof(magic), data))
    return fail(protocol_error("bad magic " + hex32(get_u32(data))));
  auto raw_type = data[4];
  if (raw_type < static_cast<uint8_t>(message_type::hello)
      || raw_type > static_cast<uint8_t>(message_type::getaddr))
    return fail(
      protocol_error("unknown type " + std::to_string(unsigned{raw_type})));
  auto type = static_cast<message_type>(raw_type);
  size_t len = get_u32(data + 5);
  if (len > max_payload_size)
    return fail(protocol_error("frame of " + std::to_string(len)
                               + " bytes, expected at most "
                               + std::to_string(max_payload_size)));
  if (auto fixed = fixed_payload(type); fixed && *fixed != len)
    return fail(protocol_error(std::string{type_name(type)} + " payload of "
                               + std::to_string(len) + " bytes, expected "
                               + std::to_string(*fixed)));
  if (size < header_size + len) {
    result.need = header_size + len;
    return result;
  }
  const uint8_t* p = data + header_size;
  switch (type) {
    case message_type::hello:
      result.value = hello{get_u64(p), get_u16(p + 8)};
      break;
    case message_type::ping:
      result.value = ping{get_u64(p)};
      break;
    case message_type::pong:
      result.value = pong{get_u64(p)};
      break;
    case message_type::getaddr:
      result.value = getaddr{};
      break;
    case message_type::addr: {
      auto msg = decode_addr(p, len);
      if (!msg)
        return fail(std::move(msg.error()));
      result.value = std::move(*msg);
      break;
    }
  }
  result.status = parse_status::done;
  result.consumed = header_size + len;
  result.need = result.consumed;
  return result;
}

size_t frame_reader::wanted() const {
  if (error_)
    return 0;
  auto r = decode(buffer_.data(), buffer_.size());
  return r.need_more() ? r.need - buffer_.size() : 0;
}

size_t frame_reader::feed(const uint8_t* data, size_t size) {
  size_t taken = 0;
  while (taken < size) {
    auto want = wanted();
    if (want == 0)
      break;
    auto n = std::min(want, size - taken);
    buffer_.insert(buffer_.end(), data + taken, data + taken + n);
    taken += n;
  }
  return taken;
}

std::optional<caf::expected<frame>> frame_reader::next() {
  if (error_)
    return caf::expected<frame>{error_};
  auto r = decode(buffer_.data(), buffer_.size());
  if (r.need_more())
    return std::nullopt;
  if (r.failed()) {
    error_ = r.error;
    buffer_.clear();
    return caf::expected<frame>{std::move(r.error)};
  }
  buffer_.clear(); // `feed` never takes bytes past the frame.
  return caf::expected<frame>{std::move(r.value)};
}

} // namespace connmgr::node_frames
