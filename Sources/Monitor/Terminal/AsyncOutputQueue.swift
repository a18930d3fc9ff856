import Glibc
import SystemSupport

/// Collects text from any thread and wakes the front end's poll loop through a self-pipe;
/// the loop takes the text and prints it above the line being edited.
final class AsyncOutputQueue: AsyncOutput {
    /// Past this many bytes waiting, more text is dropped rather than growing memory while
    /// the loop is stuck (for example on a terminal that stopped reading).
    static let maxQueuedBytes = 4 << 20

    let wakeReadFD: Int32
    private let wakeWriteFD: Int32
    private let lock = Mutex()
    private var queued: [UInt8] = []

    init() throws {
        (wakeReadFD, wakeWriteFD) = try FrontendError.wakeupPipe()
    }

    func printAsync(_ text: String) {
        lock.lock()
        let wasEmpty = queued.isEmpty
        let room = Self.maxQueuedBytes - queued.count
        if room > 0 { queued.append(contentsOf: text.utf8.prefix(room)) }
        lock.unlock()
        if wasEmpty { wake() }
    }

    /// Interrupts the loop's poll; a full pipe already means a wakeup is pending.
    func wake() {
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    /// Called by the loop when the wake pipe is readable.
    func takeQueued() -> [UInt8] {
        while case .bytes = FileIO.read(wakeReadFD, upTo: 256) {}
        lock.lock()
        defer { lock.unlock() }
        let text = queued
        queued.removeAll()
        return text
    }

    deinit {
        FileIO.close(wakeReadFD)
        FileIO.close(wakeWriteFD)
    }
}
