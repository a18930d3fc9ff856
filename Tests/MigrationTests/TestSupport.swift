import Foundation
import Glibc
import Machine
@testable import Migration
import SystemSupport

/// Runs `body` on a thread of its own; `wait()` returns its result.
final class Background<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, Error>?

    init(_ body: @escaping () throws -> T) {
        Thread { [self] in
            result = Result { try body() }
            done.signal()
        }.start()
    }

    /// Returns the result; a guard against hangs, not a timing assertion: a thread still
    /// blocked after two minutes is reported as a failure instead of stalling the suite.
    func wait() -> Result<T, Error> {
        guard done.wait(timeout: .now() + 120) == .success else { return .failure(StuckThread()) }
        return result!
    }
}

struct StuckThread: Error, CustomStringConvertible {
    var description: String { "the background thread never finished" }
}

/// Collects events from the migration thread.
final class EventLog: @unchecked Sendable {
    private let lock = Mutex()
    private var items: [MigrationEvent] = []
    var onEvent: ((MigrationEvent) -> Void)?

    func record(_ event: MigrationEvent) {
        lock.withLock { items.append(event) }
        onEvent?(event)
    }

    var events: [MigrationEvent] { lock.withLock { items } }
    var passes: [PassReport] {
        events.compactMap { if case .passCompleted(let report) = $0 { return report } else { return nil } }
    }
    var outcome: MigrationOutcome? {
        events.compactMap { if case .finished(let outcome) = $0 { return outcome } else { return nil } }.last
    }
}

private let pathCounter = Mutex()
private var nextPath = 0

func temporarySocketPath() -> String {
    let n = pathCounter.withLock { () -> Int in nextPath += 1; return nextPath }
    return "/tmp/swiftkvm-migtest-\(getpid())-\(n).sock"
}

/// A connected pair of unix stream sockets: (source end, destination end).
func socketPair() -> (Int32, Int32) {
    var fds: [Int32] = [0, 0]
    _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
    return (fds[0], fds[1])
}

/// Everything a source with `machine`'s RAM and state would send (one pass, then state),
/// produced by the real writer and sender, captured as bytes.
/// `runState` adds the migration's run-state section (nil: a stream without it, as 1.0 wrote).
/// `configure` runs right after the layout (compression: `startCompression`).
func captureStream(of machine: FakeMachine, runState: RunState? = nil, extraSections: [StateSection] = [],
                   configure: (StreamWriter) -> Void = { _ in }) throws -> [UInt8] {
    let (sendFD, receiveFD) = socketPair()
    let collector = Background { () -> [UInt8] in
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(receiveFD, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        close(receiveFD)
        return bytes
    }
    let socket = MigrationStream(fd: sendFD)
    let writer = StreamWriter(socket: socket)
    writer.writeHeader()
    writer.writeLayout(machine.layout)
    configure(writer)
    let sender = PageSender(writer: writer, regions: machine.ramRegions, limiter: BandwidthLimiter(bytesPerSecond: 0),
                            checkpoint: {}, shouldStop: { false }, progress: { _ in })
    _ = try sender.send(.all)
    writer.writePassEnd(1)
    for section in try machine.saveState().sections { try writer.writeState(section) }
    if let runState { try writer.writeState(RunStateSection.section(for: runState)) }
    for section in extraSections { try writer.writeState(section) }
    try writer.writeEnd()
    socket.close()
    return try collector.wait().get()
}

/// Feeds `bytes` to a destination over a socket pair, then closes the sending side.
func receive(_ bytes: [UInt8], into machine: FakeMachine, resume: Bool = true) -> (Result<IncomingReport, Error>, ReturnPath.Reply?) {
    let (sendFD, receiveFD) = socketPair()
    var size: Int32 = 8 << 20
    _ = setsockopt(sendFD, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    let feeder = Background { () -> ReturnPath.Reply? in
        let socket = MigrationStream(fd: sendFD)
        try? bytes.withUnsafeBytes { try socket.writeAll($0, operation: "test") }
        socket.shutdownWrite()
        return try? ReturnPath.readReply(from: socket)
    }
    let connection = MigrationStream(fd: receiveFD)
    let result = Result { try StreamReceiver.receive(from: connection, into: machine, resume: resume) }
    connection.close()
    let reply = (try? feeder.wait().get()) ?? nil
    return (result, reply)
}
