# Packaging test driver, run as `cmake -D... -P run_consumer_test.cmake`.
#
# Builds and runs the tiny project in tests/consumer/ against connmgr, in one
# of two ways:
#   MODE=find_package      install CONNMGR_BINARY_DIR into WORK_DIR/prefix, then
#                          find_package(connmgr) from there
#   MODE=add_subdirectory  add_subdirectory(CONNMGR_SOURCE_DIR) in the consumer
#
# Inputs: MODE, WORK_DIR, CONSUMER_SOURCE_DIR, CONNMGR_SOURCE_DIR,
#   CONNMGR_BINARY_DIR, CONNMGR_LIBRARY (built library file, find_package only),
#   optional CONSUMER_CONFIG, CONSUMER_GENERATOR, CONSUMER_MAKE_PROGRAM,
#   CONSUMER_CXX_COMPILER.
# Everything happens below WORK_DIR, which is wiped first: tests in different
# work directories can run in parallel.

cmake_minimum_required(VERSION 3.16)

function(fail step)
  string(JOIN "" details ${ARGN})
  message(FATAL_ERROR "[${MODE}] FAILED at step '${step}': ${details}")
endfunction()

function(step_banner step)
  message(STATUS "[${MODE}] ---- ${step}")
endfunction()

# Runs a command, stops the test with the step name if it fails.
function(run_step step)
  step_banner("${step}")
  execute_process(COMMAND ${ARGN}
    RESULT_VARIABLE result
    COMMAND_ECHO STDOUT)
  if(NOT result EQUAL 0)
    fail("${step}" "command exited with '${result}'")
  endif()
endfunction()

# --- Check inputs -------------------------------------------------------------
foreach(var IN ITEMS MODE WORK_DIR CONSUMER_SOURCE_DIR CONNMGR_SOURCE_DIR)
  if(NOT DEFINED ${var} OR "${${var}}" STREQUAL "")
    fail("arguments" "-D${var}=... is required")
  endif()
endforeach()
if(NOT MODE MATCHES "^(find_package|add_subdirectory)$")
  fail("arguments" "MODE must be find_package or add_subdirectory, got '${MODE}'")
endif()

set(prefix "${WORK_DIR}/prefix")
set(build "${WORK_DIR}/build")

file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}")

# --- Install (find_package only) ----------------------------------------------
if(MODE STREQUAL "find_package")
  if(NOT CONNMGR_BINARY_DIR)
    fail("arguments" "-DCONNMGR_BINARY_DIR=... is required for find_package")
  endif()
  if(CONNMGR_LIBRARY AND NOT EXISTS "${CONNMGR_LIBRARY}")
    fail("install" "library '${CONNMGR_LIBRARY}' is not built yet, "
                   "build the project before running ctest")
  endif()

  set(install_cmd "${CMAKE_COMMAND}" --install "${CONNMGR_BINARY_DIR}"
                  --prefix "${prefix}")
  if(CONSUMER_CONFIG)
    list(APPEND install_cmd --config "${CONSUMER_CONFIG}")
  endif()
  run_step("install connmgr into ${prefix}" ${install_cmd})

  # The installed package must stand on its own: no paths back into the
  # source or build tree.
  step_banner("check installed package")
  file(GLOB_RECURSE package_files "${prefix}/*/cmake/connmgr/*.cmake")
  if(NOT package_files)
    fail("check installed package"
         "no CMake package files under ${prefix}/*/cmake/connmgr")
  endif()
  foreach(f IN LISTS package_files)
    file(READ "${f}" content)
    foreach(tree IN ITEMS "${CONNMGR_SOURCE_DIR}" "${CONNMGR_BINARY_DIR}")
      string(FIND "${content}" "${tree}" pos)
      if(NOT pos EQUAL -1)
        fail("check installed package" "${f} refers to ${tree}")
      endif()
    endforeach()
  endforeach()
  if(NOT EXISTS "${prefix}/include/connmgr/messages/error_code.hpp")
    fail("check installed package"
         "${prefix}/include/connmgr/messages/error_code.hpp is missing")
  endif()
endif()

# --- Configure the consumer ---------------------------------------------------
set(configure_cmd "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${build}")
if(CONSUMER_GENERATOR)
  list(APPEND configure_cmd -G "${CONSUMER_GENERATOR}")
endif()
if(CONSUMER_MAKE_PROGRAM)
  list(APPEND configure_cmd "-DCMAKE_MAKE_PROGRAM=${CONSUMER_MAKE_PROGRAM}")
endif()
if(CONSUMER_CXX_COMPILER)
  list(APPEND configure_cmd "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}")
endif()
if(CONSUMER_CONFIG)
  list(APPEND configure_cmd "-DCMAKE_BUILD_TYPE=${CONSUMER_CONFIG}")
endif()
if(MODE STREQUAL "find_package")
  # Only our prefix: never pick up a connmgr from the package registries.
  list(APPEND configure_cmd
    -DCONNMGR_CONSUMER_MODE=find_package
    "-DCMAKE_PREFIX_PATH=${prefix}"
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
else()
  list(APPEND configure_cmd
    -DCONNMGR_CONSUMER_MODE=add_subdirectory
    "-DCONNMGR_SOURCE_DIR=${CONNMGR_SOURCE_DIR}")
endif()
run_step("configure consumer" ${configure_cmd})

if(MODE STREQUAL "find_package")
  # Make sure the package came from our prefix, not from /usr or /usr/local.
  file(STRINGS "${build}/CMakeCache.txt" found_dir REGEX "^connmgr_DIR:")
  string(REGEX REPLACE "^connmgr_DIR:[A-Z]+=" "" found_dir "${found_dir}")
  string(FIND "${found_dir}" "${prefix}/" pos)
  if(NOT pos EQUAL 0)
    fail("configure consumer"
         "connmgr was found in '${found_dir}', expected below '${prefix}'")
  endif()
endif()

# --- Build and run ------------------------------------------------------------
set(build_cmd "${CMAKE_COMMAND}" --build "${build}" --parallel)
if(CONSUMER_CONFIG)
  list(APPEND build_cmd --config "${CONSUMER_CONFIG}")
endif()
run_step("build consumer" ${build_cmd})

# The consumer writes its executable's path, so any generator layout works.
set(exe_file "${build}/consumer_exe_${CONSUMER_CONFIG}.txt")
if(NOT EXISTS "${exe_file}")
  fail("run consumer" "${exe_file} was not generated")
endif()
file(READ "${exe_file}" exe)
string(STRIP "${exe}" exe)
if(NOT EXISTS "${exe}")
  fail("run consumer" "executable '${exe}' does not exist")
endif()

step_banner("run consumer")
execute_process(COMMAND "${exe}"
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
message(STATUS "[${MODE}] consumer stdout: ${out}")
if(err)
  message(STATUS "[${MODE}] consumer stderr: ${err}")
endif()
if(NOT result EQUAL 0)
  fail("run consumer" "'${exe}' exited with '${result}'")
endif()
if(NOT out MATCHES "refused")
  fail("run consumer" "expected 'refused' in the output")
endif()

message(STATUS "[${MODE}] passed")
