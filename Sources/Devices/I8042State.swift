/// What the i8042 remembers between guest accesses.
public struct I8042State: DeviceState, Sendable {
    /// Version 1 (main's minimal controller) had only the first three fields; reading it gives
    /// an empty output buffer, as that controller always had.
    public static let version: UInt32 = 2
    public static let minimumVersion: UInt32 = 1

    /// The controller configuration byte (interrupt enables, port disables, translation).
    public var commandByte: UInt8 = 0x45
    /// The output port last written by command 0xD1 (bit 0 low holds the CPU in reset).
    public var outputPort: UInt8 = 0x01
    /// A command that takes its parameter from the next data-port write, or 0 when none waits.
    public var pendingCommand: UInt8 = 0
    /// The output buffer (port 0x60 reads) and whether it holds an unread byte.
    public var output: UInt8 = 0
    public var outputFull = false
    /// The unread byte came from the mouse port (status bit 5, IRQ 12).
    public var outputFromMouse = false
    /// The last byte sent to a device got no answer (status bit 6).
    public var timeout = false
    /// The last write went to the command port (status bit 3).
    public var lastWriteWasCommand = false

    public init() {}

    public func encode(into writer: inout ByteWriter) {
        writer.write(commandByte)
        writer.write(outputPort)
        writer.write(pendingCommand)
        writer.write(output)
        writer.write(outputFull)
        writer.write(outputFromMouse)
        writer.write(timeout)
        writer.write(lastWriteWasCommand)
    }

    public init(from reader: inout ByteReader, version: UInt32) throws {
        commandByte = try reader.read(UInt8.self, field: "i8042 command byte")
        outputPort = try reader.read(UInt8.self, field: "i8042 output port")
        pendingCommand = try reader.read(UInt8.self, field: "i8042 pending command")
        guard pendingCommand == 0 || I8042.commandsWithParameter.contains(pendingCommand) else {
            throw StateDecodingError.invalidValue(field: "i8042 pending command", value: UInt64(pendingCommand))
        }
        guard version >= 2 else { return }
        output = try reader.read(UInt8.self, field: "i8042 output buffer")
        outputFull = try reader.readBool(field: "i8042 output full")
        outputFromMouse = try reader.readBool(field: "i8042 output from mouse")
        timeout = try reader.readBool(field: "i8042 timeout")
        lastWriteWasCommand = try reader.readBool(field: "i8042 last write was a command")
    }
}
