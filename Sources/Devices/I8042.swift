/// The PS/2 controller as far as a kernel probes it, with nothing plugged into its keyboard
/// and mouse ports: the controller configuration byte (commands 0x20/0x60), self-tests
/// (0xAA -> 0x55, 0xAB/0xA9 -> 0x00), port enables (0xA7/0xA8/0xAD/0xAE), output-port access
/// (0xD0/0xD1), the loopback writes (0xD2/0xD3) and reset (0xFE, or output-port bit 0 low).
/// Bytes sent to the absent keyboard or mouse come back as 0xFE with the timeout bit set, as
/// a real controller reports a missing device. IRQ 1 and IRQ 12 follow the output buffer.
///
/// It claims ports 0x60 (offset 0, data) and 0x64 (offset 4, status/command); port 0x61 in
/// between belongs to KVM's in-kernel PIT (speaker).
public final class I8042: PortDevice, StatefulDevice {
    public let name = "i8042"
    public let portRanges = [PortRange(base: I8042.base + I8042.dataOffset, count: 1),
                             PortRange(base: I8042.base + I8042.commandOffset, count: 1)]
    public static let base: UInt16 = 0x60
    public static let keyboardIRQ: UInt32 = 1
    public static let mouseIRQ: UInt32 = 12
    static let dataOffset: UInt16 = 0
    static let commandOffset: UInt16 = 4

    // Controller commands (written to port 0x64).
    static let readCommandByte: UInt8 = 0x20
    static let writeCommandByte: UInt8 = 0x60
    static let disableMousePort: UInt8 = 0xa7
    static let enableMousePort: UInt8 = 0xa8
    static let testMousePort: UInt8 = 0xa9
    static let selfTest: UInt8 = 0xaa
    static let testKeyboardPort: UInt8 = 0xab
    static let disableKeyboardPort: UInt8 = 0xad
    static let enableKeyboardPort: UInt8 = 0xae
    static let readOutputPort: UInt8 = 0xd0
    static let writeOutputPort: UInt8 = 0xd1
    static let writeKeyboardOutput: UInt8 = 0xd2
    static let writeMouseOutput: UInt8 = 0xd3
    static let writeToMouse: UInt8 = 0xd4
    static let pulseResetLine: UInt8 = 0xfe
    static let commandsWithParameter: Set<UInt8> = [writeCommandByte, writeOutputPort, writeKeyboardOutput, writeMouseOutput, writeToMouse]

    static let selfTestPassed: UInt8 = 0x55
    static let portTestPassed: UInt8 = 0x00
    /// What a controller reports for a byte no device acknowledged.
    static let noDeviceResponse: UInt8 = 0xfe

    // Status register bits (port 0x64 reads).
    static let statusOutputFull: UInt8 = 1 << 0
    static let statusSystemFlag: UInt8 = 1 << 2
    static let statusLastWasCommand: UInt8 = 1 << 3
    static let statusNotInhibited: UInt8 = 1 << 4
    static let statusMouseData: UInt8 = 1 << 5
    static let statusTimeout: UInt8 = 1 << 6

    // Controller configuration byte bits.
    static let ctrKeyboardInterrupt: UInt8 = 1 << 0
    static let ctrMouseInterrupt: UInt8 = 1 << 1
    static let ctrKeyboardDisabled: UInt8 = 1 << 4
    static let ctrMouseDisabled: UInt8 = 1 << 5

    public private(set) var state: I8042State
    private let onReset: () -> Void
    private let onInterrupt: (UInt32, Bool) -> Void
    private var keyboardLine = false
    private var mouseLine = false

    /// - Parameter onInterrupt: the level of IRQ 1 or IRQ 12 changed.
    public init(state: I8042State = I8042State(), onReset: @escaping () -> Void,
                onInterrupt: @escaping (UInt32, Bool) -> Void = { _, _ in }) {
        self.state = state
        self.onReset = onReset
        self.onInterrupt = onInterrupt
    }

    public func restore(_ state: I8042State) {
        self.state = state
        updateInterrupts()
    }

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        switch offset {
        case Self.dataOffset: return UInt32(readData())
        case Self.commandOffset: return UInt32(status)
        default: return allOnes(size: size)
        }
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        let byte = UInt8(truncatingIfNeeded: value)
        switch offset {
        case Self.commandOffset:
            state.lastWriteWasCommand = true
            writeCommand(byte)
        case Self.dataOffset:
            state.lastWriteWasCommand = false
            writeData(byte)
        default:
            break
        }
        updateInterrupts()
    }

    var status: UInt8 {
        var s = Self.statusSystemFlag | Self.statusNotInhibited
        if state.outputFull { s |= Self.statusOutputFull }
        if state.outputFull && state.outputFromMouse { s |= Self.statusMouseData }
        if state.lastWriteWasCommand { s |= Self.statusLastWasCommand }
        if state.timeout { s |= Self.statusTimeout }
        return s
    }

    private func readData() -> UInt8 {
        state.outputFull = false
        state.timeout = false
        updateInterrupts()
        return state.output
    }

    private func output(_ byte: UInt8, fromMouse: Bool = false, timeout: Bool = false) {
        state.output = byte
        state.outputFull = true
        state.outputFromMouse = fromMouse
        state.timeout = timeout
    }

    private func writeCommand(_ command: UInt8) {
        state.pendingCommand = Self.commandsWithParameter.contains(command) ? command : 0
        switch command {
        case Self.readCommandByte: output(state.commandByte)
        case Self.disableMousePort: state.commandByte |= Self.ctrMouseDisabled
        case Self.enableMousePort: state.commandByte &= ~Self.ctrMouseDisabled
        case Self.testMousePort, Self.testKeyboardPort: output(Self.portTestPassed)
        case Self.selfTest: output(Self.selfTestPassed)
        case Self.disableKeyboardPort: state.commandByte |= Self.ctrKeyboardDisabled
        case Self.enableKeyboardPort: state.commandByte &= ~Self.ctrKeyboardDisabled
        case Self.readOutputPort: output(state.outputPort)
        case Self.pulseResetLine: onReset()
        default: break
        }
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
        case Self.writeKeyboardOutput:
            output(byte)
        case Self.writeMouseOutput:
            output(byte, fromMouse: true)
        case Self.writeToMouse:
            output(Self.noDeviceResponse, fromMouse: true, timeout: true)
        default:
            // A byte for the keyboard, and there is none.
            state.commandByte &= ~Self.ctrKeyboardDisabled  // writing to the device enables its port
            output(Self.noDeviceResponse, timeout: true)
        }
    }

    private func updateInterrupts() {
        let keyboard = state.outputFull && !state.outputFromMouse && state.commandByte & Self.ctrKeyboardInterrupt != 0
        let mouse = state.outputFull && state.outputFromMouse && state.commandByte & Self.ctrMouseInterrupt != 0
        if keyboard != keyboardLine { keyboardLine = keyboard; onInterrupt(Self.keyboardIRQ, keyboard) }
        if mouse != mouseLine { mouseLine = mouse; onInterrupt(Self.mouseIRQ, mouse) }
    }
}
