#!/usr/bin/env bash
# Runs every guest under QEMU (KVM) and checks its console output and exit status.
# For people, not for `swift test`: it takes a few minutes (SeaBIOS alone boots slowly on the
# PVM host). Usage: guests/qemu-smoke.sh [IMAGE_DIR]   (default: guests/build)
set -u
images=${1:-$(dirname "$0")/build}
failures=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# run NAME SECONDS EXPECTED_STATUS QEMU-ARGS... : serial output goes to $work/NAME.out.
# EXPECTED_STATUS "running" means the guest must still be running when the time is up.
run() {
    local name=$1 seconds=$2 expected=$3
    shift 3
    timeout "$seconds" qemu-system-x86_64 -enable-kvm -display none -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 -serial "file:$work/$name.out" \
        -monitor none "$@" </dev/null >/dev/null 2>&1
    local status=$?
    [ "$expected" = running ] && expected=124
    if [ "$status" != "$expected" ]; then
        echo "FAIL $name: exit status $status, expected $expected"; failures=$((failures + 1))
    fi
}

# expect NAME TEXT: the guest's output contains TEXT.
expect() {
    if grep -aqF -- "$2" "$work/$1.out"; then
        echo "ok   $1: $2"
    else
        echo "FAIL $1: no \"$2\" in:"; tr -d '\r' <"$work/$1.out" | tail -5 | sed 's/^/       /'
        failures=$((failures + 1))
    fi
}

elf() { local name=$1 seconds=$2 status=$3 memory=$4 append=$5; shift 5
        run "$name" "$seconds" "$status" -m "$memory" -kernel "$images/${name%%-*}.elf" -append "$append" "$@"; }

elf hello 25 running 128M "x=1 y=two"
expect hello 'swiftkvm hello guest: 128 MiB RAM, cmdline "x=1 y=two"'
expect hello 'tick 3'

elf dirty 30 running 150M "base=4M size=96M every=64"
expect dirty 'dirty: base=0x400000 size=0x6000000 pages=24576 every=64'
expect dirty 'sweep 128'

elf dirty-done 30 running 150M "size=64M sweeps=3 every=1 fill=1"
expect dirty-done 'sweep 3'
expect dirty-done 'dirty: done 3 sweeps'

elf dirty-bad 25 5 150M "base=4M size=200M"
expect dirty-bad 'dirty: bad arguments: base+size lies outside RAM'

printf '\x2a\0\0\0\0\0\0\0' >"$work/corruption.bin"
elf dirty-corrupt 25 3 150M "base=4M size=96M" \
    -device "loader,file=$work/corruption.bin,addr=0x523000,force-raw=on"
expect dirty-corrupt 'dirty: MISMATCH at 0x523000: expected 0x0 found 0x2a'

for n in 1 4 8; do
    elf smp-$n 60 running 128M "size=8M sweeps=20 every=10" -smp $n   # SeaBIOS starts every CPU too: slow here
    expect smp-$n "smp: all $n cpus done"
done

# CPU 1 of 4 owns 0x600000..0x800000 of 8 MiB from 4 MiB: its check names it.
elf smp-corrupt 60 3 128M "size=8M" -smp 4 \
    -device "loader,file=$work/corruption.bin,addr=0x623000,force-raw=on"
expect smp-corrupt 'smp: cpu 1 MISMATCH at 0x623000: expected 0x0 found 0x2a'

elf faults-exit 25 85 128M "mode=exit code=42"
expect faults-exit 'faults: mode=exit'

elf faults-triple 25 0 128M "mode=triple"   # -no-reboot: QEMU exits 0 on the reset
expect faults-triple 'faults: triple fault now'

elf faults-flood 25 running 128M "mode=flood"
expect faults-flood 'flood 1000'

elf faults-ports 60 running 128M "mode=ports"
expect faults-ports 'faults: ports done'

elf faults-mmio 25 running 128M "mode=mmio"
expect faults-mmio 'faults: mmio pass 3'

elf faults-cli-spin 20 running 128M "mode=cli-spin"
expect faults-cli-spin 'faults: mode=cli-spin'

elf faults-panic 20 running 128M "mode=panic"
expect faults-panic 'faults: panic'

elf faults-bad 25 5 128M "mode=nonsense"
expect faults-bad 'faults: bad arguments: unknown mode'

run bootsector 30 running -m 32M -drive "file=$images/bootsector.img,format=raw"
expect bootsector 'swiftkvm boot sector: real mode, DL=0x80'

[ "$failures" = 0 ] && echo "all guests behave" || echo "$failures failures"
exit $((failures > 0))
