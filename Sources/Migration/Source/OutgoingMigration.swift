import Machine
import SystemSupport

/// One outgoing migration on its own thread: setup, pre-copy passes, switchover, and the
/// wait for the destination's acknowledgement (for a snapshot file: until the file is on
/// disk). Until then every failure puts the guest back as it was here.
final class OutgoingMigration: @unchecked Sendable {
    private let transport: MigrationTransport
    /// Nil for a plain stream.
    private let tls: MigrationTLS?
    private let machine: MigratableMachine
    private let parameters: () -> MigrationParameters
    private let capabilities: MigrationCapabilities
    private let policy: ConvergencePolicy
    private let statistics: MigrationStatistics
    private let events: (MigrationEvent) -> Void

    private let lock = Mutex()
    private var socket: MigrationStream?
    private var cancelRequested = false
    /// Set once the end marker is out: the destination may already be running the guest, so
    /// a cancel could leave it running in two places and is ignored from then on.
    private var streamComplete = false
    private let finished = Mutex()
    private var finalStatus: MigrationStatus?
    /// `migrate_start_postcopy` was given: the next pass end switches over to postcopy.
    private var postcopyRequested = false
    /// Set at the postcopy switchover; serves the destination's page requests from then on.
    private var postcopy: PostcopySender?

    init(uri: MigrationURI, tls: MigrationTLS?, machine: MigratableMachine, parameters: @escaping () -> MigrationParameters,
         capabilities: MigrationCapabilities, policy: @escaping ConvergencePolicy,
         statistics: MigrationStatistics, events: @escaping (MigrationEvent) -> Void) {
        transport = uri.transport; self.tls = tls; self.machine = machine; self.parameters = parameters
        self.capabilities = capabilities; self.policy = policy
        self.statistics = statistics; self.events = events
    }

    func start() {
        statistics.begin(totalBytes: machine.layout.ramSize)
        do {
            try HostThread.detach(name: "migration") { [self] in run() }
        } catch {
            // Nothing has started: it ends as a failed migration, reported as any other.
            finish(.failure(error), undo: Undo())
        }
    }

    /// Asks the job to stop; the guest keeps running here. No effect once it has finished.
    func cancel() {
        lock.withLock {
            guard !cancelRequested, !streamComplete, finalStatus == nil else { return }
            cancelRequested = true
            statistics.update { if $0.status.isInProgress { $0.status = .cancelling } }
            socket?.shutdown()
        }
    }

    func waitForCompletion() -> MigrationStatus {
        finished.lock()
        defer { finished.unlock() }
        while finalStatus == nil { finished.wait() }
        return finalStatus ?? .none
    }

    private var isCancelled: Bool { lock.withLock { cancelRequested } }

    /// What may still be queued on the socket when the guest pauses: 2 ms at 1 Gbit/s.
    static let switchoverQueueBytes = 256 * 1024
    /// How long to wait for the queue to get that short before pausing anyway.
    static let switchoverQueueWaitNanoseconds: UInt64 = 2_000_000_000

    /// `migrate_start_postcopy`: switch to postcopy at the end of the pass being sent.
    func startPostcopy() throws {
        guard capabilities.postcopyRAM else { throw MigrationError.postcopyNotEnabled }
        try lock.withLock {
            guard statistics.snapshot.status == .active, !streamComplete else { throw MigrationError.postcopyNotRunning }
            postcopyRequested = true
        }
    }

    /// `migrate_pause`: cuts the connection of an active postcopy (it then waits for `migrate -r`).
    func pausePostcopy() throws {
        guard let sender = lock.withLock({ postcopy }), sender.pause() else { throw MigrationError.pauseOutsidePostcopy }
    }

    /// `migrate -r URI`: reconnects a paused postcopy.
    func resumePostcopy(to uri: MigrationURI) throws {
        guard let sender = lock.withLock({ postcopy }), sender.requestRecovery(to: uri) else {
            throw MigrationError.resumeWithoutPausedMigration
        }
    }

    /// What must be undone if the migration fails.
    private struct Undo {
        var dirtyLogging = false
        /// The run state just before switchover paused the guest.
        var beforeSwitchover: RunState?
        /// A handoff's stream is complete: the destination may run the guest on this very
        /// memory, so this copy must not resume on its own.
        var memoryHandedOver = false
    }

    private func run() {
        var undo = Undo()
        let result = Result { try migrate(&undo) }
        finish(result, undo: undo)
    }

    private func finish(_ result: Result<Summary, Error>, undo: Undo) {
        let status: MigrationStatus
        let outcome: MigrationOutcome
        var releaseSharedRAM = false
        do {
            let summary = try result.get()
            releaseSharedRAM = summary.releaseSharedRAM
            statistics.update { $0.downtimeMs = summary.downtimeMs; $0.expectedDowntimeMs = nil }
            status = .completed
            outcome = .completed(totalMs: statistics.elapsedMs, downtimeMs: summary.downtimeMs,
                                 passes: summary.passes, bytesSent: summary.bytes)
        } catch let failure {
            let error = explain(failure)
            let guestRunning = rollBack(undo)
            if isCancelled || (error as? MigrationError) == .cancelled {
                status = .cancelled
                outcome = .cancelled(guestRunning: guestRunning)
            } else {
                var reason = "\(error)"
                if undo.memoryHandedOver {
                    reason += "; the guest stays paused here, since the destination may already run it on the same memory: check it before cont -f"
                }
                status = .failed(reason: reason)
                outcome = .failed(reason: reason, afterMs: statistics.elapsedMs, guestRunning: guestRunning)
            }
        }
        lock.withLock { socket?.close() }
        statistics.finish(status)
        // If even this fails, cont stays refused without -f, as after any migration.
        if releaseSharedRAM { try? machine.releaseSharedRAM() }
        events(.finished(outcome))
        finished.lock()
        lock.withLock { finalStatus = status }
        finished.broadcast()
        finished.unlock()
    }

    private struct Summary {
        var downtimeMs: UInt64
        var passes: Int
        var bytes: UInt64
        /// A handoff: let go of the guest's memory once the migration is reported complete.
        var releaseSharedRAM = false
    }

    private func migrate(_ undo: inout Undo) throws -> Summary {
        var setupTrace = SwitchoverTrace(side: "source")
        let link = try transport.connect()
        setupTrace.mark("connect")
        // An unfinished snapshot is removed when the migration ends without a commit.
        defer { link.discard() }
        let socket = link.stream
        try lock.withLock {
            self.socket = socket
            if cancelRequested { throw MigrationError.cancelled }
        }
        try tls?.secureOutgoing(socket)
        socket.configureForBulkTransfer(timeoutSeconds: TransportLimits.stallTimeoutSeconds)
        // mapped-ram: pages go to their own places in the file, the rest at the end.
        var mapped: MappedRAMWriter?
        if capabilities.mappedRAM {
            guard let snapshot = link as? SnapshotFile else {
                throw MigrationError.unsupportedCombination("mapped-ram migration needs a file: URI")
            }
            mapped = try MappedRAMWriter(file: snapshot.file, regions: machine.ramRegions)
        }
        let writer = StreamWriter(socket: socket)
        let handsOffRAM = capabilities.ignoreShared && machine.sharedRAM != nil
        if mapped == nil {
            writer.writeHeader()
            writer.writeLayout(machine.layout)
            let settings = parameters()
            if capabilities.multifd && settings.compressesWithZstd && !handsOffRAM
                && !writer.startCompression(level: settings.multifdZstdLevel, threads: settings.multifdChannels) {
                throw MigrationError.compressionUnavailable("could not make a zstd compression context")
            }
            try writer.flush()
        }
        setupTrace.mark("setup-stream-header")
        let sink: PageSink = mapped ?? writer
        if handsOffRAM, let shared = machine.sharedRAM {
            setupTrace.mark("setup")
            return try handOff(shared, link: link, writer: writer, undo: &undo)
        }
        do { try machine.startDirtyLogging() } catch {
            throw MigrationError.machine("start dirty page logging", error)
        }
        undo.dirtyLogging = true
        setupTrace.mark("setup-dirty-logging-on")
        statistics.update { stats in
            stats.status = .active
            stats.transferredBytes = sink.bytesWritten
        }
        statistics.update { [elapsed = statistics.elapsedMs] in $0.setupTimeMs = elapsed }

        let sender = PageSender(
            writer: sink, regions: machine.ramRegions,
            limiter: BandwidthLimiter(bytesPerSecond: parameters().maxBandwidth),
            checkpoint: { [self] in
                try checkpoint(socket)
                if lock.withLock({ postcopyRequested }) { throw PrecopyLoop.SwitchNow() }
            },
            shouldStop: { [self] in lock.withLock { cancelRequested || postcopyRequested } },
            progress: { [statistics, writer] batch in
                let compression = writer.isCompressing ? writer.compression : nil
                statistics.update { stats in
                    if compression != nil { stats.compression = compression }
                    stats.transferredBytes += batch.bytes
                    stats.duplicatePages += UInt64(batch.zeroPages)
                    stats.normalPages += UInt64(batch.pages - batch.zeroPages)
                }
            })
        // Without a destination, nothing is gained by re-sending pages the guest keeps
        // dirtying: a snapshot stops early rather than grow the file.
        let precopyPolicy = transport.hasReturnPath ? policy
            : ConvergencePolicies.snapshot(policy, limit: 2 * machine.layout.ramSize)
        let switchPolicy: ConvergencePolicy = { [self] input in
            lock.withLock { postcopyRequested } ? .switchover : precopyPolicy(input)
        }
        let loop = PrecopyLoop(machine: machine, sender: sender, writer: sink, policy: switchPolicy,
                               parameters: parameters, autoConvergeEnabled: capabilities.autoConverge,
                               statistics: statistics, onPass: { [events] in events(.passCompleted($0)) })
        let precopy = try loop.run()
        let precopyBytes = sink.bytesWritten
        statistics.update { $0.precopyBytes = precopyBytes }

        if lock.withLock({ postcopyRequested }) {
            return try switchToPostcopy(precopy: precopy, writer: writer, socket: socket, undo: &undo)
        }

        // Let the link carry what pre-copy queued while the guest still runs; what it dirties
        // meanwhile joins the final pass. Bounded, for a destination that has stopped reading.
        socket.waitUntilSent(atMost: Self.switchoverQueueBytes,
                             deadlineNanoseconds: MonotonicClock.nanoseconds() + Self.switchoverQueueWaitNanoseconds,
                             shouldStop: { isCancelled })
        // Switchover: from here the guest is paused until the destination resumes it.
        try checkpoint(socket)
        undo.beforeSwitchover = machine.runState
        // Downtime starts when stopping the guest begins, as QEMU counts it: pausing a vCPU
        // that is in KVM_RUN takes 0.1-6 ms here.
        let pausedAt = MonotonicClock.nanoseconds()
        var trace = SwitchoverTrace(side: "source")
        do { try machine.pause(reason: .finishMigrate) } catch {
            undo.beforeSwitchover = nil
            throw MigrationError.machine("pause the guest for switchover", error)
        }
        trace.mark("pause")
        try sendFinalPass(pending: precopy.pending, pass: precopy.passes + 1, sender: sender, writer: sink, trace: &trace)
        let state: MachineState
        do { state = try machine.saveState() } catch {
            throw MigrationError.machine("save the machine state", error)
        }
        trace.mark("save-state")
        let runState = RunStateSection.section(for: undo.beforeSwitchover ?? .running)
        if let mapped {
            try lock.withLock { if cancelRequested { throw MigrationError.cancelled } }
            try mapped.finish(layout: machine.layout, sections: state.sections + [runState])
        } else {
            for section in state.sections { try writer.writeState(section) }
            try writer.writeState(runState)
            try lock.withLock {
                if cancelRequested { throw MigrationError.cancelled }
                streamComplete = true
            }
            try writer.writeEnd()
        }
        trace.mark("write-state-end-digest")
        // The batches still with the compression threads when the last pass ended were written
        // by the flush and the end marker, after the last progress report: count them too.
        let compression = writer.isCompressing ? writer.compression : nil
        statistics.update { stats in
            stats.transferredBytes = sink.bytesWritten
            stats.downtimeBytes = sink.bytesWritten - precopyBytes
            if compression != nil { stats.compression = compression }
        }

        // The destination's acknowledgement, or (a file) the data safely on disk.
        try link.commit()
        trace.mark("wait-ack")
        let downtimeMs = (MonotonicClock.nanoseconds() - pausedAt) / 1_000_000
        // Success. After a live migration the guest runs on the destination and this copy must
        // not run again; after a snapshot nothing else runs it, so `cont` may resume it here.
        machine.markMigrated(guestRunsElsewhere: transport.hasReturnPath)
        machine.stopDirtyLogging()
        if capabilities.autoConverge { machine.setCPUThrottle(percent: 0) }
        return Summary(downtimeMs: downtimeMs, passes: precopy.passes + 1, bytes: sink.bytesWritten)
    }

    /// x-ignore-shared with memfd-backed RAM: the memfd goes over the unix socket instead of
    /// the pages (no dirty logging, no passes), and the guest pauses only while its state is
    /// saved and sent and the destination maps the memory and loads the state. After the
    /// acknowledgement this process lets go of the memory, so nothing done here (a reset, a
    /// forced cont) can touch the guest that runs on the destination.
    private func handOff(_ shared: SharedRAM, link: OutgoingLink, writer: StreamWriter, undo: inout Undo) throws -> Summary {
        guard link.stream.canPassDescriptors else {
            throw MigrationError.unsupportedCombination(
                "x-ignore-shared hands shared memory over as a file descriptor, which needs a unix: migration (without TLS)")
        }
        var trace = SwitchoverTrace(side: "source")
        try writer.writeSharedRAM(offsets: shared.offsets, descriptor: shared.fd)
        trace.mark("send-shared-ram")
        statistics.update { stats in
            stats.status = .active
            stats.transferredBytes = writer.bytesWritten
        }
        statistics.update { [elapsed = statistics.elapsedMs] in $0.setupTimeMs = elapsed }
        try checkpoint(link.stream)
        undo.beforeSwitchover = machine.runState
        let pausedAt = MonotonicClock.nanoseconds()
        trace.mark("checkpoint")
        do { try machine.pause(reason: .finishMigrate) } catch {
            undo.beforeSwitchover = nil
            throw MigrationError.machine("pause the guest for switchover", error)
        }
        trace.mark("pause")
        writer.writePassEnd(1)
        let state: MachineState
        do { state = try machine.saveState() } catch {
            throw MigrationError.machine("save the machine state", error)
        }
        trace.mark("save-state")
        for section in state.sections { try writer.writeState(section) }
        try writer.writeState(RunStateSection.section(for: undo.beforeSwitchover ?? .running))
        try lock.withLock {
            if cancelRequested { throw MigrationError.cancelled }
            streamComplete = true
        }
        undo.memoryHandedOver = true
        try writer.writeEnd()
        trace.mark("write-state-end")
        try link.commit()
        trace.mark("wait-ack")
        let downtimeMs = (MonotonicClock.nanoseconds() - pausedAt) / 1_000_000
        statistics.update { stats in
            stats.passes = 1
            stats.transferredBytes = writer.bytesWritten
            stats.downtimeBytes = writer.bytesWritten
            stats.remainingBytes = 0
        }
        machine.markMigrated(guestRunsElsewhere: true)
        // Unmapping the guest's pages takes 1-20 ms here; the migration is complete already.
        return Summary(downtimeMs: downtimeMs, passes: 1, bytes: writer.bytesWritten, releaseSharedRAM: true)
    }

    /// Pauses the guest for good, sends its state and the pages it still lacks there as a
    /// bitmap, and lets the destination run it; then serves its page requests until every
    /// page is there. Any failure before the end marker is out puts the guest back here, as
    /// in pre-copy (the destination cannot have started it); after that, both halves wait
    /// for recovery (PostcopySender).
    private func switchToPostcopy(precopy: PrecopyLoop.Result, writer: StreamWriter, socket: MigrationStream,
                                  undo: inout Undo) throws -> Summary {
        try checkpoint(socket)
        undo.beforeSwitchover = machine.runState
        let pausedAt = MonotonicClock.nanoseconds()
        do { try machine.pause(reason: .finishMigrate) } catch {
            undo.beforeSwitchover = nil
            throw MigrationError.machine("pause the guest for switchover", error)
        }
        let last: [[UInt64]]
        do { last = try machine.collectDirtyPages() } catch {
            throw MigrationError.machine("read the dirty page log", error)
        }
        let regions = machine.ramRegions
        var missing = PageBitmaps.union(precopy.pending, last, regions: regions.count) {
            PostcopyProtocol.wordCount(pages: regions[$0].pageCount)
        }
        writer.pagesAreStable = true
        let zeroPages = try sendUntouchedAsZero(from: &missing, regions: regions, writer: writer, socket: socket)
        statistics.update { $0.duplicatePages += UInt64(zeroPages) }
        let state: MachineState
        do { state = try machine.saveState() } catch {
            throw MigrationError.machine("save the machine state", error)
        }
        let id = UInt64.random(in: 1...UInt64.max)
        try writer.writePostcopy(id: id, missing: missing)
        for section in state.sections { try writer.writeState(section) }
        try writer.writeState(RunStateSection.section(for: undo.beforeSwitchover ?? .running))
        try lock.withLock {
            if cancelRequested { throw MigrationError.cancelled }
            streamComplete = true
        }
        try writer.writeEnd()
        // From here the destination may run the guest: it never runs here again.
        let sender = PostcopySender(regions: regions, pending: missing, id: id, statistics: statistics)
        lock.withLock { postcopy = sender }
        let pages = PageBitmaps.count(missing)
        statistics.update { stats in
            stats.status = .postcopyActive
            stats.passes = precopy.passes
            stats.dirtySyncCount += 1
            stats.transferredBytes = writer.bytesWritten
            stats.downtimeBytes = writer.bytesWritten - stats.precopyBytes
            stats.remainingBytes = UInt64(pages * GuestRAMRegion.pageSize)
            stats.expectedDowntimeMs = nil
        }
        events(.postcopyStarted(pages: pages, afterPasses: precopy.passes))
        undo.dirtyLogging = false
        // The guest is paused here, so logging costs nothing until the end; turning it off
        // first (KVM rewrites the slots, tens of ms here) would delay the first pages.
        try sender.run(stream: socket, writer: writer, announce: events)
        machine.stopDirtyLogging()
        if capabilities.autoConverge { machine.setCPUThrottle(percent: 0) }
        let downtimeMs = ((sender.guestResumedAt ?? MonotonicClock.nanoseconds()) - pausedAt) / 1_000_000
        machine.markMigrated(guestRunsElsewhere: true)
        // Recovery connections have writers of their own; the statistics count every one.
        return Summary(downtimeMs: downtimeMs, passes: precopy.passes, bytes: statistics.snapshot.transferredBytes)
    }

    /// Postcopy's switchover, guest paused: of the pages the destination still lacks, those
    /// the host never backed go now as zero pages in RAM batches (a byte each) and leave
    /// `missing`, whose pages the background push sends at 4 KiB apiece. A guest with little
    /// of its RAM in use (a Linux guest's free memory, pass 1 cut short) otherwise pushed
    /// mostly zeros: 239 MiB for 82 MiB of data in the Linux test. Returns the pages sent.
    private func sendUntouchedAsZero(from missing: inout [[UInt64]], regions: [GuestRAMRegion],
                                     writer: StreamWriter, socket: MigrationStream) throws -> Int {
        let residency = PageResidency()
        var untouched: [[UInt64]] = []
        for (index, region) in regions.enumerated() where index < missing.count {
            untouched.append(region.untouchedPagesReadAsZero
                ? residency.clearUntouched(in: &missing[index], host: region.host, pageCount: region.pageCount) : [])
        }
        guard PageBitmaps.count(untouched) > 0 else { return 0 }
        // The pre-copy sender's batching, without its switch to postcopy between batches: its
        // residency check finds each of these pages untouched and sends it as zero.
        let sender = PageSender(writer: writer, regions: regions, limiter: BandwidthLimiter(bytesPerSecond: 0),
                                checkpoint: { [self] in try checkpoint(socket) },
                                shouldStop: { [self] in lock.withLock { cancelRequested } }, progress: { _ in })
        return try sender.send(.dirty(untouched)).zeroPages
    }

    private func sendFinalPass(pending: [[UInt64]], pass: Int, sender: PageSender, writer: PageSink,
                               trace: inout SwitchoverTrace) throws {
        let last: [[UInt64]]
        do { last = try machine.collectDirtyPages() } catch {
            throw MigrationError.machine("read the dirty page log", error)
        }
        trace.mark("collect-dirty-pages")
        // The guest is paused: its pages hold still, and nothing is gained by rate-limiting them.
        sender.limiter.bytesPerSecond = 0
        writer.pagesAreStable = true
        let started = MonotonicClock.nanoseconds()
        let counts = try sender.send(.union(pending, last))
        trace.mark("final-pass(\(counts.pages) pages)")
        writer.writePassEnd(pass)
        try writer.flush()
        trace.mark("final-pass-flush")
        let duration = max(MonotonicClock.nanoseconds() - started, 1)
        statistics.update { stats in
            stats.passes = pass
            stats.dirtySyncCount += 1
            stats.remainingBytes = 0
        }
        events(.passCompleted(PassReport(
            pass: pass, pagesSent: counts.pages, zeroPages: counts.zeroPages, bytesSent: counts.bytes,
            durationNs: duration, bandwidth: counts.bytes * 1_000_000_000 / duration, dirtyPages: 0,
            expectedDowntimeMs: 0, isSwitchover: true)))
    }

    /// Between batches: stop on cancel, and stop early when the destination has already
    /// answered (it only answers mid-stream to refuse).
    private func checkpoint(_ socket: MigrationStream) throws {
        if isCancelled { throw MigrationError.cancelled }
        guard socket.hasPendingInput() else { return }
        throw destinationReason(socket) ?? MigrationError.peerClosed(during: "sending RAM")
    }

    /// The destination's error message, if it sent one before closing.
    private func destinationReason(_ socket: MigrationStream) -> MigrationError? {
        switch try? ReturnPath.readReply(from: socket) {
        case .error(let message)?:
            // A destination older than this stream's format refuses its header, naming both
            // versions (StreamFormat.swift), before anything else it might not know.
            return .destinationFailed(message)
        case .ack?: return .malformedStream("the destination acknowledged before the stream ended")
        case nil: return nil
        }
    }

    /// A broken connection usually means the destination refused something: prefer its reason.
    private func explain(_ error: Error) -> Error {
        guard !isCancelled, let migrationError = error as? MigrationError else { return error }
        guard transport.hasReturnPath else { return transport.explainOutgoing(migrationError) }
        switch transport.explainOutgoing(migrationError) {
        case .peerClosed, .io, .timedOut:
            guard let socket = lock.withLock({ self.socket }), socket.hasPendingInput(waitMilliseconds: 500) else { return error }
            return destinationReason(socket) ?? error
        default:
            return error
        }
    }

    /// Puts the guest back as it was before switchover and stops what migration started.
    /// Returns whether the guest runs here afterwards.
    private func rollBack(_ undo: Undo) -> Bool {
        if undo.dirtyLogging { machine.stopDirtyLogging() }
        if capabilities.autoConverge { machine.setCPUThrottle(percent: 0) }
        if undo.memoryHandedOver {
            machine.setPausedReason(nil)
            return false
        }
        switch undo.beforeSwitchover {
        case .running?:
            // If even this fails the guest stays paused; the status line says so.
            try? machine.resume()
        case .paused(let reason)?:
            machine.setPausedReason(reason)
        case nil:
            break
        }
        return machine.runState.isRunning
    }
}
