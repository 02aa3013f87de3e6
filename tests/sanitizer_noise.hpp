#pragma once

// Sanitizer output that says nothing about the code under test.

#include <regex>
#include <string>

namespace connmgr::test {

/// Whether `line` of a process's stderr belongs to a UBSan vptr report that
/// UBSan could not check. Its vptr check probes the object's memory through
/// a pipe; in a process with no descriptor left that pipe fails, the probe
/// calls any object's vtable invalid, and suppressions are not consulted.
/// Only reports of an *invalid* vptr are these; one naming another dynamic
/// type ("vptr for 'T'") is real and not matched here.
inline bool ubsan_vptr_probe_failure(const std::string& line) {
  static const std::regex report{
    R"(^\S+:\d+:\d+: runtime error: (member call on|member access within|)"
    R"(downcast of) address 0x[0-9a-f]+ which does not point to an object )"
    R"(of type '[^']+'$)"};
  static const std::regex note{
    R"(^0x[0-9a-f]+: note: object has invalid vptr$)"};
  static const std::regex dump{R"(^ [ 0-9a-f]+$|^ +\^~+ *$|^ +invalid vptr$)"};
  return std::regex_match(line, report) || std::regex_match(line, note)
         || std::regex_match(line, dump)
         || line == "<memory cannot be printed>";
}

} // namespace connmgr::test
