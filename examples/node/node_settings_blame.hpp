#pragma once

// Internal to the node's settings reader (node_settings*.cpp).

#include <string>
#include <string_view>

#include <caf/error.hpp>

#include "examples/node/node_settings.hpp"

namespace connmgr::node_detail {

// -- the key table (node_settings.cpp) ---------------------------------------

/// What key `key` of the `connmgr` category (the node's or a manager key)
/// takes, e.g. "expected an integer in 0..4294967295"; empty for an unknown
/// key.
std::string key_expectation(std::string_view key);

/// `connmgr.KEY = "TEXT": EXPECTED` as `errc::invalid_config`.
caf::error bad_value(std::string_view key, std::string_view text,
                     std::string_view expected);

/// `connmgr.KEY: unknown key, expected one of ...` as `errc::invalid_config`.
caf::error unknown_key(std::string_view key);

/// Fails when `text` is the value of a duration key that does not fit
/// 64-bit nanoseconds (CAF's parser would wrap it around); passes any other
/// key or text.
caf::error check_value_text(std::string_view key, std::string_view text);

/// `x` without blanks (space, tab, CR) around it.
std::string trim(std::string_view x);

// -- the blame scanner (node_settings_blame.cpp) ------------------------------

/// Finds a list in the `[connmgr]` section of `content` that is never
/// closed. CAF's parser accepts one on the last line (dropping the whole
/// section) and otherwise blames a later line, so we look first.
caf::error unterminated_list(const std::string& content);

/// Finds a duration key of the `[connmgr]` section of `content` whose value
/// does not fit 64-bit nanoseconds.
caf::error overflowing_duration(const std::string& content);

/// Turns a syntax error `err` of CAF's config parser on `content` (read from
/// `file`) into one line. When the bad line is a `key=value` line of the
/// `[connmgr]` section, names the key and its expectation, like a type error
/// would.
caf::error syntax_error(const std::string& file, const std::string& content,
                        const caf::error& err);

} // namespace connmgr::node_detail
