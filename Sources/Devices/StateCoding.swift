/// Byte-level coding of device state for snapshots and migration. The bytes a reader sees may
/// come from a network peer, so every read is bounds-checked and throws instead of trapping.

/// Why a device state could not be decoded; each case says where and what was wrong.
public enum StateDecodingError: Error, Equatable, CustomStringConvertible {
    case truncated(field: String, needed: Int, remaining: Int)
    case lengthTooLarge(field: String, length: UInt32, maximum: Int)
    case invalidValue(field: String, value: UInt64)
    case trailingBytes(count: Int)
    case unsupportedVersion(version: UInt32, readable: ClosedRange<UInt32>)
    /// A section arrived for a device that has no state to restore.
    case stateless

    public var description: String {
        switch self {
        case let .truncated(field, needed, remaining):
            return "device state truncated: \(field) needs \(needed) bytes but only \(remaining) remain (the sender and this build disagree on the format, or the stream was cut)"
        case let .lengthTooLarge(field, length, maximum):
            return "device state invalid: \(field) has length \(length), more than the allowed \(maximum)"
        case let .invalidValue(field, value):
            return "device state invalid: \(field) has value \(value), which this device cannot hold"
        case let .trailingBytes(count):
            return "device state invalid: \(count) unexpected bytes after its last field"
        case let .unsupportedVersion(version, readable):
            let versions = readable.count == 1 ? "version \(readable.lowerBound)" : "versions \(readable.lowerBound) to \(readable.upperBound)"
            if version > readable.upperBound {
                return "state version \(version) is newer than this build reads (\(versions)); migrate to a build at least as new as the source"
            }
            return "state version \(version) is older than this build reads (\(versions)); it comes from a build too old to migrate from directly"
        case .stateless:
            return "this device has no state, but the stream carries a section for it"
        }
    }
}

/// Appends little-endian values to a growing byte array.
public struct ByteWriter {
    public private(set) var bytes: [UInt8] = []

    public init(reservingCapacity capacity: Int = 64) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func write(_ flag: Bool) {
        write(UInt8(flag ? 1 : 0))
    }

    /// Writes a u32 length prefix, then the bytes.
    public mutating func writeBytes<C: Collection>(_ data: C) where C.Element == UInt8 {
        write(UInt32(truncatingIfNeeded: data.count))
        bytes.append(contentsOf: data)
    }
}

/// Reads little-endian values from untrusted bytes; every read checks what is left.
public struct ByteReader {
    private let bytes: [UInt8]
    public private(set) var position: Int = 0

    public init<C: Collection>(_ bytes: C) where C.Element == UInt8 {
        self.bytes = Array(bytes)
    }

    public var remaining: Int { bytes.count - position }

    public mutating func read<T: FixedWidthInteger>(_ type: T.Type, field: String) throws -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw StateDecodingError.truncated(field: field, needed: size, remaining: remaining)
        }
        var value: T = 0
        for index in 0..<size {
            value |= T(truncatingIfNeeded: bytes[position + index]) << (8 * index)
        }
        position += size
        return value
    }

    /// Reads a byte that must be 0 or 1: anything else means the stream is corrupt.
    public mutating func readBool(field: String) throws -> Bool {
        let raw = try read(UInt8.self, field: field)
        guard raw <= 1 else { throw StateDecodingError.invalidValue(field: field, value: UInt64(raw)) }
        return raw == 1
    }

    /// Reads a u32 length prefix (at most `maximumCount`), then that many bytes.
    public mutating func readBytes(maximumCount: Int, field: String) throws -> [UInt8] {
        let length = try read(UInt32.self, field: "\(field) length")
        guard Int(length) <= maximumCount else {
            throw StateDecodingError.lengthTooLarge(field: field, length: length, maximum: maximumCount)
        }
        let count = Int(length)
        guard remaining >= count else {
            throw StateDecodingError.truncated(field: field, needed: count, remaining: remaining)
        }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    /// Call after the last field: leftover bytes mean the two sides disagree on the format.
    public func expectEnd() throws {
        guard remaining == 0 else { throw StateDecodingError.trailingBytes(count: remaining) }
    }
}
