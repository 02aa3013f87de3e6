#include "examples/node/node_log.hpp"

#include <fmt/format.h>

namespace connmgr {

namespace {

constexpr char hex_digits[] = "0123456789abcdef";

/// Appends `text` with control characters and backslashes escaped, so a
/// string from the network cannot break a text line in two.
void append_text(std::string& out, std::string_view text) {
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20 || byte == 0x7f) {
          out += "\\x";
          out += hex_digits[byte >> 4];
          out += hex_digits[byte & 0xf];
        } else {
          out += c;
        }
    }
  }
}

/// Formats `value` with `decimals` digits after the point, then drops
/// trailing zeros (and the point when nothing is left after it).
std::string trimmed_fixed(double value, int decimals) {
  auto result = fmt::format("{:.{}f}", value, decimals);
  if (result.find('.') != std::string::npos) {
    while (result.back() == '0')
      result.pop_back();
    if (result.back() == '.')
      result.pop_back();
  }
  return result;
}

/// "850 us", "1.2 ms", "500 ms" or "2.5 s".
std::string format_us(int64_t us) {
  // Work on the magnitude in unsigned arithmetic: -INT64_MIN overflows.
  auto negative = us < 0;
  auto magnitude =
    negative ? 0u - static_cast<uint64_t>(us) : static_cast<uint64_t>(us);
  std::string result = negative ? "-" : "";
  if (magnitude < 1000)
    result += fmt::format("{} us", magnitude);
  else if (magnitude < 1'000'000)
    result += trimmed_fixed(static_cast<double>(magnitude) / 1e3, 1) + " ms";
  else
    result += trimmed_fixed(static_cast<double>(magnitude) / 1e6, 2) + " s";
  return result;
}

/// "500 ms" or "2.5 s".
std::string format_ms(int64_t ms) {
  auto negative = ms < 0;
  auto magnitude =
    negative ? 0u - static_cast<uint64_t>(ms) : static_cast<uint64_t>(ms);
  std::string result = negative ? "-" : "";
  if (magnitude < 1000)
    result += fmt::format("{} ms", magnitude);
  else
    result += trimmed_fixed(static_cast<double>(magnitude) / 1e3, 2) + " s";
  return result;
}

/// The node id as 16 lower-case hex digits.
std::string node_hex(uint64_t node) {
  return fmt::format("{:016x}", node);
}

/// Whether `reason` already says `code`: equal to it or "code: ...".
bool starts_with_code(std::string_view reason, std::string_view code) {
  if (reason.substr(0, code.size()) != code)
    return false;
  return reason.size() == code.size() || reason[code.size()] == ':';
}

/// Appends `,"key":` to a JSON object under construction.
void json_key(std::string& out, std::string_view key) {
  out += ',';
  out += '"';
  out += key;
  out += "\":";
}

std::string to_json_impl(const node_event& x, const int64_t* unix_ms) {
  std::string out = "{\"event\":";
  out += json_quote(x.event);
  if (unix_ms != nullptr) {
    json_key(out, "ts");
    out += std::to_string(*unix_ms);
  }
  if (x.id != 0) {
    json_key(out, "id");
    out += std::to_string(x.id);
  }
  if (!x.addr.empty()) {
    json_key(out, "addr");
    out += json_quote(x.addr);
  }
  if (x.permanent) {
    json_key(out, "permanent");
    out += *x.permanent ? "true" : "false";
  }
  if (!x.reason.empty()) {
    json_key(out, "reason");
    out += json_quote(x.reason);
  }
  if (!x.reason_code.empty()) {
    json_key(out, "reason_code");
    out += json_quote(x.reason_code);
  }
  if (x.delay_ms) {
    json_key(out, "delay_ms");
    out += std::to_string(*x.delay_ms);
  }
  if (x.dial_us) {
    json_key(out, "dial_us");
    out += std::to_string(*x.dial_us);
  }
  if (x.peer_node != 0) {
    json_key(out, "peer_node");
    out += '"';
    out += node_hex(x.peer_node);
    out += '"';
  }
  if (x.outbound) {
    json_key(out, "outbound");
    out += *x.outbound ? "true" : "false";
  }
  if (x.count) {
    json_key(out, "count");
    out += std::to_string(*x.count);
  }
  out += '}';
  return out;
}

std::string status_json_impl(const node_status& x, const int64_t* unix_ms) {
  std::string out = "{\"event\":\"status\"";
  if (unix_ms != nullptr) {
    json_key(out, "ts");
    out += std::to_string(*unix_ms);
  }
  auto field = [&out](std::string_view key, uint64_t value) {
    json_key(out, key);
    out += std::to_string(value);
  };
  field("outbound", x.outbound);
  field("target_outbound", x.target_outbound);
  field("inbound", x.inbound);
  if (x.max_inbound) {
    field("max_inbound", *x.max_inbound);
  } else {
    json_key(out, "max_inbound");
    out += "null";
  }
  field("pending_dials", x.pending_dials);
  field("failures", x.failures);
  field("retries", x.retries);
  field("failed_attempts", x.failed_attempts);
  field("peers_ready", x.peers_ready);
  field("known_addresses", x.known_addresses);
  out += '}';
  return out;
}

} // namespace

std::string json_quote(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out += '"';
  for (char c : text) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (byte < 0x20) {
      out += "\\u00";
      out += hex_digits[byte >> 4];
      out += hex_digits[byte & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

std::string to_text(const node_event& x) {
  std::string out;
  append_text(out, x.event);
  if (x.id != 0)
    out += fmt::format(" #{}", x.id);
  if (x.count) {
    out +=
      fmt::format(" {} {}", *x.count, *x.count == 1 ? "address" : "addresses");
    if (!x.addr.empty()) {
      out += " from ";
      append_text(out, x.addr);
    }
  } else if (!x.addr.empty()) {
    out += ' ';
    append_text(out, x.addr);
  }
  if (x.permanent)
    out += *x.permanent ? " (permanent)" : " (one-shot)";
  if (x.peer_node != 0)
    out += " node " + node_hex(x.peer_node);
  if (x.outbound)
    out += *x.outbound ? " outbound" : " inbound";
  if (x.dial_us)
    out += " in " + format_us(*x.dial_us);
  if (x.delay_ms)
    out += (x.dial_us ? ", retry in " : " in ") + format_ms(*x.delay_ms);
  auto with_code =
    !x.reason_code.empty() && !starts_with_code(x.reason, x.reason_code);
  if (with_code) {
    out += ": ";
    append_text(out, x.reason_code);
  }
  if (!x.reason.empty()) {
    out += ": ";
    append_text(out, x.reason);
  }
  return out;
}

std::string to_json(const node_event& x) {
  return to_json_impl(x, nullptr);
}

std::string to_json(const node_event& x, int64_t unix_ms) {
  return to_json_impl(x, &unix_ms);
}

std::string status_line(const node_status& x) {
  auto max_inbound =
    x.max_inbound ? std::to_string(*x.max_inbound) : std::string{"unlimited"};
  return fmt::format("status: outbound {}/{}, inbound {}/{}, pending dials {}, "
                     "failures {}, retries {}, failed attempts {}, peers {}, "
                     "addresses {}",
                     x.outbound, x.target_outbound, x.inbound, max_inbound,
                     x.pending_dials, x.failures, x.retries, x.failed_attempts,
                     x.peers_ready, x.known_addresses);
}

std::string status_json(const node_status& x) {
  return status_json_impl(x, nullptr);
}

std::string status_json(const node_status& x, int64_t unix_ms) {
  return status_json_impl(x, &unix_ms);
}

} // namespace connmgr
