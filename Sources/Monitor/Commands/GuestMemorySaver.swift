import Glibc

/// Copies a range of guest memory into a host file for `pmemsave` and `memsave`, a bounded
/// chunk at a time so a large dump never needs its whole size in this process's memory.
enum GuestMemorySaver {
    static let chunkSize = 1 << 20

    /// Writes `size` bytes from `address` to `path`, replacing the file. A read that fails
    /// part-way removes the partial file, so a file that exists holds the whole range.
    static func save(address: UInt64, size: UInt64, to path: String,
                     read: (_ address: UInt64, _ count: Int) throws -> [UInt8]) throws {
        if size > 0 && address &+ (size - 1) < address {
            throw MonitorError.rangeOverflow(address: address, size: size)
        }
        if size > 0 {
            // Probe both ends first, so an obviously wrong range leaves no file behind.
            try probe(address, size: size, read: read)
            try probe(address + (size - 1), size: size, read: read, reportedAddress: address)
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw MonitorError.fileWriteFailed(path: path, reason: MonitorError.errnoText(errno))
        }
        var done: UInt64 = 0
        do {
            while done < size {
                let count = Int(min(UInt64(chunkSize), size - done))
                let bytes: [UInt8]
                do {
                    bytes = try read(address + done, count)
                } catch {
                    throw MonitorError.memoryNotReadable(address: address, size: size, reason: "\(error)")
                }
                guard bytes.count == count else {
                    throw MonitorError.memoryNotReadable(address: address, size: size,
                                                         reason: "short read at 0x\(String(address + done, radix: 16))")
                }
                try writeAll(fd, bytes, path: path)
                done += UInt64(count)
            }
        } catch {
            close(fd)
            unlink(path)
            throw error
        }
        if close(fd) != 0 {
            throw MonitorError.fileWriteFailed(path: path, reason: MonitorError.errnoText(errno))
        }
    }

    private static func probe(_ address: UInt64, size: UInt64, read: (UInt64, Int) throws -> [UInt8],
                              reportedAddress: UInt64? = nil) throws {
        do {
            _ = try read(address, 1)
        } catch {
            throw MonitorError.memoryNotReadable(address: reportedAddress ?? address, size: size, reason: "\(error)")
        }
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws {
        var offset = 0
        while offset < bytes.count {
            // SAFETY: the buffer pointer is used only inside the closure, for at most the
            // bytes that remain in the array.
            let written = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(fd, base + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw MonitorError.fileWriteFailed(path: path, reason: MonitorError.errnoText(errno))
            }
            offset += written
        }
    }
}
