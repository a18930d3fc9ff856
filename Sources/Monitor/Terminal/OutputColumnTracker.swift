/// Follows where the terminal's cursor stands within the last line of output that was not
/// ended, so text printed above the monitor prompt can continue that line instead of
/// breaking it. Counts columns roughly: one per character, tabs to the next multiple of 8,
/// other control bytes none.
public struct OutputColumnTracker: Equatable {
    /// Columns taken by the unfinished last line; 0 when the last output ended a line.
    public private(set) var column = 0

    public init() {}

    public var hasPartialLine: Bool { column > 0 }

    public mutating func append<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\n"), UInt8(ascii: "\r"): column = 0
            case UInt8(ascii: "\t"): column = (column / 8 + 1) * 8
            case 0x80...0xBF: break  // UTF-8 continuation byte: same character
            case 0x20...0xFF: column += 1
            default: break
            }
        }
    }

    /// The cursor was put on a fresh line by other means.
    public mutating func reset() { column = 0 }

    /// Marks the cursor as `columns` into an unfinished line (a prompt left on screen).
    public mutating func setColumn(_ columns: Int) { column = max(columns, 0) }

    /// Where to put the cursor, relative to the start of the line just below the partial
    /// line, to continue it: rows up and columns right. A partial line that exactly fills
    /// the screen width already continues on the row below.
    public func continuationMove(screenWidth: Int) -> (up: Int, right: Int) {
        guard hasPartialLine else { return (0, 0) }
        let width = max(screenWidth, 1)
        let columnInRow = column % width
        return columnInRow == 0 ? (0, 0) : (1, columnInRow)
    }
}
