/// Every register, latch and flag of a 16550A UART plus its queued input: restoring this value
/// gives a UART that behaves exactly like the one it was taken from.
public struct SerialState: DeviceState, Sendable {
    public static let version: UInt32 = 1
    public static let minimumVersion: UInt32 = 1
    /// Bound on the queue a peer may send, so a hostile stream cannot make us allocate freely.
    public static let maximumQueuedInput = 1 << 20

    public var divisorLow: UInt8 = 0x0c           // 9600 baud from the 1.8432 MHz clock
    public var divisorHigh: UInt8 = 0
    public var interruptEnable: UInt8 = 0
    public var fifoControl: UInt8 = 0
    public var lineControl: UInt8 = 0x03          // 8 data bits, no parity, 1 stop bit
    public var modemControl: UInt8 = UART.mcrOut2
    /// Only the sticky error bits (OE, PE, FE, BI); DR, THRE, TEMT and the FIFO error bit
    /// are derived from the queue and these when LSR is read.
    public var lineStatusErrors: UInt8 = 0
    public var modemStatus: UInt8 = UART.hostModemLines
    public var scratch: UInt8 = 0
    /// THR-empty interrupt waiting to be identified (cleared by reading IIR or writing THR).
    public var transmitEmptyInterruptPending = false
    /// Received bytes the guest has not read yet, oldest first.
    public var receiveQueue: [UInt8] = []

    public init() {}

    public func encode(into writer: inout ByteWriter) {
        writer.write(divisorLow)
        writer.write(divisorHigh)
        writer.write(interruptEnable)
        writer.write(fifoControl)
        writer.write(lineControl)
        writer.write(modemControl)
        writer.write(lineStatusErrors)
        writer.write(modemStatus)
        writer.write(scratch)
        writer.write(transmitEmptyInterruptPending)
        writer.writeBytes(receiveQueue)
    }

    public init(from reader: inout ByteReader, version: UInt32) throws {
        divisorLow = try reader.read(UInt8.self, field: "serial DLL")
        divisorHigh = try reader.read(UInt8.self, field: "serial DLM")
        interruptEnable = try Self.checked(reader.read(UInt8.self, field: "serial IER"), allowed: UART.ierMask, field: "serial IER")
        fifoControl = try Self.checked(reader.read(UInt8.self, field: "serial FCR"), allowed: UART.fcrKeptBits, field: "serial FCR")
        lineControl = try reader.read(UInt8.self, field: "serial LCR")
        modemControl = try Self.checked(reader.read(UInt8.self, field: "serial MCR"), allowed: UART.mcrMask, field: "serial MCR")
        lineStatusErrors = try Self.checked(reader.read(UInt8.self, field: "serial LSR"), allowed: UART.lsrErrorBits, field: "serial LSR")
        modemStatus = try reader.read(UInt8.self, field: "serial MSR")
        scratch = try reader.read(UInt8.self, field: "serial SCR")
        transmitEmptyInterruptPending = try reader.readBool(field: "serial THRE pending")
        receiveQueue = try reader.readBytes(maximumCount: Self.maximumQueuedInput, field: "serial receive queue")
    }

    private static func checked(_ value: UInt8, allowed: UInt8, field: String) throws -> UInt8 {
        guard value & ~allowed == 0 else { throw StateDecodingError.invalidValue(field: field, value: UInt64(value)) }
        return value
    }
}
