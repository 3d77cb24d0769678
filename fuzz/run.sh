#!/bin/sh
# Builds the wire fuzzer with clang and runs it for a few seconds.
#     sh fuzz/run.sh CLANG SOURCE_DIR WORK_DIR SECONDS
# Exits 77 (CTest's "skipped") when clang cannot build libFuzzer targets.
set -u
clang=$1 src=$2 work=$3 seconds=${4:-5}
mkdir -p "$work/corpus"
bin=$work/fuzz_wire
if ! "$clang" -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -I "$src/src" \
        "$src/fuzz/fuzz_wire.c" "$src/src/process/wire.c" -o "$bin" 2>"$work/build.log"; then
    echo "fuzz_wire: clang cannot build a libFuzzer target here; skipped"
    cat "$work/build.log"
    exit 77
fi
# Seeds: one valid message of each kind, so mutation starts from the
# interesting shapes rather than from nothing.
printf '\000CCT1\001\000\000\000\005\000\000\000\000\000\000\000\006\000\000\000\000\000\000\000\010\000\000\000\000\000\000\000square12345678' > "$work/corpus/task"
printf '\001CCR1\373\377\377\377\011\000\000\000\000\000\000\000\004\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000boom' > "$work/corpus/result"
printf '\002CCM1\000\000\000\000\005\000\000\000\000\000\000\000' > "$work/corpus/frame"
exec "$bin" -max_total_time="$seconds" -print_final_stats=1 "$work/corpus"
