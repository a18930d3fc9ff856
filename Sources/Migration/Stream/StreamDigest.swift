/// The running integrity digest over a migration stream: 64-bit xxHash (XXH64, seed 0), fed
/// incrementally. Four independent lanes keep it several times faster than the network, so it
/// costs little throughput. It catches corruption, not tampering: it is not a MAC.
struct StreamDigest {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    private static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    private static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5
    private static let stripe = 32

    private var lane1 = prime1 &+ prime2
    private var lane2 = prime2
    private var lane3: UInt64 = 0
    private var lane4: UInt64 = 0 &- prime1
    private var totalLength: UInt64 = 0
    /// Bytes of an unfinished 32-byte stripe, carried to the next update.
    private var pending = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
    private var pendingCount = 0
    /// Off on a TLS stream (StreamFormat.swift, 1.4): the record layer's AEAD tag already
    /// authenticates every byte, so hashing them again would only cost CPU.
    var isOn = true

    @inline(__always)
    private static func round(_ accumulator: UInt64, _ input: UInt64) -> UInt64 {
        rotate(accumulator &+ input &* prime2, 31) &* prime1
    }

    @inline(__always)
    private static func rotate(_ value: UInt64, _ bits: UInt64) -> UInt64 {
        (value << bits) | (value >> (64 - bits))
    }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard isOn, var pointer = bytes.baseAddress else { return }
        var left = bytes.count
        totalLength &+= UInt64(left)
        if pendingCount > 0 {
            let take = min(left, StreamDigest.stripe - pendingCount)
            withUnsafeMutableBytes(of: &pending) { raw in
                // SAFETY: take <= 32 - pendingCount, so the copy stays inside `pending`.
                (raw.baseAddress! + pendingCount).copyMemory(from: pointer, byteCount: take)
            }
            pendingCount += take
            pointer += take
            left -= take
            guard pendingCount == StreamDigest.stripe else { return }
            let words = pending
            consumeStripe(words.0.littleEndian, words.1.littleEndian, words.2.littleEndian, words.3.littleEndian)
            pendingCount = 0
        }
        var l1 = lane1, l2 = lane2, l3 = lane3, l4 = lane4
        while left >= StreamDigest.stripe {
            // SAFETY: at least 32 readable bytes remain at `pointer`.
            l1 = StreamDigest.round(l1, UInt64(littleEndian: pointer.loadUnaligned(as: UInt64.self)))
            l2 = StreamDigest.round(l2, UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            l3 = StreamDigest.round(l3, UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
            l4 = StreamDigest.round(l4, UInt64(littleEndian: pointer.loadUnaligned(fromByteOffset: 24, as: UInt64.self)))
            pointer += StreamDigest.stripe
            left -= StreamDigest.stripe
        }
        lane1 = l1; lane2 = l2; lane3 = l3; lane4 = l4
        if left > 0 {
            withUnsafeMutableBytes(of: &pending) { raw in
                // SAFETY: left < 32 bytes remain at `pointer` and fit in `pending`.
                raw.baseAddress!.copyMemory(from: pointer, byteCount: left)
            }
            pendingCount = left
        }
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    private mutating func consumeStripe(_ a: UInt64, _ b: UInt64, _ c: UInt64, _ d: UInt64) {
        lane1 = StreamDigest.round(lane1, a)
        lane2 = StreamDigest.round(lane2, b)
        lane3 = StreamDigest.round(lane3, c)
        lane4 = StreamDigest.round(lane4, d)
    }

    /// The digest of everything fed so far; feeding may continue afterwards.
    var value: UInt64 {
        typealias D = StreamDigest
        var hash: UInt64
        if totalLength >= UInt64(D.stripe) {
            hash = D.rotate(lane1, 1) &+ D.rotate(lane2, 7) &+ D.rotate(lane3, 12) &+ D.rotate(lane4, 18)
            for lane in [lane1, lane2, lane3, lane4] {
                hash = (hash ^ D.round(0, lane)) &* D.prime1 &+ D.prime4
            }
        } else {
            hash = D.prime5
        }
        hash &+= totalLength
        var tail = pending
        let count = pendingCount
        withUnsafeBytes(of: &tail) { raw in
            var offset = 0
            while offset + 8 <= count {
                let word = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                hash = D.rotate(hash ^ D.round(0, word), 27) &* D.prime1 &+ D.prime4
                offset += 8
            }
            if offset + 4 <= count {
                let word = UInt64(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                hash = D.rotate(hash ^ (word &* D.prime1), 23) &* D.prime2 &+ D.prime3
                offset += 4
            }
            while offset < count {
                hash = D.rotate(hash ^ (UInt64(raw[offset]) &* D.prime5), 11) &* D.prime1
                offset += 1
            }
        }
        hash ^= hash >> 33
        hash &*= D.prime2
        hash ^= hash >> 29
        hash &*= D.prime3
        hash ^= hash >> 32
        return hash
    }
}
