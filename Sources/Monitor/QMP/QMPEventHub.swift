import Glibc
import Machine
import SystemSupport

/// Collects QMP events from any thread (vCPU, migration, monitor) and wakes the poll loop,
/// which hands them to every negotiated client. Also turns run-state changes into QEMU's
/// STOP / RESUME / SHUTDOWN events: the machine reports states, not transitions.
public final class QMPEventHub: @unchecked Sendable {
    /// Past this many waiting events the oldest are dropped: a stuck loop must not grow memory.
    static let maxQueued = 4096

    let wakeReadFD: Int32
    private let wakeWriteFD: Int32
    private let lock = Mutex()
    private var queued: [JSONValue] = []
    private var lastState: RunState

    public init(initialState: RunState) throws {
        (wakeReadFD, wakeWriteFD) = try FrontendError.wakeupPipe()
        lastState = initialState
    }

    deinit {
        FileIO.close(wakeReadFD)
        FileIO.close(wakeWriteFD)
    }

    public func emit(_ name: String, data: JSONValue = .emptyObject) {
        let event = QMPSession.event(name, data: data)
        lock.withLock {
            queued.append(event)
            if queued.count > Self.maxQueued { queued.removeFirst(queued.count - Self.maxQueued) }
        }
        var byte: UInt8 = 1
        _ = write(wakeWriteFD, &byte, 1)
    }

    /// Add this to `Machine.runStateObservers`.
    public func machineStateChanged(_ state: RunState) {
        let previous: RunState = lock.withLock {
            defer { lastState = state }
            return lastState
        }
        if state == .paused(.shutdown) && previous != state {
            emit("SHUTDOWN", data: .object([("guest", .bool(true)), ("reason", .string("guest-shutdown"))]))
        }
        if previous.isRunning && !state.isRunning { emit("STOP") }
        if !previous.isRunning && state.isRunning { emit("RESUME") }
    }

    /// Called by the loop when the wake pipe is readable.
    func takeQueued() -> [JSONValue] {
        while case .bytes = FileIO.read(wakeReadFD, upTo: 256) {}
        return lock.withLock {
            defer { queued.removeAll() }
            return queued
        }
    }
}
