#include "tests/support/flat_json.hpp"

#include <cerrno>
#include <cstdlib>
#include <functional>
#include <utility>

namespace connmgr::test {

namespace {

/// How strictly a flat object is read (see flat_json.hpp).
enum class reading { exact, lenient };

/// Reads one flat object member by member. Both readings share every rule
/// but the ones `reading` names, so the well-formedness check and the
/// lookups of the tests cannot drift apart.
class flat_scanner {
public:
  flat_scanner(std::string_view text, reading how) : text_(text), how_(how) {
    // nop
  }

  /// Calls `visit` with each member in order until it returns false.
  /// Returns whether the object was read to its end (exact: with nothing
  /// after it) or `visit` stopped it first.
  bool scan(const std::function<bool(json_member&)>& visit) {
    if (!take('{'))
      return false;
    if (take('}')) {
      // An empty object has no member to look up.
      return how_ == reading::exact && pos_ == text_.size();
    }
    do {
      json_member m;
      if (!string(m.key) || !take(':') || !value(m))
        return false;
      if (!visit(m))
        return true;
    } while (take(','));
    if (!take('}'))
      return false;
    return how_ == reading::lenient || pos_ == text_.size();
  }

private:
  /// Skips blanks (when reading leniently), then consumes `c` if it is
  /// next; whether it was.
  bool take(char c) {
    blanks();
    if (peek() != c)
      return false;
    ++pos_;
    return true;
  }

  /// Reads a member's value: a string or a scalar.
  bool value(json_member& m) {
    blanks();
    if (peek() != '"')
      return scalar(m.value);
    m.is_string = true;
    return string(m.value);
  }

  int peek() const {
    return pos_ < text_.size() ? static_cast<unsigned char>(text_[pos_]) : -1;
  }

  /// Blanks between tokens: none in our writer's output, tolerated when
  /// reading leniently.
  void blanks() {
    if (how_ == reading::exact)
      return;
    while (peek() == ' ' || peek() == '\t' || peek() == '\r')
      ++pos_;
  }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
      return c - 'A' + 10;
    return -1;
  }

  /// Decodes the string that starts at the next quote.
  bool string(std::string& out) {
    blanks();
    if (peek() != '"')
      return false;
    ++pos_;
    while (pos_ < text_.size()) {
      auto c = text_[pos_++];
      if (c == '"')
        return true;
      if (how_ == reading::exact && static_cast<unsigned char>(c) < 0x20)
        return false;
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size())
        return false;
      switch (text_[pos_++]) {
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
          if (pos_ + 4 > text_.size())
            return false;
          int code = 0;
          for (int i = 0; i < 4; ++i) {
            auto v = hex_value(text_[pos_++]);
            if (v < 0)
              return false;
            code = code * 16 + v;
          }
          // Our writer escapes control characters only (all below 0x80).
          if (code >= 0x80 && how_ == reading::exact)
            return false;
          out += code < 0x80 ? static_cast<char>(code) : '?';
          break;
        }
        default:
          return false;
      }
    }
    return false;
  }

  /// A value that is not a string: exactly true, false, null or an integer
  /// -?(0|[1-9][0-9]*) (all our writer produces); leniently, the raw text up
  /// to the next ',', '}' or blank, as long as it does not nest.
  bool scalar(std::string& out) {
    if (how_ == reading::lenient) {
      auto start = pos_;
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}'
             && text_[pos_] != ' ')
        ++pos_;
      out = text_.substr(start, pos_ - start);
      return !out.empty() && out[0] != '{' && out[0] != '[';
    }
    for (std::string_view word : {"true", "false", "null"}) {
      if (text_.substr(pos_, word.size()) == word) {
        out = word;
        pos_ += word.size();
        return true;
      }
    }
    auto start = pos_;
    if (peek() == '-')
      ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (peek() >= '1' && peek() <= '9') {
      while (peek() >= '0' && peek() <= '9')
        ++pos_;
    } else {
      return false;
    }
    out = text_.substr(start, pos_ - start);
    return true;
  }

  std::string_view text_;
  reading how_;
  size_t pos_ = 0;
};

} // namespace

std::optional<std::vector<json_member>>
parse_flat_object(std::string_view text) {
  std::vector<json_member> result;
  flat_scanner scanner{text, reading::exact};
  auto keep = [&](json_member& m) {
    result.push_back(std::move(m));
    return true;
  };
  if (!scanner.scan(keep))
    return std::nullopt;
  return result;
}

std::string keys_of(const std::vector<json_member>& members) {
  std::string out;
  for (const auto& m : members) {
    if (!out.empty())
      out += ',';
    out += m.key;
  }
  return out;
}

std::optional<json_member> member(const std::vector<json_member>& members,
                                  std::string_view key) {
  for (const auto& m : members)
    if (m.key == key)
      return m;
  return std::nullopt;
}

std::optional<std::string> json_get(std::string_view line,
                                    std::string_view key) {
  std::optional<std::string> found;
  flat_scanner scanner{line, reading::lenient};
  auto until_found = [&](json_member& m) {
    if (m.key == key)
      found = std::move(m.value);
    return !found;
  };
  // A line that breaks off after the member still yields it.
  scanner.scan(until_found);
  return found;
}

std::optional<int64_t> json_int(std::string_view line, std::string_view key) {
  auto v = json_get(line, key);
  if (!v || v->empty())
    return std::nullopt;
  char* end = nullptr;
  errno = 0;
  auto n = std::strtoll(v->c_str(), &end, 10);
  if (errno != 0 || end != v->c_str() + v->size())
    return std::nullopt;
  return n;
}

std::string json_event(std::string_view line) {
  return json_get(line, "event").value_or("");
}

} // namespace connmgr::test
