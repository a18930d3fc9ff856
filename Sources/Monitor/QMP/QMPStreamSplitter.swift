/// Cuts a QMP input stream into messages. Clients need not end messages with a newline
/// (qemu.qmp does not), so a message ends where its outermost braces close, counted outside
/// strings. Stray text between messages comes out as its own piece, which then fails to
/// parse and gets an error reply, as QEMU's streaming parser does.
public struct QMPStreamSplitter {
    public enum Piece: Equatable {
        case message([UInt8])
        /// A message grew past `maxMessageBytes`; the stream cannot be trusted after this.
        case tooLong
    }

    /// QEMU's own limit for one QMP message (MAX_TOKEN_SIZE) is 64 MiB; 1 MiB is plenty for
    /// every command here and bounds what one client can make this process hold.
    public static let defaultMaxMessageBytes = 1 << 20

    public let maxMessageBytes: Int
    private var pending: [UInt8] = []
    private var depth = 0
    private var inString = false
    private var escaped = false
    /// Outside braces: collecting a bare word (`foo`, `42`) up to the next delimiter.
    private var inBareWord = false
    private var failed = false

    public init(maxMessageBytes: Int = QMPStreamSplitter.defaultMaxMessageBytes) {
        self.maxMessageBytes = maxMessageBytes
    }

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Piece] where Bytes.Element == UInt8 {
        guard !failed else { return [] }
        var pieces: [Piece] = []
        for byte in bytes {
            let isSpace = byte == 0x20 || byte == 0x0a || byte == 0x0d || byte == 0x09
            if inBareWord {
                if isSpace || byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    pieces.append(.message(pending))
                    pending.removeAll(keepingCapacity: true)
                    inBareWord = false
                    if isSpace { continue }
                } else {
                    pending.append(byte)
                    if pending.count > maxMessageBytes { failed = true; pieces.append(.tooLong); return pieces }
                    continue
                }
            }
            if depth == 0 {
                if isSpace { continue }
                pending.append(byte)
                if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    depth = 1
                } else {
                    inBareWord = true
                }
                continue
            }
            pending.append(byte)
            if pending.count > maxMessageBytes { failed = true; pieces.append(.tooLong); return pieces }
            if inString {
                if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch byte {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"):
                depth -= 1
                if depth == 0 {
                    pieces.append(.message(pending))
                    pending.removeAll(keepingCapacity: true)
                }
            default: break
            }
        }
        return pieces
    }
}
