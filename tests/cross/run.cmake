# The coro_aarch64 test: cross-compiles the library and coro_cross_check
# for aarch64 (incrementally, in WORK) and runs the program under qemu.
#   cmake -DSOURCE=<concur root> -DWORK=<dir> -DCC=<aarch64 gcc>
#         -DQEMU=<qemu-aarch64> -P run.cmake
foreach(var SOURCE WORK CC QEMU)
  if(NOT ${var})
    message(FATAL_ERROR "run.cmake needs -D${var}=...")
  endif()
endforeach()

if(NOT EXISTS ${WORK}/CMakeCache.txt)
  execute_process(
    COMMAND ${CMAKE_COMMAND} -S ${SOURCE}/tests/cross -B ${WORK}
            -DCMAKE_TOOLCHAIN_FILE=${SOURCE}/cmake/aarch64-linux-gnu.cmake
            -DCONCUR_AARCH64_CC=${CC} -DCMAKE_BUILD_TYPE=RelWithDebInfo
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    file(REMOVE ${WORK}/CMakeCache.txt)
    message(FATAL_ERROR "configuring the aarch64 build failed")
  endif()
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} --build ${WORK} --target coro_cross_check -j 2
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building coro_cross_check for aarch64 failed")
endif()
execute_process(COMMAND ${QEMU} ${WORK}/coro_cross_check RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "coro_cross_check under ${QEMU}: ${rc}")
endif()
