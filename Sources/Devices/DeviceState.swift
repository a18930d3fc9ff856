/// A device's complete state as a versioned value that travels as bytes. As QEMU's
/// `version_id` and `minimum_version_id`: a build writes `version` and reads every version from
/// `minimumVersion` on, so a layout change bumps `version` and keeps reading the old layouts
/// for as long as migration from older builds should work.
public protocol DeviceState: Equatable, Sendable {
    /// The layout this build writes; bumped whenever the bytes change.
    static var version: UInt32 { get }
    /// The oldest layout this build still reads.
    static var minimumVersion: UInt32 { get }
    /// The power-on state.
    init()
    func encode(into writer: inout ByteWriter)
    /// Reads the fields of layout `version`, which lies in `minimumVersion...version`.
    init(from reader: inout ByteReader, version: UInt32) throws
}

extension DeviceState {
    public func encoded() -> [UInt8] {
        var writer = ByteWriter()
        encode(into: &writer)
        return writer.bytes
    }

    /// Decodes a whole section, refusing versions outside the readable range and trailing bytes.
    public init<C: Collection>(decoding bytes: C, version: UInt32 = Self.version) throws where C.Element == UInt8 {
        guard version >= Self.minimumVersion, version <= Self.version else {
            throw StateDecodingError.unsupportedVersion(version: version, readable: Self.minimumVersion...Self.version)
        }
        var reader = ByteReader(bytes)
        try self.init(from: &reader, version: version)
        try reader.expectEnd()
    }
}
