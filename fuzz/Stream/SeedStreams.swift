import Glibc
import Machine
@testable import Migration

/// Real streams, produced by the real writer and page sender from a small source machine,
/// as the fuzzer's starting corpus: one pass of everything, a second pass of a few pages, a
/// machine of only zero pages, state sections of several sizes, and compressed batches
/// (multifd-compression zstd) of text-like pages mixed with random ones.
enum SeedStreams {
    static func write(to directory: String) {
        mkdir(directory, 0o755)
        let scenarios: [(String, (FuzzMachine) -> Void, Bool, [StateSection], Bool)] = [
            ("one-pass", { fill($0, seed: 11, zeroEvery: 3) }, false, standardSections, false),
            ("two-passes", { fill($0, seed: 5, zeroEvery: 2) }, true, standardSections, false),
            ("all-zero", { _ in }, false, [StateSection(name: "vm", version: 1, bytes: [])], false),
            ("no-state", { fill($0, seed: 9, zeroEvery: 4) }, false, [], false),
            ("compressed", { fillText($0, randomEvery: 5) }, true, standardSections, true),
        ]
        for (name, prepare, secondPass, sections, compressed) in scenarios {
            let machine = FuzzMachine(running: true, sections: sections)
            prepare(machine)
            guard let bytes = try? capture(machine, secondPass: secondPass, compressed: compressed) else {
                fputs("could not capture \(name)\n", stderr)
                exit(1)
            }
            let path = directory + "/seed-" + name
            guard let file = fopen(path, "wb") else { exit(1) }
            _ = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
            print("wrote \(path) (\(bytes.count) bytes)")
        }
    }

    static let standardSections = [
        StateSection(name: "serial0", version: 1, bytes: [1, 2, 3]),
        StateSection(name: "cpu0", version: 2, bytes: Array(repeating: 7, count: 600)),
        StateSection(name: "vm", version: 1, bytes: []),
    ]

    private static func fill(_ machine: FuzzMachine, seed: UInt64, zeroEvery: Int) {
        var random = seed
        for region in machine.ramRegions {
            for page in 0..<region.pageCount where page % zeroEvery != 0 {
                let base = region.host + page * GuestRAMRegion.pageSize
                for word in 0..<(GuestRAMRegion.pageSize / 8) {
                    random = random &* 6364136223846793005 &+ 1442695040888963407
                    base.storeBytes(of: random, toByteOffset: word * 8, as: UInt64.self)
                }
            }
        }
    }

    /// Text-like pages, which zstd shrinks, with every `randomEvery`-th page random, which it
    /// does not, and every third page zero.
    private static func fillText(_ machine: FuzzMachine, randomEvery: Int) {
        fill(machine, seed: 21, zeroEvery: 3)
        let text = Array("the guest's page cache holds text like this; ".utf8)
        for region in machine.ramRegions {
            for page in 0..<region.pageCount where page % 3 != 0 && page % randomEvery != 0 {
                let base = region.host + page * GuestRAMRegion.pageSize
                for offset in 0..<GuestRAMRegion.pageSize {
                    base.storeBytes(of: text[(offset + page) % text.count], toByteOffset: offset, as: UInt8.self)
                }
            }
        }
    }

    private static func capture(_ machine: FuzzMachine, secondPass: Bool, compressed: Bool = false) throws -> [UInt8] {
        var fds: [Int32] = [0, 0]
        _ = socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds)
        var size: Int32 = 16 << 20
        _ = setsockopt(fds[0], SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        let socket = MigrationStream(fd: fds[0])
        let writer = StreamWriter(socket: socket)
        writer.writeHeader()
        writer.writeLayout(machine.layout)
        if compressed {
            guard writer.startCompression(level: 1) else { throw MigrationError.compressionUnavailable("no zstd context") }
            writer.compressionPolicy.alwaysTry = true
        }
        let sender = PageSender(writer: writer, regions: machine.ramRegions, limiter: BandwidthLimiter(bytesPerSecond: 0),
                                checkpoint: {}, shouldStop: { false }, progress: { _ in })
        _ = try sender.send(.all)
        writer.writePassEnd(1)
        if secondPass {
            var dirty = machine.ramRegions.map { [UInt64](repeating: 0, count: ($0.pageCount + 63) / 64) }
            dirty[0][0] = 0b1011
            dirty[1][0] = 0b100
            _ = try sender.send(.dirty(dirty))
            writer.writePassEnd(2)
        }
        for section in try machine.saveState().sections { try writer.writeState(section) }
        try writer.writeEnd()
        socket.shutdownWrite()
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fds[1], $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        close(fds[1])
        return bytes
    }
}
