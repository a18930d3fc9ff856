#!/usr/bin/env python3
"""Linux guest benchmark: swiftkvm versus QEMU 7.2 on a real (SVM) KVM, side by side.

Our machines' KVM is PVM, which runs no stock Linux kernel, so this runs where LinuxGuestTests
does: in the emulated SVM host (scripts/emulated-host: QEMU TCG with nested SVM, the real kvm_amd
inside). One L1 image holds both VMMs (the release swiftkvm and the machine's own Debian
qemu-system-x86_64 with its libraries and firmware); L1 boots once, and its driver's bench step
(tests/linux-host/driver) runs, for each round and each VMM in turn (the order reversed every
other round), the same Linux guest (Debian's kernel, the test's initramfs, 2 vCPUs, 256 MiB;
QEMU with -enable-kvm -cpu host):
  boot       launch (-S) to the guest's "guest-init: ready" line on its serial console
  migration  of the working guest (memcheck rewriting 4 MiB a second) to a second process of the
             same VMM over loopback inside L1: the source's own `info migrate` total time and
             downtime, and the guest-visible pause, the largest gap in the guest's CLOCK_MONOTONIC
             (read every 10 ms by clockgap) between the clock marks around the migration

Usage: python3 bench/linux.py [--reps 2] [--vmms swiftkvm,qemu] [--guest-kernel vmlinuz-cloud]
                              [--swiftkvm BIN] [--timeout S] [--keep] [--no-write]
Run it under `nice -n 10`: TCG takes every core it gets.
Writes bench/results/<date>-linux/results.md and results.json. See bench/README.md."""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import benchlib as b

EMULATED_HOST = os.path.join(b.REPO, "scripts", "emulated-host")
VMMS = ("swiftkvm", "qemu")
CONSOLE_GAP_MS = 30  # the driver's clockgap prints gaps over this on the console
SMP = 2

# (result field, label, unit, digits, goal: the most swiftkvm/QEMU may be, or None)
FIGURES = [
    ("boot-s", "boot: launch to the guest's shell (ready line)", " s", 2, 0.5),
    ("start-s", "  of which launch to the VMM's console line (-S)", " s", 2, None),
    ("wire-s", "  of which the driver wiring the console, VM paused", " s", 2, None),
    ("before-kernel-s", "  of which `cont` to the guest kernel's clock start (firmware, loading, decompression)", " s", 2, None),
    ("guest-uptime-s", "  of which the guest's own uptime at the ready line (kernel and init)", " s", 2, None),
    ("smp-up-s", "    guest clock at `smp: Brought up N nodes, N CPUs`", " s", 2, None),
    ("initramfs-s", "    guest clock at `Freeing initrd memory` (initramfs unpacked)", " s", 2, None),
    ("run-init-s", "    guest clock at `Run /init` (kernel init done)", " s", 2, None),
    ("migrate-total-ms", "migration: total time (info migrate)", " ms", 0, 1.0),
    ("migrate-downtime-ms", "migration: downtime (info migrate)", " ms", 0, 1.0),
    ("pause-ms", "guest-visible pause: its clock's gap at the switchover", " ms", 0, 1.0),
    ("max-gap-ms", "  largest gap in its clock during the whole migration", " ms", 0, None),
    ("quiet-gap-ms", "  largest gap in its clock in the seconds before `migrate` (noise; the destination starting)", " ms", 0, None),
    ("clock-behind-s", "  guest's clock behind L1's after the migration", " s", 2, None),
    ("migrate-setup-ms", "  setup (info migrate)", " ms", 0, None),
    ("migrate-transferred-kbytes", "  transferred ram", " kbytes", 0, None),
    ("migrate-throughput-mbps", "  throughput", " mbps", 1, None),
    ("migrate-dirty-syncs", "  passes (dirty sync count)", "", 0, None),
]


def number(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def parse_console(lines):
    """The driver's `@@ result NAME VALUE` lines as a dict, and its `@@ step` lines."""
    results, steps = {}, []
    for line in lines:
        line = line.rstrip("\r\n")
        if line.startswith("@@ result "):
            name, _, value = line[len("@@ result "):].partition(" ")
            results[name] = value
        elif line.startswith("@@ step "):
            steps.append(line[len("@@ step "):])
    return results, steps


def runs_from(results, reps, vmms):
    """One dict per VMM and round, with the figures above, or 'error'."""
    runs = {vmm: [] for vmm in vmms}
    for vmm in vmms:
        for rnd in range(1, reps + 1):
            prefix = f"bench-{vmm}-{rnd}-"
            mine = {k[len(prefix):]: v for k, v in results.items() if k.startswith(prefix)}
            run = {"round": rnd}
            for key in ("boot-s", "start-s", "wire-s", "guest-uptime-s", "pause-ms", "pause-at-s", "max-gap-ms", "max-gap-at-s"):
                run[key] = number(mine.get(key))
            if mine.get("pause-ms") == f"none-over-{CONSOLE_GAP_MS}":
                # No gap over the console threshold: counted as the threshold, the most it can have been.
                run["pause-ms"], run["pause-bound"] = float(CONSOLE_GAP_MS), True
            for key, value in mine.items():
                if key.startswith("migrate-") and not key.startswith(("migrate-before", "migrate-after")):
                    run[key] = number(value)
            parts = [run[k] for k in ("boot-s", "start-s", "wire-s", "guest-uptime-s")]
            if None not in parts:
                run["before-kernel-s"] = parts[0] - parts[1] - parts[2] - parts[3]
            marks = [number(mine.get(f"migrate-{when}-{clock}")) for when in ("before", "after") for clock in ("guest", "host")]
            if None not in marks:
                guest_before, host_before, guest_after, host_after = marks
                run["clock-behind-s"] = (host_after - host_before) - (guest_after - guest_before)
            if "error" in mine:
                run["error"] = mine["error"]
            elif run.get("boot-s") is None or run.get("migrate-total-ms") is None:
                run["error"] = "the run reported no figures (L1 cut short?)"
            runs[vmm].append(run)
    return runs


def memcheck_problem(outputs, vmm, rnd):
    """The workload's check after the migration: 'errors 0' and no mismatch line, else why not."""
    out = outputs.get(f"bench-{vmm}-{rnd}-memcheck")
    if out is None:
        return "no memcheck output after the migration"
    lines = [l for l in out if not l.startswith("@@ status")]
    if len(lines) < 2 or " errors 0 " not in lines[0] or lines[1].strip() != "0":
        return f"memcheck after the migration: {' / '.join(lines)}"
    return None


def guest_outputs(lines):
    """`@@ out NAME` ... `@@ end NAME` blocks: what a guest command printed."""
    outputs, name = {}, None
    for line in lines:
        line = line.rstrip("\r\n")
        if line.startswith("@@ out "):
            name = line[len("@@ out "):]
            outputs[name] = []
        elif line.startswith("@@ end "):
            name = None
        elif name is not None and not line.startswith("@@ live "):
            outputs[name].append(line)
    return outputs


# The kernel log lines of the bench's milestones output, and the figure each gives.
MILESTONES = [("Brought up", "smp-up-s"), ("Freeing initrd memory", "initramfs-s"), ("Run /init", "run-init-s")]
TIMESTAMP = re.compile(r"^\[\s*([0-9]+\.[0-9]+)\]")


def milestones(lines):
    found = {}
    for line in lines or []:
        m = TIMESTAMP.match(line)
        if m:
            for text, key in MILESTONES:
                if text in line and key not in found:
                    found[key] = float(m.group(1))
    return found


LIVE_GAP = re.compile(r"^@@ live console-(\d+): .*clockgap: gap_ms ([0-9.]+) at_s ([0-9.]+)")


def console_gaps(lines):
    """The clockgap lines of each guest console (by VMM id): [(gap ms, guest clock at its end)]."""
    gaps = {}
    for line in lines:
        m = LIVE_GAP.match(line)
        if m:
            gaps.setdefault(int(m.group(1)), []).append((float(m.group(2)), float(m.group(3))))
    return gaps


def run_order(lines):
    """(vmm, round) of each run in the order the driver ran them."""
    order = []
    for line in lines:
        m = re.match(r"^@@ bench bench-(swiftkvm|qemu)-(\d+): boot", line)
        if m:
            order.append((m.group(1), int(m.group(2))))
    return order


def values(runs, key):
    return [r.get(key) for r in runs if "error" not in r]


def verdict(ratio_text, goal):
    if goal is None:
        return ""
    try:
        return "met" if float(ratio_text) <= goal else "NOT met"
    except ValueError:
        return "n/a"


def markdown(args, runs, results, host_boot_s, meta):
    columns = [v for v in VMMS if v in args.vmms]
    both = "swiftkvm" in columns and "qemu" in columns
    title = {"swiftkvm": "swiftkvm", "qemu": "QEMU"}
    lines = [
        f"# Linux guest in the emulated SVM host: swiftkvm vs QEMU ({b.today()})",
        "",
        f"- swiftkvm: release build (`--static-swift-stdlib`) at {meta['revision']}; QEMU: {meta['qemu']},"
        " the machine's own binary with its libraries and firmware, in the same L1 image",
        f"- Machine: {meta['host']}",
        "- L1 (the emulated host): `qemu-system-x86_64 -accel tcg,thread=multi -cpu max,-xsave -smp 2 -m 4G`,"
        f" Debian's cloud kernel with kvm_amd (nested SVM, NPT); booted once, in {host_boot_s or 'n/a'} s;"
        f" the whole L1 run {meta['l1_wall_s'] or 0:.0f} s",
        f"- Guest: `{meta['guest_kernel']}` (scripts/linux-assets; `-kernel`), the tests' busybox initramfs"
        f" (`-initrd`), `-append \"console=ttyS0 quiet\"`, `-smp {SMP} -m 256M`; QEMU adds"
        " `-enable-kvm -cpu host -display none -vga none -nic none` (SeaBIOS, then linuxboot_dma.bin)",
        f"- {args.reps} round(s), each VMM once per round, the order reversed every other round."
        " Median (min-max) over successful runs; the ratio is of the medians, swiftkvm/QEMU.",
        "",
        "| figure | " + " | ".join(title[v] for v in columns) + (" | swiftkvm/QEMU | goal |" if both else " |"),
        "| --- |" + " --- |" * len(columns) + (" --- | --- |" if both else ""),
    ]
    for key, label, unit, digits, goal in FIGURES:
        row = f"| {label} | " + " | ".join(b.fmt_summary(values(runs[v], key), unit, digits) for v in columns)
        if both:
            r = b.ratio(values(runs["swiftkvm"], key), values(runs["qemu"], key))
            row += f" | {r} | " + (f"<= {goal:g}: {verdict(r, goal)}" if goal is not None else "")
        lines.append(row + " |")
    for vmm in columns:
        for run in runs[vmm]:
            if "error" in run:
                lines.append(f"\n{vmm} round {run['round']} failed: {run['error']}")
    lines += [
        "",
        "How it is measured (tests/linux-host/driver, step bench; L1's /proc/uptime for L1's times):",
        "- Boot: from launching the VMM (with `-S` and its COM1 on a pty) to the guest's",
        "  `guest-init: ready` line on the console (busybox init's rcS, just before the shell; polled",
        "  every 0.1 s). It includes the driver's own work wiring up the console between the VMM's",
        "  `char device redirected to /dev/pts/N` line and `cont` (the VM waits; the VMM may still be",
        "  setting up), the same for both. QEMU runs SeaBIOS and its",
        "  linuxboot_dma option ROM, which enter the bzImage's 16-bit setup code; swiftkvm loads the",
        "  bzImage itself and enters its 64-bit entry point (as Firecracker does). The guest's uptime",
        "  in its ready line is its own clock: kernel and init; the rest came before that clock started.",
        "- Migration: `migrate -d tcp:127.0.0.1:PORT` at the source's monitor to a second process of the",
        "  same VMM (`-incoming`), both VMMs with their default parameters (the same for both: max-bandwidth",
        "  128 MiB/s, downtime-limit 300 ms), memcheck rewriting and checking 4 MiB once a second;",
        "  `info migrate` polled every 0.5 s, the figures the source's own. memcheck found no error after",
        "  each counted migration.",
        "- Guest-visible pause: clockgap in the guest reads CLOCK_MONOTONIC every 10 ms and prints each",
        "  gap over 30 ms on the console; the pause is the first such gap on the destination's console",
        "  (the one the switchover made; a run with none counts 30 ms). It includes the 10 ms interval.",
        "  The largest gap: over the whole migration, from clockgap's log (gaps over 15 ms) between the",
        "  guest's clock marks just before `migrate` and just after the destination took over.",
        "  The noise: the largest gap on the source's console between clockgap's start and that first mark",
        "  (memcheck runs, and the destination process starts, meanwhile).",
        "  'Behind L1's': how much less the guest's clock moved than L1's between those marks (each",
        "  mark known within half a console round trip).",
        "- Everything runs in TCG-emulated L1 on 2 shared cores: absolute times are many times those",
        "  of hardware; compare the two VMMs within one run.",
        "",
    ]
    return "\n".join(lines)


def run_l1(args, folder):
    """Builds the image in `folder` and boots L1; (console lines, L1's status, wall seconds), or
    None when the build failed. Notes what the figures will need in folder/bench-meta.json."""
    build = [EMULATED_HOST, "build", folder, "--guest-kernel", args.guest_kernel, "--smp", str(SMP),
             "--steps", "kvm bench", "--bench", "--bench-reps", str(args.reps), "--bench-vmms", " ".join(args.vmms)]
    if args.swiftkvm:
        build += ["--swiftkvm", os.path.abspath(args.swiftkvm)]
    print("building L1's image:", " ".join(build[1:]), flush=True)
    with open(os.path.join(folder, "build.log"), "w") as log:
        if subprocess.run(build, stdout=log, stderr=subprocess.STDOUT).returncode != 0:
            with open(os.path.join(folder, "build.log")) as f:
                print(f.read()[-3000:], file=sys.stderr)
            print("scripts/emulated-host build failed", file=sys.stderr)
            return None
    timeout = args.timeout or 600 + 900 * args.reps
    started = time.monotonic()
    console = []
    with b.Processes() as procs:
        l1 = procs.start([EMULATED_HOST, "run", folder, "--timeout", str(timeout)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         errors="replace")
        for line in l1.stdout:
            console.append(line)
            if line.startswith(("@@ step", "@@ bench", "@@ result bench-", "@@ result host-boot-wall")):
                print(line.rstrip(), flush=True)
        status = l1.wait()
    wall = time.monotonic() - started
    if status != 0:
        print(f"L1 ended with status {status} (124: it ran past {timeout} s)", file=sys.stderr)
    meta = {"revision": b.git_revision(), "qemu": b.qemu_version(), "host": b.host_description(), "date": b.today(),
            "guest_kernel": args.guest_kernel, "l1_status": status, "l1_wall_s": wall}
    with open(os.path.join(folder, "bench-meta.json"), "w") as f:
        json.dump(meta, f, indent=1)
    return console, meta


def rounds_in(results):
    """The VMMs and number of rounds a console reports (for --from-folder)."""
    found = {}
    for name in results:
        m = re.match(r"^bench-(swiftkvm|qemu)-(\d+)-", name)
        if m:
            found[m.group(1)] = max(found.get(m.group(1), 0), int(m.group(2)))
    return [v for v in VMMS if v in found], max(found.values(), default=0)


def analyse(args, console, meta):
    """The runs' figures from L1's console, the table printed, the files written; exit status."""
    results, steps = parse_console(console)
    outputs = guest_outputs(console)
    gaps = console_gaps(console)
    runs = runs_from(results, args.reps, args.vmms)
    for index, (vmm, rnd) in enumerate(run_order(console)):
        if vmm not in runs or rnd > len(runs[vmm]):
            continue
        run = runs[vmm][rnd - 1]
        problem = memcheck_problem(outputs, vmm, rnd)
        run["memcheck"] = outputs.get(f"bench-{vmm}-{rnd}-memcheck")
        run.update(milestones(outputs.get(f"bench-{vmm}-{rnd}-milestones")))
        # Each run's source and destination are the driver's next two VMM ids, 1 and 2 first.
        source = gaps.get(2 * index + 1, [])
        before = number(results.get(f"bench-{vmm}-{rnd}-migrate-before-guest"))
        quiet = [gap for gap, at in source if before is not None and at <= before]
        run["quiet-gap-ms"] = max(quiet) if quiet else None
        if "error" not in run and problem:
            run["error"] = problem
    text = markdown(args, runs, results, results.get("host-boot-wall"), meta)
    print()
    print(text)
    if not args.no_write:
        out = os.path.join(b.RESULTS, meta.get("date", b.today()) + "-linux")
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "results.md"), "w") as f:
            f.write(text)
        with open(os.path.join(out, "results.json"), "w") as f:
            json.dump(dict(meta, reps=args.reps, vmms=args.vmms, smp=SMP,
                           l1_boot_s=number(results.get("host-boot-wall")), steps=steps, runs=runs), f, indent=1)
        print(f"wrote {os.path.relpath(os.path.join(out, 'results.md'), b.REPO)}")
    ok = meta.get("l1_status") == 0 and all("error" not in r for v in runs.values() for r in v)
    return 0 if ok else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=2, help="rounds, each VMM once per round (default 2)")
    parser.add_argument("--vmms", default="swiftkvm,qemu", help="which VMMs to run (default swiftkvm,qemu)")
    parser.add_argument("--guest-kernel", default="vmlinuz-cloud",
                        help="a scripts/linux-assets kernel: vmlinuz-cloud (default) or vmlinuz-generic")
    parser.add_argument("--swiftkvm", help="the swiftkvm to put in L1 (default: scripts/emulated-host's release build)")
    parser.add_argument("--timeout", type=int, help="seconds L1 may run (default 600 + 900 per round)")
    parser.add_argument("--keep", action="store_true", help="keep the image folder (L1's console is in it)")
    parser.add_argument("--from-folder", metavar="DIR",
                        help="boot nothing: read the figures again from a folder a run kept (--keep)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results")
    args = parser.parse_args()
    b.stop_children_on_sigterm()
    args.vmms = [v.strip() for v in args.vmms.split(",") if v.strip()]
    if not args.vmms or any(v not in VMMS for v in args.vmms):
        parser.error("--vmms takes swiftkvm and/or qemu")
    if args.reps < 1:
        parser.error("--reps must be at least 1")

    if args.from_folder:
        with open(os.path.join(args.from_folder, "host-console.log"), errors="replace") as f:
            console = f.readlines()
        meta_path = os.path.join(args.from_folder, "bench-meta.json")
        meta = {"revision": "unknown", "qemu": b.qemu_version(), "host": b.host_description(),
                "guest_kernel": args.guest_kernel, "l1_status": None, "l1_wall_s": None}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta.update(json.load(f))
        args.vmms, args.reps = rounds_in(parse_console(console)[0])
        return analyse(args, console, meta)

    b.require(tools=(b.QEMU, "cpio", "gcc", "lz4"), kvm=False)
    folder = tempfile.mkdtemp(prefix="bench-linux-", dir="/tmp")
    status = 1
    try:
        ran = run_l1(args, folder)
        if ran is not None:
            status = analyse(args, *ran)
        return status
    finally:
        if args.keep or status != 0:
            print(f"image and L1's console kept in {folder} (host-console.log)")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
