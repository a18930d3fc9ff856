/// Register offsets and bits of the 16550A UART, named after the datasheet.
enum UART {
    // Offsets from the base port. With LCR.DLAB set, offsets 0 and 1 are the divisor latches.
    static let dataOffset: UInt16 = 0             // RBR (read) / THR (write) / DLL
    static let interruptEnableOffset: UInt16 = 1  // IER / DLM
    static let interruptIdOffset: UInt16 = 2      // IIR (read) / FCR (write)
    static let lineControlOffset: UInt16 = 3      // LCR
    static let modemControlOffset: UInt16 = 4     // MCR
    static let lineStatusOffset: UInt16 = 5       // LSR
    static let modemStatusOffset: UInt16 = 6      // MSR
    static let scratchOffset: UInt16 = 7          // SCR

    // IER
    static let ierReceivedData: UInt8 = 0x01      // ERBFI: data available / character timeout
    static let ierTransmitEmpty: UInt8 = 0x02     // ETBEI: THR empty
    static let ierLineStatus: UInt8 = 0x04        // ELSI: OE, PE, FE, BI
    static let ierModemStatus: UInt8 = 0x08       // EDSSI: MSR delta bits
    static let ierMask: UInt8 = 0x0f              // the upper nibble is reserved and reads 0

    // IIR: the interrupt identification, highest priority first.
    static let iirNoInterrupt: UInt8 = 0x01
    static let iirLineStatus: UInt8 = 0x06
    static let iirReceivedData: UInt8 = 0x04
    static let iirCharacterTimeout: UInt8 = 0x0c
    static let iirTransmitEmpty: UInt8 = 0x02
    static let iirModemStatus: UInt8 = 0x00
    static let iirFifoEnabled: UInt8 = 0xc0       // both top bits read 1 while FIFOs are on

    // FCR
    static let fcrFifoEnable: UInt8 = 0x01
    static let fcrReceiveReset: UInt8 = 0x02
    static let fcrTransmitReset: UInt8 = 0x04
    static let fcrDmaMode: UInt8 = 0x08
    static let fcrTriggerMask: UInt8 = 0xc0
    static let fcrKeptBits: UInt8 = 0xc9          // the reset bits clear themselves

    // LCR
    static let lcrSetBreak: UInt8 = 0x40
    static let lcrDivisorLatch: UInt8 = 0x80      // DLAB

    // MCR
    static let mcrDTR: UInt8 = 0x01
    static let mcrRTS: UInt8 = 0x02
    static let mcrOut1: UInt8 = 0x04
    static let mcrOut2: UInt8 = 0x08
    static let mcrLoop: UInt8 = 0x10
    static let mcrMask: UInt8 = 0x1f

    // LSR
    static let lsrDataReady: UInt8 = 0x01
    static let lsrOverrun: UInt8 = 0x02
    static let lsrParity: UInt8 = 0x04
    static let lsrFraming: UInt8 = 0x08
    static let lsrBreak: UInt8 = 0x10
    static let lsrTransmitHoldingEmpty: UInt8 = 0x20  // THRE
    static let lsrTransmitterEmpty: UInt8 = 0x40      // TEMT
    static let lsrFifoError: UInt8 = 0x80
    /// Error bits that stay set until the guest reads LSR.
    static let lsrErrorBits: UInt8 = lsrOverrun | lsrParity | lsrFraming | lsrBreak

    // MSR: delta bits in the low nibble, line states in the high nibble.
    static let msrDeltaCTS: UInt8 = 0x01
    static let msrDeltaDSR: UInt8 = 0x02
    static let msrTrailingEdgeRI: UInt8 = 0x04
    static let msrDeltaDCD: UInt8 = 0x08
    static let msrDeltaMask: UInt8 = 0x0f
    static let msrCTS: UInt8 = 0x10
    static let msrDSR: UInt8 = 0x20
    static let msrRI: UInt8 = 0x40
    static let msrDCD: UInt8 = 0x80
    static let msrLineMask: UInt8 = 0xf0

    /// Lines seen outside loopback: the host end is always there and ready (as vm-superio does).
    static let hostModemLines: UInt8 = msrCTS | msrDSR | msrDCD

    /// Receive FIFO trigger levels selected by FCR bits 7:6.
    static func triggerLevel(fifoControl: UInt8) -> Int {
        switch fifoControl >> 6 {
        case 0: return 1
        case 1: return 4
        case 2: return 8
        default: return 14
        }
    }

    /// Modem status lines as loopback wires them from MCR: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
    static func loopbackModemLines(modemControl: UInt8) -> UInt8 {
        var lines: UInt8 = 0
        if modemControl & mcrDTR != 0 { lines |= msrDSR }
        if modemControl & mcrRTS != 0 { lines |= msrCTS }
        if modemControl & mcrOut1 != 0 { lines |= msrRI }
        if modemControl & mcrOut2 != 0 { lines |= msrDCD }
        return lines
    }
}
