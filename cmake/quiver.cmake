# Helpers shared by every module: one place decides warnings and how tests are registered.

# -Wno-restrict: GCC 12 reports false positives on std::string concatenation (GCC bug 105329).
set(QUIVER_WARNINGS -Wall -Wextra -Werror -Wno-missing-field-initializers -Wno-restrict)

# quiver_library(NAME SOURCES ... DEPS ...): one static library per module.
function(quiver_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${QUIVER_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# quiver_test(NAME SOURCES ... DEPS ...): a GoogleTest binary registered with CTest, so that no
# test file exists unbuilt. Tests carry the label "unit".
function(quiver_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE ${QUIVER_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120)
  set_property(GLOBAL APPEND PROPERTY QUIVER_UNIT_TESTS ${name})
endfunction()
