# FindCAF.cmake -- locate the C++ Actor Framework (CAF 0.17.x).
#
# Debian's libcaf-dev ships headers and shared libraries but no CMake package
# config, so we look for the files ourselves.
#
# Components: core, io (both searched when none are requested).
#
# Result variables:
#   CAF_FOUND, CAF_VERSION ("0.17.6"), CAF_INCLUDE_DIRS, CAF_LIBRARIES,
#   CAF_core_FOUND, CAF_io_FOUND
# Cache variables (hints / overrides):
#   CAF_INCLUDE_DIR, CAF_CORE_LIBRARY, CAF_IO_LIBRARY
# Imported targets:
#   CAF::core  (brings Threads::Threads along)
#   CAF::io    (depends on CAF::core)

find_path(CAF_INCLUDE_DIR
  NAMES caf/config.hpp
  DOC "Directory that contains caf/config.hpp")

# CAF encodes its version as one integer: MMmmpp, two decimal digits per part
# (1706 is 0.17.6).
unset(CAF_VERSION)
if(CAF_INCLUDE_DIR AND EXISTS "${CAF_INCLUDE_DIR}/caf/config.hpp")
  file(STRINGS "${CAF_INCLUDE_DIR}/caf/config.hpp" _caf_version_line
       REGEX "^#[ \t]*define[ \t]+CAF_VERSION[ \t]+[0-9]+")
  if(_caf_version_line MATCHES "CAF_VERSION[ \t]+([0-9]+)")
    set(_caf_version_num "${CMAKE_MATCH_1}")
    math(EXPR CAF_VERSION_MAJOR "${_caf_version_num} / 10000")
    math(EXPR CAF_VERSION_MINOR "(${_caf_version_num} / 100) % 100")
    math(EXPR CAF_VERSION_PATCH "${_caf_version_num} % 100")
    set(CAF_VERSION
        "${CAF_VERSION_MAJOR}.${CAF_VERSION_MINOR}.${CAF_VERSION_PATCH}")
  endif()
  unset(_caf_version_line)
  unset(_caf_version_num)
endif()

# Which libraries to look for: what the caller asked for, else core + io.
set(_caf_components ${CAF_FIND_COMPONENTS})
if(NOT _caf_components)
  set(_caf_components core io)
endif()
# io is useless without core.
if("io" IN_LIST _caf_components AND NOT "core" IN_LIST _caf_components)
  list(APPEND _caf_components core)
endif()

set(_caf_required_vars CAF_INCLUDE_DIR)
foreach(_caf_comp IN LISTS _caf_components)
  if(NOT _caf_comp MATCHES "^(core|io)$")
    set(CAF_${_caf_comp}_FOUND FALSE)
    continue()
  endif()
  string(TOUPPER "${_caf_comp}" _caf_comp_upper)
  find_library(CAF_${_caf_comp_upper}_LIBRARY
    NAMES caf_${_caf_comp}
    DOC "Path to libcaf_${_caf_comp}")
  if(CAF_${_caf_comp_upper}_LIBRARY)
    set(CAF_${_caf_comp}_FOUND TRUE)
  else()
    set(CAF_${_caf_comp}_FOUND FALSE)
  endif()
  # Without explicit COMPONENTS both libraries are mandatory.
  if(NOT CAF_FIND_COMPONENTS)
    list(APPEND _caf_required_vars CAF_${_caf_comp_upper}_LIBRARY)
  endif()
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CAF
  REQUIRED_VARS ${_caf_required_vars}
  VERSION_VAR CAF_VERSION
  HANDLE_COMPONENTS)

mark_as_advanced(CAF_INCLUDE_DIR CAF_CORE_LIBRARY CAF_IO_LIBRARY)

if(CAF_FOUND)
  set(CAF_INCLUDE_DIRS "${CAF_INCLUDE_DIR}")
  set(CAF_LIBRARIES "")

  if(CAF_core_FOUND)
    list(APPEND CAF_LIBRARIES "${CAF_CORE_LIBRARY}")
    # CAF's scheduler spawns threads; consumers must link the thread library.
    if(NOT TARGET Threads::Threads)
      find_package(Threads REQUIRED QUIET)
    endif()
    if(NOT TARGET CAF::core)
      add_library(CAF::core UNKNOWN IMPORTED)
      set_target_properties(CAF::core PROPERTIES
        IMPORTED_LOCATION "${CAF_CORE_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
        # System include: warnings inside CAF headers must not break -Werror
        # builds of code that includes them.
        INTERFACE_SYSTEM_INCLUDE_DIRECTORIES "${CAF_INCLUDE_DIR}"
        INTERFACE_LINK_LIBRARIES Threads::Threads)
    endif()
  endif()

  if(CAF_io_FOUND)
    list(APPEND CAF_LIBRARIES "${CAF_IO_LIBRARY}")
    if(NOT TARGET CAF::io)
      add_library(CAF::io UNKNOWN IMPORTED)
      set_target_properties(CAF::io PROPERTIES
        IMPORTED_LOCATION "${CAF_IO_LIBRARY}"
        INTERFACE_LINK_LIBRARIES CAF::core)
    endif()
  endif()
endif()

unset(_caf_components)
unset(_caf_comp)
unset(_caf_comp_upper)
unset(_caf_required_vars)
