# Shared compile settings, applied per target (never through CMAKE_C_FLAGS):
#   fp_base      - feature macros, warnings, optional -Werror and sanitizers
#   fp_module()  - declare one static library module linked to fp_base
#   fp_unit_test() / fp_integration_test() - a Criterion test executable + ctest entry

add_library(fp_base INTERFACE)
target_compile_definitions(fp_base INTERFACE _GNU_SOURCE)
target_include_directories(fp_base INTERFACE ${PROJECT_SOURCE_DIR})
target_compile_options(fp_base INTERFACE
  -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
  # Truncating a message into a fixed buffer is deliberate (bounded errors).
  -Wformat=2 -Wvla -Wpointer-arith -Wno-unused-parameter
  -Wno-format-truncation)
if(FP_WERROR)
  target_compile_options(fp_base INTERFACE -Werror)
endif()
if(FP_SANITIZE)
  string(REPLACE ";" "," _fp_san "${FP_SANITIZE}")
  target_compile_options(fp_base INTERFACE
    -fsanitize=${_fp_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(fp_base INTERFACE -fsanitize=${_fp_san})
endif()
target_link_libraries(fp_base INTERFACE Threads::Threads m)

# fp_module(NAME SOURCES a.c b.c LIBS x y)
function(fp_module name)
  cmake_parse_arguments(M "" "" "SOURCES;LIBS" ${ARGN})
  add_library(${name} STATIC ${M_SOURCES})
  target_link_libraries(${name} PUBLIC fp_base ${M_LIBS})
endfunction()

# fp_unit_test(NAME SOURCES t.c LIBS mod) - Criterion, no network, label "unit"
function(fp_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE fp_base PkgConfig::CRITERION ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} --jobs 2)
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 120
    ENVIRONMENT "FPDRILL_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()

# fp_integration_test(NAME SOURCES t.c LIBS mod) - needs the local stack, label
# "integration"; tests share live servers, so they run one at a time (-j1).
function(fp_integration_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE fp_base PkgConfig::CRITERION ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name} --jobs 1)
  set_tests_properties(${name} PROPERTIES LABELS integration TIMEOUT 900
    RUN_SERIAL TRUE
    ENVIRONMENT "FPDRILL_SOURCE_DIR=${PROJECT_SOURCE_DIR};FPDRILL_BINARY_DIR=${PROJECT_BINARY_DIR}")
endfunction()
