import Glibc
import Machine
import SystemSupport

/// Commits the destination's guest RAM on a background thread while the stream is awaited and
/// received, so that first-touch page faults stay out of the receive path. Without it the
/// receiving thread zeroes every fresh host page inside `recv`: measured here (a nested host,
/// where the outer hypervisor also backs each new page) that is 0.65-2.6 s per GiB and was
/// two thirds of the destination's time for a 1 GiB guest full of data.
///
/// Cost: the destination's RAM is committed up front, like QEMU's `-mem-prealloc`, except for
/// chunks the receiver has already passed in pass 1 (their zero pages need no memory), and
/// only while the host keeps 1/8 of its memory free; the chunks pass 1 leaves all zero are
/// given back as it passes them (`releaseZeroChunks`). Once
/// pages arrive it runs at SCHED_IDLE, using only CPU time nothing else wants. It stops for
/// good when the receiver outpaces it, and the receiver stops it (waiting) when
/// pass 1 ends:
/// committing one 2 MiB chunk takes 1.3-5 ms here, and a commit still in flight at switchover
/// slowed the destination's whole switchover (a8g downtime 7-10 ms with it, 1-3 ms without).
///
/// It also learns which memory is zero: after committing a 2 MiB chunk it checks that the
/// chunk is all zero. Only the receiver writes guest RAM while a migration comes in, so a zero
/// page arriving for such a chunk needs neither a scan nor a write unless the receiver wrote
/// that page itself (tracked in `written`, used by the receiving thread only).
final class RAMPrefaulter {
    static let chunkPages = 512
    /// MADV_POPULATE_WRITE (Linux 5.14); older kernels refuse it and nothing is prefaulted.
    private static let populateWrite: Int32 = 23
    /// SCHED_IDLE from <sched.h>, which Glibc's module does not export.
    private static let idlePolicy: Int32 = 5

    private let regions: [GuestRAMRegion]
    /// Global index of each region's first chunk.
    private let firstChunk: [Int]
    /// Chunks in all regions.
    let chunkCount: Int
    /// Per chunk: committed and found all zero. Final once the chunk is below `published`.
    private let verifiedZero: UnsafeMutablePointer<Bool>
    /// Pages the receiver wrote, one bit each, per region (receiving thread only).
    private var written: [UnsafeMutablePointer<UInt64>]

    private let lock = Mutex()
    private var published = 0
    private var receiverChunk = 0
    private var stopRequested = false
    private let finished = Mutex()
    private var running = false

    /// Whether the thread drops to SCHED_IDLE once pages flow. Tests that wait for it turn
    /// this off: on a busy machine an idle-class thread may get no CPU for minutes.
    private let yieldsToEverything: Bool

    init(regions: [GuestRAMRegion], yieldsToEverything: Bool = true) {
        self.regions = regions
        self.yieldsToEverything = yieldsToEverything
        var first: [Int] = []
        var total = 0
        for region in regions {
            first.append(total)
            total += (region.pageCount + Self.chunkPages - 1) / Self.chunkPages
        }
        firstChunk = first
        chunkCount = total
        verifiedZero = .allocate(capacity: max(total, 1))
        verifiedZero.initialize(repeating: false, count: max(total, 1))
        written = regions.map { region in
            let words = (region.pageCount + 63) / 64
            let bits = UnsafeMutablePointer<UInt64>.allocate(capacity: max(words, 1))
            bits.initialize(repeating: 0, count: max(words, 1))
            return bits
        }
    }

    deinit {
        stop()
        verifiedZero.deallocate()
        for bits in written { bits.deallocate() }
    }

    func start() {
        finished.lock()
        running = true
        finished.unlock()
        let done = { [self] in
            finished.lock()
            running = false
            finished.broadcast()
            finished.unlock()
        }
        do {
            try HostThread.detach(name: "ram-prefault") { [self] in
                run()
                done()
            }
        } catch {
            // Prefaulting only saves the guest page faults later; the migration goes on without it.
            done()
        }
    }

    /// Asks the thread to stop after its current chunk, without waiting. Committing and
    /// reading pages never changes them, so it may overlap the guest running.
    func requestStop() {
        lock.withLock { stopRequested = true }
    }

    /// Whether the thread is still working (it may also end on its own).
    var isRunning: Bool {
        finished.lock()
        defer { finished.unlock() }
        return running
    }

    /// Stops the thread and waits for it (at most one chunk's work).
    func stop() {
        requestStop()
        finished.lock()
        while running { finished.wait() }
        finished.unlock()
    }

    /// Called by the receiver before each batch. `passOnePosition` is where pass 1 has got to
    /// (nil in later passes). Returns how many chunks have a final `verifiedZero`.
    func sync(passOnePosition: (region: Int, page: Int)?) -> Int {
        lock.withLock {
            streamStarted = true
            if let position = passOnePosition, position.region < firstChunk.count {
                receiverChunk = max(receiverChunk, firstChunk[position.region] + position.page / Self.chunkPages)
            }
            return published
        }
    }

    /// Whether a zero page for `page` can be skipped: its chunk was verified zero (below
    /// `published`, from `sync`) and the receiver has not written it since.
    func isKnownZero(region: Int, page: Int, published: Int) -> Bool {
        let chunk = firstChunk[region] + page / Self.chunkPages
        guard chunk < published, verifiedZero[chunk] else { return false }
        return written[region][page / 64] & (1 << UInt64(page % 64)) == 0
    }

    /// Records that the receiver wrote `count` pages from `firstPage` (checked by the caller).
    func markWritten(region: Int, firstPage: Int, count: Int) {
        let bits = written[region]
        for page in firstPage..<(firstPage + count) { bits[page / 64] |= 1 << UInt64(page % 64) }
    }

    /// Gives back the memory of committed chunks that pass 1 left all zero (verified zero when
    /// committed, none of their pages written since), up to global chunk `limit`: committing
    /// ahead of the stream must not leave an idle guest's destination holding its whole RAM
    /// (measured: 1.9 GiB resident for an idle 4 GiB guest whose source holds 2 MiB). Called
    /// on the receiving thread for the chunks pass 1 has left behind (pass 1 goes in address
    /// order and never comes back, the thread commits only chunks ahead of the receiver, and
    /// only the receiver writes guest RAM), and for the rest once pass 1 ended and the thread
    /// stopped: never in the switchover, where releasing 3.4 GiB took 13 ms. A zero page
    /// that arrives later for a released chunk still reads as zero; data commits its page
    /// again. Returns the chunks released.
    @discardableResult
    func releaseZeroChunks(below limit: Int) -> Int {
        let end = min(limit, lock.withLock { published })
        let pageSize = GuestRAMRegion.pageSize
        var released = 0
        var region = 0
        while releaseCursor < end {
            let chunk = releaseCursor
            releaseCursor += 1
            guard verifiedZero[chunk] else { continue }
            while region + 1 < firstChunk.count && firstChunk[region + 1] <= chunk { region += 1 }
            let page = (chunk - firstChunk[region]) * Self.chunkPages
            let count = min(Self.chunkPages, regions[region].pageCount - page)
            let bits = written[region]
            // A chunk is 512 pages: eight whole words of `written`.
            guard !(page / 64..<((page + count + 63) / 64)).contains(where: { bits[$0] != 0 }) else { continue }
            // SAFETY: page + count <= pageCount, so the range lies inside the region's mapping.
            if madvise(regions[region].host + page * pageSize, count * pageSize, MADV_DONTNEED) == 0 { released += 1 }
        }
        return released
    }

    /// The first chunk `releaseZeroChunks` has not looked at (receiving thread only).
    private var releaseCursor = 0

    /// Global index of the chunk holding `page` of `region`.
    func chunk(region: Int, page: Int) -> Int { firstChunk[region] + page / Self.chunkPages }

    /// Committing RAM early must not push the host into swapping or the OOM killer for pages
    /// that may arrive as zero anyway: it stops once free memory falls under 1/8 of the total.
    private static let memoryCheckChunks = 32

    private static func hostHasMemoryToSpare() -> Bool {
        let free = sysconf(Int32(_SC_AVPHYS_PAGES)), total = sysconf(Int32(_SC_PHYS_PAGES))
        guard free > 0, total > 0 else { return false }
        return free * 8 > total
    }

    /// Set by the receiver's first `sync`: from then on the thread yields to everything else.
    private var streamStarted = false

    /// A receiver that crosses more chunks than this while one chunk is committed is reading
    /// zero pages (real data arrives at about one chunk per millisecond here).
    private static let outpacedChunks = 64

    private func run() {
        var idle = false
        var receiverBeforeCommit = 0
        let pageSize = GuestRAMRegion.pageSize
        var chunk = 0
        for region in regions {
            var page = 0
            while page < region.pageCount {
                let (stop, receiverAt, started) = lock.withLock { (stopRequested, receiverChunk, streamStarted) }
                if stop { return }
                if started && !idle && yieldsToEverything {
                    // Waiting, committing RAM is the only work; once pages flow it must not slow
                    // the receiver down, and only uses otherwise idle CPU time.
                    var parameters = sched_param()
                    _ = sched_setscheduler(0, Self.idlePolicy, &parameters)
                    idle = true
                }
                let count = min(Self.chunkPages, region.pageCount - page)
                if chunk % Self.memoryCheckChunks == 0 && !Self.hostHasMemoryToSpare() { return }
                if chunk >= receiverAt {
                    // Outpaced: the stream arrives far faster than memory can be committed (a run
                    // of zero pages), so committing helps no more, and a commit still in flight
                    // when pass 1 ends would land in the downtime.
                    if receiverAt - receiverBeforeCommit > Self.outpacedChunks { return }
                    receiverBeforeCommit = receiverAt
                    // SAFETY: page + count <= pageCount, so the range lies inside the region's mapping.
                    let start = region.host + page * pageSize
                    // Committing never changes a page's contents, so it may race with the receiver.
                    guard madvise(start, count * pageSize, Self.populateWrite) == 0 else { return }
                    verifiedZero[chunk] = (0..<count).allSatisfy { isZeroPage(start + $0 * pageSize) }
                }
                chunk += 1
                page += count
                lock.withLock { published = chunk }
            }
        }
    }
}
