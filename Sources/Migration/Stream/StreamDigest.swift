import CXXHash

/// The running integrity digest over a migration stream, fed incrementally; `value` may be read
/// at any point and feeding may continue. It catches corruption, not tampering: it is not a MAC.
///
/// Stream 2.0 uses XXH3-64 (seed 0); 1.x streams and mapped-ram files use XXH64 (seed 0). Both
/// come from libxxhash, XXH3 through its runtime CPU dispatch. Measured here (release, 512 KiB
/// pieces already in cache, as the bounce buffer and the received pieces are): XXH3 30-36 GB/s,
/// XXH64 9-10 GB/s, the Swift XXH64 this replaced 5.5 GB/s. In a busy guest's migration that
/// Swift digest was a third of each side's CPU outside the guest.
final class StreamDigest {
    enum Algorithm {
        case xxh64
        case xxh3

        /// The digest a stream of `version` ends with.
        init(streamVersion version: StreamVersion) {
            self = version >= StreamFormat.xxh3Digest ? .xxh3 : .xxh64
        }
    }

    private enum State {
        case xxh64(OpaquePointer)
        case xxh3(OpaquePointer)
    }

    let algorithm: Algorithm
    private let state: State
    /// Off on a TLS stream (StreamFormat.swift, 1.4): the record layer's AEAD tag already
    /// authenticates every byte, so hashing them again would only cost CPU.
    var isOn = true

    /// A stream of this swiftkvm's format version.
    convenience init() { self.init(.init(streamVersion: StreamFormat.version)) }

    init(_ algorithm: Algorithm) {
        self.algorithm = algorithm
        // The states are a few hundred bytes from malloc; like any Swift allocation, a failure
        // to get them is fatal.
        switch algorithm {
        case .xxh64:
            guard let created = XXH64_createState() else { preconditionFailure("out of memory for an XXH64 state") }
            XXH64_reset(created, 0)
            state = .xxh64(created)
        case .xxh3:
            guard let created = XXH3_createState() else { preconditionFailure("out of memory for an XXH3 state") }
            XXH3_64bits_reset(created)
            state = .xxh3(created)
        }
    }

    deinit {
        switch state {
        case .xxh64(let s): XXH64_freeState(s)
        case .xxh3(let s): XXH3_freeState(s)
        }
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard isOn, let base = bytes.baseAddress, bytes.count > 0 else { return }
        // Both only fail for a null input, excluded above.
        switch state {
        case .xxh64(let s): _ = XXH64_update(s, base, bytes.count)
        case .xxh3(let s): _ = XXH3_64bits_update_dispatch(s, base, bytes.count)
        }
    }

    func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    /// The digest of everything fed so far.
    var value: UInt64 {
        switch state {
        case .xxh64(let s): return XXH64_digest(s)
        case .xxh3(let s): return XXH3_64bits_digest(s)
        }
    }

    /// The digest of a whole stream's bytes (header included), by the algorithm its header's
    /// version names; for building streams by hand (tests, the fuzzer's sealing).
    static func ofStream(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var version = StreamFormat.version
        if bytes.count >= 8, bytes.prefix(4).elementsEqual(StreamFormat.magic) {
            version = StreamVersion(major: UInt16(bytes[4]) | UInt16(bytes[5]) << 8, minor: UInt16(bytes[6]) | UInt16(bytes[7]) << 8)
        }
        let digest = StreamDigest(.init(streamVersion: version))
        digest.update(bytes)
        return digest.value
    }

    static func ofStream(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { ofStream($0) }
    }
}
