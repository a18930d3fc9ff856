/// Cuts a byte stream into lines. A line longer than `maxLineBytes` is not kept in memory:
/// its bytes are skipped up to the next newline and it is reported as `.tooLong`.
public struct LineSplitter {
    public enum Piece: Equatable {
        case line(String)
        case tooLong(byteCount: Int)
    }

    public static let defaultMaxLineBytes = 1 << 20

    public let maxLineBytes: Int
    private var current: [UInt8] = []
    private var skippedBytes = 0
    private var skipping = false

    public init(maxLineBytes: Int = LineSplitter.defaultMaxLineBytes) {
        self.maxLineBytes = maxLineBytes
    }

    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Piece] where Bytes.Element == UInt8 {
        var pieces: [Piece] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                pieces.append(endLine())
            } else if skipping {
                skippedBytes += 1
            } else if current.count == maxLineBytes {
                skipping = true
                skippedBytes = current.count + 1
                current.removeAll()
            } else {
                current.append(byte)
            }
        }
        return pieces
    }

    /// The end of the stream: a last line without a newline still counts.
    public mutating func finish() -> [Piece] {
        (current.isEmpty && !skipping) ? [] : [endLine()]
    }

    private mutating func endLine() -> Piece {
        defer { current.removeAll(keepingCapacity: true); skipping = false; skippedBytes = 0 }
        if skipping { return .tooLong(byteCount: skippedBytes) }
        // Clients on sockets often end lines with "\r\n".
        if current.last == UInt8(ascii: "\r") { current.removeLast() }
        return .line(String(decoding: current, as: UTF8.self))
    }
}
