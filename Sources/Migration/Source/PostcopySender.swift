import Glibc
import SystemSupport
import Machine

/// The source after a postcopy switchover: the guest runs on the destination and this side
/// holds the pages it has not received yet. A background push sends them in address order;
/// a page the destination asks for (a vCPU waits for it) jumps the queue. When the connection
/// breaks, both sides wait (`postcopy-paused`) for `migrate -r URI`, then the destination
/// says which pages it still lacks and the push goes on from there.
///
/// The guest is paused here for good, so its pages hold still and are sent straight from its
/// memory. Only this object's thread writes to the connection; one reader thread per
/// connection takes the destination's requests and answers.
final class PostcopySender: @unchecked Sendable {
    private let regions: [GuestRAMRegion]
    private let pageCounts: [Int]
    private let id: UInt64
    private let statistics: MigrationStatistics
    /// Pages still to send, per region; only the sending thread reads or changes it.
    private var pending: [[UInt64]]
    private var pendingCount: Int
    private var cursor = (region: 0, word: 0)

    /// Shared with the reader thread and the monitor (`migrate_pause`, `migrate -r`).
    private let state = Mutex()
    private var requests: [(region: Int, page: Int)] = []
    private var acknowledged = false
    private var resumedAt: UInt64?
    private var connectionFailure: Error?
    private var currentStream: MigrationStream?
    private var recoveryURI: MigrationURI?

    init(regions: [GuestRAMRegion], pending: [[UInt64]], id: UInt64, statistics: MigrationStatistics) {
        self.regions = regions
        pageCounts = regions.map(\.pageCount)
        self.pending = pending
        pendingCount = PageBitmaps.count(pending)
        self.id = id
        self.statistics = statistics
    }

    /// When the destination said its guest runs (nil until then).
    var guestResumedAt: UInt64? { state.withLock { resumedAt } }

    /// Sends every pending page over `stream` (already carrying the switchover) and waits for
    /// the destination's ack, pausing and recovering as often as the connection breaks.
    /// `announce` reports each pause and recovery.
    func run(stream initial: MigrationStream, writer initialWriter: StreamWriter,
             announce: @escaping (MigrationEvent) -> Void) throws {
        var stream = initial, writer = initialWriter
        while true {
            do {
                try push(stream: stream, writer: writer)
                stream.close()
                return
            } catch {
                stream.shutdown()
                let reason = state.withLock { connectionFailure } ?? error
                statistics.update { $0.status = .postcopyPaused }
                announce(.postcopyPaused(reason: "\(reason)"))
                (stream, writer) = recover(announce: announce)
                announce(.postcopyRecovered)
            }
        }
    }

    /// `migrate_pause`: breaks the connection on purpose; false unless postcopy is active.
    func pause() -> Bool {
        state.withLock {
            guard let stream = currentStream else { return false }
            connectionFailure = MigrationError.postcopyPausedByUser
            stream.shutdown()
            return true
        }
    }

    /// `migrate -r URI`: where to reconnect; false unless postcopy is paused.
    func requestRecovery(to uri: MigrationURI) -> Bool {
        state.withLock {
            guard currentStream == nil, recoveryURI == nil, statistics.snapshot.status == .postcopyPaused else { return false }
            recoveryURI = uri
            state.broadcast()
            return true
        }
    }

    // MARK: Sending

    private func push(stream: MigrationStream, writer: StreamWriter) throws {
        state.withLock {
            currentStream = stream
            connectionFailure = nil
            requests.removeAll()
        }
        defer { state.withLock { currentStream = nil } }
        stream.limitSendBuffer(bytes: 256 * 1024)
        try HostThread.detach(name: "postcopy-rp") { [self] in readReplies(from: stream) }
        var endSent = false
        while true {
            let next: [(region: Int, page: Int)]? = try state.withLock {
                while true {
                    if let failure = connectionFailure { throw failure }
                    if acknowledged { return nil }
                    if !requests.isEmpty { defer { requests.removeAll() }; return requests }
                    if pendingCount > 0 || !endSent { return [] }
                    state.wait()
                }
            }
            guard let next else { return }
            if !next.isEmpty {
                for request in next where isPending(request.region, request.page) {
                    try send(region: request.region, first: request.page, count: 1, writer: writer)
                    // The background push goes on right after the page asked for, as QEMU's
                    // does: a guest that walks through memory then finds the next pages
                    // already on their way instead of faulting on each of them.
                    cursor = (request.region, (request.page + 1) / 64)
                }
            } else if let run = nextBackgroundRun() {
                try send(region: run.region, first: run.first, count: run.count, writer: writer)
            } else if !endSent {
                try writer.writePostcopyEnd()
                endSent = true
            }
        }
    }

    private func send(region: Int, first: Int, count: Int, writer: StreamWriter) throws {
        try writer.writePostcopyPages(region: region, firstPage: first, count: count, regionBase: regions[region].host)
        for page in first..<(first + count) { pending[region][page >> 6] &= ~(1 << UInt64(page & 63)) }
        pendingCount -= count
        statistics.update { stats in
            stats.transferredBytes += UInt64(count * GuestRAMRegion.pageSize + 17)
            stats.postcopyBytes += UInt64(count * GuestRAMRegion.pageSize)
            stats.normalPages += UInt64(count)
            stats.remainingBytes = UInt64(self.pendingCount * GuestRAMRegion.pageSize)
        }
    }

    private func isPending(_ region: Int, _ page: Int) -> Bool {
        pending[region][page >> 6] & (1 << UInt64(page & 63)) != 0
    }

    /// The next run of pending pages at or after the cursor, at most one record long.
    private func nextBackgroundRun() -> (region: Int, first: Int, count: Int)? {
        guard pendingCount > 0 else { return nil }
        for _ in 0...regions.count {
            let region = cursor.region % regions.count
            let words = pending[region]
            var word = cursor.word
            while word < words.count && words[word] == 0 { word += 1 }
            if word < words.count {
                let first = word * 64 + words[word].trailingZeroBitCount
                var count = 1
                while count < PostcopyProtocol.maxPagesPerRecord && first + count < pageCounts[region]
                        && isPending(region, first + count) { count += 1 }
                cursor = (region, (first + count) / 64)
                return (region, first, count)
            }
            cursor = ((region + 1) % regions.count, 0)
        }
        return nil
    }

    // MARK: The destination's replies

    private func readReplies(from stream: MigrationStream) {
        do {
            while true {
                // A guest that faults on nothing for a while is no stall: only a partial
                // message is bound by the socket's timeout.
                guard stream.hasPendingInput(waitMilliseconds: 200) else {
                    if state.withLock({ currentStream !== stream || acknowledged }) { return }
                    continue
                }
                let reply = try PostcopyProtocol.readReply(from: stream, pageCounts: pageCounts)
                let done: Bool = state.withLock {
                    switch reply {
                    case .pageRequest(let region, let page):
                        requests.append((region, page))
                        statistics.update { $0.postcopyRequests += 1 }
                    case .resumed:
                        if resumedAt == nil { resumedAt = MonotonicClock.nanoseconds() }
                    case .ack:
                        acknowledged = true
                    case .error(let message):
                        connectionFailure = MigrationError.destinationFailed(message)
                    case .missingPages:
                        connectionFailure = MigrationError.malformedStream("the destination sent its missing pages unasked")
                    }
                    state.broadcast()
                    return acknowledged || connectionFailure != nil
                }
                if done { return }
            }
        } catch {
            state.withLock {
                if connectionFailure == nil { connectionFailure = error }
                state.broadcast()
            }
            stream.shutdown()
        }
    }

    // MARK: Recovery

    /// Waits for `migrate -r`, connects, and learns which pages the destination still lacks.
    /// A failed attempt goes back to waiting, with the reason on the monitor.
    private func recover(announce: (MigrationEvent) -> Void) -> (MigrationStream, StreamWriter) {
        while true {
            let uri: MigrationURI = state.withLock {
                while recoveryURI == nil { state.wait() }
                return recoveryURI!
            }
            statistics.update { $0.status = .postcopyRecover }
            do {
                let link = try uri.transport.connect()
                let stream = link.stream
                stream.configureForBulkTransfer(timeoutSeconds: TransportLimits.stallTimeoutSeconds)
                let writer = StreamWriter(socket: stream)
                try writer.writePostcopyResume(id: id)
                guard case .missingPages(let missing) = try PostcopyProtocol.readReply(from: stream, pageCounts: pageCounts) else {
                    throw MigrationError.malformedStream("the destination did not answer the resume with its missing pages")
                }
                // The destination knows best what it lacks; never send a page it already has.
                pending = missing
                pendingCount = PageBitmaps.count(missing)
                cursor = (0, 0)
                state.withLock { recoveryURI = nil }
                statistics.update { $0.status = .postcopyActive }
                return (stream, writer)
            } catch {
                state.withLock { recoveryURI = nil }
                statistics.update { $0.status = .postcopyPaused }
                announce(.postcopyPaused(reason: "recovery failed: \(error)"))
            }
        }
    }
}
