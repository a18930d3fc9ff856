#!/usr/bin/env python3
"""Postcopy benchmark: swiftkvm versus QEMU on loopback, same guest, same run.

The dirty guest (150M, rewriting 96 MiB forever, dirty.elf every=64) never converges at the
default max-bandwidth of 128 MiB/s. Both sides get `migrate_set_capability postcopy-ram on`
(and postcopy-blocktime on the destination); the source runs `migrate -d`, and
`migrate_start_postcopy` DELAY seconds later (default 1.0: pass 1 is about half sent).
Figures: the source's `total time` and `downtime`, its `postcopy request count`; per-fault
latency (from a fault on a missing page to the page in place) as median and 99th percentile:
swiftkvm prints it in the destination's `info migrate` (`postcopy page faults:`); for QEMU it
comes from its trace events, `postcopy_ram_fault_thread_request` (the fault thread saw the
fault) to `postcopy_place_page` of the same host address, with the log backend's
microsecond timestamps (`-msg timestamp=on`). The destination's sweeps/s in the 2 s right after the switchover
(dirty.elf's `sweep N` lines every 64 sweeps) are reported too.

Usage: python3 bench/postcopy.py [--reps 3] [--delay 1.0] [--vmms swiftkvm,qemu]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402

DEBUG_EXIT = "isa-debug-exit,iobase=0xf4,iosize=0x04"
APPEND = "base=4M size=96M every=64"


def argv(vmm, swiftkvm, monitor, port=None, trace=None):
    common = ["-m", "150M", "-kernel", b.guest("dirty.elf"), "-append", APPEND, "-device", DEBUG_EXIT,
              "-monitor", f"unix:{monitor},server,nowait", "-serial", "stdio"]
    if port is not None:
        common += ["-incoming", f"tcp:127.0.0.1:{port}"]
    if vmm == "swiftkvm":
        return [swiftkvm] + common
    extra = []
    if trace is not None:
        extra = ["-trace", "enable=postcopy_ram_fault_thread_request", "-trace", "enable=postcopy_place_page",
                 "-D", trace, "-msg", "timestamp=on"]
    return [b.QEMU, "-enable-kvm", "-display", "none", "-no-reboot"] + extra + common


def info(monitor):
    out = {}
    for line in monitor.command("info migrate"):
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out


def number(text):
    m = re.match(r"\s*(-?[0-9]+(?:\.[0-9]+)?)", text or "")
    return float(m.group(1)) if m else None


def qemu_fault_latencies(path):
    """Microseconds from each fault request to the placement of the same host page."""
    requested, latencies = {}, []
    line_re = re.compile(r"^\d+@(\d+)\.(\d+):(\w+) (.*)$")
    try:
        with open(path) as f:
            for line in f:
                m = line_re.match(line.strip())
                if not m:
                    continue
                when = int(m.group(1)) * 1_000_000 + int(m.group(2))
                name, args = m.group(3), m.group(4)
                if name == "postcopy_ram_fault_thread_request":
                    a = re.search(r"0x([0-9a-f]+)", args)
                    if a:
                        requested.setdefault(int(a.group(1), 16) & ~0xfff, when)
                elif name == "postcopy_place_page":
                    a = re.search(r"0x([0-9a-f]+)", args)
                    if a:
                        since = requested.pop(int(a.group(1), 16) & ~0xfff, None)
                        if since is not None:
                            latencies.append(when - since)
    except FileNotFoundError:
        pass
    return latencies


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] if ordered else None


def once(vmm, swiftkvm, delay, log):
    tmp = tempfile.mkdtemp(prefix=f"postcopy-{vmm}-", dir="/tmp")
    src_sock, dst_sock, trace = (os.path.join(tmp, n) for n in ("src.sock", "dst.sock", "dst.trace"))
    port = b.free_port()
    try:
        with b.Processes() as procs:
            dst = procs.start(argv(vmm, swiftkvm, dst_sock, port, trace), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            src = procs.start(argv(vmm, swiftkvm, src_sock), stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            src_console, dst_console = b.Console(src.stdout), b.Console(dst.stdout)
            src_err, dst_err = b.Console(src.stderr), b.Console(dst.stderr)
            index = 0
            for _ in range(4):
                found = src_console.wait_for(r"^sweep \d+", 180, index)
                if found is None:
                    return {"error": "guest not ready: " + src_console.tail(3)}
                index = found[2] + 1
            dst_mon = b.Monitor(dst_sock, alive=lambda: dst.poll() is None)
            src_mon = b.Monitor(src_sock, alive=lambda: src.poll() is None)
            for mon in (src_mon, dst_mon):
                out = mon.command("migrate_set_capability postcopy-ram on")
                if out:
                    return {"error": "postcopy-ram refused: " + " / ".join(out)}
            dst_mon.command("migrate_set_capability postcopy-blocktime on")
            time.sleep(1.0)
            t_start = time.monotonic()
            out = src_mon.command(f"migrate -d tcp:127.0.0.1:{port}")
            if out:
                return {"error": "migrate refused: " + " / ".join(out)}
            time.sleep(delay)
            out = src_mon.command("migrate_start_postcopy")
            if out:
                return {"error": "migrate_start_postcopy refused: " + " / ".join(out)}
            t_switch = time.monotonic()
            while True:
                src_info = info(src_mon)
                status = src_info.get("Migration status", "")
                if status.startswith(("completed", "failed", "cancelled")):
                    break
                if time.monotonic() - t_start > 300:
                    return {"error": f"still {status} after 300 s; source: {src_err.tail(4)}; "
                                     f"destination: {dst_err.tail(4)} / {' | '.join(info(dst_mon).get(k, '') for k in ('Migration status',))}"}
                time.sleep(0.02)
            if not status.startswith("completed"):
                return {"error": f"ended {status}", "info": src_info}
            time.sleep(2.5)
            dst_info = info(dst_mon)
            result = {"total_ms": number(src_info.get("total time")), "downtime_ms": number(src_info.get("downtime")),
                      "requests": number(src_info.get("postcopy request count")),
                      "postcopy_kib": number(src_info.get("postcopy ram")),
                      "blocktime_ms": number(dst_info.get("postcopy blocktime"))}
            if vmm == "swiftkvm":
                faults = dst_info.get("postcopy page faults", "")
                m = re.match(r"(\d+), wait median (\d+) us, p99 (\d+) us", faults)
                if m:
                    result.update(faults=int(m.group(1)), median_us=int(m.group(2)), p99_us=int(m.group(3)))
            else:
                src_mon.close(); dst_mon.command("stop")
                latencies = qemu_fault_latencies(trace)
                result.update(faults=len(latencies), median_us=percentile(latencies, 0.5),
                              p99_us=percentile(latencies, 0.99))
            markers = [(when, int(re.match(r"^sweep (\d+)", text).group(1)))
                       for when, text in dst_console.snapshot() if re.match(r"^sweep \d+", text)]
            after = [m for m in markers if m[0] <= (markers[0][0] + 2.0 if markers else 0)]
            if len(after) >= 2 and after[-1][0] > after[0][0]:
                result["sweeps_per_s_after"] = (after[-1][1] - after[0][1]) / (after[-1][0] - after[0][0])
            for console in (src_console, dst_console):
                if console.wait_for("MISMATCH", 0.0):
                    result["error"] = "guest found corrupt memory"
            return result
    except b.MonitorError as error:
        return {"error": str(error)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--delay", type=float, default=1.0, help="seconds from migrate to migrate_start_postcopy")
    parser.add_argument("--vmms", default="swiftkvm,qemu")
    args = parser.parse_args()
    vmms = args.vmms.split(",")
    b.require(tools=(b.QEMU,) if "qemu" in vmms else (), guests=("dirty.elf",))
    swiftkvm = b.ensure_swiftkvm()
    results = {vmm: [] for vmm in vmms}
    for rep in range(args.reps):
        for vmm in vmms:
            r = once(vmm, swiftkvm, args.delay, print)
            print(f"rep {rep + 1} {vmm}: {r}", flush=True)
            results[vmm].append(r)
    keys = ["total_ms", "downtime_ms", "requests", "faults", "median_us", "p99_us", "blocktime_ms", "sweeps_per_s_after"]
    print("\n| figure | " + " | ".join(vmms) + " |")
    print("| --- |" + " --- |" * len(vmms))
    for key in keys:
        cells = []
        for vmm in vmms:
            values = [r[key] for r in results[vmm] if "error" not in r and r.get(key) is not None]
            cells.append(f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})" if values else "-")
        print(f"| {key} | " + " | ".join(cells) + " |")
    failures = {vmm: [r["error"] for r in results[vmm] if "error" in r] for vmm in vmms}
    print("failures:", failures)


if __name__ == "__main__":
    main()
