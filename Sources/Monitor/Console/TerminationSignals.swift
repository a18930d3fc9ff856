import Glibc

/// SIGINT, SIGTERM and SIGHUP end swiftkvm the orderly way, as they end QEMU: the poll loop
/// hears of the signal and returns, so the terminal is restored, sockets are closed and exit
/// handlers run (the PID file is removed). A second signal while the loop is busy (a piped
/// `migrate` that waits) ends the process at once.
enum TerminationSignals {
    static let handled = [SIGINT, SIGTERM, SIGHUP]

    /// Installs the handlers once and returns the descriptor to watch: each signal arrives
    /// there as one byte holding its number. Nil if no pipe could be made (the default
    /// actions then stay in place).
    static func install() -> Int32? {
        if signalPipeRead >= 0 { return signalPipeRead }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return nil }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        signalPipeRead = fds[0]
        signalPipeWrite = fds[1]
        for signalNumber in handled {
            // Only async-signal-safe calls in here: write, and on the second signal tcsetattr and _exit.
            signal(signalNumber) { received in
                signalsReceived += 1
                if signalsReceived > 1 {
                    restoreTerminalAfterSignal()
                    let message: StaticString = "\r\nswiftkvm: terminating at once on a second signal\n"
                    _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
                    _exit(128 + received)
                }
                var byte = UInt8(truncatingIfNeeded: received)
                _ = write(signalPipeWrite, &byte, 1)
            }
        }
        return signalPipeRead
    }

    /// The signal number waiting on the pipe, if any.
    static func take() -> Int32? {
        var byte: UInt8 = 0
        guard signalPipeRead >= 0, read(signalPipeRead, &byte, 1) == 1 else { return nil }
        return Int32(byte)
    }
}

// Read by the signal handler, so plain globals set before the handlers are installed.
private var signalPipeRead: Int32 = -1
private var signalPipeWrite: Int32 = -1
private var signalsReceived = 0
