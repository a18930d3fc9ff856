/// What the minimal i8042 remembers between guest accesses.
public struct I8042State: DeviceState, Sendable {
    public static let version: UInt32 = 1
    public static let minimumVersion: UInt32 = 1

    /// The controller configuration byte (interrupt enables, translation), set by command 0x60.
    public var commandByte: UInt8 = 0x45
    /// The output port last written by command 0xD1 (bit 0 low holds the CPU in reset).
    public var outputPort: UInt8 = 0x01
    /// A command that takes its parameter from the next data-port write, or 0 when none waits.
    public var pendingCommand: UInt8 = 0

    public init() {}

    public func encode(into writer: inout ByteWriter) {
        writer.write(commandByte)
        writer.write(outputPort)
        writer.write(pendingCommand)
    }

    public init(from reader: inout ByteReader, version: UInt32) throws {
        commandByte = try reader.read(UInt8.self, field: "i8042 command byte")
        outputPort = try reader.read(UInt8.self, field: "i8042 output port")
        pendingCommand = try reader.read(UInt8.self, field: "i8042 pending command")
        guard pendingCommand == 0 || I8042.commandsWithParameter.contains(pendingCommand) else {
            throw StateDecodingError.invalidValue(field: "i8042 pending command", value: UInt64(pendingCommand))
        }
    }
}
