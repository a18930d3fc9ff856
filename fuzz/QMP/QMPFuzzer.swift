import Glibc
import Machine
import Migration
@testable import Monitor

/// libFuzzer entry point for QMP: the JSON parser (every input, whole), and a session as a
/// client sees it (framing by QMPStreamSplitter, capabilities negotiation, the real command
/// table with its argument decoding, human-monitor-command into the monitor of FuzzMonitor).
/// The first byte chooses whether the session starts negotiated and how the rest is cut into
/// reads, so messages split across reads are covered. Error replies are expected; traps,
/// sanitizer reports and the invariants below are findings.

private let verbose = getenv("SWIFTKVM_FUZZ_VERBOSE") != nil
private let events: QMPEventHub = {
    guard let hub = try? QMPEventHub(initialState: .running) else { abort() }
    return hub
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    checkRoundTrip(bytes)
    guard let control = bytes.first else { return 0 }
    // A framing bound that small inputs can pass, so the too-long path is fuzzed too.
    let session = QMPSession(table: table(), maxMessageBytes: 2048)
    if control & 1 != 0 { check(session.receive(Array(#"{"execute":"qmp_capabilities"}"#.utf8))) }
    let chunk = Int(control >> 1) + 1
    var offset = 1
    while offset < bytes.count && !session.mustClose {
        let end = min(bytes.count, offset + chunk)
        check(session.receive(bytes[offset..<end]))
        offset = end
    }
    _ = events.takeQueued()  // the server's loop would hand these to clients
    return 0
}

/// Whatever the parser accepts, whole or as one framed message of the rest, its own
/// serialization must parse back to the same value.
private func checkRoundTrip(_ bytes: [UInt8]) {
    var splitter = QMPStreamSplitter()
    let messages = splitter.feed(bytes.dropFirst()).compactMap { piece -> [UInt8]? in
        if case .message(let message) = piece { return message } else { return nil }
    }
    for message in [bytes] + messages {
        guard let value = try? JSONParser.parse(message) else { continue }
        guard let again = try? JSONParser.parse(value.serialized), same(again, value) else { abort() }
    }
}

/// Equality where numbers compare by value: a whole double is written without a fraction
/// (`1.0` as `1`, as QEMU prints its numbers) and reads back as an integer, which JSON,
/// having one number type, does not tell apart.
private func same(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.integer(let x), .double(let y)), (.double(let y), .integer(let x)): return Double(x) == y
    case (.array(let x), .array(let y)): return x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
    case (.object(let x), .object(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && same($0.1, $1.1) }
    default: return a == b
    }
}

/// Every reply is one line of JSON ending in CR LF, an object holding `return` or `error`.
private func check(_ replies: [String]) {
    for reply in replies {
        if verbose { fputs(reply, stderr) }
        // Bytes, not Characters: Swift counts "\r\n" as one.
        let line = Array(reply.utf8)
        guard line.count >= 2, line.suffix(2) == [0x0d, 0x0a] else { abort() }
        let body = line.dropLast(2)
        if body.contains(0x0a) || body.contains(0x0d) { abort() }
        guard let value = try? JSONParser.parse(Array(body)), case .object = value else { abort() }
        if (value["return"] == nil) == (value["error"] == nil) { abort() }
    }
}

/// The process's QMP table (QMPMachineCommands, QMPMigrationCommands) over fresh state;
/// `migrate` only decodes its arguments and parses the URI, like FuzzMonitor's.
private func table() -> QMPCommandTable {
    let backend = FuzzBackend()
    let machine = FuzzMachine(running: true)
    let controller = MigrationController()
    let interpreter = FuzzMonitor.interpreter(backend: backend, machine: machine, controller: controller)
    let table = QMPCommandTable()
    table.rules = interpreter.rules
    QMPMachineCommands.register(in: table, backend: backend, events: events,
                                humanMonitor: { interpreter.execute($0, mayWait: false) }, requestQuit: {})
    QMPMigrationCommands.register(in: table, controller: controller, machine: machine, events: events,
                                  startIncoming: { _ = try MigrationURI.parse($0) })
    table.register(QMPCommand("migrate", arguments: ["uri", "blk", "inc", "detach", "resume"]) { arguments in
        _ = try MigrationURI.parse(try arguments.string("uri"))
        for flag in ["blk", "inc", "detach", "resume"] { _ = try arguments.optionalBool(flag) }
        return .emptyObject
    })
    return table
}
