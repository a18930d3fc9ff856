/// Just enough of the PS/2 controller for a guest to reset the machine (command 0xFE on port
/// 0x64, or clearing bit 0 of the output port) and to find no keyboard data waiting.
/// Register it at base 0x60 with count 5: offset 0 is data, offset 4 is status/command. Port
/// 0x61 in between belongs to KVM's in-kernel PIT (speaker), so offsets 1-3 never reach us and
/// read as all ones if they do.
public final class I8042: PortDevice {
    public static let base: UInt16 = 0x60
    public static let portCount: UInt16 = 5
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

    public func read(offset: UInt16, size: Int) -> UInt32 {
        switch offset {
        case Self.dataOffset: return 0  // no keyboard: nothing ever waits in the output buffer
        case Self.commandOffset: return 0  // status: output and input buffers empty
        default: return allOnes(size: size)
        }
    }

    public func write(offset: UInt16, size: Int, value: UInt32) {
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
