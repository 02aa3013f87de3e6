// The blame scanner: CAF's config parser accepts some broken lines silently,
// wraps overflowing durations around and blames the wrong line for others,
// so the node scans the text of its config file itself before and after CAF
// parses it, to name the key of the [connmgr] line at fault.

#include "examples/node/node_settings_blame.hpp"

#include <cctype>
#include <optional>
#include <sstream>
#include <string>

#include <caf/atom.hpp>
#include <caf/pec.hpp>

#include <fmt/format.h>

#include "connmgr/messages/error_code.hpp"

namespace connmgr::node_detail {

namespace {

/// The decimal number right after `marker` in `text`; 0 if there is none.
long number_after(const std::string& text, std::string_view marker) {
  auto pos = text.find(marker);
  if (pos == std::string::npos)
    return 0;
  long result = 0;
  for (pos += marker.size();
       pos < text.size() && text[pos] >= '0' && text[pos] <= '9'; ++pos)
    result = result * 10 + (text[pos] - '0');
  return result;
}

/// Splits "  key = value" into its key (letters, digits, `_`, `.`, `-`) and
/// the text after `=`; false for any other line.
bool split_key_line(const std::string& line, std::string& key,
                    std::string& value) {
  auto first = line.find_first_not_of(" \t");
  if (first == std::string::npos)
    return false;
  auto last = first;
  auto is_key_char = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_'
      || c == '.' || c == '-';
  };
  while (last < line.size() && is_key_char(line[last]))
    ++last;
  if (last == first)
    return false;
  auto eq = line.find_first_not_of(" \t", last);
  if (eq == std::string::npos || line[eq] != '=')
    return false;
  key = line.substr(first, last - first);
  value = line.substr(eq + 1);
  return true;
}

/// The name of a "[ section ]" line (trimmed, up to the first blank);
/// nothing for any other line.
std::optional<std::string> section_of(const std::string& line) {
  auto open = line.find_first_not_of(" \t");
  if (open == std::string::npos || line[open] != '[')
    return std::nullopt;
  auto close = line.find(']', open);
  if (close == std::string::npos)
    return std::nullopt;
  auto inner = trim(std::string_view{line}.substr(open + 1, close - open - 1));
  return inner.substr(0, inner.find_first_of(" \t"));
}

/// Calls `on_char` for each character of `text` outside quotes, up to a
/// ';' outside quotes (a comment); returns where the comment starts, or
/// the size of `text` if there is none.
template <class F>
size_t scan_unquoted(std::string_view text, F&& on_char) {
  char quote = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quote != 0) {
      if (c == quote)
        quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == ';') {
      return i;
    } else {
      on_char(c);
    }
  }
  return text.size();
}

/// `text` up to its comment.
std::string_view without_comment(std::string_view text) {
  return text.substr(0, scan_unquoted(text, [](char) {}));
}

/// How many more '[' than ']' `text` holds outside quotes, up to a ';'
/// comment.
int open_brackets(std::string_view text) {
  int depth = 0;
  scan_unquoted(text, [&depth](char c) {
    if (c == '[')
      ++depth;
    else if (c == ']')
      --depth;
  });
  return depth;
}

} // namespace

/// Finds a list in the `[connmgr]` section of `content` that is never
/// closed. CAF's parser accepts one on the last line (dropping the whole
/// section) and otherwise blames a later line, so we look first.
caf::error unterminated_list(const std::string& content) {
  std::istringstream in{content};
  std::string line;
  std::string section;
  std::string key;
  std::string value;
  int depth = 0;
  auto check = [&]() -> caf::error {
    if (depth <= 0)
      return caf::none;
    auto text = trim(value);
    auto expected = key_expectation(key);
    if (!expected.empty())
      return bad_value(key, text, "unterminated list, " + expected);
    return unknown_key(key);
  };
  while (std::getline(in, line)) {
    std::string next_key;
    std::string next_value;
    auto name = section_of(line);
    bool is_key = !name && split_key_line(line, next_key, next_value);
    if (name || is_key) {
      if (auto err = check())
        return err;
      depth = 0;
    }
    if (name) {
      section = *name;
    } else if (is_key) {
      if (section == node_settings_category) {
        key = next_key;
        value = next_value;
        depth = open_brackets(next_value);
      }
    } else if (depth > 0) {
      value += " " + trim(line);
      depth += open_brackets(line);
    }
  }
  return check();
}

/// Finds a duration key of the `[connmgr]` section of `content` whose value
/// does not fit 64-bit nanoseconds. CAF's parser wraps such a value around
/// (99999999h reads as about -2.5 million hours), so the text is checked
/// before CAF reads it.
caf::error overflowing_duration(const std::string& content) {
  std::istringstream in{content};
  std::string line;
  std::string section;
  while (std::getline(in, line)) {
    std::string key;
    std::string value;
    if (auto name = section_of(line)) {
      section = *name;
    } else if (section == node_settings_category
               && split_key_line(line, key, value)) {
      if (auto err = check_value_text(key, without_comment(value)))
        return err;
    }
  }
  return caf::none;
}

/// Turns a syntax error of CAF's config parser into one line. When the bad
/// line is a `key=value` line of the `[connmgr]` section, names the key and
/// its expectation, like a type error would.
caf::error syntax_error(const std::string& file, const std::string& content,
                        const caf::error& err) {
  auto what = caf::to_string(err);
  std::string reason = what;
  if (err.category() == caf::atom("parser"))
    reason = caf::to_string(static_cast<caf::pec>(err.code()));
  long line_no = number_after(what, "\"line\" = ");
  long column = number_after(what, "\"column\" = ");
  // Find the line and the section it is in.
  std::istringstream in{content};
  std::string line;
  std::string section;
  // The parser may report the line after the bad one: blame the last key
  // line of [connmgr] at or before the reported line.
  std::string key;
  std::string value;
  bool found = false;
  for (long i = 1; line_no > 0 && i <= line_no && std::getline(in, line); ++i) {
    std::string k;
    std::string v;
    if (auto name = section_of(line)) {
      section = *name;
      found = false;
    } else if (split_key_line(line, k, v)) {
      found = section == node_settings_category;
      key = k;
      value = v;
    }
  }
  if (found) {
    value = trim(value);
    if (!value.empty() && value.front() != '"' && value.front() != '\'')
      value = trim(value.substr(0, value.find(';')));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'')
        && value.back() == value.front())
      value = value.substr(1, value.size() - 2);
    auto expected = key_expectation(key);
    if (!expected.empty())
      return bad_value(key, value, expected);
    return unknown_key(key);
  }
  return make_error(errc::invalid_config,
                    fmt::format("{}:{}:{}: cannot parse the config file ({})",
                                file, line_no, column, reason));
}

} // namespace connmgr::node_detail
