/// A 16550A UART (COM1 is at 0x3f8, IRQ 4), modelled on rust-vmm vm-superio's serial.rs and
/// QEMU's serial.c. Output goes straight to `onTransmit`, so THR is always empty again at once;
/// input waits in a bounded queue until the guest reads it. Not thread-safe: the machine
/// serializes guest port accesses and host input.
public final class Serial16550: PortDevice, StatefulDevice {
    public static let com1Name = "serial0"
    public static let com1Base: UInt16 = 0x3f8
    public static let com1IRQ: UInt32 = 4
    public static let portCount: UInt16 = 8
    public static let defaultReceiveCapacity = 4096

    /// Registers and flags; the receive queue lives in `receiveQueue` and is copied in `state`.
    private var registers: SerialState
    private var receiveQueue: ByteQueue
    private let receiveCapacity: Int
    private let onTransmit: (UInt8) -> Void
    private let onInterruptLine: (Bool) -> Void

    public let name: String
    public let portRanges: [PortRange]

    /// The interrupt output last reported: (pending AND enabled) for some source.
    public private(set) var interruptLevel = false

    public init(name: String = Serial16550.com1Name, base: UInt16 = Serial16550.com1Base,
                receiveCapacity: Int = Serial16550.defaultReceiveCapacity,
                onTransmit: @escaping (UInt8) -> Void,
                onInterruptLine: @escaping (Bool) -> Void) {
        self.name = name
        self.portRanges = [PortRange(base: base, count: Self.portCount)]
        self.registers = SerialState()
        self.receiveCapacity = max(1, receiveCapacity)
        self.receiveQueue = ByteQueue(capacity: self.receiveCapacity)
        self.onTransmit = onTransmit
        self.onInterruptLine = onInterruptLine
    }

    /// Builds a UART from migrated state and reports its interrupt line.
    public convenience init(state: SerialState,
                            receiveCapacity: Int = Serial16550.defaultReceiveCapacity,
                            onTransmit: @escaping (UInt8) -> Void,
                            onInterruptLine: @escaping (Bool) -> Void) {
        self.init(receiveCapacity: receiveCapacity, onTransmit: onTransmit, onInterruptLine: onInterruptLine)
        restore(state)
    }

    public var state: SerialState {
        var snapshot = registers
        snapshot.receiveQueue = receiveQueue.contents
        return snapshot
    }

    /// Replaces every register and the queued input, then reports the interrupt line even if
    /// unchanged: the interrupt controller on the other side was restored separately.
    /// Queued input beyond this UART's capacity is kept, never dropped.
    public func restore(_ state: SerialState) {
        registers = state
        registers.receiveQueue = []
        receiveQueue = ByteQueue(capacity: max(receiveCapacity, state.receiveQueue.count))
        _ = receiveQueue.append(contentsOf: state.receiveQueue[...])
        interruptLevel = computeInterruptLevel()
        onInterruptLine(interruptLevel)
    }

    /// Host input for the guest. Returns how many bytes the receive queue took; the caller
    /// keeps the rest and offers it again once the guest has read some.
    public func receive(_ bytes: ArraySlice<UInt8>) -> Int {
        // In loopback the receiver is wired to the transmitter, not to the host.
        guard !isLoopback else { return 0 }
        let taken = receiveQueue.append(contentsOf: bytes)
        if taken > 0 { updateInterruptLine() }
        return taken
    }

    /// Room left in the receive queue, so the host can avoid reading input it cannot hand over.
    public var receiveSpace: Int { isLoopback ? 0 : receiveQueue.capacity - receiveQueue.count }

    // MARK: PortDevice

    public func portRead(offset: UInt16, size: Int) -> UInt32 {
        UInt32(readRegister(offset))
    }

    public func portWrite(offset: UInt16, size: Int, value: UInt32) {
        writeRegister(offset, UInt8(truncatingIfNeeded: value))
    }

    // MARK: Registers

    private var isDivisorLatchAccess: Bool { registers.lineControl & UART.lcrDivisorLatch != 0 }
    private var isLoopback: Bool { registers.modemControl & UART.mcrLoop != 0 }
    private var fifosEnabled: Bool { registers.fifoControl & UART.fcrFifoEnable != 0 }

    private func readRegister(_ offset: UInt16) -> UInt8 {
        switch offset {
        case UART.dataOffset:
            if isDivisorLatchAccess { return registers.divisorLow }
            let byte = receiveQueue.popFirst() ?? 0
            updateInterruptLine()
            return byte
        case UART.interruptEnableOffset:
            return isDivisorLatchAccess ? registers.divisorHigh : registers.interruptEnable
        case UART.interruptIdOffset:
            return readInterruptIdentification()
        case UART.lineControlOffset:
            return registers.lineControl
        case UART.modemControlOffset:
            return registers.modemControl
        case UART.lineStatusOffset:
            return readLineStatus()
        case UART.modemStatusOffset:
            let value = registers.modemStatus
            registers.modemStatus &= ~UART.msrDeltaMask
            updateInterruptLine()
            return value
        case UART.scratchOffset:
            return registers.scratch
        default:
            return 0xff
        }
    }

    private func writeRegister(_ offset: UInt16, _ value: UInt8) {
        switch offset {
        case UART.dataOffset:
            if isDivisorLatchAccess { registers.divisorLow = value } else { transmit(value) }
        case UART.interruptEnableOffset:
            if isDivisorLatchAccess { registers.divisorHigh = value } else { writeInterruptEnable(value) }
        case UART.interruptIdOffset:
            writeFifoControl(value)
        case UART.lineControlOffset:
            writeLineControl(value)
        case UART.modemControlOffset:
            writeModemControl(value)
        case UART.scratchOffset:
            registers.scratch = value
        default:
            break  // LSR and MSR are read-only on a 16550A
        }
    }

    private func transmit(_ byte: UInt8) {
        // Writing THR acknowledges a THRE interrupt; the byte leaves at once, so THR is empty
        // again and the interrupt is re-armed. The line drops and rises: a fresh edge for the PIC.
        registers.transmitEmptyInterruptPending = false
        updateInterruptLine()
        if isLoopback {
            if receiveQueue.isFull {
                registers.lineStatusErrors |= UART.lsrOverrun
            } else {
                _ = receiveQueue.append(contentsOf: [byte][...])
            }
        } else {
            onTransmit(byte)
        }
        registers.transmitEmptyInterruptPending = true
        updateInterruptLine()
    }

    private func writeInterruptEnable(_ value: UInt8) {
        let newValue = value & UART.ierMask
        let changed = registers.interruptEnable ^ newValue
        registers.interruptEnable = newValue
        // As in QEMU: enabling ETBEI while THR is empty (always, here) raises THRE at once;
        // Windows depends on it. Disabling it forgets the pending THRE interrupt.
        if changed & UART.ierTransmitEmpty != 0 {
            registers.transmitEmptyInterruptPending = newValue & UART.ierTransmitEmpty != 0
        }
        updateInterruptLine()
    }

    private func writeFifoControl(_ value: UInt8) {
        var command = value
        // Switching the FIFOs on or off flushes both, as the datasheet and QEMU do.
        if (command ^ registers.fifoControl) & UART.fcrFifoEnable != 0 {
            command |= UART.fcrReceiveReset | UART.fcrTransmitReset
        }
        if command & UART.fcrReceiveReset != 0 {
            receiveQueue.removeAll()
        }
        if command & UART.fcrTransmitReset != 0 {
            registers.transmitEmptyInterruptPending = registers.interruptEnable & UART.ierTransmitEmpty != 0
        }
        registers.fifoControl = command & UART.fcrKeptBits
        updateInterruptLine()
    }

    private func writeLineControl(_ value: UInt8) {
        let breakStarted = value & UART.lcrSetBreak != 0 && registers.lineControl & UART.lcrSetBreak == 0
        registers.lineControl = value
        // In loopback a break on the transmit line arrives at our own receiver.
        if breakStarted && isLoopback {
            registers.lineStatusErrors |= UART.lsrBreak
            updateInterruptLine()
        }
    }

    private func writeModemControl(_ value: UInt8) {
        registers.modemControl = value & UART.mcrMask
        let oldLines = registers.modemStatus & UART.msrLineMask
        let newLines = isLoopback ? UART.loopbackModemLines(modemControl: registers.modemControl) : UART.hostModemLines
        registers.modemStatus = (registers.modemStatus & UART.msrDeltaMask) | newLines | deltaBits(from: oldLines, to: newLines)
        updateInterruptLine()
    }

    private func deltaBits(from oldLines: UInt8, to newLines: UInt8) -> UInt8 {
        let changed = oldLines ^ newLines
        var delta: UInt8 = 0
        if changed & UART.msrCTS != 0 { delta |= UART.msrDeltaCTS }
        if changed & UART.msrDSR != 0 { delta |= UART.msrDeltaDSR }
        if changed & UART.msrDCD != 0 { delta |= UART.msrDeltaDCD }
        // RI reports only its trailing edge (ringing stopped).
        if oldLines & UART.msrRI != 0 && newLines & UART.msrRI == 0 { delta |= UART.msrTrailingEdgeRI }
        return delta
    }

    private func readLineStatus() -> UInt8 {
        var value = registers.lineStatusErrors | UART.lsrTransmitHoldingEmpty | UART.lsrTransmitterEmpty
        if !receiveQueue.isEmpty { value |= UART.lsrDataReady }
        if fifosEnabled && registers.lineStatusErrors & (UART.lsrParity | UART.lsrFraming | UART.lsrBreak) != 0 {
            value |= UART.lsrFifoError
        }
        // Reading LSR is what acknowledges a line status interrupt.
        registers.lineStatusErrors = 0
        updateInterruptLine()
        return value
    }

    private func readInterruptIdentification() -> UInt8 {
        let identification = highestPendingInterrupt()
        if identification == UART.iirTransmitEmpty {
            registers.transmitEmptyInterruptPending = false
            updateInterruptLine()
        }
        return identification | (fifosEnabled ? UART.iirFifoEnabled : 0)
    }

    // MARK: Interrupts

    /// The IIR identification of the highest-priority enabled pending interrupt.
    private func highestPendingInterrupt() -> UInt8 {
        let enabled = registers.interruptEnable
        if enabled & UART.ierLineStatus != 0 && registers.lineStatusErrors != 0 {
            return UART.iirLineStatus
        }
        if enabled & UART.ierReceivedData != 0 && !receiveQueue.isEmpty {
            // With no timer, a partly filled FIFO reports its character timeout immediately.
            if fifosEnabled && receiveQueue.count < UART.triggerLevel(fifoControl: registers.fifoControl) {
                return UART.iirCharacterTimeout
            }
            return UART.iirReceivedData
        }
        if enabled & UART.ierTransmitEmpty != 0 && registers.transmitEmptyInterruptPending {
            return UART.iirTransmitEmpty
        }
        if enabled & UART.ierModemStatus != 0 && registers.modemStatus & UART.msrDeltaMask != 0 {
            return UART.iirModemStatus
        }
        return UART.iirNoInterrupt
    }

    private func computeInterruptLevel() -> Bool {
        highestPendingInterrupt() != UART.iirNoInterrupt
    }

    private func updateInterruptLine() {
        let level = computeInterruptLevel()
        guard level != interruptLevel else { return }
        interruptLevel = level
        onInterruptLine(level)
    }
}
