/// QEMU's `-nographic` multiplexer keys: Ctrl-a followed by a command key. Pure, so the key
/// handling is tested without a terminal.
public struct EscapeKeyDecoder: Equatable {
    public enum Action: Equatable {
        /// Bytes for whichever side has the focus.
        case forward([UInt8])
        case switchFocus
        case quit
        case help
    }

    public static let escapeByte: UInt8 = 0x01

    /// QEMU's help text for the keys this decoder knows, "\n\r" line ends as QEMU writes them.
    public static let helpText =
        "\n\r" +
        "C-a h    print this help\n\r" +
        "C-a x    exit emulator\n\r" +
        "C-a c    switch between console and monitor\n\r" +
        "C-a C-a  sends C-a\n\r"

    /// A Ctrl-a arrived and its command key has not.
    public private(set) var awaitingCommand = false

    public init() {}

    /// Runs bytes through the decoder. A Ctrl-a at the end of `bytes` is remembered for the
    /// next call, so a key pair split across reads still works.
    public mutating func feed<Bytes: Sequence>(_ bytes: Bytes) -> [Action] where Bytes.Element == UInt8 {
        var actions: [Action] = []
        var plain: [UInt8] = []
        func flushPlain() {
            if !plain.isEmpty { actions.append(.forward(plain)); plain.removeAll() }
        }
        for byte in bytes {
            guard awaitingCommand else {
                if byte == Self.escapeByte { awaitingCommand = true } else { plain.append(byte) }
                continue
            }
            awaitingCommand = false
            switch byte {
            case Self.escapeByte: plain.append(byte)
            case UInt8(ascii: "c"): flushPlain(); actions.append(.switchFocus)
            case UInt8(ascii: "x"): flushPlain(); actions.append(.quit)
            case UInt8(ascii: "h"), UInt8(ascii: "?"): flushPlain(); actions.append(.help)
            default: break  // QEMU swallows unknown command keys too.
            }
        }
        flushPlain()
        return actions
    }
}
