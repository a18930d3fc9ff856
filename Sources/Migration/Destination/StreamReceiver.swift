import Glibc
import Machine

/// Reads one whole stream into a machine. Nothing reaches `loadState` before the end marker's
/// digest matches, nor `resume` before the source has been acknowledged; RAM pages are written
/// in place as they arrive, which is harmless because the guest stays paused until then.
enum StreamReceiver {
    /// `prefaulter`, when given, runs over `machine`'s RAM during pass 1 and is stopped when
    /// pass 1 ends.
    static func receive(from socket: MigrationStream, into machine: MigratableMachine,
                        resume: Bool, prefaulter: RAMPrefaulter? = nil,
                        postcopy: PostcopyHooks = PostcopyHooks()) throws -> IncomingReport {
        let reader = StreamReader(socket: socket)
        var receiver: PostcopyReceiver?
        do {
            var report = try load(from: reader, socket: socket, into: machine, prefaulter: prefaulter)
            if let switchover = report.postcopy {
                if let refusal = postcopy.refusal { throw MigrationError.unsupportedCombination(refusal) }
                // The pages still on the source are trapped before the guest may touch them.
                let ram: PostcopyRAM
                do { ram = try PostcopyRAM(regions: machine.ramRegions, missing: switchover.missing) } catch {
                    throw MigrationError.postcopyFaults("\(error)")
                }
                let created = PostcopyReceiver(ram: ram, missing: switchover.missing, id: switchover.id,
                                               statistics: postcopy.statistics, log: postcopy.log)
                receiver = created
                try created.startFaultHandling(over: socket)
                postcopy.statistics?.begin(totalBytes: machine.layout.ramSize)
                postcopy.statistics?.update { $0.status = .postcopyActive }
                postcopy.started(created)
                try start(machine, sourceState: report.sourceState, resume: resume)
                postcopy.log("swiftkvm: postcopy: the guest runs here; \(created.pagesStillMissing) pages come from the source on demand")
                report.postcopyPages = try created.run(reader: reader, stream: socket)
                postcopy.statistics?.finish(.completed)
                return report
            }
            var trace = SwitchoverTrace(side: "destination")
            // Acknowledge before letting the guest run: the source's downtime ends with the ack,
            // and a vCPU woken first competes with this thread for the CPU (measured: up to 3 ms
            // more downtime on 2 cores).
            if socket.canReply {
                do {
                    try ReturnPath.sendAck(on: socket)
                } catch {
                    // Everything arrived and is loaded, so the guest runs here all the same (a
                    // recorded stream played back through `exec:cat` has nobody to answer); a
                    // live source that missed the ack times out and resumes its copy.
                    report.acknowledged = false
                }
            }
            trace.mark("send-ack")
            try start(machine, sourceState: report.sourceState, resume: resume)
            trace.mark("resume")
            return report
        } catch {
            // After a postcopy start the guest ran here; the source hears of it by the break.
            if receiver == nil && !socket.wasShutDown && socket.canReply { tellSource(error, on: socket) }
            if receiver != nil { postcopy.statistics?.finish(.failed(reason: "\(error)")) }
            throw error
        }
    }

    /// Everything up to and including `loadState`; the guest stays paused.
    private static func load(from reader: StreamReader, socket: MigrationStream, into machine: MigratableMachine,
                             prefaulter: RAMPrefaulter?) throws -> IncomingReport {
        try readHeader(reader)
        let streamLayout = try LayoutCheck.read(from: reader)
        if let difference = LayoutCheck.difference(stream: streamLayout, local: machine.layout) {
            throw MigrationError.layoutMismatch(difference)
        }
        let regions = machine.ramRegions
        guard regions.count == streamLayout.ramRegions.count,
              zip(regions, streamLayout.ramRegions).allSatisfy({ UInt64($0.size) == $1.size && $0.size % GuestRAMRegion.pageSize == 0 }) else {
            throw MigrationError.layoutMismatch("this machine's RAM mappings do not match its own layout")
        }

        var report = IncomingReport(passes: 0, normalPages: 0, zeroPages: 0, stateSections: 0, acknowledged: true)
        var sections: [StateSection] = []
        var stateBytes = 0
        /// Nil for 1.0 streams, which predate the section: their guest counts as running.
        var sourceState: RunState?
        let kinds = UnsafeMutableRawPointer.allocate(byteCount: StreamFormat.maxBatchPages, alignment: 8)
        defer { kinds.deallocate() }
        let residency = PageResidency()
        var received = ReceivedPages(regions: regions)
        var trace = SwitchoverTrace(side: "destination")
        /// Set by a RAM coding record: compressed batches may follow.
        var compressed: CompressedBatchInput?

        while true {
            socket.noteProgress()
            reader.context = sections.isEmpty ? "receiving RAM (pass \(report.passes + 1))" : "receiving device state"
            let tagByte = try reader.readU8()
            guard let tag = StreamFormat.Tag(rawValue: tagByte) else {
                throw MigrationError.malformedStream("unknown record tag 0x\(String(tagByte, radix: 16))")
            }
            switch tag {
            case .layout:
                throw MigrationError.malformedStream("a second layout section")
            case .sharedRAM:
                guard report.passes == 0, sections.isEmpty, !received.any else {
                    throw MigrationError.malformedStream("shared RAM after RAM pages or state")
                }
                prefaulter?.stop()
                try adoptSharedRAM(reader, socket: socket, machine: machine, regions: regions)
                for index in regions.indices { received.mark(region: index, pages: 0..<regions[index].pageCount) }
                report.sharedRAM = true
                trace.mark("adopt-shared-ram")
            case .ramCoding:
                guard report.passes == 0, sections.isEmpty, !received.any, compressed == nil else {
                    throw MigrationError.malformedStream("a RAM coding record after RAM pages or state, or a second one")
                }
                let coding = try reader.readU8()
                guard coding == StreamFormat.RAMCoding.zstd.rawValue else {
                    throw MigrationError.malformedStream("RAM coding \(coding) (this swiftkvm decodes 1, zstd)")
                }
                guard let input = CompressedBatchInput() else {
                    throw MigrationError.compressionUnavailable("could not make a zstd decompression context")
                }
                compressed = input
            case .ramBatch, .compressedBatch:
                guard sections.isEmpty else { throw MigrationError.malformedStream("RAM after device state") }
                if tag == .compressedBatch && compressed == nil {
                    throw MigrationError.malformedStream("a compressed RAM batch in a stream without a RAM coding record")
                }
                try receiveBatch(reader, regions: regions, kinds: kinds, compressed: tag == .compressedBatch ? compressed : nil,
                                 prefaulter: prefaulter, residency: residency, received: &received, report: &report)
            case .passEnd:
                guard sections.isEmpty else { throw MigrationError.malformedStream("a pass after device state") }
                let pass = Int(try reader.readU32())
                guard pass == report.passes + 1 else {
                    throw MigrationError.malformedStream("pass \(pass) ended where pass \(report.passes + 1) was expected")
                }
                report.passes = pass
                if pass == 1 {
                    // Every chunk now lies behind the receiver, so the prefaulter has nothing left
                    // that helps; and while it commits memory it slows this whole process (see
                    // RAMPrefaulter), which would land in the downtime. Waiting costs at most one
                    // chunk, and comes before the source's switchover or overlaps its start.
                    trace.mark("pass-1")
                    prefaulter?.stop()
                    trace.mark("stop-prefaulter")
                    let released = prefaulter.map { $0.releaseZeroChunks(below: $0.chunkCount) } ?? 0
                    trace.mark("release-zero-chunks(\(released))")
                }
                if pass > 1 { trace.mark("pass-\(pass)") }
            case .postcopy:
                guard sections.isEmpty, sourceState == nil, report.postcopy == nil else {
                    throw MigrationError.malformedStream("a postcopy switchover after device state, or a second one")
                }
                let switchover = try PostcopyProtocol.readSwitchover(reader, pageCounts: regions.map(\.pageCount))
                // The pages it lists arrive after the guest starts; they count as accounted for.
                for (region, bitmap) in switchover.missing.enumerated() {
                    PostcopyRAM.forEachRun(bitmap, pageCount: regions[region].pageCount) { first, count in
                        received.mark(region: region, pages: first..<(first + count))
                    }
                }
                report.postcopy = switchover
                prefaulter?.stop()
            case .postcopyPages, .postcopyEnd, .postcopyResume:
                throw MigrationError.malformedStream("postcopy record 0x\(String(tagByte, radix: 16)) before the switchover")
            case .state:
                let section = try readSection(reader, totalSoFar: stateBytes, count: sections.count + (sourceState == nil ? 0 : 1))
                stateBytes += section.bytes.count
                if section.name == RunStateSection.name {
                    guard sourceState == nil else { throw MigrationError.malformedStream("a second run-state section") }
                    sourceState = try RunStateSection.decode(section)
                } else {
                    sections.append(section)
                }
            case .end:
                let computed = reader.digestSoFar()
                reader.context = "reading the stream digest"
                // The digest field itself is not part of what it covers.
                let sent = try reader.readU64()
                guard sent == computed || !reader.checksDigest else { throw MigrationError.digestMismatch(sent: sent, computed: computed) }
                trace.mark("state-end-digest")
                if let gap = received.firstGap() {
                    let address = regions[gap.region].guestAddress + UInt64(gap.firstPage * GuestRAMRegion.pageSize)
                    throw MigrationError.incompleteRAM(missingPages: gap.missing, firstMissingAddress: address)
                }
                report.stateSections = sections.count
                prefaulter?.requestStop()
                report.sourceState = sourceState ?? .running
                do {
                    try machine.loadState(MachineState(sections: sections))
                } catch {
                    throw MigrationError.machine("load the received state", error)
                }
                trace.mark("load-state")
                return report
            }
        }
    }

    /// x-ignore-shared: maps the memfd that came with the record over this machine's RAM.
    private static func adoptSharedRAM(_ reader: StreamReader, socket: MigrationStream, machine: MigratableMachine,
                                       regions: [GuestRAMRegion]) throws {
        reader.context = "receiving shared RAM"
        let count = Int(try reader.readU32())
        guard count == regions.count else {
            throw MigrationError.malformedStream("shared RAM for \(count) regions; the machine has \(regions.count)")
        }
        var offsets: [Int] = []
        for _ in 0..<count { offsets.append(Int(clamping: try reader.readU64())) }
        guard let fd = socket.takeDescriptor() else {
            throw MigrationError.malformedStream("shared RAM arrived without its memory's descriptor (x-ignore-shared needs a unix: migration)")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG,
              zip(offsets, regions).allSatisfy({ $0 % GuestRAMRegion.pageSize == 0 && $0 <= Int(info.st_size) - $1.size }) else {
            close(fd)
            throw MigrationError.malformedStream("the shared memory (\(info.st_size) bytes) does not hold the guest's RAM at the offsets given")
        }
        do { try machine.adoptSharedRAM(fd: fd, offsets: offsets) } catch {
            throw MigrationError.machine("map the handed-over RAM", error)
        }
    }

    static func readHeader(_ reader: StreamReader) throws {
        reader.context = "reading the stream header"
        var magic: [UInt8] = []
        for _ in StreamFormat.magic { magic.append(try reader.readU8()) }
        // A TLS record header (handshake, TLS 1.x): a source with tls-creds meets one without.
        if magic.starts(with: [0x16, 0x03]) { throw MigrationError.tlsNotExpected }
        guard magic == StreamFormat.magic else { throw MigrationError.notAMigrationStream }
        let version = StreamVersion(major: try reader.readU16(), minor: try reader.readU16())
        guard version.major <= StreamFormat.version.major else {
            throw MigrationError.newerVersion(stream: version, supported: StreamFormat.version)
        }
        guard version >= StreamFormat.oldestReadable else {
            throw MigrationError.malformedStream("format version \(version) is older than any this swiftkvm reads (\(StreamFormat.oldestReadable) to \(StreamFormat.version))")
        }
        // The header is all that was consumed: the digest its version names starts over it.
        let header = magic + [version.major, version.minor].flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] }
        reader.restartDigest(.init(streamVersion: version), replaying: header)
        if reader.isEncrypted && version >= StreamFormat.unhashedOverTLS { reader.checksDigest = false }
    }

    /// `compressed`: the batch's normal pages come as one zstd frame (record 0x0C).
    private static func receiveBatch(_ reader: StreamReader, regions: [GuestRAMRegion], kinds: UnsafeMutableRawPointer,
                                     compressed: CompressedBatchInput?, prefaulter: RAMPrefaulter?, residency: PageResidency,
                                     received: inout ReceivedPages, report: inout IncomingReport) throws {
        let regionIndex = Int(try reader.readU32())
        let firstPage = try reader.readU64()
        let count = Int(try reader.readU32())
        guard regionIndex < regions.count else {
            throw MigrationError.malformedStream("RAM batch for region \(regionIndex); the machine has \(regions.count)")
        }
        let region = regions[regionIndex]
        guard (1...StreamFormat.maxBatchPages).contains(count) else {
            throw MigrationError.malformedStream("RAM batch of \(count) pages (1 to \(StreamFormat.maxBatchPages) allowed)")
        }
        guard firstPage <= UInt64(region.pageCount), Int(firstPage) + count <= region.pageCount else {
            throw MigrationError.malformedStream("RAM batch for pages \(firstPage)+\(count) of region \(regionIndex), which has \(region.pageCount)")
        }
        try reader.readPayload(into: kinds, count: count)
        let batchName = { "pages \(firstPage)+\(count) of region \(regionIndex)" }
        if let compressed {
            let normal = (0..<count).reduce(0) { $0 + (kinds.load(fromByteOffset: $1, as: UInt8.self) == StreamFormat.PageKind.normal.rawValue ? 1 : 0) }
            let frameLength = Int(try reader.readU32())
            // Checked before anything is read: the frame lands in a buffer of one batch's pages.
            guard frameLength > 0, frameLength < normal * GuestRAMRegion.pageSize else {
                throw MigrationError.corruptCompressedBatch(
                    batch: batchName(), reason: "its frame claims \(frameLength) bytes for \(normal) normal pages (\(normal * GuestRAMRegion.pageSize) bytes); a compressed frame must be smaller")
            }
            try reader.readPayload(into: compressed.frame, count: frameLength)
            compressed.decoder.begin(UnsafeRawBufferPointer(start: compressed.frame, count: frameLength))
        }
        let published = prefaulter?.sync(passOnePosition: report.passes == 0 ? (regionIndex, Int(firstPage)) : nil) ?? 0
        if let prefaulter, report.passes == 0 {
            // Pass 1 has left every chunk before this batch's for good.
            prefaulter.releaseZeroChunks(below: prefaulter.chunk(region: regionIndex, page: Int(firstPage)))
        }
        let pageSize = GuestRAMRegion.pageSize
        // Read only when a zero page needs it; nil until then.
        var residencyKnown: Bool?
        var anySkipped = false
        var index = 0
        while index < count {
            let kind = kinds.load(fromByteOffset: index, as: UInt8.self)
            // SAFETY: firstPage + count <= pageCount was checked above, so every page lies in the region.
            let page = region.host + (Int(firstPage) + index) * pageSize
            switch StreamFormat.PageKind(rawValue: kind) {
            case .skipped:
                anySkipped = true
                index += 1
            case .zero:
                // Fresh destination memory is already zero; writing would only commit host pages.
                var known = prefaulter?.isKnownZero(region: regionIndex, page: Int(firstPage) + index, published: published) ?? false
                if !known {
                    if residencyKnown == nil {
                        // Entries for the whole batch; a page appears once per batch, so a zero
                        // page's entry cannot reflect this batch's own writes.
                        // SAFETY: pages firstPage..<firstPage+count lie in the region (checked above).
                        residencyKnown = region.untouchedPagesReadAsZero && residency.load(host: region.host + Int(firstPage) * pageSize, count: count)
                    }
                    known = residencyKnown == true && residency.isUntouched(index)
                }
                if !known && !isZeroPage(page) { memset(page, 0, pageSize) }
                if anySkipped { received.mark(region: regionIndex, page: Int(firstPage) + index) }
                report.zeroPages += 1
                index += 1
            case .normal:
                let runStart = index
                while index < count && kinds.load(fromByteOffset: index, as: UInt8.self) == StreamFormat.PageKind.normal.rawValue {
                    index += 1
                }
                prefaulter?.markWritten(region: regionIndex, firstPage: Int(firstPage) + runStart, count: index - runStart)
                if let compressed {
                    do { try compressed.decoder.fill(page, count: (index - runStart) * pageSize) } catch {
                        throw MigrationError.corruptCompressedBatch(batch: batchName(), reason: "\(error)")
                    }
                } else {
                    try reader.readPayload(into: page, count: (index - runStart) * pageSize)
                }
                if anySkipped { received.mark(region: regionIndex, pages: (Int(firstPage) + runStart)..<(Int(firstPage) + index)) }
                report.normalPages += index - runStart
            case nil:
                throw MigrationError.malformedStream("page kind \(kind) in a RAM batch")
            }
        }
        if let compressed {
            do { try compressed.decoder.finish() } catch {
                throw MigrationError.corruptCompressedBatch(batch: batchName(), reason: "\(error)")
            }
        }
        // Most batches skip nothing: mark them whole, a word at a time. A batch with skipped
        // pages marked its other pages one by one above, from the first skip on; the pages
        // before that skip are marked here.
        received.mark(region: regionIndex, pages: Int(firstPage)..<(Int(firstPage) + (anySkipped ? firstSkip(kinds, count) : count)))
    }

    /// The index of the first skipped page of a batch (count when none is).
    private static func firstSkip(_ kinds: UnsafeMutableRawPointer, _ count: Int) -> Int {
        (0..<count).first { kinds.load(fromByteOffset: $0, as: UInt8.self) == StreamFormat.PageKind.skipped.rawValue } ?? count
    }

    static func readSection(_ reader: StreamReader, totalSoFar: Int, count: Int) throws -> StateSection {
        guard count < StreamFormat.maxSections else {
            throw MigrationError.malformedStream("more than \(StreamFormat.maxSections) state sections")
        }
        let name = try LayoutCheck.readName(from: reader, what: "state section name")
        guard !name.isEmpty else { throw MigrationError.malformedStream("a state section without a name") }
        let version = try reader.readU32()
        let length = Int(try reader.readU32())
        guard length <= StreamFormat.maxSectionBytes else {
            throw MigrationError.malformedStream("state section '\(name)' claims \(length) bytes (at most \(StreamFormat.maxSectionBytes))")
        }
        guard totalSoFar + length <= StreamFormat.maxTotalStateBytes else {
            throw MigrationError.malformedStream("device state exceeds \(StreamFormat.maxTotalStateBytes >> 20) MiB in all")
        }
        reader.context = "receiving state section '\(name)'"
        return StateSection(name: name, version: version, bytes: try reader.readBytes(length))
    }

    /// Runs the guest if it ran on the source and `resume` allows it; otherwise it stays
    /// paused as it was there (`-S`: plain `paused`, waiting for `cont`).
    static func start(_ machine: MigratableMachine, sourceState: RunState, resume: Bool) throws {
        if case .paused(let reason) = sourceState {
            machine.setPausedReason(reason.flatMap(carriedOver))
            return
        }
        guard resume else {
            // Started with -S: wait for `cont`, as QEMU does.
            machine.setPausedReason(nil)
            return
        }
        do {
            try machine.resume()
        } catch {
            throw MigrationError.machine("resume the guest", error)
        }
    }

    /// Reasons that describe the migration itself do not carry over; the rest (shutdown, a
    /// panic, prelaunch) do, as in QEMU.
    private static func carriedOver(_ reason: PauseReason) -> PauseReason? {
        switch reason {
        case .inmigrate, .postmigrate, .finishMigrate: return nil
        default: return reason
        }
    }

    /// Sends the reason back, then lets the source read it before the connection closes
    /// (closing with unread input would reset the connection and lose the message).
    private static func tellSource(_ error: Error, on socket: MigrationStream) {
        guard (try? ReturnPath.sendError("\(error)", on: socket)) != nil else { return }
        socket.shutdownWrite()
        // Bounded in bytes and in total time (not per read): a source that keeps trickling
        // cannot hold this destination here.
        socket.discardInput(maxBytes: TransportLimits.drainMaxBytes, seconds: TransportLimits.drainSeconds)
    }
}

/// The destination's side of compressed batches: one decompression context and one buffer
/// for a frame, which is always smaller than one batch's pages.
final class CompressedBatchInput {
    let decoder: BatchDecompressor
    let frame: UnsafeMutableRawPointer

    init?() {
        guard let decoder = BatchDecompressor() else { return nil }
        self.decoder = decoder
        frame = .allocate(byteCount: StreamFormat.maxBatchPages * GuestRAMRegion.pageSize, alignment: 16)
    }

    deinit { frame.deallocate() }
}
