import SystemSupport
import Glibc
import Machine

/// Starts a machine from a mapped-ram snapshot (MappedRAMFormat.swift). Everything but the
/// pages is read and checked first; then guest RAM is the file itself, mapped copy-on-write
/// (MAP_PRIVATE, as Firecracker restores), so the guest runs at once and its pages come from the
/// page cache as it touches them. With `-mem-prealloc` every page is read in and checked
/// against its digest instead, before the guest runs, and no page fault reaches the file later.
///
/// The file must not change while a guest mapped from it runs: pages the guest has not yet
/// written would show the change. swiftkvm itself never rewrites a snapshot in place (a new save
/// under the same name is a new file, renamed over it), so this concerns only other writers.
enum MappedRAMRestore {
    /// Whether the file at `fd` starts with the mapped-ram magic.
    static func isMappedRAM(_ fd: Int32) -> Bool {
        var magic = [UInt8](repeating: 0, count: MappedRAMFormat.magic.count)
        // SAFETY: reads at most magic.count bytes into the array's own storage.
        let n = magic.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        return n == magic.count && magic == MappedRAMFormat.magic
    }

    static func restore(fd: Int32, path: String, into machine: MigratableMachine, resume: Bool) throws -> IncomingReport {
        do {
            return try load(fd: fd, into: machine, resume: resume)
        } catch let failure as MappedRAMError {
            throw MigrationError.snapshotCorrupt(path: path, what: failure.what)
        } catch MigrationError.peerClosed(let during) {
            throw MigrationError.snapshotTruncated(path: path, during: during)
        } catch MigrationError.notAMigrationStream {
            throw MigrationError.notASnapshot(path: path)
        } catch MigrationError.malformedStream(let what) {
            throw MigrationError.snapshotCorrupt(path: path, what: what)
        } catch MigrationError.digestMismatch {
            throw MigrationError.snapshotCorrupt(path: path, what: "its metadata does not match its digest")
        }
    }

    private struct Trailer {
        var maps: [[UInt64]?]
        var digests: [[UInt64]?]
        var sections: [StateSection] = []
        var sourceState: RunState?
    }

    private static func load(fd: Int32, into machine: MigratableMachine, resume: Bool) throws -> IncomingReport {
        // SWIFTKVM_TRACE_SWITCHOVER: where a restore's time goes, as for a switchover.
        var trace = SwitchoverTrace(side: "restore")
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw MigrationError.io(operation: "reading the snapshot", errno: errno) }
        let fileSize = UInt64(info.st_size)
        var headerBytes = [UInt8](repeating: 0, count: MappedRAMFormat.headerBytes)
        // SAFETY: reads at most the array's own count into its storage.
        let got = headerBytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard got == headerBytes.count else { throw MigrationError.peerClosed(during: "reading the snapshot header") }
        let header = try MappedRAMFormat.Header.decode(headerBytes)
        let end = header.trailerOffset + header.trailerLength
        guard fileSize >= end else {
            throw MappedRAMError("it is \(fileSize) bytes, its header says \(end) (the file was cut short)")
        }
        guard fileSize == end else { throw MappedRAMError("it has \(fileSize - end) bytes after its end") }

        let regions = machine.ramRegions
        trace.mark("header")
        let trailer = try readTrailer(fd: fd, header: header, machine: machine)
        trace.mark("metadata")
        let offsets = MappedRAMFormat.regionOffsets(regions.map(\.size))
        var report = IncomingReport(passes: 1, normalPages: 0, zeroPages: 0, stateSections: trailer.sections.count,
                                    acknowledged: true, sourceState: trailer.sourceState ?? .running)
        for (index, region) in regions.enumerated() {
            let pages = trailer.maps[index].map(PageBitmaps.count) ?? 0
            report.normalPages += pages
            report.zeroPages += region.pageCount - pages
        }
        if machine.preallocatesRAM {
            try readAll(fd: fd, regions: regions, offsets: offsets, trailer: trailer)
        } else {
            do { try machine.mapRAM(privatelyFrom: fd, offsets: offsets) } catch {
                throw MigrationError.machine("map the snapshot's RAM", error)
            }
        }
        trace.mark(machine.preallocatesRAM ? "read-ram" : "map-ram")
        do { try machine.loadState(MachineState(sections: trailer.sections)) } catch {
            throw MigrationError.machine("load the snapshot's state", error)
        }
        trace.mark("load-state")
        try StreamReceiver.start(machine, sourceState: report.sourceState, resume: resume)
        trace.mark("resume")
        return report
    }

    private static func readTrailer(fd: Int32, header: MappedRAMFormat.Header, machine: MigratableMachine) throws -> Trailer {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0, lseek(copy, off_t(header.trailerOffset), SEEK_SET) >= 0 else {
            throw MigrationError.io(operation: "reading the snapshot", errno: errno)
        }
        let stream = MigrationStream(readFD: copy, writeFD: -1)
        let reader = StreamReader(socket: stream)
        try StreamReceiver.readHeader(reader)
        let layout = try LayoutCheck.read(from: reader)
        if let difference = LayoutCheck.difference(stream: layout, local: machine.layout) {
            throw MigrationError.layoutMismatch(difference)
        }
        let regions = machine.ramRegions
        guard layout.ramSize == header.ramLength, regions.count == layout.ramRegions.count,
              zip(regions, layout.ramRegions).allSatisfy({ UInt64($0.size) == $1.size }) else {
            throw MappedRAMError("its header and its layout disagree on the RAM size")
        }
        var trailer = Trailer(maps: Array(repeating: nil, count: regions.count), digests: Array(repeating: nil, count: regions.count))
        var stateBytes = 0
        while true {
            reader.context = "reading the snapshot's metadata"
            let tagByte = try reader.readU8()
            switch tagByte {
            case MappedRAMFormat.Tag.pageMap.rawValue, MappedRAMFormat.Tag.pageDigests.rawValue:
                let isMap = tagByte == MappedRAMFormat.Tag.pageMap.rawValue
                let region = Int(try reader.readU32()), count = Int(try reader.readU32())
                guard region < regions.count else { throw MappedRAMError("a page record for region \(region) of \(regions.count)") }
                guard (isMap ? trailer.maps[region] : trailer.digests[region]) == nil else {
                    throw MappedRAMError("region \(region) has two \(isMap ? "page maps" : "digest lists")")
                }
                let pages = regions[region].pageCount
                let expected: Int
                if isMap {
                    expected = (pages + 63) / 64
                } else if let map = trailer.maps[region] {
                    expected = PageBitmaps.count(map)
                } else {
                    throw MappedRAMError("region \(region)'s digests come before its page map")
                }
                guard count == expected else {
                    throw MappedRAMError("region \(region)'s \(isMap ? "page map" : "digest list") has \(count) entries, \(expected) expected")
                }
                var words = [UInt64](repeating: 0, count: count)
                try words.withUnsafeMutableBytes { try reader.readPayload(into: $0.baseAddress!, count: $0.count) }
                for i in words.indices { words[i] = UInt64(littleEndian: words[i]) }
                if isMap {
                    let tail = pages % 64
                    if tail != 0, let last = words.last, last >> UInt64(tail) != 0 {
                        throw MappedRAMError("region \(region)'s page map marks pages past its end")
                    }
                    trailer.maps[region] = words
                } else {
                    trailer.digests[region] = words
                }
            case StreamFormat.Tag.state.rawValue:
                let section = try StreamReceiver.readSection(reader, totalSoFar: stateBytes,
                                                             count: trailer.sections.count + (trailer.sourceState == nil ? 0 : 1))
                stateBytes += section.bytes.count
                if section.name == RunStateSection.name {
                    guard trailer.sourceState == nil else { throw MappedRAMError("a second run-state section") }
                    trailer.sourceState = try RunStateSection.decode(section)
                } else {
                    trailer.sections.append(section)
                }
            case StreamFormat.Tag.end.rawValue:
                let computed = reader.digestSoFar()
                let sent = try reader.readU64()
                guard sent == computed else { throw MigrationError.digestMismatch(sent: sent, computed: computed) }
                if let missing = trailer.digests.firstIndex(where: { $0 == nil }) {
                    throw MappedRAMError("region \(missing) has no page map or digests")
                }
                if (try? reader.readU8()) != nil { throw MappedRAMError("its metadata goes on after its end record") }
                return trailer
            default:
                throw MappedRAMError("unknown metadata record tag 0x\(String(tagByte, radix: 16))")
            }
        }
    }

    /// -mem-prealloc: every page the file holds is read into RAM (fresh, zero elsewhere) and
    /// checked against its digest.
    private static func readAll(fd: Int32, regions: [GuestRAMRegion], offsets: [Int], trailer: Trailer) throws {
        let pageSize = GuestRAMRegion.pageSize
        for (index, region) in regions.enumerated() {
            guard let map = trailer.maps[index], let digests = trailer.digests[index] else { continue }
            var digestIndex = 0
            var page = 0
            while page < region.pageCount {
                guard map[page >> 6] & (1 << UInt64(page & 63)) != 0 else { page += 1; continue }
                let runStart = page
                while page < region.pageCount && page - runStart < 1024 && map[page >> 6] & (1 << UInt64(page & 63)) != 0 { page += 1 }
                // SAFETY: pages runStart..<page lie inside the region (page <= pageCount).
                let destination = region.host + runStart * pageSize
                var done = 0
                let length = (page - runStart) * pageSize
                while done < length {
                    // SAFETY: done < length, so the read stays inside the run's pages.
                    let n = pread(fd, destination + done, length - done, off_t(offsets[index] + runStart * pageSize + done))
                    if n < 0 && errno == EINTR { continue }
                    guard n > 0 else {
                        if n < 0 { throw MigrationError.io(operation: "reading the snapshot's RAM", errno: errno) }
                        throw MigrationError.peerClosed(during: "reading the snapshot's RAM")
                    }
                    done += n
                }
                for p in runStart..<page {
                    guard MappedRAMFormat.pageDigest(region.host + p * pageSize) == digests[digestIndex] else {
                        let address = region.guestAddress + UInt64(p * pageSize)
                        throw MappedRAMError("the page at guest-physical 0x\(String(address, radix: 16)) does not match its digest")
                    }
                    digestIndex += 1
                }
            }
        }
    }
}
