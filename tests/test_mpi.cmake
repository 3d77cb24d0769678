# The MPI pool's tests (included from tests/CMakeLists.txt when
# CONCUR_WITH_MPI is on). Each scenario of test_mpi.c is one MPI job:
# `mpirun --oversubscribe -np 3` on loopback, label "mpi".
#
# A stuck job cannot hang CI: mpirun's own --timeout ends the job (all
# ranks) first, and CTest's TIMEOUT backs it up.
add_executable(test_mpi test_mpi.c)
target_link_libraries(test_mpi PRIVATE concur_harness concur_mpi
  concur_warnings concur_sanitize)

# Root in containers and CI needs the two ALLOW variables. Shared memory
# between ranks without the cross-memory-attach single copy (ptrace is often
# forbidden in containers); "sm" is vader's newer name. No ranks over TCP.
set(CONCUR_MPI_TEST_ENV
  OMPI_ALLOW_RUN_AS_ROOT=1
  OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  OMPI_MCA_btl=self,vader
  OMPI_MCA_btl_vader_single_copy_mechanism=none
  OMPI_MCA_rmaps_base_oversubscribe=1)
# AddressSanitizer builds: Open MPI's own leaks are suppressed, never
# concur's (see the file).
if(CONCUR_SANITIZE STREQUAL "address")
  list(APPEND CONCUR_MPI_TEST_ENV
    "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/test_mpi.lsan.supp:fast_unwind_on_malloc=0")
endif()
set(CONCUR_MPIRUN ${MPIEXEC_EXECUTABLE} --oversubscribe --timeout 100)

function(concur_mpi_test scenario np)
  add_test(NAME mpi_${scenario}
    COMMAND ${CONCUR_MPIRUN} -np ${np} $<TARGET_FILE:test_mpi> ${scenario})
  set_tests_properties(mpi_${scenario} PROPERTIES TIMEOUT 120 LABELS "mpi"
    ENVIRONMENT "${CONCUR_MPI_TEST_ENV}")
endfunction()

concur_mpi_test(pool 3)
concur_mpi_test(time_limit 3)
concur_mpi_test(user_init 3)
concur_mpi_test(user_funneled 3)

# A rank stuck past its time limit at shutdown: the job must end (not
# hang) with MPI_Abort and concur's explanation on stderr. About one run
# in five, mpiexec itself does not return after the abort although every
# rank has exited (seen here with Open MPI 4.1 on 2 vCPUs); `timeout`
# ends it after 30 s instead of the test timing out, and the test still
# requires the non-zero status and concur's message.
add_test(NAME mpi_abort
  COMMAND sh -c [=[
err=$(timeout -k 5 30 "$@" 2>&1 >/dev/null)
status=$?
printf '%s\nexit status %d\n' "$err" $status
test $status -ne 0 && printf '%s' "$err" | grep -q "MPI cannot stop one rank"
]=] sh ${CONCUR_MPIRUN} -np 3 $<TARGET_FILE:test_mpi> abort)
set_tests_properties(mpi_abort PROPERTIES TIMEOUT 120 LABELS "mpi"
  ENVIRONMENT "${CONCUR_MPI_TEST_ENV}")

# Started without mpirun: MPI runs as a singleton, one rank, no workers.
add_test(NAME mpi_singleton COMMAND test_mpi singleton)
set_tests_properties(mpi_singleton PROPERTIES TIMEOUT 120 LABELS "mpi"
  ENVIRONMENT "${CONCUR_MPI_TEST_ENV}")

# `concur bench mpi --quick --json`: the shape only, never a figure. The
# suite starts its own jobs (this test does not run under mpirun); when
# mpi4py is missing it is skipped and reports no results, which passes.
if(CONCUR_BUILD_TOOLS)
  find_program(CONCUR_PYTHON3 python3)
endif()
if(CONCUR_BUILD_TOOLS AND CONCUR_PYTHON3)
  add_test(NAME tools_bench_mpi_json
    COMMAND ${CONCUR_PYTHON3} ${PROJECT_SOURCE_DIR}/tools/bench_json_check.py
            mpi "mpi_roundtrip,mpi_map_tiny|"
            $<TARGET_FILE:concur_cli> bench mpi --quick --json)
  set_tests_properties(tools_bench_mpi_json PROPERTIES TIMEOUT 300
    LABELS "mpi;tools" ENVIRONMENT "${CONCUR_MPI_TEST_ENV}")

  # `mpirun -np 3 concur compare`: rank 0 measures an mpi row on the pool
  # the other two ranks serve, and prints the only document.
  add_test(NAME tools_compare_mpi
    COMMAND ${CONCUR_PYTHON3} ${PROJECT_SOURCE_DIR}/tools/compare_check.py
            mpi ${MPIEXEC_EXECUTABLE} $<TARGET_FILE:concur_cli>)
  set_tests_properties(tools_compare_mpi PROPERTIES TIMEOUT 300
    LABELS "mpi;tools" ENVIRONMENT "${CONCUR_MPI_TEST_ENV}")

  # A command line refused under mpirun: every rank refuses it, rank 0
  # alone says so (once, not once per rank).
  add_test(NAME tools_compare_mpi_usage
    COMMAND sh -c [=[
err=$(timeout -k 5 60 "$@" 2>&1 >/dev/null)
status=$?
printf '%s\nexit status %d\n' "$err" $status
test $status -ne 0 &&
test "$(printf '%s\n' "$err" | grep -c "unknown workload 'nosuch'")" -eq 1
]=] sh ${CONCUR_MPIRUN} -np 3 $<TARGET_FILE:concur_cli> compare
       --workload nosuch)
  set_tests_properties(tools_compare_mpi_usage PROPERTIES TIMEOUT 120
    LABELS "mpi;tools" ENVIRONMENT "${CONCUR_MPI_TEST_ENV}")
endif()
