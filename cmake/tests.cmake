# The test suite, registered by convention so that adding a test is adding a file:
#   tests/c/test_<name>.c       a C program linked with the core and bindings  -> c.<name>
#   tests/lua/<name>_spec.lua   a busted spec for a Lua module (Lua 5.4)         -> lua.<name>
#   tests/e2e/<name>_spec.lua   a busted spec that runs the binaries             -> e2e.<name>
find_program(LUA54 lua5.4 REQUIRED)
find_program(BUSTED busted REQUIRED)

# The compatibility corpora (real ReleaseHub templates, ...; tests/support/compat.lua): the specs
# over them read MOONSHIP_COMPAT_DIR when ctest runs with it set, else this default: its value at
# configure time, else ../shared/fixtures beside the source tree. An absent corpus makes those
# specs print "SKIP ... (set MOONSHIP_COMPAT_DIR)", which marks them Skipped.
if(NOT "$ENV{MOONSHIP_COMPAT_DIR}" STREQUAL "")
  get_filename_component(MS_COMPAT_DEFAULT "$ENV{MOONSHIP_COMPAT_DIR}" ABSOLUTE)
else()
  get_filename_component(MS_COMPAT_DEFAULT "${CMAKE_SOURCE_DIR}/../shared/fixtures" ABSOLUTE)
endif()

# A spec prints this line, and ctest marks it Skipped, when what it tests against is absent:
# the corpus (tests/support/compat.lua), the kubectl and control plane that
# scripts/real-cluster --build-only builds (tests/support/kubesim.lua, realcluster.lua), or
# clang-format (scripts/format).
set(MS_SKIP_LINE "SKIP [^\n]* not found \\((set MOONSHIP_COMPAT_DIR|build it: scripts/real-cluster --build-only|install it: scripts/deps)\\)")

set(MS_TEST_ENV
  "LUA_PATH=${CMAKE_SOURCE_DIR}/lua/?.lua\;${CMAKE_SOURCE_DIR}/lua/?/init.lua\;${CMAKE_SOURCE_DIR}/tests/?.lua\;\;"
  "LUA_CPATH=${CMAKE_BINARY_DIR}/lib/?.so\;\;"
  "MOONSHIP_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "MOONSHIP_BIN=$<TARGET_FILE:moonship>"
  "MOONSHIP_KUBESIM=${CMAKE_BINARY_DIR}/moonship-kubesim"
  "MOONSHIP_BUILD_DIR=${CMAKE_BINARY_DIR}"
  "MOONSHIP_COMPAT_DEFAULT=${MS_COMPAT_DEFAULT}"
  "MOONSHIP_TESTSERVER=${CMAKE_BINARY_DIR}/ms-testserver")

# tests/support/testserver.c: a loopback HTTP server with canned behaviours (delays, chunked
# streams, status codes) for the HTTP client's tests.
if(EXISTS ${CMAKE_SOURCE_DIR}/tests/support/testserver.c)
  add_executable(ms-testserver ${CMAKE_SOURCE_DIR}/tests/support/testserver.c)
  target_link_libraries(ms-testserver PRIVATE ms_flags PkgConfig::MHD)
endif()
if(MOONSHIP_SANITIZE)
  # A stock lua5.4 loading an instrumented core.so needs the ASan runtime first.
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libasan.so
    OUTPUT_VARIABLE MS_LIBASAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  execute_process(COMMAND ${CMAKE_C_COMPILER} -print-file-name=libubsan.so
    OUTPUT_VARIABLE MS_LIBUBSAN OUTPUT_STRIP_TRAILING_WHITESPACE)
  list(APPEND MS_TEST_ENV "MOONSHIP_PRELOAD=${MS_LIBASAN}:${MS_LIBUBSAN}"
    "ASAN_OPTIONS=detect_leaks=1:abort_on_error=0" "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
    "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/tests/lsan.supp:print_suppressions=0")
endif()

file(GLOB MS_C_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/c/test_*.c)
foreach(src IN LISTS MS_C_TESTS)
  get_filename_component(name ${src} NAME_WE)
  string(REGEX REPLACE "^test_" "" short ${name})
  add_executable(${name} ${src})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/c)
  target_link_libraries(${name} PRIVATE ms_bindings)
  if(name MATCHES "^test_kubesim")
    target_link_libraries(${name} PRIVATE PkgConfig::CJSON) # kubesim's sources, built in
  endif()
  add_test(NAME c.${short} COMMAND ${name})
  set_tests_properties(c.${short} PROPERTIES ENVIRONMENT "${MS_TEST_ENV}" TIMEOUT 300)
endforeach()

# style.format: the C sources are laid out as .clang-format says (scripts/format --check).
add_test(NAME style.format COMMAND ${CMAKE_SOURCE_DIR}/scripts/format --check WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(style.format PROPERTIES SKIP_REGULAR_EXPRESSION "${MS_SKIP_LINE}")

foreach(kind lua e2e)
  file(GLOB specs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/${kind}/*_spec.lua)
  foreach(spec IN LISTS specs)
    get_filename_component(name ${spec} NAME_WE)
    string(REGEX REPLACE "_spec$" "" short ${name})
    add_test(NAME ${kind}.${short}
      COMMAND ${CMAKE_SOURCE_DIR}/tests/run-spec ${LUA54} ${BUSTED} ${spec}
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(${kind}.${short} PROPERTIES ENVIRONMENT "${MS_TEST_ENV}" TIMEOUT 600
      SKIP_REGULAR_EXPRESSION "${MS_SKIP_LINE}")
  endforeach()
endforeach()

# tests/real/<name>_spec.lua: moonship against the real control plane (tests/realcluster,
# scripts/real-cluster) -> real.<name>, label `real`. `scripts/test` leaves them out;
# `scripts/test --real` builds the control plane and runs them.
file(GLOB specs CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/real/*_spec.lua)
foreach(spec IN LISTS specs)
  get_filename_component(name ${spec} NAME_WE)
  string(REGEX REPLACE "_spec$" "" short ${name})
  add_test(NAME real.${short}
    COMMAND ${CMAKE_SOURCE_DIR}/tests/run-spec ${LUA54} ${BUSTED} ${spec}
    WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(real.${short} PROPERTIES ENVIRONMENT "${MS_TEST_ENV}" TIMEOUT 1800 LABELS real
    SKIP_REGULAR_EXPRESSION "${MS_SKIP_LINE}")
endforeach()

