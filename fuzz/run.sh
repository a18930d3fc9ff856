#!/usr/bin/env bash
# Builds the libFuzzer target for the incoming migration stream and runs it for SECONDS
# (default 60) on one core. Outside the package build: the modules are compiled into
# fuzz/.build with coverage instrumentation and AddressSanitizer, and the entry point is
# linked here with swiftc, so `swift build` and `swift test` never see libFuzzer.
#   fuzz/run.sh [SECONDS]          build, write seeds if the corpus is empty, fuzz
# Findings land in fuzz/findings/ (crash-*, leak-*, timeout-*); copy each one into
# Tests/MigrationTests/Fixtures/FuzzCorpus/ once fixed, where FuzzCorpusReplayTests replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=fuzz/.build
binary=$build/stream-fuzzer
# -sanitize=fuzzer alone does not instrument modules compiled without linking: ask for
# the coverage libFuzzer reads explicitly, or it fuzzes blind.
flags=(-Xswiftc -sanitize=fuzzer -Xswiftc -sanitize=address -Xswiftc -enable-testing
       -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)

swift build --build-path "$build" --target Migration "${flags[@]}"
debug=$(swift build --build-path "$build" --target Migration "${flags[@]}" --show-bin-path)
objects=()
for module in CKVM KVM Devices Machine Migration; do
    for object in "$debug/$module.build"/*.o; do objects+=("$object"); done
done
swiftc -sanitize=fuzzer,address -parse-as-library -g \
    -I "$debug/Modules" -I "$debug" -Xcc -fmodule-map-file="$debug/CKVM.build/module.modulemap" \
    -I Sources/CKVM/include \
    fuzz/StreamFuzzer.swift fuzz/FuzzMachine.swift fuzz/SeedStreams.swift "${objects[@]}" -o "$binary"

root=$(pwd)
corpus=$root/fuzz/corpus
work=$root/$build/corpus
findings=$root/fuzz/findings
mkdir -p "$corpus" "$work" "$findings"
# Swift's own crash backtracer trips AddressSanitizer; libFuzzer prints the stack instead.
export SWIFT_BACKTRACE=enable=no
if [ -z "$(ls -A "$corpus")" ]; then
    SWIFTKVM_FUZZ_WRITE_SEEDS="$corpus" "$binary"
fi
# Grown inputs go to the uncommitted work folder; the committed corpus stays the small seeds.
# -fork=1: one worker process (one core) that restarts after a finding and keeps going.
cd "$build"
[ "${FUZZ_BUILD_ONLY:-}" ] && exit 0
exec "$root/$binary" "$work" "$corpus" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$seconds" -max_len=262144 \
    -timeout=10 -rss_limit_mb=2048 -detect_leaks=0 -artifact_prefix="$findings/" -print_final_stats=1
