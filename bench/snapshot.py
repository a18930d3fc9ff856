#!/usr/bin/env python3
"""Instant-restore snapshots (mapped-ram) and same-host handoff (x-ignore-shared), swiftkvm
against QEMU 7.2 in the same run. See bench/README.md."""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as b  # noqa: E402

RAM = "4G"
GUEST_ARGS = "base=4M size=900M every=1 fill=1"
EXIT_DEVICE = ["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]


def vmm_argv(vmm, monitor, extra):
    if vmm == "swiftkvm":
        return [b.SWIFTKVM, "-m", RAM, "-kernel", b.guest("dirty.elf"), "-append", GUEST_ARGS,
                "-monitor", f"unix:{monitor},server,nowait", "-serial", "stdio"] + EXIT_DEVICE + extra
    return [b.QEMU, "-enable-kvm", "-m", RAM, "-kernel", b.guest("dirty.elf"), "-append", GUEST_ARGS,
            "-display", "none", "-monitor", f"unix:{monitor},server,nowait", "-serial", "stdio"] + EXIT_DEVICE + extra


def start(procs, vmm, monitor, extra, env=None):
    t0 = time.monotonic()
    proc = procs.start(vmm_argv(vmm, monitor, extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       stdin=subprocess.DEVNULL, env=env)
    return proc, b.Console(proc.stdout), b.Console(proc.stderr), t0


def wait_migration(mon, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = "\n".join(mon.command("info migrate"))
        status = re.search(r"Migration status: (\S+)", info)
        if status and status.group(1) in ("completed", "failed", "cancelled"):
            return info
        time.sleep(0.05)
    raise RuntimeError("migration did not finish")


def field(info, name):
    m = re.search(rf"^{name}: (\d+)", info, re.M)
    return int(m.group(1)) if m else None


def save(procs, vmm, path, mapped_ram, tmp):
    mon_path = os.path.join(tmp, f"{vmm}-save.mon")
    proc, console, _, _ = start(procs, vmm, mon_path, [])
    if console.wait_for(r"sweep 3\b", 600) is None:
        raise RuntimeError(f"{vmm} guest did not reach sweep 3: {console.tail()}")
    mon = b.Monitor(mon_path, alive=lambda: proc.poll() is None)
    mon.command("migrate_set_parameter max-bandwidth 100G")
    # The guest rewrites its 900 MiB faster than a file takes it: QEMU would iterate forever
    # within its 300 ms default, so both may stop the guest for as long as the last pass takes.
    mon.command("migrate_set_parameter downtime-limit 60000")
    if mapped_ram:
        mon.command("migrate_set_capability mapped-ram on")
    uri = f"file:{path}" if vmm == "swiftkvm" else f"exec:cat > {path}"
    mon.command(f'migrate -d "{uri}"')
    info = wait_migration(mon)
    procs.stop(proc)
    st = os.stat(path)
    return {"total_ms": field(info, "total time"), "downtime_ms": field(info, "downtime"),
            "apparent_mib": st.st_size / 2**20, "allocated_mib": st.st_blocks * 512 / 2**20,
            "status": re.search(r"Migration status: (.*)", info).group(1)}


def restore(procs, vmm, path, extra, tmp):
    mon_path = os.path.join(tmp, f"{vmm}-restore.mon")
    env = dict(os.environ, SWIFTKVM_TRACE_SWITCHOVER="1")
    incoming = f"file:{path}" if vmm == "swiftkvm" else f"exec:cat {path}"
    proc, console, errors, t0 = start(procs, vmm, mon_path, extra + ["-incoming", incoming], env=env)
    if vmm == "qemu":
        # QEMU logs nothing when the guest resumes: its monitor is asked every 10 ms.
        mon = b.Monitor(mon_path, alive=lambda: proc.poll() is None)
        while "running" not in "\n".join(mon.command("info status", timeout=300)):
            time.sleep(0.01)
        running_ms = (time.monotonic() - t0) * 1000
    sweep = console.wait_for(r"sweep \d+", 300)
    result = {"first_sweep_ms": (sweep[0] - t0) * 1000 if sweep else None}
    if vmm == "qemu":
        result["running_ms"] = running_ms
    if vmm == "swiftkvm":
        done = errors.wait_for(r"incoming migration completed", 60)
        result["running_ms"] = (done[0] - t0) * 1000 if done else None
        trace = [line for _, line in errors.snapshot() if line.startswith("switchover restore")]
        result["restore_us"] = sum(int(line.split()[3]) for line in trace)
        result["trace"] = " ".join(f"{line.split()[2]}={line.split()[3]}us" for line in trace)
    time.sleep(1)
    text = " ".join(line for _, line in console.snapshot())
    result["mismatch"] = "MISMATCH" in text
    result["alive"] = proc.poll() is None
    procs.stop(proc)
    return result


def handoff(procs, vmm, tmp):
    src_mon, dst_mon = os.path.join(tmp, f"{vmm}-hsrc.mon"), os.path.join(tmp, f"{vmm}-hdst.mon")
    sock = os.path.join(tmp, f"{vmm}-handoff.sock")
    if vmm == "swiftkvm":
        backend = ["-object", f"memory-backend-memfd,id=mem0,size={RAM},share=on", "-machine", "memory-backend=mem0"]
        dst_extra = ["-incoming", f"unix:{sock}"]
    else:
        shm = os.path.join("/dev/shm", f"qemu-bench-{os.getpid()}")
        backend = ["-object", f"memory-backend-file,id=mem0,size={RAM},mem-path={shm},share=on", "-machine", "memory-backend=mem0"]
        dst_extra = ["-incoming", "defer"]
    src, src_console, _, _ = start(procs, vmm, src_mon, backend)
    if src_console.wait_for(r"sweep 3\b", 600) is None:
        raise RuntimeError(f"{vmm} guest did not reach sweep 3: {src_console.tail()}")
    dst, dst_console, _, _ = start(procs, vmm, dst_mon, backend + dst_extra)
    dmon = b.Monitor(dst_mon, alive=lambda: dst.poll() is None)
    if vmm == "qemu":
        dmon.command("migrate_set_capability x-ignore-shared on")
        dmon.command(f"migrate_incoming unix:{sock}")
    while not os.path.exists(sock):
        time.sleep(0.01)
    mon = b.Monitor(src_mon, alive=lambda: src.poll() is None)
    mon.command("migrate_set_capability x-ignore-shared on")
    mon.command(f"migrate -d unix:{sock}")
    info = wait_migration(mon)
    seen = len(dst_console.snapshot())
    ok = dst_console.wait_for(r"sweep \d+", 30, start=seen) is not None
    time.sleep(1)
    status = "\n".join(dmon.command("info status"))
    text = " ".join(line for _, line in dst_console.snapshot())
    procs.stop(src)
    procs.stop(dst)
    if vmm == "qemu":
        os.unlink(shm)
    return {"total_ms": field(info, "total time"), "downtime_ms": field(info, "downtime"),
            "transferred_kib": field(info, "transferred ram"), "status": re.search(r"Migration status: (.*)", info).group(1),
            "dst_running": "running" in status and ok, "mismatch": "MISMATCH" in text}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--vmms", default="swiftkvm,qemu")
    parser.add_argument("--parts", default="snapshot,handoff")
    args = parser.parse_args()
    vmms = args.vmms.split(",")
    b.require(tools=[b.QEMU] if "qemu" in vmms else [], guests=["dirty.elf"])
    b.ensure_swiftkvm()
    b.stop_children_on_sigterm()
    tmp = tempfile.mkdtemp(prefix="skvm-bench-snap-", dir="/var/tmp")
    print(f"# {b.host_description()}; guest: -m {RAM} dirty.elf {GUEST_ARGS}; files in {tmp} (page cache warm)")
    with b.Processes() as procs:
        if "snapshot" in args.parts:
            kinds = [("swiftkvm", "mapped-ram", True, [[], ["-mem-prealloc"]]),
                     ("swiftkvm", "stream", False, [[]]),
                     ("qemu", "exec:cat", False, [[]])]
            for vmm, name, mapped, restores in kinds:
                if vmm not in vmms:
                    continue
                path = os.path.join(tmp, f"{vmm}-{name}.snap")
                saved = save(procs, vmm, path, mapped, tmp)
                print(f"save {vmm} {name}: {saved}", flush=True)
                for extra in restores:
                    for rep in range(args.reps):
                        print(f"restore {vmm} {name} {' '.join(extra)} rep {rep + 1}: {restore(procs, vmm, path, extra, tmp)}", flush=True)
                os.unlink(path)
        if "handoff" in args.parts:
            for vmm in vmms:
                for rep in range(args.reps):
                    print(f"handoff {vmm} rep {rep + 1}: {handoff(procs, vmm, tmp)}", flush=True)
    for name in os.listdir(tmp):
        os.unlink(os.path.join(tmp, name))
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
