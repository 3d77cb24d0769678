#!/bin/sh
# The install-consumer test (CTest: install_consumer):
#     sh tests/consumer/run.sh SOURCE_DIR WORK_DIR      (uses $CC if set)
# 1. configures, builds and installs concur from SOURCE_DIR into
#    WORK_DIR/prefix, from its own build directory WORK_DIR/build;
# 2. builds tests/consumer/main.c against that install with CMake
#    (find_package(concur), concur::concur and concur::concur_static) and
#    runs it;
# 3. builds it again with pkg-config (`cc $(pkg-config --cflags --libs
#    concur)`) and runs it;
# 4. when concur was built with its MPI pool (libconcur_mpi.a installed):
#    builds tests/consumer/mpi_main.c with find_package(concur COMPONENTS
#    mpi) and with pkg-config concur-mpi, and runs each under
#    `mpirun --oversubscribe -np 3`.
# Exits non-zero with a message naming the step that failed.
set -eu

if [ $# -ne 2 ]; then
    echo "usage: sh tests/consumer/run.sh SOURCE_DIR WORK_DIR" >&2
    exit 2
fi

CC=${CC:-cc}
export CC
[ -f "$1/CMakeLists.txt" ] && [ -f "$1/tests/consumer/main.c" ] || {
    echo "install_consumer: FAILED: $1 is not the concur source tree" >&2
    exit 1
}
src=$(cd "$1" && pwd)
here=$src/tests/consumer
mkdir -p "$2"
work=$(cd "$2" && pwd)
prefix=$work/prefix
jobs=$(nproc 2>/dev/null || echo 2)

step() { echo "--- install_consumer: $*"; }
fail() {
    echo "install_consumer: FAILED: $*" >&2
    exit 1
}

# Start from nothing, so a stale install cannot hide a broken one.
rm -rf "$work/build" "$work/prefix" "$work/cmake-consumer" "$work/pkg-config-consumer"

step "configure concur ($src) with CC=$CC"
cmake -S "$src" -B "$work/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCONCUR_BUILD_TESTS=OFF \
    -DCONCUR_BUILD_TOOLS=OFF \
    -DCONCUR_BUILD_EXAMPLES=OFF \
    || fail "configuring concur"
step "build concur"
cmake --build "$work/build" -j "$jobs" || fail "building concur"
step "install concur into $prefix"
cmake --install "$work/build" || fail "installing concur"

[ -f "$prefix/include/concur.h" ] || fail "no include/concur.h in $prefix"
pc=$(find "$prefix" -name concur.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$pc" ] || fail "no pkgconfig/concur.pc installed under $prefix"
pcdir=$(dirname "$pc")
libdir=$(dirname "$pcdir")
[ -f "$libdir/cmake/concur/concurConfig.cmake" ] \
    || fail "no cmake/concur/concurConfig.cmake in $libdir"
ls "$libdir"/libconcur.so.* >/dev/null 2>&1 || fail "no libconcur.so.* in $libdir"
[ -f "$libdir/libconcur.a" ] || fail "no libconcur.a in $libdir"

mpi=OFF
[ -f "$libdir/libconcur_mpi.a" ] && mpi=ON

step "CMake consumer: find_package(concur) (MPI component: $mpi)"
cmake -S "$here" -B "$work/cmake-consumer" \
    -DCMAKE_PREFIX_PATH="$prefix" \
    -DCMAKE_BUILD_TYPE=Release \
    -DCONSUMER_MPI=$mpi \
    || fail "configuring the CMake consumer (find_package(concur))"
cmake --build "$work/cmake-consumer" -j "$jobs" \
    || fail "building the CMake consumer"
step "run the CMake consumer (shared)"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$work/cmake-consumer/consumer" || fail "the CMake consumer (shared) failed"
step "run the CMake consumer (static)"
"$work/cmake-consumer/consumer_static" || fail "the CMake consumer (static) failed"

step "pkg-config consumer"
command -v pkg-config >/dev/null 2>&1 || fail "pkg-config is not installed"
PKG_CONFIG_PATH="$pcdir${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
export PKG_CONFIG_PATH
pkg-config --exists concur || fail "pkg-config cannot find concur in $pcdir"
flags=$(pkg-config --cflags --libs concur) || fail "pkg-config --cflags --libs concur"
mkdir -p "$work/pkg-config-consumer"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror "$here/main.c" $flags \
    -o "$work/pkg-config-consumer/consumer" \
    || fail "compiling with: $CC main.c $flags"
step "run the pkg-config consumer"
LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
    "$work/pkg-config-consumer/consumer" || fail "the pkg-config consumer failed"

if [ "$mpi" = OFF ]; then
    echo "install_consumer: ok (CMake shared and static, pkg-config; concur built without MPI)"
    exit 0
fi

# The MPI pool: both ways of linking it, each run as a 3-rank job.
[ -f "$libdir/cmake/concur/concurMpiTargets.cmake" ] \
    || fail "no cmake/concur/concurMpiTargets.cmake in $libdir"
pkg-config --exists concur-mpi || fail "pkg-config cannot find concur-mpi in $pcdir"
command -v mpirun >/dev/null 2>&1 || fail "concur has MPI but mpirun is not on PATH"
mpirun="mpirun --oversubscribe"
[ "$(id -u)" -eq 0 ] && mpirun="$mpirun --allow-run-as-root"
step "run the CMake MPI consumer (find_package(concur COMPONENTS mpi))"
# shellcheck disable=SC2086
$mpirun -np 3 "$work/cmake-consumer/consumer_mpi" \
    || fail "the CMake MPI consumer failed"
step "pkg-config MPI consumer"
flags=$(pkg-config --cflags --libs concur-mpi) || fail "pkg-config --cflags --libs concur-mpi"
# shellcheck disable=SC2086
"$CC" -std=c11 -Wall -Wextra -Werror "$here/mpi_main.c" $flags \
    -o "$work/pkg-config-consumer/consumer_mpi" \
    || fail "compiling with: $CC mpi_main.c $flags"
step "run the pkg-config MPI consumer"
# shellcheck disable=SC2086
$mpirun -np 3 "$work/pkg-config-consumer/consumer_mpi" \
    || fail "the pkg-config MPI consumer failed"

echo "install_consumer: ok (CMake shared and static, pkg-config; MPI pool with CMake and pkg-config)"
