#!/usr/bin/env python3
"""Live-migration benchmark: swiftkvm versus QEMU, same guests, same link, same run.

For each scenario and VMM a source and a destination (-incoming tcp:HOST:PORT) are started,
the guest is let reach steady state, the source is told `migrate -d`, and `info migrate` is
polled until the migration ends. Reps alternate between the VMMs.

Scenarios:
  a    idle 1 GiB guest (hello.elf, -m 1G)
  b    1 GiB guest with 900 MiB of non-zero data, then idle (dirty.elf fill=1 sweeps=1)
  c    150 MiB guest dirtying 96 MiB forever (dirty.elf every=64); sweeps/s before and during
  d    a and b at 4 GiB and 8 GiB (b keeps 900 MiB of data); names a4g b4g a8g b8g; and at
       16 and 32 GiB by name only (a16g b16g a32g b32g: untouched RAM costs no host memory)
  e    start-up to the first serial byte (bench/startup.py's measurement)
  f    1 GiB guest, 896 MiB of random data, then an 8 MiB hot set swept forever (dirty.elf hot=8M)
  g    1 GiB guest holding 512 MiB of compressible data (files from /usr loaded as its -initrd)

TLS (--tls): also run each VMM with `-object tls-creds-x509` on both sides and `tls-creds` set
(certificates made once by the openssl command), as VMMs swiftkvm-tls and qemu-tls in the same
rotation, and report TLS throughput as a share of the same VMM's plain TCP.

Compression (--zstd): also run each VMM with multifd and multifd-compression zstd (level 1, the
default; QEMU with its default 2 channels) on both sides, as VMMs swiftkvm-zstd and qemu-zstd, and
report the compression figures of `info migrate`. Results then go to bench/results/<date>-zstd/<link>/.

Links (--link): loopback (default), or veth1g: one network namespace per VMM joined by a veth
pair shaped to 1 Gbit/s (bench/link.py). Every migration also reports the CPU seconds each
VMM spent outside its vCPU threads while it ran, and the bytes moved per such CPU-second.

Usage: python3 bench/migration.py [--scenarios a,b,c,d,e,f,g] [--reps 3] [--quick] [--vmms swiftkvm,qemu]
                                  [--link loopback|veth1g] [--baseline OLDER_SWIFTKVM_BINARY] [--tls] [--zstd]
Writes bench/results/<date>/results.md (+ results.json, + chart.png when matplotlib is present)."""

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
import link as links
import startup

DEBUG_EXIT = "isa-debug-exit,iobase=0xf4,iosize=0x04"
MIGRATION_TIMEOUT_S = 600
BOOT_TIMEOUT_S = 180


class Scenario:
    def __init__(self, name, title, ram, kernel, append, ready, ready_count=1, sweeps=False, initrd=None):
        self.name, self.title, self.ram, self.kernel, self.append = name, title, ram, kernel, append
        self.ready = ready              # console pattern that says the guest is in steady state
        self.ready_count = ready_count  # how many times it must have been seen
        self.sweeps = sweeps            # measure dirty.elf's sweep rate around the migration
        self.initrd = initrd            # a function returning the path of a file to load as -initrd


COMPRESSIBLE_BYTES = 512 << 20


def compressible_data():
    """512 MiB of real files (programs, libraries, documentation from /usr) in one file, made
    once and kept in /tmp: what a guest's page cache holds, which zstd shrinks about 3-4x."""
    path = f"/tmp/swiftkvm-bench-compressible-{COMPRESSIBLE_BYTES >> 20}M.img"
    if os.path.exists(path) and os.path.getsize(path) == COMPRESSIBLE_BYTES:
        return path
    with open(path + ".part", "wb") as out:
        tar = subprocess.Popen(["tar", "cf", "-", "--ignore-failed-read", "/usr/lib", "/usr/share", "/usr/bin"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        left = COMPRESSIBLE_BYTES
        while left:
            chunk = tar.stdout.read(min(left, 1 << 20))
            if not chunk:
                break
            out.write(chunk)
            left -= len(chunk)
        tar.kill()
        tar.wait()
    if left:
        raise SystemExit(f"could not gather {COMPRESSIBLE_BYTES >> 20} MiB of files from /usr for scenario g")
    os.rename(path + ".part", path)
    return path


def idle(name, ram):
    return Scenario(name, f"idle {ram} guest (hello.elf)", ram, "hello.elf", "", r"swiftkvm hello guest:")


def filled(name, ram):
    return Scenario(name, f"{ram} guest, 900 MiB non-zero data then idle (dirty.elf fill=1 sweeps=1)", ram,
                    "dirty.elf", "base=4M size=900M sweeps=1 fill=1", r"^dirty: done 1 sweeps")


SCENARIOS = {
    "a": idle("a", "1G"),
    "b": filled("b", "1G"),
    "c": Scenario("c", "150M guest dirtying 96 MiB forever (dirty.elf every=64)", "150M", "dirty.elf",
                  "base=4M size=96M every=64", r"^sweep \d+", ready_count=4, sweeps=True),
    "f": Scenario("f", "1G guest, 896 MiB random data, then an 8 MiB hot set swept forever (dirty.elf hot=8M)",
                  "1G", "dirty.elf", "base=4M size=896M sweeps=1 fill=1 hot=8M every=4", r"^sweep \d+",
                  ready_count=4, sweeps=True),
    "g": Scenario("g", "1G guest holding 512 MiB of compressible data (files from /usr as its -initrd), idle",
                  "1G", "hello.elf", "", r"swiftkvm hello guest:", initrd=compressible_data),
    "a4g": idle("a4g", "4G"),
    "b4g": filled("b4g", "4G"),
    "a8g": idle("a8g", "8G"),
    "b8g": filled("b8g", "8G"),
    "a16g": idle("a16g", "16G"),
    "b16g": filled("b16g", "16G"),
    "a32g": idle("a32g", "32G"),
    "b32g": filled("b32g", "32G"),
}
GROUPS = {"d": ["a4g", "b4g", "a8g", "b8g"]}
# baseline: another swiftkvm binary (--baseline), for before/after; NAME-tls: that VMM over TLS (--tls);
# NAME-zstd: that VMM with multifd and multifd-compression zstd (--zstd).
VMMS = ("swiftkvm", "qemu", "baseline", "swiftkvm-tls", "qemu-tls", "swiftkvm-zstd", "qemu-zstd")
# What each VMM is told on both sides, before `migrate`, for compression.
ZSTD_SETTINGS = ("migrate_set_capability multifd on", "migrate_set_parameter multifd-compression zstd")
ZSTD_CHANNELS = [None]  # --zstd-channels: multifd-channels for both VMMs (None: their default, 2)
FIELDS = [  # (info migrate key, label, unit)
    ("total time", "total time", "ms"),
    ("downtime", "downtime", "ms"),
    ("transferred ram", "transferred ram", "kbytes"),
    ("throughput", "throughput", "mbps"),
    ("dirty sync count", "passes (dirty sync count)", ""),
]


BASELINE = [None]  # the --baseline binary
TLS_DIR = [None]   # the --tls credentials, QEMU's file names (ca-cert.pem, server-cert.pem, ...)


def make_tls_credentials(folder):
    """A CA, a server and a client certificate (scripts/make-pki, as the tests make them)."""
    subprocess.run([os.path.join(b.REPO, "scripts", "make-pki"), folder], check=True, capture_output=True)
    return folder


def base_vmm(vmm):
    for suffix in ("-tls", "-zstd"):
        if vmm.endswith(suffix):
            return vmm[:-len(suffix)]
    return vmm


def vmm_argv(vmm, swiftkvm_path, scenario, monitor_path, incoming=None):
    """incoming: (host, port) for the destination."""
    common = ["-m", scenario.ram, "-kernel", b.guest(scenario.kernel), "-device", DEBUG_EXIT,
              "-monitor", f"unix:{monitor_path},server,nowait", "-serial", "stdio"]
    if scenario.append:
        common += ["-append", scenario.append]
    if scenario.initrd is not None:
        common += ["-initrd", scenario.initrd()]
    if incoming is not None:
        common += ["-incoming", f"tcp:{incoming[0]}:{incoming[1]}"]
    if vmm.endswith("-tls"):
        endpoint = "server" if incoming is not None else "client"
        common += ["-object", f"tls-creds-x509,id=tls0,dir={TLS_DIR[0]},endpoint={endpoint}"]
    vmm = base_vmm(vmm)
    if vmm == "swiftkvm":
        return [swiftkvm_path] + common
    if vmm == "baseline":
        return [BASELINE[0]] + common
    return [b.QEMU, "-enable-kvm", "-display", "none", "-no-reboot"] + common


def parse_info_migrate(lines):
    info = {}
    for line in lines:
        key, sep, value = line.partition(": ")
        if sep:
            info[key.strip()] = value.strip()
    return info


def number(text):
    """The leading number of '633 ms', '1900.23 mbps', '5'; None when absent."""
    if text is None:
        return None
    m = re.match(r"\s*(-?[0-9]+(?:\.[0-9]+)?)", text)
    return float(m.group(1)) if m else None


def set_parameters(monitor, log):
    """max-bandwidth 100G (or a big bare MiB/s number when the suffix is refused), downtime 300 ms."""
    notes = []
    for attempt in ("100G", "102400"):
        out = monitor.command(f"migrate_set_parameter max-bandwidth {attempt}")
        if not out:
            notes.append(f"max-bandwidth {attempt}")
            break
        log(f"    migrate_set_parameter max-bandwidth {attempt} refused: {' / '.join(out)}")
    else:
        notes.append("max-bandwidth left at its default (both forms refused)")
    out = monitor.command("migrate_set_parameter downtime-limit 300")
    notes.append("downtime-limit 300" if not out else f"downtime-limit refused: {' / '.join(out)}")
    return notes


def sweep_markers(lines):
    markers = []
    for when, text in lines:
        m = re.match(r"^sweep (\d+)", text)
        if m:
            markers.append((when, int(m.group(1))))
    return markers


def rate(markers):
    if len(markers) < 2 or markers[-1][0] <= markers[0][0]:
        return None
    return (markers[-1][1] - markers[0][1]) / (markers[-1][0] - markers[0][0])


def sweep_rates(src_lines, dst_lines, t_start, t_end):
    """Sweeps/s before (markers in the 3 s before `migrate`), during (from the last marker before
    `migrate` to the first marker after the switchover, on either side: a window that covers the
    whole migration plus at most one marker interval) and after (destination, first 3 s)."""
    src, dst = sweep_markers(src_lines), sweep_markers(dst_lines)
    before = [m for m in src if t_start - 3.0 <= m[0] < t_start]
    last_before = [m for m in src if m[0] < t_start][-1:]
    first_after = [m for m in src + dst if m[0] >= t_end][:1] or dst[:1]
    during = rate(last_before + first_after) if last_before and first_after else None
    after = [m for m in dst if dst and m[0] <= dst[0][0] + 3.0]
    return {"sweeps_per_s_before": rate(before), "sweeps_per_s_during": during,
            "sweeps_per_s_after": rate(after), "guest_pause_ms": guest_pause_ms(src, dst, rate(after)),
            "during_window_s": (first_after[0][0] - last_before[0][0]) if last_before and first_after else None}


def memory_beyond_guest_ram(src_pid, dst_pid, ram):
    """Each side's resident memory right after the migration, split into guest RAM (its
    mappings' resident pages) and everything else (the VMM itself, its buffers, page tables it
    maps: VmRSS less guest RAM), in MiB."""
    ram_bytes = int(ram[:-1]) << {"M": 20, "G": 30}[ram[-1]]
    figures = {}
    for side, pid in (("source", src_pid), ("destination", dst_pid)):
        try:
            rss_kib = b.proc_status(pid).get("VmRSS")
            guest_kib = b.guest_ram_resident_kib(pid, ram_bytes)
        except OSError:
            continue
        if rss_kib is not None:
            figures[f"{side}_guest_resident_mib"] = guest_kib / 1024
            figures[f"{side}_beyond_guest_mib"] = (rss_kib - guest_kib) / 1024
    return figures


def guest_pause_ms(src, dst, sweeps_per_s):
    """The guest's own pause at the switchover, as both VMMs' consoles show it: from the source's
    last `sweep` marker to the destination's first, less the time the sweeps between them took
    at the destination's rate. Unlike each VMM's `downtime` (QEMU 7.2's ends once the last bytes
    are in the socket, swiftkvm's when the destination has loaded and resumed), it is the same
    clock for both. Good to about a marker interval's error in the rate (every=4: ~1 ms)."""
    if not src or not dst or not sweeps_per_s or dst[0][1] <= src[-1][1]:
        return None
    return max(0.0, (dst[0][0] - src[-1][0]) - (dst[0][1] - src[-1][1]) / sweeps_per_s) * 1000


class Unsupported(Exception):
    """This VMM cannot migrate (yet): skip its remaining migration runs."""


def migrate_once(vmm, swiftkvm_path, scenario, link, log):
    """One migration; a dict of figures, or {'error': why}."""
    tmp = tempfile.mkdtemp(prefix=f"bench-{vmm}-", dir="/tmp")
    src_sock, dst_sock = os.path.join(tmp, "src.sock"), os.path.join(tmp, "dst.sock")
    port = b.free_port()
    src_mon = dst_mon = None
    try:
        with b.Processes() as procs:
            host = link.destination_host
            dst = procs.start(link.destination_argv(vmm_argv(vmm, swiftkvm_path, scenario, dst_sock, (host, port))),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            src = procs.start(link.source_argv(vmm_argv(vmm, swiftkvm_path, scenario, src_sock)),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            src_console, dst_console = b.Console(src.stdout), b.Console(dst.stdout)
            src_err, dst_err = b.Console(src.stderr), b.Console(dst.stderr)
            t_launch = time.monotonic()

            def dead():
                for name, proc, err in (("source", src, src_err), ("destination", dst, dst_err)):
                    if proc.poll() is not None:
                        return f"{name} exited with status {proc.returncode}: {err.tail(3)}"
                return None

            index = 0
            for _ in range(scenario.ready_count):
                found = src_console.wait_for(scenario.ready, BOOT_TIMEOUT_S, index)
                if found is None:
                    return {"error": f"guest not ready ({scenario.ready!r}) within {BOOT_TIMEOUT_S} s: "
                                     f"{dead() or src_console.tail(3)}"}
                index = found[2] + 1
            t_ready = time.monotonic()
            dst_mon = b.Monitor(dst_sock, alive=lambda: dst.poll() is None)
            src_mon = b.Monitor(src_sock, alive=lambda: src.poll() is None)
            params = set_parameters(src_mon, log)
            if vmm.endswith("-tls"):
                # Both sides name the credentials; the hostname is the certificates' DNS name, so
                # the same files serve loopback and the veth link's addresses.
                for mon, lines in ((dst_mon, ["tls-creds tls0"]), (src_mon, ["tls-creds tls0", "tls-hostname localhost"])):
                    for line in lines:
                        out = mon.command(f"migrate_set_parameter {line}")
                        if out:
                            return {"error": f"migrate_set_parameter {line} refused: {' / '.join(out)}"}
                params.append("tls-creds tls0 (x509, verify-peer on), tls-hostname localhost")
            if vmm.endswith("-zstd"):
                # As QEMU requires: the destination gets the same before the source connects.
                settings = ZSTD_SETTINGS + ((f"migrate_set_parameter multifd-channels {ZSTD_CHANNELS[0]}",)
                                            if ZSTD_CHANNELS[0] else ())
                for mon in (dst_mon, src_mon):
                    for line in settings:
                        out = mon.command(line)
                        if out:
                            return {"error": f"{line} refused: {' / '.join(out)}"}
                params.append(f"multifd on, multifd-compression zstd (level 1, channels {ZSTD_CHANNELS[0] or 2})")
            if scenario.sweeps:
                time.sleep(3.0)  # a clean 3 s window of sweep markers before migrating
            else:
                time.sleep(1.0)

            cpu_before = {"source": b.cpu_seconds(src.pid), "destination": b.cpu_seconds(dst.pid)}
            t_start = time.monotonic()
            out = src_mon.command(f"migrate -d tcp:{host}:{port}")
            if out:
                message = " / ".join(out)
                if re.search(r"unknown command|not supported|not implemented", message, re.I):
                    raise Unsupported(message)
                return {"error": f"migrate -d refused: {message}"}
            passes_seen = []  # (dirty sync count, transferred kbytes) whenever the count changes
            info = {}
            while True:
                info = parse_info_migrate(src_mon.command("info migrate"))
                status = info.get("Migration status", "")
                sync = number(info.get("dirty sync count"))
                if sync is not None and (not passes_seen or passes_seen[-1][0] != sync):
                    passes_seen.append((sync, number(info.get("transferred ram"))))
                if status.startswith(("completed", "failed", "cancelled")):
                    break
                if dead():
                    return {"error": dead()}
                if time.monotonic() - t_start > MIGRATION_TIMEOUT_S:
                    return {"error": f"still '{status}' after {MIGRATION_TIMEOUT_S} s"}
                time.sleep(0.05)
            t_seen = time.monotonic()
            cpu_after = {"source": b.cpu_seconds(src.pid), "destination": b.cpu_seconds(dst.pid)}
            if not status.startswith("completed"):
                return {"error": f"migration ended '{status}'", "info": info}
            result = {key: number(info.get(key)) for key, _, _ in FIELDS}
            result["setup"] = number(info.get("setup"))
            result["duplicate pages"] = number(info.get("duplicate"))
            result["normal pages"] = number(info.get("normal"))
            result["compression pages"] = number(info.get("compression pages"))
            result["compressed size"] = number(info.get("compressed size"))
            result["boot_to_ready_s"] = t_ready - t_launch
            result["parameters"] = params
            result["passes_seen"] = passes_seen
            result["wall_s"] = t_seen - t_start
            result["info"] = info
            for side in ("source", "destination"):
                total = cpu_after[side][0] - cpu_before[side][0]
                vcpus = cpu_after[side][1] - cpu_before[side][1]
                result[f"{side}_vmm_cpu_s"] = total - vcpus
                result[f"{side}_vcpu_cpu_s"] = vcpus
            vmm_cpu = result["source_vmm_cpu_s"] + result["destination_vmm_cpu_s"]
            if result.get("transferred ram") and vmm_cpu > 0:
                result["mib_per_vmm_cpu_s"] = result["transferred ram"] / 1024 / vmm_cpu

            # The source reports completion once its last bytes are in the socket; over a slow
            # link the destination may still be reading them, so give it a few seconds.
            deadline = time.monotonic() + 10.0
            while True:
                dst_status = " ".join(dst_mon.command("info status"))
                if "running" in dst_status or time.monotonic() > deadline:
                    break
                time.sleep(0.02)
            result["destination_running_after_s"] = time.monotonic() - t_seen
            result.update(memory_beyond_guest_ram(src.pid, dst.pid, scenario.ram))
            result["destination_status"] = dst_status
            if "running" not in dst_status:
                result["error"] = f"destination not running 10 s after the migration completed: {dst_status!r}"
            if scenario.sweeps:
                # Sweep markers from the destination show that the guest goes on, and give the rate after.
                first = dst_console.wait_for(r"^sweep \d+", 30.0)
                if first is not None:
                    time.sleep(3.2)
                total_ms = result.get("total time")
                t_end = t_start + (total_ms / 1000.0 if total_ms is not None else t_seen - t_start)
                result.update(sweep_rates(src_console.snapshot(), dst_console.snapshot(), t_start, t_end))
            mismatch = dst_console.wait_for(r"MISMATCH", 0.0) or src_console.wait_for(r"MISMATCH", 0.0)
            if mismatch is not None:
                result["error"] = f"guest found corrupt memory: {mismatch[1]}"
            elif dst.poll() is not None:
                result["error"] = f"destination exited with status {dst.returncode} after migration"
            return result
    except b.MonitorError as error:
        return {"error": str(error)}
    finally:
        for mon in (src_mon, dst_mon):
            if mon is not None:
                mon.close()
        shutil.rmtree(tmp, ignore_errors=True)


def iperf_reference(link, log):
    """One TCP stream for 3 s over the benchmark's link: the transport's limit, measured now."""
    if shutil.which("iperf3") is None:
        log("iperf3 reference: SKIPPED (iperf3 not found; install it with: apt-get install iperf3)")
        return None
    port = b.free_port()
    with b.Processes() as procs:
        server = procs.start(link.iperf_server_argv(["iperf3", "-s", "-1", "-p", str(port)]),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        data, problem = None, ""
        for _ in range(100):
            client = subprocess.run(link.iperf_client_argv(["iperf3", "-c", link.destination_host, "-p", str(port),
                                                            "-t", "3", "-J"]),
                                    capture_output=True, text=True, timeout=60)
            try:
                data = json.loads(client.stdout)
            except ValueError:
                data = None
            if data and "sum_received" in data.get("end", {}):
                break
            # Usually the server is not listening yet: iperf3 then reports {"error": ...}.
            problem = (data or {}).get("error") or client.stderr[-300:]
            data = None
            time.sleep(0.05)
        procs.stop(server)
    if data is None:
        log(f"iperf3 reference: failed: {problem}")
        return None
    bps = data["end"]["sum_received"]["bits_per_second"]
    log(f"iperf3 over {link.name}, one stream: {bps / 1e9:.2f} Gbit/s ({bps / 8e6:.0f} MB/s)")
    return bps


def run(args, swiftkvm_path, link, log=print):
    results = {vmm: {} for vmm in args.vmms}
    unsupported = {}
    for name in args.scenarios:
        for rep in range(args.reps):
            order = args.vmms if rep % 2 == 0 else list(reversed(args.vmms))
            for vmm in order:
                runs = results[vmm].setdefault(name, [])
                if name == "e" and vmm not in ("swiftkvm", "qemu"):
                    continue
                if name == "e":
                    r = startup.measure_startup(vmm, swiftkvm_path)
                    runs.append(r)
                    log(f"[e rep {rep + 1}] {vmm:8}: first byte {r['first_byte_ms']:.1f} ms, beyond guest RAM {r['overhead']} KiB")
                    continue
                if vmm in unsupported:
                    runs.append({"error": f"skipped: {unsupported[vmm]}"})
                    continue
                log(f"[{name} rep {rep + 1}] {vmm:8}: {SCENARIOS[name].title}")
                try:
                    r = migrate_once(vmm, swiftkvm_path, SCENARIOS[name], link, log)
                except Unsupported as why:
                    unsupported[vmm] = f"{vmm} cannot migrate: {why}"
                    r = {"error": unsupported[vmm]}
                runs.append(r)
                if "error" in r:
                    log(f"    FAILED: {r['error']}")
                if r.get("total time") is not None:
                    extra = ""
                    if SCENARIOS[name].sweeps:
                        extra = (f", guest pause {fmt(r.get('guest_pause_ms'), 0)} ms, sweeps/s before {fmt(r.get('sweeps_per_s_before'))} during "
                                 f"{fmt(r.get('sweeps_per_s_during'))} after {fmt(r.get('sweeps_per_s_after'))}")
                    log(f"    total {r['total time']:.0f} ms, downtime {fmt(r.get('downtime'))} ms, "
                        f"{fmt(r.get('transferred ram'))} kbytes, {fmt(r.get('throughput'))} mbps, "
                        f"passes {fmt(r.get('dirty sync count'))}, VMM CPU source {fmt(r.get('source_vmm_cpu_s'), 2)} s "
                        f"destination {fmt(r.get('destination_vmm_cpu_s'), 2)} s, "
                        f"{fmt(r.get('mib_per_vmm_cpu_s'))} MiB per VMM CPU-second{extra}")
                    info = r.get("info", {})
                    if "compression pages" in info:
                        log(f"    compression: {info['compression pages']}, busy {info.get('compression busy')}, "
                            f"{info.get('compressed size')}, rate {info.get('compression rate')}; plain: {info.get('compression plain batches')}")
    return results


def fmt(value, digits=1):
    return "n/a" if value is None else f"{value:.{digits}f}"


def ok_values(runs, key):
    return [r.get(key) for r in runs if "error" not in r]


COLUMN_TITLES = {"swiftkvm": "swiftkvm", "qemu": "QEMU", "baseline": "baseline",
                 "swiftkvm-tls": "swiftkvm TLS", "qemu-tls": "QEMU TLS",
                 "swiftkvm-zstd": "swiftkvm zstd", "qemu-zstd": "QEMU zstd"}


def table_columns(vmms):
    """The VMMs run, in VMMS order, and the ratios of their medians worth reading."""
    columns = [v for v in VMMS if v in vmms]
    wanted = [("swiftkvm/QEMU", "swiftkvm", "qemu"), ("swiftkvm/baseline", "swiftkvm", "baseline"),
              ("swiftkvm TLS/swiftkvm", "swiftkvm-tls", "swiftkvm"), ("QEMU TLS/QEMU", "qemu-tls", "qemu"),
              ("swiftkvm TLS/QEMU TLS", "swiftkvm-tls", "qemu-tls"),
              ("swiftkvm zstd/swiftkvm", "swiftkvm-zstd", "swiftkvm"), ("QEMU zstd/QEMU", "qemu-zstd", "qemu"),
              ("swiftkvm zstd/QEMU zstd", "swiftkvm-zstd", "qemu-zstd"), ("swiftkvm zstd/QEMU", "swiftkvm-zstd", "qemu")]
    return columns, [r for r in wanted if r[1] in columns and r[2] in columns]


def markdown(args, results, iperf_bps, swiftkvm_path, link):
    lines = [
        f"# Live migration: swiftkvm vs QEMU ({b.today()})",
        "",
        f"- swiftkvm: `.build/release/swiftkvm` at {b.git_revision()}; QEMU: {b.qemu_version()}",
        f"- Host: {b.host_description()}",
        f"- Reps per scenario per VMM: {args.reps}, alternated. Median (min-max) over successful reps;",
        "  the ratio is of the medians, swiftkvm/QEMU.",
        f"- Link: {link.description}; "
        "`migrate_set_parameter max-bandwidth 100G`, `downtime-limit 300`, `migrate -d`, `info migrate` polled every 50 ms.",
        "- Link reference (iperf3, one stream, 3 s): " +
        (f"{iperf_bps / 1e9:.2f} Gbit/s = {iperf_bps / 8e6:.0f} MB/s" if iperf_bps else "skipped (iperf3 missing)"),
        "",
    ]
    for name in args.scenarios:
        title = "start-up to first serial byte, hello.elf 128M" if name == "e" else SCENARIOS[name].title
        columns, ratios = table_columns(args.vmms if name != "e" else [v for v in args.vmms if v in ("swiftkvm", "qemu")])
        lines += [f"## {name}: {title}", "",
                  "| figure | " + " | ".join(COLUMN_TITLES[v] for v in columns) + "".join(f" | {t}" for t, _, _ in ratios) + " |",
                  "| --- |" + " --- |" * (len(columns) + len(ratios))]
        runs = {vmm: results.get(vmm, {}).get(name, []) for vmm in VMMS}
        if name == "e":
            fields = [("first_byte_ms", "first serial byte", " ms", 1), ("overhead", "VmRSS beyond guest RAM", " KiB", 0)]
        else:
            fields = [(key, label, f" {unit}" if unit else "", 1 if unit == "mbps" else 0) for key, label, unit in FIELDS]
            if any(v.endswith("-zstd") for v in columns):
                fields += [("compression pages", "pages sent compressed (`compression pages`)", "", 0)]
            fields += [("source_vmm_cpu_s", "source CPU outside vCPUs", " s", 2),
                       ("destination_vmm_cpu_s", "destination CPU outside vCPUs", " s", 2),
                       ("mib_per_vmm_cpu_s", "MiB moved per VMM CPU-second", "", 0),
                       ("source_beyond_guest_mib", "source memory beyond guest RAM, after", " MiB", 1),
                       ("destination_beyond_guest_mib", "destination memory beyond guest RAM, after", " MiB", 1),
                       ("source_guest_resident_mib", "source guest RAM resident, after", " MiB", 0),
                       ("destination_guest_resident_mib", "destination guest RAM resident, after", " MiB", 0)]
            if name in SCENARIOS and SCENARIOS[name].sweeps:
                fields += [("guest_pause_ms", "guest-visible pause (consoles' sweep markers)", " ms", 0),
                           ("sweeps_per_s_before", "sweeps/s before", "", 1),
                           ("sweeps_per_s_during", "sweeps/s during", "", 1),
                           ("sweeps_per_s_after", "sweeps/s after (destination)", "", 1)]
        for key, label, unit, digits in fields:
            values = {vmm: ok_values(runs[vmm], key) for vmm in VMMS}
            row = f"| {label} | " + " | ".join(b.fmt_summary(values[v], unit, digits) for v in columns)
            row += "".join(f" | {b.ratio(values[top], values[bottom])}" for _, top, bottom in ratios) + " |"
            lines.append(row)
        for vmm in VMMS:
            errors = sorted({r["error"] for r in runs[vmm] if "error" in r})
            for error in errors:
                lines.append(f"\n{vmm} failures: {error}")
        lines.append("")
    lines += [
        "Notes:",
        "- `transferred ram`, `throughput`, `downtime`, `total time` and `dirty sync count` are each VMM's",
        "  own `info migrate` figures (QEMU 7.2 layout). QEMU counts a zero page as a few bytes on the wire.",
        "- b and its 4G/8G variants keep 900 MiB of data: the rest of RAM stays zero, so they show how",
        "  the cost of zero pages scales with RAM size while the data to move stays fixed.",
        "- f: guest-visible pause = from the source console's last `sweep` marker to the destination's",
        "  first (each stamped as it is read), less the time the sweeps between them took at the",
        "  destination's rate: one clock for both VMMs, whose own `downtime` figures end at different",
        "  points (QEMU 7.2's when the last bytes are in its socket, swiftkvm's at the destination's resume).",
        "- c: sweeps/s before = dirty.elf's `sweep N` markers (one per 64 sweeps; f: one per 4) in the 3 s before",
        "  `migrate`; during = from the last marker before `migrate` to the first marker after the",
        "  switchover (either side), so the window spans the whole migration plus at most one marker",
        "  interval; after = the destination's first 3 s. Under the PVM backend each first write to a",
        "  page after a dirty-log clear is a write-protect fault, so the guest slows while logging is on.",
        "- Memory after the migration (destination running): guest RAM resident = the resident pages of",
        "  the mappings that hold guest RAM (/proc/PID/smaps); beyond guest RAM = VmRSS less that.",
        "- CPU outside vCPUs: the VMM process's utime+stime (/proc/PID/stat, which keeps the time of",
        "  threads that have ended) minus its vCPU threads' (`vcpuN`, QEMU's `CPU N/KVM`), from `migrate`",
        "  to the end; MiB per VMM CPU-second = transferred ram / (source + destination) of those.",
    ]
    if any(v.endswith("-tls") for v in args.vmms):
        lines += [
            "- TLS columns: `-object tls-creds-x509` on both sides (EC P-256 certificates made by the",
            "  openssl command, verify-peer on), `tls-creds tls0` on both and `tls-hostname localhost` on the",
            "  source. swiftkvm uses OpenSSL 3 (TLS 1.3, AES-128-GCM; no kernel TLS on this host), QEMU GnuTLS.",
        ]
    if any(v.endswith("-zstd") for v in args.vmms):
        lines += [
            "- zstd columns: `migrate_set_capability multifd on` and `migrate_set_parameter multifd-compression",
            "  zstd` on both sides (level 1 and, for QEMU, 2 channels: the defaults). swiftkvm compresses only",
            "  while the socket has a backlog (the link is the bottleneck); QEMU 7.2 compresses every page,",
            "  zero pages included (its multifd has no zero-page detection). QEMU prints no `compression",
            "  pages` for multifd, so that row is swiftkvm's only.",
        ]
    lines += [""]
    return "\n".join(lines)


def chart(args, results, path, log):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is missing: no chart written (install it with: pip install matplotlib)")
        return False
    names = [n for n in args.scenarios if n != "e"]
    if not names:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, label in ((axes[0], "total time", "total time (ms)"), (axes[1], "transferred ram", "transferred ram (MiB)")):
        for i, vmm in enumerate(v for v in VMMS if v in args.vmms):
            values = []
            for n in names:
                s = b.summary(ok_values(results.get(vmm, {}).get(n, []), key))
                v = s[0] if s else 0
                values.append(v / 1024 if key == "transferred ram" else v)
            width = 0.8 / len(args.vmms)
            ax.bar([x + i * width for x in range(len(names))], values, width=width, label=vmm)
        ax.set_xticks([x + 0.4 - 0.4 / len(args.vmms) for x in range(len(names))])
        ax.set_xticklabels(names)
        ax.set_ylabel(label)
        ax.legend(loc="best")
    fig.suptitle(f"Live migration over {args.link}, median of {args.reps} rep(s)")
    fig.tight_layout()
    fig.savefig(path)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="a,b,c,d,e", help="comma-separated: a,b,c,d,e,f,g (d = a4g,b4g,a8g,b8g)")
    parser.add_argument("--link", default="loopback", choices=("loopback", "veth1g"),
                        help="loopback (default) or veth1g: two network namespaces joined by a 1 Gbit/s veth pair")
    parser.add_argument("--reps", type=int, default=3, help="reps per scenario per VMM (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: scenarios a and c, 1 rep")
    parser.add_argument("--vmms", default="swiftkvm,qemu", help="which VMMs to run (default swiftkvm,qemu)")
    parser.add_argument("--baseline", metavar="BINARY",
                        help="also run this swiftkvm binary (an older build) in the same rotation, as VMM 'baseline'")
    parser.add_argument("--tls", action="store_true",
                        help="also run each VMM over TLS (tls-creds-x509 on both sides), as swiftkvm-tls and qemu-tls")
    parser.add_argument("--zstd", action="store_true",
                        help="also run each VMM with multifd-compression zstd, as swiftkvm-zstd and qemu-zstd")
    parser.add_argument("--zstd-channels", type=int, metavar="N", help="with --zstd: multifd-channels N on both VMMs")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write bench/results")
    args = parser.parse_args()
    b.stop_children_on_sigterm()
    if args.quick:
        args.scenarios, args.reps = "a,c", 1
    names = []
    for token in args.scenarios.split(","):
        token = token.strip()
        if token in GROUPS:
            names += GROUPS[token]
        elif token in SCENARIOS or token == "e":
            names.append(token)
        elif token:
            parser.error(f"unknown scenario {token!r}; use a, b, c, d (a4g, b4g, a8g, b8g), a16g, b16g, a32g, b32g, e, f or g")
    args.scenarios = names
    args.vmms = [v.strip() for v in args.vmms.split(",") if v.strip()]
    if args.baseline:
        BASELINE[0] = os.path.abspath(args.baseline)
        args.vmms.append("baseline")
    ZSTD_CHANNELS[0] = args.zstd_channels
    plain = [v for v in args.vmms if v in ("swiftkvm", "qemu")]
    if args.tls:
        args.vmms += [v + "-tls" for v in plain]
    if args.zstd:
        args.vmms += [v + "-zstd" for v in plain]
    if any(v.endswith("-tls") for v in args.vmms):
        TLS_DIR[0] = make_tls_credentials(tempfile.mkdtemp(prefix="bench-tls-", dir="/tmp"))
    if any(v not in VMMS for v in args.vmms) or not args.vmms:
        parser.error("--vmms takes swiftkvm and/or qemu (--baseline BINARY adds an older swiftkvm, --tls both over TLS)")

    bases = {base_vmm(v) for v in args.vmms}
    b.require(tools=(b.QEMU,) if "qemu" in bases else (), guests=("hello.elf", "dirty.elf"))
    swiftkvm_path = b.ensure_swiftkvm() if "swiftkvm" in bases else None
    with links.named(args.link) as link:
        iperf_bps = iperf_reference(link, print)
        results = run(args, swiftkvm_path, link)
    text = markdown(args, results, iperf_bps, swiftkvm_path, link)
    print()
    print(text)
    if not args.no_write:
        # A smoke run or a TLS run must not overwrite the day's full run.
        if args.zstd:
            folder = os.path.join(b.RESULTS, b.today() + "-zstd" + ("-quick" if args.quick else ""), args.link)
        else:
            folder = os.path.join(b.RESULTS, b.today() + ("" if args.link == "loopback" else "-" + args.link)
                                  + ("-tls" if args.tls else "") + ("-quick" if args.quick else ""))
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "results.md"), "w") as f:
            f.write(text)
        with open(os.path.join(folder, "results.json"), "w") as f:
            json.dump({"scenarios": args.scenarios, "reps": args.reps, "link": args.link, "iperf_bps": iperf_bps,
                       "results": results},
                      f, indent=1, default=str)
        if chart(args, results, os.path.join(folder, "chart.png"), print):
            print(f"wrote {os.path.relpath(os.path.join(folder, 'chart.png'), b.REPO)}")
        print(f"wrote {os.path.relpath(os.path.join(folder, 'results.md'), b.REPO)}")
    failed = any("error" in r and not r["error"].startswith("skipped") for vmm in results.values()
                 for runs in vmm.values() for r in runs)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
