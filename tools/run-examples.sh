#!/bin/sh
# Runs every example in examples/ from a build directory, quickly (short
# sleeps, fewer iterations), with a header per example. Exits non-zero if
# any example is missing, fails or hangs. Called by `make run`:
#     sh tools/run-examples.sh BUILD_DIR
# Every examples/*.c is run, so a new example is run as soon as it exists;
# give it quick arguments in args_for below if it needs some.
# Never run this on a ThreadSanitizer build: shared_counter races on purpose.
# Examples named mpi_* are MPI programs: they run under
# `mpirun --oversubscribe -np 3` when concur was built with MPI and mpirun
# is on PATH, and are skipped with the reason otherwise (not a failure).
set -u

build=${1:-build}
src=$(cd "$(dirname "$0")/.." && pwd)
bin=$build/examples

if [ ! -d "$bin" ]; then
    echo "run-examples: $bin does not exist; build first (make build)" >&2
    exit 2
fi

# Quick arguments per example; the programs' own defaults are the seeds'.
args_for() {
    case $1 in
    print_numbers) echo 0.1 ;;    # pause between numbers, s
    three_tasks) echo 0.5 ;;      # duration of each task, s
    shared_counter) echo 200000 ;; # increments per thread
    daemon_thread) echo 0.2 ;;    # worker step, s
    *) echo "" ;;
    esac
}

# Guard against a hang; `timeout` is in coreutils, but run without it if
# it is missing.
limit=60
if command -v timeout >/dev/null 2>&1; then
    guard="timeout $limit"
else
    guard=""
fi

# How to start an MPI example, or why it cannot run here.
mpi_launcher() {
    if [ ! -x "$bin/$1" ]; then
        echo "skip: concur was built without MPI (install libopenmpi-dev and openmpi-bin, then rebuild)"
    elif ! command -v mpirun >/dev/null 2>&1; then
        echo "skip: mpirun is not on PATH (Debian: openmpi-bin)"
    elif [ "$(id -u)" -eq 0 ]; then
        echo "mpirun --allow-run-as-root --oversubscribe -np 3"
    else
        echo "mpirun --oversubscribe -np 3"
    fi
}

failed=""
skipped=""
count=0
start=$(date +%s)
# The order of the README (simple first), then any example not listed yet.
order="print_numbers three_tasks shared_counter daemon_thread thread_states"
names=$order
for source in "$src"/examples/*.c; do
    name=$(basename "$source" .c)
    case " $order " in
    *" $name "*) ;;
    *) names="$names $name" ;;
    esac
done

for name in $names; do
    args=$(args_for "$name")
    count=$((count + 1))
    launcher=""
    case $name in
    mpi_*)
        launcher=$(mpi_launcher "$name")
        case $launcher in
        skip:*)
            echo "=== $name: SKIPPED (${launcher#skip: })"
            echo
            skipped="$skipped $name"
            continue
            ;;
        esac
        ;;
    esac
    echo "=== ${launcher:+$launcher }$name${args:+ $args}"
    if [ ! -x "$bin/$name" ]; then
        echo "=== $name: FAILED (not built: $bin/$name)"
        failed="$failed $name"
        continue
    fi
    t0=$(date +%s)
    # shellcheck disable=SC2086
    $guard $launcher "$bin/$name" $args
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "=== $name: ok ($(($(date +%s) - t0)) s)"
    else
        [ "$rc" -eq 124 ] && [ -n "$guard" ] && echo "=== $name: timed out after $limit s"
        echo "=== $name: FAILED (exit status $rc)"
        failed="$failed $name"
    fi
    echo
done

if [ -n "$failed" ]; then
    echo "run-examples: FAILED:$failed" >&2
    exit 1
fi
ran=$((count - $(echo $skipped | wc -w)))
echo "run-examples: all $ran examples run passed in $(($(date +%s) - start)) s${skipped:+ (skipped:$skipped)}"
