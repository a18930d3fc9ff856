import Glibc

/// Puts the controlling terminal into the mode the front end needs and puts it back on every
/// way out, including exit() from any thread and signals (see TerminationSignals).
///
/// The mode is "raw" except that output processing stays on, so "\n" still moves to the next
/// line's start (QEMU does the same for `-nographic`). Signals from keys (Ctrl-C) are on or
/// off by choice: off when the guest console shares the terminal, so Ctrl-C reaches the guest.
final class TerminalMode {
    let fd: Int32
    private let original: termios

    /// Nil when `fd` is not a terminal.
    init?(fd: Int32) {
        var settings = termios()
        guard isatty(fd) == 1, tcgetattr(fd, &settings) == 0 else { return nil }
        self.fd = fd
        self.original = settings
    }

    func enterRaw(keySignals: Bool) {
        var settings = original
        settings.c_iflag &= ~tcflag_t(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON)
        settings.c_oflag |= tcflag_t(OPOST)
        settings.c_lflag &= ~tcflag_t(ECHO | ECHONL | ICANON | IEXTEN)
        if keySignals { settings.c_lflag |= tcflag_t(ISIG) } else { settings.c_lflag &= ~tcflag_t(ISIG) }
        settings.c_cflag &= ~tcflag_t(CSIZE | PARENB)
        settings.c_cflag |= tcflag_t(CS8)
        withUnsafeMutableBytes(of: &settings.c_cc) { controlChars in
            // SAFETY: VMIN and VTIME are indices inside c_cc (NCCS entries).
            controlChars[Int(VMIN)] = 1
            controlChars[Int(VTIME)] = 0
        }
        terminalToRestore = original
        terminalToRestoreFD = fd
        installSignalHandlers()
        _ = tcsetattr(fd, TCSANOW, &settings)
    }

    func restore() {
        var settings = original
        _ = tcsetattr(fd, TCSANOW, &settings)
        terminalToRestoreFD = -1
    }
}

// Read by the signal handler, so plain globals set before the handler is installed.
private var terminalToRestore = termios()
private var terminalToRestoreFD: Int32 = -1
private var signalHandlersInstalled = false

private func installSignalHandlers() {
    guard !signalHandlersInstalled else { return }
    signalHandlersInstalled = true
    // Someone calling exit() while the terminal is raw (a vCPU thread on guest shutdown).
    atexit {
        if terminalToRestoreFD >= 0 { _ = tcsetattr(terminalToRestoreFD, TCSANOW, &terminalToRestore) }
    }
    // SIGINT, SIGTERM and SIGHUP end the process in order (TerminationSignals); SIGQUIT at once.
    // Only async-signal-safe calls in here: tcsetattr, write, _exit.
    signal(SIGQUIT) { received in
        restoreTerminalAfterSignal()
        let message: StaticString = "\r\nswiftkvm: terminating on signal\n"
        _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
        _exit(128 + received)
    }
}

/// Async-signal-safe: puts the terminal back if it is raw.
func restoreTerminalAfterSignal() {
    if terminalToRestoreFD >= 0 { _ = tcsetattr(terminalToRestoreFD, TCSANOW, &terminalToRestore) }
}
