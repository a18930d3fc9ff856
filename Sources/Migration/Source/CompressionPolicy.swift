import Glibc

/// When a RAM batch is worth compressing (multifd-compression zstd). Two rules, each keeping
/// compression from ever making a migration slower than sending plain:
///
/// - Only while the link is the bottleneck: the socket holds at least `backlogBytes` not yet
///   sent. The link then has that much to send while a batch is compressed (1-2 ms for 512 KiB
///   at level 1 here, against 40 ms for 4 MiB at 1 Gbit/s), so it never waits for the
///   compressor, and every byte saved is link time saved. When the link keeps up (loopback:
///   the socket drains faster than zstd's ~0.3-0.5 GB/s per core) batches go plain.
///   A stream without a queue to ask (a file, a pipe) compresses whatever shrinks.
/// - Data that does not shrink costs one failed attempt, then only samples: after
///   `missesBeforeSampling` batches in a row that did not shrink, one batch in `sampleEvery`
///   is tried, so a guest whose data turns compressible is noticed within 16 batches (8 MiB).
///   A failed attempt on random data runs at ~2.5 GB/s here (`zstd -b1`), so sampling keeps
///   its cost under 1% of the pass.
struct CompressionPolicy {
    /// 0: every batch is tried whatever the link does. `SWIFTKVM_MIGRATION_COMPRESS_ALWAYS=1`
    /// in the source's environment sets that, for tests on loopback and to measure what
    /// always compressing would cost.
    var backlogBytes = getenv("SWIFTKVM_MIGRATION_COMPRESS_ALWAYS") != nil ? 0 : 1 << 20
    static let missesBeforeSampling = 4
    static let sampleEvery = 16

    private var misses = 0
    private var skipped = 0

    /// `backlog`: bytes waiting in the socket, nil where the stream cannot say.
    mutating func shouldTry(backlog: Int?) -> Bool {
        if let backlog, backlog < backlogBytes { return false }
        guard misses >= Self.missesBeforeSampling else { return true }
        skipped += 1
        guard skipped >= Self.sampleEvery else { return false }
        skipped = 0
        return true
    }

    mutating func record(shrank: Bool) {
        misses = shrank ? 0 : misses + 1
    }
}
