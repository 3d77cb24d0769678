# Cross-compiling concur for 64-bit Arm Linux with Debian's
# gcc-aarch64-linux-gnu (used by the coro_aarch64 test, tests/cross/).
# CONCUR_AARCH64_CC may name the compiler; the default is found in PATH.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
if(NOT CONCUR_AARCH64_CC)
  set(CONCUR_AARCH64_CC aarch64-linux-gnu-gcc)
endif()
set(CMAKE_C_COMPILER ${CONCUR_AARCH64_CC})
set(CMAKE_ASM_COMPILER ${CONCUR_AARCH64_CC})
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
