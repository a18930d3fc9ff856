#!/usr/bin/env bash
# libFuzzer targets for what a peer can send: the incoming migration stream (stream), QMP
# (qmp: JSON parser, framing, session, command arguments) and the human monitor's command
# line (monitor: tokenizer, argument parser, handlers' own decoding, completion). Outside the
# package build: the modules are compiled into fuzz/.build with coverage instrumentation and
# AddressSanitizer, and each entry point is linked here with swiftc, so `swift build` and
# `swift test` never see libFuzzer.
#   fuzz/run.sh TARGET [SECONDS]   fuzz one target for SECONDS (default 60) on one core,
#                                  carrying on past findings; findings in fuzz/findings/TARGET/
#   fuzz/run.sh check [SECONDS]    what the test command runs: every target for SECONDS
#                                  (default 10) from its committed corpus; fails on the first
#                                  finding
# Each target's corpus is fuzz/corpus/TARGET: seeds and every fixed finding, replayed first on
# each run (the stream seeds are written by the target itself when the folder is empty).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
mode=${1:?usage: fuzz/run.sh stream|qmp|monitor|check [SECONDS]}
build=fuzz/.build
targets=(stream qmp monitor)
# -sanitize=fuzzer alone does not instrument modules compiled without linking: ask for
# the coverage libFuzzer reads explicitly, or it fuzzes blind.
flags=(-Xswiftc -sanitize=fuzzer -Xswiftc -sanitize=address -Xswiftc -enable-testing
       -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp)

swift build --build-path "$build" --target Monitor "${flags[@]}"
debug=$(swift build --build-path "$build" --target Monitor "${flags[@]}" --show-bin-path)

# link TARGET "SOURCES" MODULE...: the target's sources over those modules' objects.
link() {
    local target=$1 sources=$2; shift 2
    local objects=()
    for module in "$@"; do
        for object in "$debug/$module.build"/*.o; do objects+=("$object"); done
    done
    swiftc -sanitize=fuzzer,address -parse-as-library -g \
        -I "$debug/Modules" -I "$debug" -Xcc -fmodule-map-file="$debug/CKVM.build/module.modulemap" \
        -Xcc -fmodule-map-file="$debug/CSystemSupport.build/module.modulemap" \
        -I Sources/CKVM/include -I Sources/CSystemSupport/include \
        -Xcc -fmodule-map-file=Sources/CReadline/module.modulemap -Xcc -fmodule-map-file=Sources/COpenSSL/module.modulemap \
        -Xcc -fmodule-map-file=Sources/CZstd/module.modulemap -Xcc -fmodule-map-file=Sources/CXXHash/module.modulemap \
        $sources "${objects[@]}" -lreadline -lssl -lcrypto -lzstd -lxxhash -o "$build/$target-fuzzer" \
        2> >(grep -v "Cannot export local symbol" >&2)
}
below_monitor=(CKVM CSystemSupport SystemSupport KVM Devices Machine Units Sockets TLS Migration)
link stream "fuzz/Stream/*.swift fuzz/Common/FuzzMachine.swift" "${below_monitor[@]}"
link qmp "fuzz/QMP/*.swift fuzz/Common/*.swift" "${below_monitor[@]}" Monitor
link monitor "fuzz/Monitor/*.swift fuzz/Common/*.swift" "${below_monitor[@]}" Monitor

# Swift's own crash backtracer trips AddressSanitizer; libFuzzer prints the stack instead.
export SWIFT_BACKTRACE=enable=no
# Each input builds a fresh MigrationController, whose QMP event observer refers back to it:
# a cycle the process (one controller, for its lifetime) never frees either, not a finding.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
# dict: words a mutator would hardly guess (command names, JSON members).
dict() { [ -f "$root/fuzz/dict/$1.dict" ] && echo "-dict=$root/fuzz/dict/$1.dict"; true; }
# Timeouts: an input takes milliseconds, so 10 s (long runs) or 60 s (check, which must not
# fail a test run on a loaded machine) catches real hangs. A long run at low priority on a
# busy machine can still report timeouts that do not reproduce: replay them alone.
common=(-max_len=262144 -rss_limit_mb=2048 -malloc_limit_mb=512 -detect_leaks=0 -print_final_stats=1)
corpus() {
    local folder=$root/fuzz/corpus/$1
    mkdir -p "$folder"
    if [ "$1" = stream ] && [ -z "$(ls -A "$folder")" ]; then
        SWIFTKVM_FUZZ_WRITE_SEEDS="$folder" "$root/$build/stream-fuzzer"
    fi
    echo "$folder"
}

[ "${FUZZ_BUILD_ONLY:-}" ] && exit 0
if [ "$mode" = check ]; then
    seconds=${2:-10}
    for target in "${targets[@]}"; do
        # Grown inputs go to a scratch folder; the committed corpus is only read.
        work=$(mktemp -d "/tmp/swiftkvm-fuzz-$target.XXXXXX")
        mkdir "$work/grown" "$work/findings"
        if ! (cd "$work" && "$root/$build/$target-fuzzer" grown "$(corpus "$target")" -max_total_time="$seconds" \
                -artifact_prefix="$work/findings/" -timeout=60 $(dict "$target") "${common[@]}" > "$work/log" 2>&1); then
            tail -n 60 "$work/log" >&2
            echo "fuzz $target: finding kept in $work/findings (once fixed, copy it into fuzz/corpus/$target)" >&2
            exit 1
        fi
        echo "fuzz $target: ${seconds}s, $(grep -oE "number_of_executed_units: [0-9]+" "$work/log" | grep -oE "[0-9]+") inputs, no findings"
        rm -rf "$work"
    done
    exit 0
fi

case " ${targets[*]} " in *" $mode "*) ;; *) echo "unknown fuzz target: $mode" >&2; exit 2 ;; esac
seconds=${2:-60}
work=$root/$build/corpus/$mode
findings=$root/fuzz/findings/$mode
mkdir -p "$work" "$findings"
cd "$build"
# -fork=1: one worker process (one core) that restarts after a finding and keeps going.
exec "$root/$build/$mode-fuzzer" "$work" "$(corpus "$mode")" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -artifact_prefix="$findings/" -timeout=10 $(dict "$mode") "${common[@]}"
