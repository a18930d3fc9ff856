/// Byte images of KVM's plain C structs, for carrying them in a migration stream. The kernel
/// defines these layouts as ABI, so the bytes mean the same on both ends of a migration.
public enum PlainData {
    public static func bytes<T>(of value: T) -> [UInt8] {
        // SAFETY: T is a C struct of plain integers (no pointers, no references).
        withUnsafeBytes(of: value) { Array($0) }
    }

    /// Rebuilds a value from exactly `MemoryLayout<T>.size` bytes; nil on any other length.
    public static func value<T>(_ type: T.Type, from bytes: [UInt8], zero: T) -> T? {
        guard bytes.count == MemoryLayout<T>.size else { return nil }
        var v = zero
        // SAFETY: the byte count equals T's size and T holds only plain integers.
        withUnsafeMutableBytes(of: &v) { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
        return v
    }

    public static func array<T>(_ type: T.Type, from bytes: [UInt8], zero: T) -> [T]? {
        let size = MemoryLayout<T>.stride
        guard size > 0, bytes.count % size == 0 else { return nil }
        var out = [T](repeating: zero, count: bytes.count / size)
        // SAFETY: `out` holds exactly bytes.count bytes of plain-integer structs.
        out.withUnsafeMutableBytes { dst in bytes.withUnsafeBytes { dst.copyMemory(from: $0) } }
        return out
    }

    public static func bytes<T>(ofArray values: [T]) -> [UInt8] {
        // SAFETY: T is a plain C struct; the array's storage is contiguous.
        values.withUnsafeBytes { Array($0) }
    }
}
