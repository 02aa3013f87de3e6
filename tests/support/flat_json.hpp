#pragma once

// One reader of flat JSON objects: an exact parse and a lenient lookup.
//
// Both read the node's log lines, on the same scanner. A flat object has
// string, number, bool and null members and no nesting. `parse_flat_object`
// is the well-formedness check: JSON as our writer produces it and nothing
// else (no whitespace between tokens, integers only, no control characters,
// \u escapes below 0x80). `json_get` reads a member out of a line the way a
// test looks at output: it tolerates blanks between tokens, takes any
// non-string value as its raw text and stops at the member it wants.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
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
std::optional<std::vector<json_member>>
parse_flat_object(std::string_view text);

/// The keys of a parsed object, in order, joined by commas.
std::string keys_of(const std::vector<json_member>& members);

/// The member named `key`, or nothing.
std::optional<json_member> member(const std::vector<json_member>& members,
                                  std::string_view key);

/// The value of member `key` of the flat JSON object `line`: a string
/// decoded (escapes \" \\ \/ \n \r \t \b \f \uXXXX, those at or above 0x80
/// as '?'), anything else (number, true, false, null) as its raw literal.
/// Nothing when the line is not such an object or has no such member.
std::optional<std::string> json_get(std::string_view line,
                                    std::string_view key);

/// `json_get` as a signed integer; nothing when absent or not an integer.
std::optional<int64_t> json_int(std::string_view line, std::string_view key);

/// The "event" member of a JSON line (empty when there is none).
std::string json_event(std::string_view line);

} // namespace connmgr::test
