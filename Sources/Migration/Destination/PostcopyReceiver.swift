import SystemSupport
import Glibc
import Machine

/// The destination after a postcopy switchover: the guest runs here while the pages still on
/// the source arrive (PostcopyProtocol.swift). A fault thread turns each vCPU fault on a missing
/// page into a request to the source; the receiving thread puts pages in place as they come,
/// requested or pushed, which wakes the vCPU. When the connection breaks, the guest keeps
/// running here and waits on each missing page it touches, until `migrate_recover` brings a
/// new connection from the same source (`postcopy-paused`, as in QEMU).
final class PostcopyReceiver: @unchecked Sendable {
    private let ram: PostcopyRAM
    private let pageCounts: [Int]
    private let id: UInt64
    private let statistics: MigrationStatistics?
    private let log: (String) -> Void

    private let state = Mutex()
    /// Pages still to arrive, per region.
    private var missing: [[UInt64]]
    private var missingCount: Int
    /// Faulted pages not yet in place: when the fault was seen (ns), by region << 40 | page.
    private var waiting: [Int: UInt64] = [:]
    private var latencies: [UInt64] = []
    private var requestsSent: UInt64 = 0
    /// The connection requests go to; nil while paused.
    private var stream: MigrationStream?
    /// A recovery connection from `migrate_recover`, not yet taken over.
    private var offered: MigrationStream?
    private var stopFaults = false
    private var faultThreadRunning = false
    private var faultFailure: Error?
    private let sendLock = Mutex()

    init(ram: PostcopyRAM, missing: [[UInt64]], id: UInt64, statistics: MigrationStatistics?,
         log: @escaping (String) -> Void) {
        self.ram = ram
        pageCounts = ram.regions.map(\.pageCount)
        self.missing = missing
        missingCount = PageBitmaps.count(missing)
        self.id = id
        self.statistics = statistics
        self.log = log
    }

    var pagesStillMissing: Int { state.withLock { missingCount } }

    /// Starts answering faults over `connection`; call before the guest resumes, so that its
    /// first fault is asked for at once.
    func startFaultHandling(over connection: MigrationStream) throws {
        state.withLock { faultThreadRunning = true; stream = connection }
        do {
            try HostThread.detach(name: "postcopy-faults") { [self] in
                handleFaults()
                state.withLock { faultThreadRunning = false; state.broadcast() }
            }
        } catch {
            state.withLock { faultThreadRunning = false; stream = nil }
            throw error
        }
    }

    /// Receives pages until the source's end record and every page is here, through as many
    /// pauses and recoveries as it takes; then RAM is plain memory again and the source is
    /// acknowledged. Throws only when the guest cannot go on (a page cannot be placed).
    func run(reader initialReader: StreamReader, stream initialStream: MigrationStream) throws -> Int {
        var reader = initialReader
        var connection = initialStream
        var received = 0
        send([StreamFormat.ReplyTag.resumed.rawValue], on: connection)
        defer { stopFaultHandling() }
        while true {
            do {
                try receivePages(reader, count: &received)
                break
            } catch let error as PostcopyRAM.Failure {
                throw MigrationError.postcopyFaults("\(error)")
            } catch {
                if let failure = state.withLock({ faultFailure }) { throw failure }
                state.withLock { stream = nil }
                connection.shutdown()
                publish(status: .postcopyPaused)
                log("swiftkvm: postcopy paused: lost the source (\(error)); \(pagesStillMissing) pages are still there, and a vCPU that touches one waits. Recover with migrate_recover URI here, then migrate -r URI on the source")
                (reader, connection) = try waitForRecovery()
                publish(status: .postcopyActive)
                log("swiftkvm: postcopy recovered: \(pagesStillMissing) pages still to come")
            }
        }
        ram.finish()
        publish(status: .completed)
        try? ReturnPath.sendAck(on: connection)
        connection.shutdownWrite()
        return received
    }

    /// `migrate_recover`'s accepted connection; false unless postcopy is paused.
    func offer(_ connection: MigrationStream) -> Bool {
        state.withLock {
            guard stream == nil, offered == nil else { return false }
            offered = connection
            state.broadcast()
            return true
        }
    }

    /// `migrate_pause` on the destination: cuts the connection; false unless active.
    func pause() -> Bool {
        state.withLock {
            guard let stream else { return false }
            stream.shutdown()
            return true
        }
    }

    var isPaused: Bool { state.withLock { stream == nil && offered == nil } }

    // MARK: Pages

    private func receivePages(_ reader: StreamReader, count received: inout Int) throws {
        let pageSize = GuestRAMRegion.pageSize
        let bounce = UnsafeMutableRawPointer.allocate(byteCount: PostcopyProtocol.maxPagesPerRecord * pageSize, alignment: pageSize)
        defer { bounce.deallocate() }
        var lastPublished: UInt64 = 0
        while true {
            reader.context = "receiving postcopy pages"
            let tagByte = try reader.readU8()
            switch StreamFormat.Tag(rawValue: tagByte) {
            case .postcopyPages:
                let region = Int(try reader.readU32()), first = try reader.readU64(), count = Int(try reader.readU32())
                guard region < pageCounts.count, (1...PostcopyProtocol.maxPagesPerRecord).contains(count),
                      first < UInt64(pageCounts[region]), Int(first) + count <= pageCounts[region] else {
                    throw MigrationError.malformedStream("postcopy pages \(first)+\(count) of RAM region \(region), outside guest RAM")
                }
                try reader.readPayload(into: bounce, count: count * pageSize)
                // One UFFDIO_COPY and one lock for the record: per page they were most of the
                // push's cost on loopback.
                try ram.place(region: region, firstPage: Int(first), count: count, from: bounce)
                arrived(region: region, firstPage: Int(first), count: count)
                received += count
                let now = MonotonicClock.nanoseconds()
                if now - lastPublished > 100_000_000 { publishFaults(); lastPublished = now }
            case .postcopyEnd:
                let left = pagesStillMissing
                guard left == 0 else {
                    throw MigrationError.malformedStream("the source ended postcopy with \(left) pages still missing")
                }
                publishFaults()
                return
            default:
                throw MigrationError.malformedStream("unexpected record tag 0x\(String(tagByte, radix: 16)) during postcopy")
            }
        }
    }

    private func arrived(region: Int, firstPage: Int, count: Int) {
        state.withLock {
            // Read under the lock: the fault thread may record a wait for this page after a
            // clock read taken outside it, and the difference would go negative (it crashed
            // a destination once, right after a recovery).
            let now = MonotonicClock.nanoseconds()
            for page in firstPage..<(firstPage + count) {
                let bit: UInt64 = 1 << UInt64(page & 63)
                if missing[region][page >> 6] & bit != 0 {
                    missing[region][page >> 6] &= ~bit
                    missingCount -= 1
                }
                if !waiting.isEmpty, let since = waiting.removeValue(forKey: region << 40 | page) { latencies.append(now - since) }
            }
        }
    }

    // MARK: Faults

    private func handleFaults() {
        while !state.withLock({ stopFaults }) {
            var entry = pollfd(fd: ram.pollDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 100) > 0 else { continue }
            do {
                while let fault = try ram.nextFault() {
                    let key = fault.region << 40 | fault.page
                    let (isMissing, target): (Bool, MigrationStream?) = state.withLock {
                        let bit: UInt64 = 1 << UInt64(fault.page & 63)
                        guard missing[fault.region][fault.page >> 6] & bit != 0 else { return (false, nil) }
                        guard waiting[key] == nil else { return (true, nil) }
                        waiting[key] = MonotonicClock.nanoseconds()
                        return (true, stream)
                    }
                    if !isMissing {
                        // Valid here but never backed (a zero page), or placed meanwhile.
                        try ram.fillZero(region: fault.region, page: fault.page)
                    } else if let target {
                        request(fault.region, fault.page, on: target)
                    }
                }
            } catch {
                state.withLock { faultFailure = MigrationError.postcopyFaults("\(error)") }
                _ = pause()
                return
            }
        }
    }

    private func request(_ region: Int, _ page: Int, on target: MigrationStream) {
        send(PostcopyProtocol.request(region: region, page: page), on: target)
        state.withLock { requestsSent += 1 }
    }

    /// A failed send needs no handling here: the receiving thread sees the same broken
    /// connection and pauses.
    private func send(_ bytes: [UInt8], on target: MigrationStream) {
        sendLock.withLock {
            _ = try? bytes.withUnsafeBytes { try target.writeAll($0, operation: "asking the source for pages") }
        }
    }

    private func stopFaultHandling() {
        state.withLock {
            stopFaults = true
            while faultThreadRunning { state.wait() }
        }
    }

    // MARK: Recovery

    /// Waits for `migrate_recover`'s connection, checks it resumes this migration, and tells
    /// the source which pages are still missing; faults still waiting are asked for again.
    private func waitForRecovery() throws -> (StreamReader, MigrationStream) {
        while true {
            let connection: MigrationStream = state.withLock {
                while offered == nil { state.wait() }
                return offered!
            }
            publish(status: .postcopyRecover)
            do {
                let reader = StreamReader(socket: connection)
                try StreamReceiver.readHeader(reader)
                reader.context = "reading the postcopy resume"
                let tag = try reader.readU8()
                guard tag == StreamFormat.Tag.postcopyResume.rawValue else {
                    throw MigrationError.malformedStream("a recovery connection must start with resume, found tag 0x\(String(tag, radix: 16))")
                }
                let resumed = try reader.readU64()
                guard resumed == id else { throw MigrationError.postcopyWrongMigration(expected: id, got: resumed) }
                let (bitmaps, again): ([[UInt64]], [Int]) = state.withLock {
                    stream = connection
                    offered = nil
                    return (missing, Array(waiting.keys))
                }
                send(PostcopyProtocol.missing(bitmaps), on: connection)
                for key in again { request(key >> 40, key & ((1 << 40) - 1), on: connection) }
                return (reader, connection)
            } catch {
                log("swiftkvm: postcopy recovery refused: \(error)")
                if connection.canReply { try? ReturnPath.sendError("\(error)", on: connection) }
                connection.close()
                state.withLock { offered = nil }
                publish(status: .postcopyPaused)
            }
        }
    }

    // MARK: Statistics

    private func publish(status: MigrationStatus) {
        publishFaults()
        statistics?.update { $0.status = status }
    }

    private func publishFaults() {
        guard let statistics else { return }
        let (samples, requests, left) = state.withLock { (latencies, requestsSent, missingCount) }
        let faults = PostcopyFaultStats(latenciesNs: samples)
        statistics.update { stats in
            stats.postcopyFaults = faults
            stats.postcopyRequests = requests
            stats.remainingBytes = UInt64(left * GuestRAMRegion.pageSize)
        }
    }
}
