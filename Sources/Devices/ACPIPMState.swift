/// The ACPI PM1 registers' contents (PM1a status, enable and control).
public struct ACPIPMState: DeviceState, Sendable {
    public static let version: UInt32 = 1
    public static let minimumVersion: UInt32 = 1

    public var status: UInt16 = 0
    public var enable: UInt16 = 0
    /// SLP_EN is never stored: it is write-only and acts at once.
    public var control: UInt16 = ACPIPM.sciEnable

    public init() {}

    public func encode(into writer: inout ByteWriter) {
        writer.write(status)
        writer.write(enable)
        writer.write(control)
    }

    public init(from reader: inout ByteReader, version: UInt32) throws {
        status = try reader.read(UInt16.self, field: "PM1 status")
        enable = try reader.read(UInt16.self, field: "PM1 enable")
        control = try reader.read(UInt16.self, field: "PM1 control")
        guard control & ACPIPM.sleepEnable == 0 else {
            throw StateDecodingError.invalidValue(field: "PM1 control", value: UInt64(control))
        }
    }
}
