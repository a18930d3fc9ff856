/// What multifd-compression did in one migration (`info migrate`'s compression lines).
public struct CompressionCounts: Equatable, Sendable {
    /// Batches sent compressed, and the normal pages they held.
    public var batches: UInt64 = 0
    public var pages: UInt64 = 0
    /// Their zstd frames, and everything they put on the wire (frames and headers).
    public var frameBytes: UInt64 = 0
    public var wireBytes: UInt64 = 0
    /// Batches sent plain: tried but not clearly smaller; not tried because the link kept up
    /// (QEMU's "busy"); not tried because recent batches did not shrink and this one was no sample.
    public var didNotShrink: UInt64 = 0
    public var notTried: UInt64 = 0
    public var notSampled: UInt64 = 0

    public init() {}

    /// Plain bytes per compressed byte over the compressed batches (QEMU's compression rate).
    public var rate: Double {
        frameBytes == 0 ? 0 : Double(pages) * 4096 / Double(frameBytes)
    }

    /// Share of batches with data that went plain without a try (QEMU's busy rate, whose
    /// "busy" is a batch no compression thread took).
    public var busyRate: Double {
        let all = batches + didNotShrink + notTried + notSampled
        return all == 0 ? 0 : Double(notTried) / Double(all)
    }
}
