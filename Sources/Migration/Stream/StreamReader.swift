import Glibc

/// Decodes primitive values from the incoming stream through a fixed 64 KiB buffer, feeding
/// the digest with every byte consumed. Page payloads bypass the buffer and land directly in
/// guest memory. Nothing here allocates by a size read from the stream.
final class StreamReader {
    private static let capacity = 64 * 1024
    private let socket: MigrationStream
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: StreamReader.capacity, alignment: 16)
    private var start = 0
    private var end = 0
    /// Consumed bytes up to here are already in the digest.
    private var digested = 0
    private var digest = StreamDigest()
    /// What the reader is doing, for error messages when the stream breaks off.
    var context = "reading the stream header"

    init(socket: MigrationStream) { self.socket = socket }

    var isEncrypted: Bool { socket.isEncrypted }

    deinit { buffer.deallocate() }

    func readU8() throws -> UInt8 {
        try ensure(1)
        let value = buffer.load(fromByteOffset: start, as: UInt8.self)
        start += 1
        return value
    }

    func readU16() throws -> UInt16 { UInt16(littleEndian: try load(UInt16.self)) }
    func readU32() throws -> UInt32 { UInt32(littleEndian: try load(UInt32.self)) }
    func readU64() throws -> UInt64 { UInt64(littleEndian: try load(UInt64.self)) }

    /// `count` must already be checked against a limit well below the buffer's capacity.
    func readBytes(_ count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        var bytes = [UInt8](repeating: 0, count: count)
        try bytes.withUnsafeMutableBytes { try readPayload(into: $0.baseAddress!, count: count) }
        return bytes
    }

    /// Fills `count` bytes at `destination` (guest memory or a checked buffer).
    func readPayload(into destination: UnsafeMutableRawPointer, count: Int) throws {
        guard count > 0 else { return }
        syncDigest()
        let buffered = min(count, end - start)
        // SAFETY: `buffered` bytes are valid in the buffer and `destination` holds `count` bytes.
        destination.copyMemory(from: buffer + start, byteCount: buffered)
        start += buffered
        digested = start
        digest.update(UnsafeRawBufferPointer(start: destination, count: buffered))
        // In pieces, each hashed right after it lands, while it is still in the cache.
        var done = buffered
        while done < count {
            let piece = min(count - done, Self.payloadPieceBytes)
            // SAFETY: done + piece <= count, inside the caller's `count` bytes.
            try socket.readExact(into: destination + done, count: piece, operation: context)
            digest.update(UnsafeRawBufferPointer(start: destination + done, count: piece))
            done += piece
        }
    }

    private static let payloadPieceBytes = 256 * 1024

    /// Whether the end marker's digest is checked: not on a TLS stream of version 1.4 or later,
    /// whose source sends 0 there.
    var checksDigest: Bool {
        get { digest.isOn }
        set { digest.isOn = newValue }
    }

    /// Replaces the digest by a new one of `algorithm` fed with `consumed`, which must be
    /// exactly the bytes consumed so far (the stream's header, whose version names the digest).
    func restartDigest(_ algorithm: StreamDigest.Algorithm, replaying consumed: [UInt8]) {
        syncDigest()
        let isOn = digest.isOn
        digest = StreamDigest(algorithm)
        digest.isOn = isOn
        digest.update(consumed)
    }

    /// The digest of everything consumed so far.
    func digestSoFar() -> UInt64 {
        syncDigest()
        return digest.value
    }

    private func load<T: FixedWidthInteger>(_ type: T.Type) throws -> T {
        let size = MemoryLayout<T>.size
        try ensure(size)
        let value = buffer.loadUnaligned(fromByteOffset: start, as: T.self)
        start += size
        return value
    }

    private func syncDigest() {
        if start > digested {
            digest.update(UnsafeRawBufferPointer(start: buffer + digested, count: start - digested))
            digested = start
        }
    }

    private func ensure(_ count: Int) throws {
        if end - start >= count { return }
        syncDigest()
        let remaining = end - start
        // SAFETY: moves the unconsumed tail (inside the buffer) to its front.
        buffer.copyMemory(from: buffer + start, byteCount: remaining)
        start = 0
        digested = 0
        end = remaining
        while end < count {
            let n = try socket.readSome(into: buffer + end, count: StreamReader.capacity - end, operation: context)
            if n == 0 { throw MigrationError.peerClosed(during: context) }
            end += n
        }
    }
}
