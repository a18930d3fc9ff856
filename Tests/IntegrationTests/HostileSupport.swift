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

/// Finds record boundaries in a migration stream fed in pieces, without keeping payloads:
/// the test proxies use it to know which phase a migration is in, and the hostile-stream
/// tests to cut captured streams at their boundaries.
final class StreamScanner {
    private(set) var records: [StreamRecord] = []
    private(set) var complete = false
    /// Called for each record as soon as its header has arrived (its payload may follow).
    var onRecord: ((StreamRecord) -> Void)?
    private var buffer: [UInt8] = []
    private var skip = 0
    private var position = 0
    private var pass = 1

    func feed(_ chunk: ArraySlice<UInt8>) {
        var input = chunk
        let skipped = min(skip, input.count)
        skip -= skipped
        position += skipped
        input = input.dropFirst(skipped)
        buffer += input
        while !complete, let (kind, header, payload) = nextHeader() {
            let record = StreamRecord(kind: kind, offset: position, length: header + payload)
            records.append(record)
            if case .passEnd(let number) = kind { pass = number + 1 }
            if kind == .end { complete = true }
            let inBuffer = min(header + payload, buffer.count)
            buffer.removeFirst(inBuffer)
            position += inBuffer
            skip = header + payload - inBuffer
            onRecord?(record)
        }
    }

    /// The next record's kind, header length and payload length, once its header is here.
    private func nextHeader() -> (StreamRecord.Kind, Int, Int)? {
        func u16(_ o: Int) -> Int? { o + 2 <= buffer.count ? Int(buffer[o]) | Int(buffer[o + 1]) << 8 : nil }
        func u32(_ o: Int) -> Int? {
            o + 4 <= buffer.count ? (0..<4).reduce(0) { $0 | Int(buffer[o + $1]) << (8 * $1) } : nil
        }
        if records.isEmpty { return buffer.count >= 8 ? (.header, 8, 0) : nil }
        if records.count == 1 {
            guard let regions = u32(1) else { return nil }
            var o = 5 + regions * 16 + 4
            guard let devices = u32(o) else { return nil }
            o += 4
            for _ in 0..<devices {
                guard let n = u16(o) else { return nil }
                o += 2 + n
            }
            return o <= buffer.count ? (.layout, o, 0) : nil
        }
        guard let tag = buffer.first else { return nil }
        switch tag {
        case 0x02:
            guard let count = u32(13), 17 + count <= buffer.count else { return nil }
            let normal = buffer[17..<(17 + count)].filter { $0 == 2 }.count
            return (.ramBatch(pass: pass), 17 + count, normal * 4096)
        case 0x03:
            guard let number = u32(1) else { return nil }
            return (.passEnd(number), 5, 0)
        case 0x04:
            guard let n = u16(1), let length = u32(3 + n + 4) else { return nil }
            return (.state(String(decoding: buffer[3..<(3 + n)], as: UTF8.self)), 11 + n, length)
        case 0x05:
            return buffer.count >= 9 ? (.end, 9, 0) : nil
        default:
            return nil
        }
    }
}

enum StreamRecords {
    /// The records of a whole stream, and whether it is complete up to its end marker.
    static func parse(_ bytes: [UInt8]) -> (records: [StreamRecord], complete: Bool) {
        let scanner = StreamScanner()
        scanner.feed(bytes[...])
        let records = scanner.records
        // A record whose payload was cut off is not a whole record.
        if let last = records.last, last.endOffset > bytes.count {
            return (Array(records.dropLast()), false)
        }
        return (records, scanner.complete)
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

    /// One attempt: the connected socket, or the errno of the failure.
    static func connectOnce(port: Int) -> Result<Int32, POSIXError> {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = address(port: port)
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        if rc == 0 { return .success(fd) }
        let error = POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        close(fd)
        return .failure(error)
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

/// A TCP forwarder between a migration source and its destination that the test controls:
/// it watches the stream's records and cuts the connection (or stops reading, or swallows
/// the destination's acknowledgement) at the moment a `Fault` names.
final class FaultProxy: @unchecked Sendable {
    enum Fault {
        /// Close both sides once this many stream bytes went through.
        case cutAfterBytes(Int)
        /// Close both sides as soon as a record like this starts (nothing of it is forwarded).
        case cutAtRecord((StreamRecord.Kind) -> Bool)
        /// Forward the whole stream, then close instead of passing on the destination's ack.
        case dropAck
        /// Stop reading from the source after this many bytes, keeping the connection open.
        case stallAfterBytes(Int)
        /// Forward everything; `onRecord` runs for each record (for example, to kill the source).
        case watch
    }

    let port: Int
    private let listener: Int32
    private let fault: Fault
    private let destinationPort: Int
    private let lock = NSCondition()
    private var fired = false
    private var sockets: [Int32] = []
    var onRecord: ((StreamRecord) -> Void)?

    init(to destinationPort: Int, fault: Fault) {
        (listener, port) = Loopback.listen()
        self.fault = fault
        self.destinationPort = destinationPort
        Thread { [self] in run() }.start()
    }

    /// Whether the fault happened, waiting up to `seconds` for it.
    func waitUntilFired(seconds: Double = 60) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        lock.lock(); defer { lock.unlock() }
        while !fired { if !lock.wait(until: deadline) { return fired } }
        return true
    }

    /// Ends everything (a stalled proxy lets go of its connections).
    func close() {
        lock.lock(); defer { lock.unlock() }
        for fd in sockets { shutdown(fd, Int32(SHUT_RDWR)) }
        shutdown(listener, Int32(SHUT_RDWR))
    }

    deinit { close(); Glibc.close(listener) }

    private func fire(closing fds: Int32...) {
        lock.lock()
        fired = true
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)) }
        lock.broadcast()
        lock.unlock()
    }

    private func run() {
        let source = Loopback.accept(listener)
        guard source >= 0, let destination = Loopback.connect(port: destinationPort) else { return }
        lock.lock(); sockets = [source, destination]; lock.unlock()
        Thread { [self] in forwardReplies(from: destination, to: source) }.start()
        let scanner = StreamScanner()
        var cutAt: Int?
        scanner.onRecord = { [self] record in
            onRecord?(record)
            if case .cutAtRecord(let matches) = fault, cutAt == nil, matches(record.kind) { cutAt = record.offset }
        }
        var total = 0
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            if case .stallAfterBytes(let limit) = fault, total >= limit {
                fire()
                return  // holds both connections open and never reads again
            }
            let n = chunk.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if n <= 0 { shutdown(destination, Int32(SHUT_WR)); return }
            scanner.feed(chunk[0..<n])
            var forward = n
            if case .cutAfterBytes(let limit) = fault, total + n >= limit { cutAt = limit }
            if let cut = cutAt { forward = max(0, min(n, cut - total)) }
            _ = Loopback.writeAll(destination, chunk[0..<forward])
            total += forward
            if cutAt != nil { fire(closing: source, destination); return }
        }
    }

    private func forwardReplies(from destination: Int32, to source: Int32) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(destination, $0.baseAddress, $0.count, 0) }
            if n <= 0 { shutdown(source, Int32(SHUT_WR)); return }
            if case .dropAck = fault, chunk[0] == 0x10 {
                fire(closing: source, destination)
                return
            }
            _ = Loopback.writeAll(source, chunk[0..<n])
        }
    }
}

/// Asks `info migrate` until the status is one of `statuses`; returns that report.
func migrationReport(_ p: SwiftKVMProcess, until statuses: [String], seconds: Double = 90) -> String {
    let deadline = Date().addingTimeInterval(seconds)
    var asked = p.stdout.components(separatedBy: "Migration status: ").count - 1
    while Date() < deadline {
        asked += 1
        p.send("info migrate\n")
        _ = p.waitFor(seconds: 2) { $0.components(separatedBy: "Migration status: ").count - 1 >= asked }
        let reports = p.stdout.components(separatedBy: "Migration status: ")
        if let last = reports.last, statuses.contains(where: { last.hasPrefix($0) }) { return last }
        usleep(200_000)
    }
    return p.stdout.components(separatedBy: "Migration status: ").last ?? ""
}
