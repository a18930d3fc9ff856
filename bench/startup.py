#!/usr/bin/env python3
"""Start-up benchmark: time from process start to the guest's first serial byte, and the VMM's
resident memory beyond guest RAM, for swiftkvm and QEMU on guests/build/hello.elf (128 MiB).

Usage: python3 bench/startup.py [--runs 15] [--settle 1.0] [--no-write]
Writes bench/results/startup-<date>.md. See bench/README.md."""

import argparse
import os
import select
import subprocess
import sys
import time

import benchlib as b

RAM = "128M"
RAM_BYTES = 128 << 20


def command_line(vmm, swiftkvm_path, ram=RAM, kernel="hello.elf"):
    if vmm == "swiftkvm":
        return [swiftkvm_path, "-m", ram, "-monitor", "none", "-serial", "stdio", "-kernel", b.guest(kernel)]
    return [b.QEMU, "-enable-kvm", "-m", ram, "-display", "none", "-monitor", "none",
            "-serial", "stdio", "-kernel", b.guest(kernel)]


def measure_startup(vmm, swiftkvm_path, settle=1.0, ram=RAM, ram_bytes=RAM_BYTES, timeout=120.0):
    """One run: {'first_byte_ms', 'VmRSS', 'RssAnon', 'RssFile', 'guest_ram', 'overhead'} (KiB),
    memory read `settle` seconds after the first byte. Raises RuntimeError when no byte comes."""
    argv = command_line(vmm, swiftkvm_path, ram)
    with b.Processes() as procs:
        start = time.perf_counter_ns()
        proc = procs.start(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        first = os.read(proc.stdout.fileno(), 1) if ready else b""
        elapsed_ns = time.perf_counter_ns() - start
        if not first:
            raise RuntimeError(f"{vmm}: no serial output within {timeout:.0f} s (exit status {proc.poll()}): {' '.join(argv)}")
        # Keep the pipe drained so the guest never blocks on a full pipe while we wait.
        deadline = time.monotonic() + settle
        while (remaining := deadline - time.monotonic()) > 0:
            if select.select([proc.stdout], [], [], remaining)[0]:
                if not os.read(proc.stdout.fileno(), 65536):
                    break
        if proc.poll() is not None:
            raise RuntimeError(f"{vmm}: exited with status {proc.returncode} before its memory was read")
        figures = b.proc_status(proc.pid)
        figures["guest_ram"] = b.guest_ram_resident_kib(proc.pid, ram_bytes)
        figures["overhead"] = figures["VmRSS"] - figures["guest_ram"]
        figures["first_byte_ms"] = elapsed_ns / 1e6
        return figures


def run_alternating(runs, swiftkvm_path, settle, log=print):
    results = {"swiftkvm": [], "qemu": []}
    for i in range(runs):
        # Alternate which VMM goes first so that drift on a shared host hits both alike.
        order = ("swiftkvm", "qemu") if i % 2 == 0 else ("qemu", "swiftkvm")
        for vmm in order:
            r = measure_startup(vmm, swiftkvm_path, settle)
            results[vmm].append(r)
            log(f"run {i + 1:2}/{runs} {vmm:8}: first byte {r['first_byte_ms']:9.1f} ms, VmRSS {r['VmRSS']} KiB "
                f"(RssAnon {r['RssAnon']}, RssFile {r['RssFile']}, guest RAM resident {r['guest_ram']})")
    return results


def report(results, runs, settle):
    def col(vmm, key):
        return [r[key] for r in results[vmm]]

    rows = [
        ("first serial byte", "first_byte_ms", " ms", 1),
        ("VmRSS", "VmRSS", " KiB", 0),
        ("RssAnon", "RssAnon", " KiB", 0),
        ("RssFile", "RssFile", " KiB", 0),
        ("guest RAM resident (smaps)", "guest_ram", " KiB", 0),
        ("VmRSS beyond guest RAM", "overhead", " KiB", 0),
    ]
    lines = [
        f"# Start-up: swiftkvm vs QEMU ({b.today()})",
        "",
        f"- Guest: `guests/build/hello.elf`, {RAM} RAM; {runs} runs per VMM, alternated; "
        f"memory read {settle:.1f} s after the first byte.",
        f"- swiftkvm: `{' '.join(command_line('swiftkvm', '.build/release/swiftkvm'))}` (release build, {b.git_revision()})",
        f"- QEMU: `{' '.join(command_line('qemu', ''))}` ({b.qemu_version()})",
        f"- Host: {b.host_description()}",
        "",
        "Median (min-max) over the runs.",
        "",
        "| figure | swiftkvm | QEMU | swiftkvm/QEMU |",
        "| --- | --- | --- | --- |",
    ]
    for label, key, unit, digits in rows:
        lines.append(f"| {label} | {b.fmt_summary(col('swiftkvm', key), unit, digits)} | "
                     f"{b.fmt_summary(col('qemu', key), unit, digits)} | {b.ratio(col('swiftkvm', key), col('qemu', key))} |")
    lines += [
        "",
        "How it is measured:",
        "- First byte: `time.perf_counter_ns()` just before `subprocess.Popen`, again when the first byte",
        "  of the guest's serial output is read from the VMM's stdout pipe. It includes exec, dynamic",
        "  linking, VM set-up, loading the ELF and the guest's own boot (~600 emulated instructions). QEMU",
        "  also runs SeaBIOS before the PVH entry, which under the PVM backend is emulated instruction by",
        "  instruction; that is most of QEMU's time here, and it would be far shorter on VMX/SVM hardware.",
        "- Memory: `/proc/PID/status` (VmRSS = RssAnon + RssFile + RssShmem). RssFile is mostly shared",
        "  libraries and the executable (pages shared with other processes count in full).",
        "- Guest RAM actually touched is the resident size of the guest-RAM mapping in `/proc/PID/smaps`",
        "  (the private anonymous rw mapping of at least 3/4 of the RAM size). hello.elf touches very",
        "  little (page tables, stack, a transparent huge page or two), so 'VmRSS beyond guest RAM' is",
        "  nearly all of VmRSS: it is the VMM's own cost (code, libraries, heap, thread stacks, and for",
        "  QEMU its BIOS/option ROM copies and device models).",
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="runs per VMM (default 15)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds after the first byte to read memory (default 1)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results")
    args = parser.parse_args()
    b.stop_children_on_sigterm()

    b.require(tools=(b.QEMU,), guests=("hello.elf",))
    swiftkvm_path = b.ensure_swiftkvm()
    try:
        results = run_alternating(args.runs, swiftkvm_path, args.settle)
    except RuntimeError as error:
        print(f"startup benchmark failed: {error}", file=sys.stderr)
        return 1
    text = report(results, args.runs, args.settle)
    print()
    print(text)
    if not args.no_write:
        os.makedirs(b.RESULTS, exist_ok=True)
        path = os.path.join(b.RESULTS, f"startup-{b.today()}.md")
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {os.path.relpath(path, b.REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
