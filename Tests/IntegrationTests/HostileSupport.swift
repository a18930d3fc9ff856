import Foundation
import Glibc
import XCTest

/// One record of a captured migration stream (format: Sources/Migration/Stream/StreamFormat.swift).
struct StreamRecord: Equatable {
    enum Kind: Equatable {
        case header, layout, ramBatch(pass: Int), passEnd(Int), state(String), end
    }
    var kind: Kind
    var offset: Int
    var length: Int
    var endOffset: Int { offset + length }
}

/// Splits stream bytes into records, as far as they are complete. Used by the test proxies
/// to know which phase a migration is in, and to cut captured streams at their boundaries.
enum StreamRecords {
    static func parse(_ bytes: [UInt8]) -> (records: [StreamRecord], complete: Bool) {
        var records: [StreamRecord] = []
        var at = 0
        func u8(_ o: Int) -> Int? { o < bytes.count ? Int(bytes[o]) : nil }
        func u16(_ o: Int) -> Int? { o + 2 <= bytes.count ? Int(bytes[o]) | Int(bytes[o + 1]) << 8 : nil }
        func u32(_ o: Int) -> Int? {
            o + 4 <= bytes.count ? (0..<4).reduce(0) { $0 | Int(bytes[o + $1]) << (8 * $1) } : nil
        }
        func add(_ kind: StreamRecord.Kind, _ length: Int) -> Bool {
            guard at + length <= bytes.count else { return false }
            records.append(StreamRecord(kind: kind, offset: at, length: length))
            at += length
            return true
        }
        guard add(.header, 8) else { return (records, false) }
        // Layout: tag, region count, regions, vCPU count, device count, names.
        guard let regions = u32(at + 1) else { return (records, false) }
        var o = at + 5 + regions * 16 + 4
        guard let devices = u32(o) else { return (records, false) }
        o += 4
        for _ in 0..<devices {
            guard let n = u16(o) else { return (records, false) }
            o += 2 + n
        }
        guard add(.layout, o - at) else { return (records, false) }
        var pass = 1
        while let tag = u8(at) {
            switch tag {
            case 0x02:
                guard let count = u32(at + 13), at + 17 + count <= bytes.count else { return (records, false) }
                let normal = bytes[(at + 17)..<(at + 17 + count)].filter { $0 == 2 }.count
                guard add(.ramBatch(pass: pass), 17 + count + normal * 4096) else { return (records, false) }
            case 0x03:
                guard let number = u32(at + 1), add(.passEnd(number), 5) else { return (records, false) }
                pass = number + 1
            case 0x04:
                guard let n = u16(at + 1), let length = u32(at + 3 + n + 4) else { return (records, false) }
                let name = String(decoding: bytes[(at + 3)..<(at + 3 + n)], as: UTF8.self)
                guard add(.state(name), 3 + n + 8 + length) else { return (records, false) }
            case 0x05:
                let complete = add(.end, 9)
                return (records, complete)
            default:
                return (records, false)
            }
        }
        return (records, false)
    }
}

/// Loopback sockets for the tests' own ends of a migration.
enum Loopback {
    /// A listening socket on 127.0.0.1 and the port the kernel chose.
    static func listen() -> (fd: Int32, port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = address(port: 0)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        _ = Glibc.listen(fd, 8)
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return (fd, Int(UInt16(bigEndian: addr.sin_port)))
    }

    /// A free port (bound and released; the race is acceptable in tests).
    static func freePort() -> Int {
        let (fd, port) = listen()
        close(fd)
        return port
    }

    /// Connects to 127.0.0.1:`port`, retrying while nothing listens yet (a process starting).
    static func connect(port: Int, seconds: Double = 20) -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = address(port: port)
            let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if rc == 0 { return fd }
            close(fd)
            usleep(10_000)
        }
        return nil
    }

    static func accept(_ listener: Int32) -> Int32 { Glibc.accept(listener, nil, nil) }

    static func writeAll(_ fd: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var sent = bytes.startIndex
        while sent < bytes.endIndex {
            let n = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return false }
            sent += n
        }
        return true
    }

    /// Everything until end of file (or an error).
    static func readToEnd(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { return bytes }
            bytes += chunk[0..<n]
        }
    }

    private static func address(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = UInt16(port).bigEndian
        return addr
    }
}

/// Runs `body` on a thread of its own; `wait()` returns its result (nil after two minutes:
/// a guard against hangs, not a timing assertion).
final class TestThread<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: T?

    init(_ body: @escaping () -> T) {
        Thread { [self] in
            result = body()
            done.signal()
        }.start()
    }

    func wait(seconds: Double = 120) -> T? {
        guard done.wait(timeout: .now() + seconds) == .success else { return nil }
        return result
    }
}
