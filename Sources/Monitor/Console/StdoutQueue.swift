import Glibc
import SystemSupport

/// Standard output when it is not a terminal (a pipe, a file, a socket): non-blocking, with a
/// bounded queue that the poll loop writes as the reader takes it, so a reader that stalls
/// never stops the loop (and with it the monitors and QMP). Past `maxQueuedBytes`, guest
/// console output is dropped, as the pty back end drops what nobody reads; the monitor's own
/// output is always kept, and the caller stops reading a piped script while `isFull`.
/// A terminal on stdout is written as before, blocking (TerminalSession's).
final class StdoutQueue {
    static let maxQueuedBytes = 1 << 20

    let fd: Int32
    /// The flags to put back at exit: stdout's open file may be shared with other processes.
    private let originalFlags: Int32?
    private var queued: [UInt8] = []
    private var queuedStart = 0
    private(set) var droppedBytes = 0
    private var failed = false

    init(fd: Int32 = 1) {
        self.fd = fd
        let flags = fcntl(fd, F_GETFL)
        if isatty(fd) == 0 && flags >= 0 && flags & O_NONBLOCK == 0 && fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 {
            originalFlags = flags
        } else {
            originalFlags = nil
        }
    }

    var pendingBytes: Int { queued.count - queuedStart }
    var wantsWrite: Bool { !failed && pendingBytes > 0 }
    var isFull: Bool { pendingBytes >= Self.maxQueuedBytes }

    /// Queues `bytes` and writes what the descriptor takes now. `droppable` output (the
    /// guest's) is cut at the bound.
    func write(_ bytes: [UInt8], droppable: Bool) {
        guard !failed, !bytes.isEmpty else { return }
        var rest = bytes[...]
        if droppable {
            let room = max(0, Self.maxQueuedBytes - pendingBytes)
            if rest.count > room {
                droppedBytes += rest.count - room
                rest = rest.prefix(room)
            }
        }
        queued.append(contentsOf: rest)
        flush()
    }

    func write(_ text: String) { write(Array(text.utf8), droppable: false) }

    /// Writes what the descriptor takes now.
    func flush() {
        guard wantsWrite else { return }
        guard let written = FileIO.writeSome(fd, queued[queuedStart...], isSocket: false) else {
            // The reader went away (EPIPE): nothing more can be delivered.
            failed = true
            queued.removeAll()
            queuedStart = 0
            return
        }
        queuedStart += written
        if queuedStart == queued.count {
            queued.removeAll(keepingCapacity: queued.count <= 64 << 10)
            queuedStart = 0
        } else if queuedStart >= 64 << 10 && queuedStart * 2 >= queued.count {
            queued.removeFirst(queuedStart)
            queuedStart = 0
        }
    }

    /// At exit: waits for the reader to take everything queued, giving up after
    /// `noProgressMilliseconds` in which it took nothing. Then restores stdout's flags.
    func finish(noProgressMilliseconds: Int32) {
        while wantsWrite {
            var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let n = Errno.retryingInterrupted { poll(&ready, 1, noProgressMilliseconds) }
            guard n > 0 else { break }
            let before = pendingBytes
            flush()
            if pendingBytes == before && ready.revents & Int16(POLLOUT) == 0 { break }
        }
        if let originalFlags { _ = fcntl(fd, F_SETFL, originalFlags) }
    }
}
