import Machine
import SystemSupport

/// Copies a range of guest memory into a host file for `pmemsave` and `memsave`, a bounded
/// chunk at a time so a large dump never needs its whole size in this process's memory.
enum GuestMemorySaver {
    static let chunkSize = 1 << 20

    /// Writes `size` bytes from `address` to `path`. The bytes go to a temporary file that
    /// replaces `path` only once complete (ReplacementFile), so a failure at any point leaves
    /// the file that was there before, and a file under that name always holds a whole range.
    static func save(address: UInt64, size: UInt64, to path: String,
                     read: (_ address: UInt64, _ count: Int) throws -> [UInt8]) throws {
        if size > 0 && address &+ (size - 1) < address {
            throw MonitorError.rangeOverflow(address: address, size: size)
        }
        if size > 0 {
            // Probe both ends first, so an obviously wrong range fails before any file exists.
            try probe(address, size: size, read: read)
            try probe(address + (size - 1), size: size, read: read, reportedAddress: address)
        }
        let file: ReplacementFile
        do {
            file = try ReplacementFile.create(path: path, prefix: "swiftkvm-memsave")
        } catch let failure as ReplacementFile.Failure {
            throw MonitorError.fileWriteFailed(path: path, cause: failure)
        }
        defer { file.discard() }
        var done: UInt64 = 0
        while done < size {
            let count = Int(min(UInt64(chunkSize), size - done))
            let bytes: [UInt8]
            do {
                bytes = try read(address + done, count)
            } catch {
                throw MonitorError.memoryNotReadable(address: address, size: size, cause: ErrorCause(error))
            }
            guard bytes.count == count else {
                throw MonitorError.shortMemoryRead(address: address, size: size, shortAt: address + done)
            }
            do {
                try bytes.withUnsafeBytes { try file.write($0) }
            } catch let failure as ReplacementFile.Failure {
                throw MonitorError.fileWriteFailed(path: path, cause: failure)
            }
            done += UInt64(count)
        }
        do {
            try file.commit()
        } catch let failure as ReplacementFile.Failure {
            throw MonitorError.fileWriteFailed(path: path, cause: failure)
        }
    }

    private static func probe(_ address: UInt64, size: UInt64, read: (UInt64, Int) throws -> [UInt8],
                              reportedAddress: UInt64? = nil) throws {
        do {
            _ = try read(address, 1)
        } catch {
            throw MonitorError.memoryNotReadable(address: reportedAddress ?? address, size: size, cause: ErrorCause(error))
        }
    }
}
