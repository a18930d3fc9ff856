import Glibc

/// One client's view of the protocol, without sockets: bytes in, JSON lines out. Starts in
/// capabilities-negotiation mode (only `qmp_capabilities` is accepted, as in QEMU), then
/// runs commands from the table. Events reach it only once negotiated.
public final class QMPSession {
    public static let greeting: JSONValue = .object([("QMP", .object([
        ("version", .object([
            ("qemu", .object([("major", .integer(7)), ("minor", .integer(2)), ("micro", .integer(0))])),
            ("package", .string("swiftkvm \(SwiftKVMVersion.string)")),
        ])),
        ("capabilities", .array([])),
    ]))])

    private let table: QMPCommandTable
    private var splitter: QMPStreamSplitter
    /// Framed messages not yet run, from `nextPiece` on.
    private var pending: [QMPStreamSplitter.Piece] = []
    private var nextPiece = 0
    public private(set) var negotiated = false
    /// Set after a message too long to frame: the owner sends what is queued and hangs up.
    public private(set) var mustClose = false

    /// - Parameter maxMessageBytes: the framing bound; smaller only in tests and fuzzing.
    public init(table: QMPCommandTable, maxMessageBytes: Int = QMPStreamSplitter.defaultMaxMessageBytes) {
        self.table = table
        splitter = QMPStreamSplitter(maxMessageBytes: maxMessageBytes)
    }

    /// Lines to send, each a whole JSON message ending in CR LF, as QEMU writes them.
    public static func line(_ value: JSONValue) -> String { value.serialized + "\r\n" }

    /// Feeds received bytes; returns the reply lines in order.
    public func receive<Bytes: Sequence>(_ bytes: Bytes) -> [String] where Bytes.Element == UInt8 {
        feed(bytes)
        var replies: [String] = []
        while let reply = nextReply() { replies.append(reply) }
        return replies
    }

    /// Frames received bytes into messages without running them yet.
    public func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if nextPiece == pending.count { pending.removeAll(); nextPiece = 0 }
        pending += splitter.feed(bytes)
    }

    /// True while framed messages wait for `nextReply`.
    public var hasPendingMessages: Bool { nextPiece < pending.count }

    /// Runs the next framed message and returns its reply line; nil when none waits. A
    /// server calls this only while the client reads its replies, so a client that
    /// pipelines commands never makes us build more replies than it takes.
    public func nextReply() -> String? {
        guard nextPiece < pending.count else { return nil }
        let piece = pending[nextPiece]
        pending[nextPiece] = .message([])
        nextPiece += 1
        switch piece {
        case .message(let message):
            return Self.line(handle(message))
        case .tooLong:
            pending.removeAll()
            nextPiece = 0
            let error = QMPError("JSON message longer than \(splitter.maxMessageBytes) bytes; closing the connection")
            mustClose = true
            return Self.line(.object([("error", error.json)]))
        }
    }

    func handle(_ bytes: [UInt8]) -> JSONValue {
        let message: JSONValue
        do {
            message = try JSONParser.parse(bytes)
        } catch {
            return .object([("error", QMPError("\(error)").json)])
        }
        let id = message["id"]
        func reply(_ body: (String, JSONValue)) -> JSONValue {
            .object([body] + (id.map { [("id", $0)] } ?? []))
        }
        do {
            return reply(("return", try execute(message)))
        } catch let error as QMPError {
            return reply(("error", error.json))
        } catch {
            return reply(("error", QMPError("\(error)").json))
        }
    }

    private func execute(_ message: JSONValue) throws -> JSONValue {
        guard case .object(let members) = message else { throw QMPError("QMP input must be a JSON object") }
        for (key, _) in members where !["execute", "arguments", "id"].contains(key) {
            throw QMPError("QMP input member '\(key)' is unexpected")
        }
        guard let executeValue = message["execute"] else { throw QMPError("QMP input lacks member 'execute'") }
        guard case .string(let name) = executeValue else { throw QMPError("QMP input member 'execute' must be a string") }
        if let arguments = message["arguments"], case .object = arguments {} else if message["arguments"] != nil {
            throw QMPError("QMP input member 'arguments' must be an object")
        }

        if name == "qmp_capabilities" {
            guard !negotiated else {
                throw QMPError(.commandNotFound, "Capabilities negotiation is already complete, command ignored")
            }
            let arguments = try QMPArguments(message["arguments"], allowed: ["enable"])
            if case .array(let wanted)? = arguments["enable"], let first = wanted.first {
                let shown = { if case .string(let s) = first { return s } else { return first.serialized } }()
                throw QMPError("Capability '\(shown)' not available")
            } else if let enable = arguments["enable"], enable.typeName != "array" {
                throw QMPError.wrongType("enable", expected: "array")
            }
            negotiated = true
            return .emptyObject
        }
        guard negotiated else {
            throw QMPError(.commandNotFound, "Expecting capabilities negotiation with 'qmp_capabilities'")
        }
        if name == "query-commands" {
            _ = try QMPArguments(message["arguments"], allowed: [])
            return .array(table.names.map { .object([("name", .string($0))]) })
        }
        guard let command = table.command(named: name) else {
            throw QMPError(.commandNotFound, "The command \(name) has not been found")
        }
        return try table.execute(command, try QMPArguments(message["arguments"], allowed: command.arguments))
    }

    /// `{"event": NAME, "data": {...}, "timestamp": {...}}`, stamped with the wall clock.
    public static func event(_ name: String, data: JSONValue = .emptyObject) -> JSONValue {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return .object([
            ("event", .string(name)),
            ("data", data),
            ("timestamp", .object([("seconds", .integer(Int64(now.tv_sec))),
                                   ("microseconds", .integer(Int64(now.tv_nsec / 1000)))])),
        ])
    }
}
