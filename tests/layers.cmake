# Fails when a lower layer of the library includes a higher one:
#   messages/  the vocabulary, at the bottom: nothing of net/ or actors/
#   net/       the operating system: may use messages/, nothing of actors/
#   actors/    behaviour: may use both
# and when any library folder includes the example node or the tests.
# Run as: cmake -DCONNMGR_SOURCE_DIR=<repo> -P tests/layers.cmake
if(NOT CONNMGR_SOURCE_DIR)
  message(FATAL_ERROR "Set CONNMGR_SOURCE_DIR to the connmgr source tree")
endif()

set(_forbidden_messages "connmgr/(net|actors)/|examples/|tests/")
set(_forbidden_net "connmgr/actors/|examples/|tests/")
set(_forbidden_actors "examples/|tests/")

set(_violations "")
foreach(_layer IN ITEMS messages net actors)
  file(GLOB _files ${CONNMGR_SOURCE_DIR}/${_layer}/*.hpp
                   ${CONNMGR_SOURCE_DIR}/${_layer}/*.cpp)
  foreach(_file IN LISTS _files)
    file(STRINGS ${_file} _includes REGEX "^[ \t]*#[ \t]*include[ \t]*[\"<]")
    foreach(_line IN LISTS _includes)
      string(REGEX MATCH "[\"<][^\">]+[\">]" _target "${_line}")
      if(_target MATCHES "${_forbidden_${_layer}}")
        file(RELATIVE_PATH _rel ${CONNMGR_SOURCE_DIR} ${_file})
        list(APPEND _violations "${_rel} includes ${_target}")
      endif()
      # Our own headers only by their prefix: an unprefixed "net/x.hpp" could
      # resolve to an application's file of that name.
      if(_target MATCHES "^[\"<](messages|net|actors)/")
        file(RELATIVE_PATH _rel ${CONNMGR_SOURCE_DIR} ${_file})
        list(APPEND _violations "${_rel} includes ${_target} without connmgr/")
      endif()
    endforeach()
  endforeach()
endforeach()

if(_violations)
  list(JOIN _violations "\n  " _text)
  message(FATAL_ERROR "layering violated:\n  ${_text}")
endif()
message(STATUS "layers: messages < net < actors, no library file includes "
               "examples/ or tests/")
