"""Shared pieces of the swiftkvm-versus-QEMU benchmarks: prerequisites, building swiftkvm,
starting VMMs and always stopping them, timestamped console capture, a plain-text monitor
client, /proc memory figures and summary statistics. Standard library only."""

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GUESTS = os.path.join(REPO, "guests", "build")
SWIFTKVM = os.path.join(REPO, ".build", "release", "swiftkvm")
QEMU = "qemu-system-x86_64"
RESULTS = os.path.join(REPO, "bench", "results")

EXIT_MISSING_PREREQUISITE = 2


def guest(name):
    return os.path.join(GUESTS, name)


def require(tools=(), guests=(), kvm=True):
    """Exits with status 2, saying what to install, when something the benchmark needs is missing.
    kvm=False: the benchmark needs no /dev/kvm here (bench/linux.py runs its VMMs in an emulated host)."""
    hints = {
        QEMU: "apt-get install qemu-system-x86",
        "iperf3": "apt-get install iperf3",
        "swift": "install Swift 6.3 (https://www.swift.org/install/linux/) and put it on PATH",
        "cpio": "apt-get install cpio",
        "gcc": "apt-get install gcc libc6-dev",
        "lz4": "apt-get install lz4",
    }
    missing = []
    for tool in tools:
        if shutil.which(tool) is None:
            missing.append(f"{tool}: not found on PATH; install it with: {hints.get(tool, tool)}")
    for name in guests:
        if not os.path.exists(guest(name)):
            missing.append(f"{guest(name)}: missing; build the guests with: make -C guests")
    if kvm and not os.access("/dev/kvm", os.R_OK | os.W_OK):
        missing.append("/dev/kvm: cannot be opened read-write; load kvm (modprobe kvm_intel or kvm_amd) and run as root or in group kvm")
    if missing:
        print("missing prerequisites:", file=sys.stderr)
        for line in missing:
            print("  " + line, file=sys.stderr)
        sys.exit(EXIT_MISSING_PREREQUISITE)


def ensure_swiftkvm():
    """Builds the release binary when it is missing (saying so), since the figures are for release."""
    if os.path.exists(SWIFTKVM):
        return SWIFTKVM
    if shutil.which("swift") is None:
        require(tools=("swift",))
    print(f"{SWIFTKVM} is missing: building it with `swift build -c release` (a few minutes)...", flush=True)
    result = subprocess.run(["swift", "build", "-c", "release", "--product", "swiftkvm"], cwd=REPO)
    if result.returncode != 0 or not os.path.exists(SWIFTKVM):
        print("swift build -c release failed; fix the build and run again", file=sys.stderr)
        sys.exit(1)
    return SWIFTKVM


def stop_children_on_sigterm():
    """Turns SIGTERM into SystemExit so that every `with Processes()` block still kills its VMMs."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def free_port():
    """A TCP port on loopback that nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git_revision():
    try:
        out = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                             capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def qemu_version():
    try:
        out = subprocess.run([QEMU, "--version"], capture_output=True, text=True, timeout=10)
        return out.stdout.splitlines()[0].strip()
    except (OSError, subprocess.SubprocessError, IndexError):
        return "unknown"


def host_description():
    cpus = os.cpu_count()
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) // (1024 * 1024)} GiB"
    except OSError:
        pass
    try:
        kvm_modules = sorted(m for m in os.listdir("/sys/module") if m.startswith("kvm"))
    except OSError:
        kvm_modules = []
    return f"{cpus} CPUs, {mem} RAM, kernel {os.uname().release}, modules {','.join(kvm_modules) or '?'}"


class Processes:
    """Every VMM a benchmark starts, stopped when the `with` block ends, however it ends."""

    def __init__(self):
        self.running = []

    def __enter__(self):
        return self

    def start(self, argv, **kwargs):
        # A new session, so the stop below reaches helpers a VMM may have started.
        proc = subprocess.Popen(argv, start_new_session=True, **kwargs)
        self.running.append(proc)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self):
        for proc in list(self.running):
            self.stop(proc)

    def __exit__(self, *exc):
        self.stop_all()
        return False


class Console:
    """Reads a VMM's serial output from a pipe as it arrives, keeping each line with the
    monotonic time its last byte was read, so that markers can be turned into rates."""

    def __init__(self, stream):
        self.stream = stream
        self.lines = []          # (time.monotonic(), text without line end)
        self.first_byte_ns = None
        self.condition = threading.Condition()
        self.closed = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        pending = b""
        fd = self.stream.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                chunk = b""
            now = time.monotonic()
            if self.first_byte_ns is None and chunk:
                self.first_byte_ns = time.perf_counter_ns()
            if not chunk:
                with self.condition:
                    if pending:
                        self.lines.append((now, pending.decode("utf-8", "replace")))
                    self.closed = True
                    self.condition.notify_all()
                return
            pending += chunk
            *complete, pending = re.split(rb"\r?\n", pending)
            if complete:
                with self.condition:
                    for line in complete:
                        self.lines.append((now, line.decode("utf-8", "replace").rstrip("\r")))
                    self.condition.notify_all()

    def wait_for(self, pattern, timeout, start=0):
        """The first (time, line, index) at or after line index `start` matching `pattern`;
        None on timeout or when the output ends first."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        index = start
        with self.condition:
            while True:
                while index < len(self.lines):
                    when, text = self.lines[index]
                    if regex.search(text):
                        return when, text, index
                    index += 1
                remaining = deadline - time.monotonic()
                if self.closed or remaining <= 0:
                    return None
                self.condition.wait(remaining)

    def snapshot(self):
        with self.condition:
            return list(self.lines)

    def tail(self, count=5):
        return " | ".join(text for _, text in self.snapshot()[-count:])


ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]")
PROMPT = re.compile(r"\((?:qemu|monitor)\) $")
# What swiftkvm prints on its own while a migration runs (see Monitor.command).
NOTICE = re.compile(r"^migration: ")
ANY_PROMPT = re.compile(r"\((?:qemu|monitor)\) ")


class MonitorError(Exception):
    pass


class Monitor:
    """A human-monitor client over a unix socket: send one line, read until the next prompt.
    Works with QEMU's `(qemu) ` (which echoes the line with terminal escapes) and swiftkvm's
    `(monitor) ` prompts alike."""

    def __init__(self, path, timeout=30.0, alive=None):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError as error:
                self.sock.close()
                if alive is not None and not alive():
                    raise MonitorError(f"the VMM exited before its monitor socket {path} accepted a connection")
                if time.monotonic() > deadline:
                    raise MonitorError(f"monitor socket {path} did not accept a connection within {timeout:.0f} s: {error}")
                time.sleep(0.02)
        self.buffer = ""
        self.notices = []
        self.banner = self._read_until_prompt(timeout)

    def _read_until_prompt(self, timeout):
        deadline = time.monotonic() + timeout
        while not PROMPT.search(self.buffer):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise MonitorError(f"no monitor prompt within {timeout:.0f} s; got {self.buffer[-200:]!r}")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            if not chunk:
                raise MonitorError(f"monitor closed the connection; last output {self.buffer[-200:]!r}")
            self.buffer += ANSI_ESCAPE.sub("", chunk.decode("utf-8", "replace"))
        text = PROMPT.sub("", self.buffer)
        self.buffer = ""
        return text

    def command(self, line, timeout=30.0):
        """The command's output lines, without the echoed command and without the prompt.
        swiftkvm sends lines on its own between commands (`migration: pass ...`), each batch
        followed by a prompt; those batches are set aside in `self.notices`, and the reply is
        the one prompt-terminated piece that is not such a batch."""
        self.sock.sendall((line + "\n").encode())
        deadline = time.monotonic() + timeout
        while True:
            text = self._read_until_prompt(max(deadline - time.monotonic(), 0.001))
            reply = None
            pieces = ANY_PROMPT.split(text)
            # QEMU's echo starts with its prompt, leaving an empty piece in front of the reply.
            if len(pieces) > 1 and pieces[0] == "" and \
                    pieces[1].replace("\r", "").split("\n")[0].strip().endswith(line.strip()):
                pieces = pieces[1:]
            for piece in pieces:
                lines = [l.rstrip() for l in piece.replace("\r", "").split("\n")]
                # QEMU echoes the line as it is typed, redrawing it after each character.
                echoed = bool(lines) and lines[0].strip().endswith(line.strip())
                if echoed:
                    lines = lines[1:]
                lines = [l for l in lines if l.strip()]
                if reply is None and (echoed or not lines or not all(NOTICE.match(l) for l in lines)):
                    reply = lines
                else:
                    self.notices.extend(lines)
            if reply is not None:
                return reply

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def proc_status(pid):
    """VmRSS, RssAnon and RssFile of a process in KiB."""
    figures = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                figures[key] = int(value.split()[0])
    return figures


def guest_ram_resident_kib(pid, ram_bytes):
    """Resident KiB of the mappings that hold guest RAM: private anonymous read-write mappings
    at least 3/4 of the RAM size (QEMU maps pc.ram in one piece, swiftkvm one per RAM range; no
    other mapping of either VMM comes near 96 MiB)."""
    threshold_kib = min(ram_bytes * 3 // 4, 3 << 30) // 1024
    total = 0
    header = None
    size = None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                header = line.split()
                size = None
            elif line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:") and header is not None and size is not None:
                perms = header[1]
                path = header[5] if len(header) >= 6 else ""
                if perms.startswith("rw") and path == "" and size >= threshold_kib:
                    total += int(line.split()[1])
    return total


def summary(values):
    """(median, min, max) of the numbers present, or None when there are none."""
    present = [v for v in values if v is not None]
    if not present:
        return None
    return statistics.median(present), min(present), max(present)


def fmt_summary(values, unit="", digits=1):
    s = summary(values)
    if s is None:
        return "n/a"
    med, lo, hi = s
    return f"{med:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def ratio(a_values, b_values, digits=2):
    a, b = summary(a_values), summary(b_values)
    if a is None or b is None or b[0] == 0:
        return "n/a"
    value = a[0] / b[0]
    return f"{value:.{digits}f}" if value >= 0.1 else f"{value:.2g}"


def today():
    return time.strftime("%Y-%m-%d")


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
VCPU_THREAD = re.compile(r"^(vcpu\d+|CPU \d+/KVM)$")  # swiftkvm's and QEMU's vCPU thread names


def _stat_cpu_seconds(path):
    """utime + stime of /proc/.../stat in seconds (fields 14 and 15, after the parenthesised name)."""
    with open(path) as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid):
    """(whole process, its vCPU threads) CPU seconds so far. The process figure includes threads
    that have already exited (a migration's sender ends with it); vCPU threads live as long as
    the VM, so the difference is what the VMM itself spent: migration, I/O, monitor."""
    total = _stat_cpu_seconds(f"/proc/{pid}/stat")
    vcpus = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            if VCPU_THREAD.match(name):
                vcpus += _stat_cpu_seconds(f"/proc/{pid}/task/{tid}/stat")
        except OSError:
            continue  # the thread ended between listing and reading
    return total, vcpus
