import Glibc
import SystemSupport

/// `-daemonize` and `-pidfile`, as QEMU offers them for service managers.
///
/// With `-daemonize` the process forks before anything else starts (no threads exist yet, so
/// the fork is safe). The parent waits: when the child has set everything up it writes one
/// byte and the parent exits 0; if the child fails first, its error has already reached the
/// terminal and the parent exits with the child's status. The child then leaves the terminal
/// (new session, stdin/stdout/stderr on /dev/null). It keeps its working directory (QEMU
/// changes to /) so relative paths given to the monitor later mean what the user meant.
final class Daemonizer {
    enum DaemonError: Error, CustomStringConvertible {
        case usesStdio(what: String)
        case pidFile(path: String, reason: String)
        case forkFailed(errno: Int32)

        var description: String {
            switch self {
            case .usesStdio(let what):
                return "-daemonize: \(what) cannot use stdio in daemon mode; redirect it (for example -serial pty -monitor none -qmp unix:PATH,server,nowait)"
            case .pidFile(let path, let reason):
                return "cannot create PID file '\(path)': \(reason)"
            case .forkFailed(let errno):
                return "-daemonize: fork failed: \(Errno.text(errno))"
            }
        }
    }

    private var readyFD: Int32 = -1

    /// Validates, forks when asked (the parent never returns), and writes the PID file.
    init(daemonize: Bool, pidFile: String?, serialOnStdio: Bool, monitorOnStdio: Bool) throws {
        if daemonize {
            if serialOnStdio { throw DaemonError.usesStdio(what: "the serial port (-serial)") }
            if monitorOnStdio { throw DaemonError.usesStdio(what: "the monitor (-monitor)") }
            readyFD = try Self.fork()
            _ = setsid()
        }
        if let pidFile { try Self.writePIDFile(pidFile) }
    }

    /// Everything is set up: let the parent exit 0 and leave the terminal.
    func finish() {
        guard readyFD >= 0 else { return }
        var byte: UInt8 = 0
        _ = write(readyFD, &byte, 1)
        close(readyFD)
        readyFD = -1
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
            for fd: Int32 in 0...2 { _ = dup2(null, fd) }
            if null > 2 { close(null) }
        }
    }

    /// Returns the write end of the ready pipe in the child; the parent waits and exits.
    private static func fork() throws -> Int32 {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw DaemonError.forkFailed(errno: errno) }
        let child = Glibc.fork()
        guard child >= 0 else { throw DaemonError.forkFailed(errno: errno) }
        if child == 0 {
            close(fds[0])
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            return fds[1]
        }
        close(fds[1])
        var byte: UInt8 = 0
        let n = Errno.retryingInterrupted { read(fds[0], &byte, 1) }
        if n == 1 { exit(0) }
        // The child ended before it was ready: its error is on the terminal already.
        var status: Int32 = 0
        _ = Errno.retryingInterrupted { waitpid(child, &status, 0) }
        let exited = status & 0x7f == 0
        exit(exited ? (status >> 8) & 0xff : 1)
    }

    /// Locks the file, as QEMU does, so a second instance with the same file is refused.
    private static func writePIDFile(_ path: String) throws {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw DaemonError.pidFile(path: path, reason: Errno.text(errno)) }
        guard lockf(fd, F_TLOCK, 0) == 0 else {
            close(fd)
            throw DaemonError.pidFile(path: path, reason: "another process holds it (is another swiftkvm using it?)")
        }
        let text = "\(getpid())\n"
        guard ftruncate(fd, 0) == 0, write(fd, text, text.utf8.count) == text.utf8.count else {
            let reason = Errno.text(errno)
            close(fd)
            throw DaemonError.pidFile(path: path, reason: reason)
        }
        // The descriptor stays open (and locked) until the process ends.
        pidFilePath = path
        atexit { if let path = pidFilePath { unlink(path) } }
    }
}

/// Read by the atexit handler, which cannot capture context.
nonisolated(unsafe) private var pidFilePath: String?
