#pragma once

// A tiny JSON reader for the node tests: parses one flat object (string,
// number, bool and null members; no nesting) so a test can check that our
// output is well formed and read its members back, in order.

#include <cctype>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace connmgr::test {

/// One member of a flat JSON object: the decoded key and either the decoded
/// string value (`is_string`) or the raw literal (number, true/false/null).
struct json_member {
  std::string key;
  std::string value;
  bool is_string = false;
};

/// Parses `text` as one flat JSON object with nothing before or after it.
/// Returns nothing when the text is not valid JSON of that shape (including
/// unescaped control characters and bad escapes).
inline std::optional<std::vector<json_member>>
parse_flat_object(std::string_view text) {
  size_t pos = 0;
  auto peek = [&]() -> int {
    return pos < text.size() ? static_cast<unsigned char>(text[pos]) : -1;
  };
  auto hex_value = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  };
  // Decodes a string at `pos` (which must be at its opening quote). Only
  // \u escapes below 0x80 are decoded (that is all our writer produces).
  auto parse_string = [&](std::string& out) -> bool {
    if (peek() != '"')
      return false;
    ++pos;
    while (pos < text.size()) {
      auto c = text[pos++];
      if (c == '"')
        return true;
      if (static_cast<unsigned char>(c) < 0x20)
        return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos >= text.size())
        return false;
      auto e = text[pos++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          if (pos + 4 > text.size())
            return false;
          int code = 0;
          for (int i = 0; i < 4; ++i) {
            auto v = hex_value(text[pos++]);
            if (v < 0)
              return false;
            code = code * 16 + v;
          }
          if (code >= 0x80)
            return false;
          out += static_cast<char>(code);
          break;
        }
        default:
          return false;
      }
    }
    return false;
  };
  auto parse_literal = [&](std::string& out) -> bool {
    for (auto word : {"true", "false", "null"}) {
      std::string_view w{word};
      if (text.substr(pos, w.size()) == w) {
        out = w;
        pos += w.size();
        return true;
      }
    }
    // -?(0|[1-9][0-9]*) -- integers are all our writer produces.
    auto start = pos;
    if (peek() == '-')
      ++pos;
    if (peek() == '0') {
      ++pos;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9')
        ++pos;
    } else {
      return false;
    }
    out = text.substr(start, pos - start);
    return true;
  };
  std::vector<json_member> result;
  if (peek() != '{')
    return std::nullopt;
  ++pos;
  if (peek() == '}') {
    ++pos;
    return pos == text.size() ? std::optional{result} : std::nullopt;
  }
  for (;;) {
    json_member m;
    if (!parse_string(m.key) || peek() != ':')
      return std::nullopt;
    ++pos;
    if (peek() == '"') {
      m.is_string = true;
      if (!parse_string(m.value))
        return std::nullopt;
    } else if (!parse_literal(m.value)) {
      return std::nullopt;
    }
    result.push_back(std::move(m));
    if (peek() == ',') {
      ++pos;
      continue;
    }
    if (peek() != '}')
      return std::nullopt;
    ++pos;
    break;
  }
  if (pos != text.size())
    return std::nullopt;
  return result;
}

/// The keys of a parsed object, in order, joined by commas.
inline std::string keys_of(const std::vector<json_member>& members) {
  std::string out;
  for (const auto& m : members) {
    if (!out.empty())
      out += ',';
    out += m.key;
  }
  return out;
}

/// The member named `key`, or nothing.
inline std::optional<json_member>
member(const std::vector<json_member>& members, std::string_view key) {
  for (const auto& m : members)
    if (m.key == key)
      return m;
  return std::nullopt;
}

} // namespace connmgr::test
