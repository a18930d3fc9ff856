/// Just enough of the PS/2 controller for a guest to reset the machine (command 0xFE on port
/// 0x64, or clearing bit 0 of the output port) and to find no keyboard data waiting.
/// It claims ports 0x60 (offset 0, data) and 0x64 (offset 4, status/command); port 0x61 in
/// between belongs to KVM's in-kernel PIT (speaker).
public final class I8042: PortDevice, StatefulDevice {
    public let name = "i8042"
    public let portRanges = [PortRange(base: I8042.base + I8042.dataOffset, count: 1),
                             PortRange(base: I8042.base + I8042.commandOffset, count: 1)]
    public static let base: UInt16 = 0x60
    static let dataOffset: UInt16 = 0
    static let commandOffset: UInt16 = 4

    static let writeCommandByte: UInt8 = 0x60
    static let writeOutputPort: UInt8 = 0xd1
    static let pulseResetLine: UInt8 = 0xfe
    static let commandsWithParameter: Set<UInt8> = [writeCommandByte, writeOutputPort]

    public private(set) var state: I8042State
    private let onReset: () -> Void

    public init(state: I8042State = I8042State(), onReset: @escaping () -> Void) {
        self.state = state
        self.onReset = onReset
    }

    public func restore(_ state: I8042State) {
        self.state = state
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        switch offset {
        case Self.dataOffset: return 0  // no keyboard: nothing ever waits in the output buffer
        case Self.commandOffset: return 0  // status: output and input buffers empty
        default: return allOnes(size: size)
        }
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        switch offset {
        case Self.commandOffset:
            writeCommand(byte)
        case Self.dataOffset:
            writeData(byte)
        default:
            break
        }
    }

    private func writeCommand(_ command: UInt8) {
        state.pendingCommand = Self.commandsWithParameter.contains(command) ? command : 0
        if command == Self.pulseResetLine { onReset() }
    }

    private func writeData(_ byte: UInt8) {
        let command = state.pendingCommand
        state.pendingCommand = 0
        switch command {
        case Self.writeCommandByte:
            state.commandByte = byte
        case Self.writeOutputPort:
            state.outputPort = byte
            if byte & 0x01 == 0 { onReset() }
        default:
            break  // keyboard commands: there is no keyboard to answer them
        }
    }
}
