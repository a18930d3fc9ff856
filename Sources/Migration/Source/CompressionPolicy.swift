import Glibc

/// When a RAM batch is worth compressing (multifd-compression zstd). Two rules, each keeping
/// compression from making a migration slower than sending plain:
///
/// - Only while the link is the bottleneck, and has enough queued to keep it busy while zstd
///   works: the socket must hold at least twice what the link sends in the time one batch
///   takes to compress. The link's rate is measured from how fast the socket's queue
///   (SIOCOUTQ) drains while it stays non-empty; zstd's cost per byte from its own attempts.
///   The link then never waits for the compressor, and every byte saved is link time saved.
///   Measured on 1 Gbit/s: ~120 MB/s against ~1.5 ms per 512 KiB batch at level 1, so a
///   backlog of ~0.4 MiB suffices and the 4-8 MiB socket buffer holds far more. On loopback the
///   socket drains at 2-3 GB/s, which would need ~10 MiB queued: batches go plain there (an
///   earlier rule, "compress while 1 MiB is queued", made loopback 1.5x slower). A stream with
///   no queue to ask (a file, a pipe) compresses whatever shrinks.
/// - Data that does not shrink costs one attempt per batch at first, then only samples: after
///   `missesBeforeSampling` batches in a row that did not shrink, one batch in `sampleEvery` is
///   tried, so data that turns compressible is noticed within 4 batches (2 MiB). Measured on
///   1 Gbit/s: trying every batch took the same time on a page cache (the extra tries were
///   incompressible too) and twice the CPU on random data; a margin of 1 instead of 2 left the
///   link idle more often (2.7-3.4 s against 2.3 s).
struct CompressionPolicy {
    static let missesBeforeSampling = 4
    static let sampleEvery = 4
    /// Before zstd has been timed here: 3 ns per byte (0.33 GB/s, level 1 on this machine).
    static let initialCostPerKiB: Double = 3 * 1024
    /// How much longer than one compression the queued bytes must keep the link busy.
    static let margin: Double = 2

    /// Every batch is tried whatever the link does: for tests on loopback, and to measure what
    /// always compressing costs (`SWIFTKVM_MIGRATION_COMPRESS_ALWAYS=1` in the source's
    /// environment).
    var alwaysTry = getenv("SWIFTKVM_MIGRATION_COMPRESS_ALWAYS") != nil

    private var misses = 0
    private var skipped = 0
    /// Nanoseconds per KiB of pages from handing a batch to the compression threads until it
    /// is compressed (queueing and waking a thread included), averaged over recent attempts.
    private(set) var costPerKiB = CompressionPolicy.initialCostPerKiB
    /// Bytes per second the link sent while the queue stayed non-empty; nil until measured.
    private(set) var linkRate: Double?
    private var last: (now: UInt64, written: UInt64, backlog: Int)?

    /// `backlog`: bytes waiting in the socket, nil where the stream cannot say; `written`:
    /// bytes handed to the socket so far; `plainBytes`: the batch's pages.
    mutating func shouldTry(backlog: Int?, written: UInt64, now: UInt64, plainBytes: Int) -> Bool {
        decide(backlog: backlog, written: written, now: now, plainBytes: plainBytes) == .tryIt
    }

    enum Decision: Equatable {
        case tryIt
        /// The link keeps up, or its rate is not known yet.
        case linkKeepsUp
        /// Recent batches did not shrink, and this one is not a sample.
        case notASample
    }

    mutating func decide(backlog: Int?, written: UInt64, now: UInt64, plainBytes: Int) -> Decision {
        if !alwaysTry, let backlog {
            measureLink(backlog: backlog, written: written, now: now)
            guard let linkRate else { return .linkKeepsUp }
            let compressSeconds = costPerKiB * Double(plainBytes) / 1024 / 1e9
            if Double(backlog) < Self.margin * compressSeconds * linkRate { return .linkKeepsUp }
        }
        guard misses >= Self.missesBeforeSampling else { return .tryIt }
        skipped += 1
        guard skipped >= Self.sampleEvery else { return .notASample }
        skipped = 0
        return .tryIt
    }

    mutating func record(shrank: Bool, plainBytes: Int, nanoseconds: UInt64) {
        misses = shrank ? 0 : misses + 1
        guard plainBytes > 0 else { return }
        let sample = Double(nanoseconds) * 1024 / Double(plainBytes)
        costPerKiB = costPerKiB * 0.75 + sample * 0.25
    }

    /// What left the socket since the last batch, over the time it took, when the queue was
    /// never seen empty (an idle link would read as a slow one).
    private mutating func measureLink(backlog: Int, written: UInt64, now: UInt64) {
        defer { last = (now, written, backlog) }
        guard let last, last.backlog > 0, backlog > 0, now > last.now, written >= last.written else { return }
        let sent = Double(written - last.written) - Double(backlog - last.backlog)
        guard sent > 0 else { return }
        let rate = sent * 1e9 / Double(now - last.now)
        linkRate = linkRate.map { $0 * 0.75 + rate * 0.25 } ?? rate
    }
}
