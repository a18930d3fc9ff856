import Glibc
import Machine
import Sockets
import TLS
import SystemSupport

/// The one byte stream every transport hands out (see MigrationTransport.swift): a socket,
/// or (for `exec:`, `-incoming stdio` and `file:`) a pair of descriptors that may be pipes or
/// a file, either of which may be absent. Every call retries on EINTR and finishes short
/// transfers. `shutdown()` may be called from any thread to unblock the owner.
///
/// Two bounds on a peer that makes no progress: a per-call timeout (SO_RCVTIMEO and
/// SO_SNDTIMEO, or poll slices for pipes), and for a reader that `requireProgress`, a bound on
/// the total time without progress, which a peer trickling a byte just before each per-call
/// timeout cannot stretch.
///
/// After `startTLS` (MigrationStream+TLS.swift) the same calls go through a TLS session on the
/// socket, which is then non-blocking: waits poll with the same bounds.
final class MigrationStream {
    private let lock = Mutex()
    private(set) var fd: Int32
    /// Where writes go: `fd` itself for a socket, another descriptor for a pipe pair.
    private(set) var writeFD: Int32
    /// Pipes have no SO_RCVTIMEO/SO_SNDTIMEO and no shutdown: waits on them poll in slices
    /// instead, checking for shutdown and the stall timeout between slices.
    private let readIsSocket: Bool
    private let writeIsSocket: Bool
    private var isShutDown = false
    /// `requireProgress`: zero when off. Used only by the reading thread.
    private(set) var progressLimitNanoseconds: UInt64 = 0
    private var lastProgress: UInt64 = 0
    private var bytesSinceProgress = 0

    /// A unix socket: reads take any descriptors that come along (SCM_RIGHTS) into
    /// `descriptors`, for the record that announced them (x-ignore-shared's memfd).
    private let carriesDescriptors: Bool
    private var descriptors: [Int32] = []

    init(fd: Int32) {
        self.fd = fd; writeFD = fd
        readIsSocket = true; writeIsSocket = true
        carriesDescriptors = DescriptorPassing.isUnixSocket(fd)
    }

    /// Reads from `readFD` and writes to `writeFD`, each a socket or a pipe; takes both over.
    init(readFD: Int32, writeFD: Int32) {
        fd = readFD; self.writeFD = writeFD
        readIsSocket = MigrationStream.isSocket(readFD)
        writeIsSocket = MigrationStream.isSocket(writeFD)
        carriesDescriptors = false
        // A reader that went away must turn into EPIPE on a pipe, not kill the process.
        if !writeIsSocket { signal(SIGPIPE, SIG_IGN) }
    }

    private static func isSocket(_ fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Set once by `startTLS`, before the stream is shared; only the owning thread uses it.
    var tlsSession: TLSSession?
    /// Where vectors are gathered for a TLS session the kernel does not encrypt for us.
    var tlsStaging: UnsafeMutableRawBufferPointer?

    deinit {
        close()
        tlsStaging?.deallocate()
    }

    func close() {
        lock.withLock {
            if writeFD >= 0 && writeFD != fd { Glibc.close(writeFD) }
            if fd >= 0 { Glibc.close(fd) }
            fd = -1; writeFD = -1
            for descriptor in descriptors { Glibc.close(descriptor) }
            descriptors = []
        }
    }

    /// The oldest descriptor received and not yet taken; the caller owns it then.
    func takeDescriptor() -> Int32? {
        lock.withLock { descriptors.isEmpty ? nil : descriptors.removeFirst() }
    }

    /// Whether this stream can carry descriptors (a unix socket, without TLS in between).
    /// True once a TLS session carries the stream.
    var isEncrypted: Bool { tlsSession != nil }
    var canPassDescriptors: Bool { carriesDescriptors && tlsSession == nil }

    /// As writeAll, with `descriptor` attached to the first byte (SCM_RIGHTS); unix sockets only.
    func writeAll(_ bytes: UnsafeRawBufferPointer, passing descriptor: Int32, operation: String) throws {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return }
        while true {
            let n = DescriptorPassing.send(writeFD, base, count: bytes.count, descriptor: descriptor, flags: Int32(MSG_NOSIGNAL))
            if n < 0 {
                try throwForFailedTransfer(operation: operation)
                continue
            }
            // SAFETY: n <= bytes.count, so the rest lies inside `bytes`.
            try writeAll(UnsafeRawBufferPointer(start: base + n, count: bytes.count - n), operation: operation)
            return
        }
    }

    /// recv, or recvmsg keeping descriptors on a unix socket.
    private func receive(_ buffer: UnsafeMutableRawPointer, _ count: Int, _ flags: Int32) -> Int {
        guard carriesDescriptors else { return Glibc.recv(fd, buffer, count, flags) }
        var arrived: [Int32] = []
        let n = DescriptorPassing.receive(fd, into: buffer, count: count, flags: flags, descriptors: &arrived)
        // A peer that floods descriptors cannot make this process run out of them.
        if !arrived.isEmpty {
            lock.withLock {
                for descriptor in arrived {
                    if descriptors.count < DescriptorPassing.maxDescriptors { descriptors.append(descriptor) } else { Glibc.close(descriptor) }
                }
            }
        }
        return n
    }

    /// Wakes a blocked read or write on the owning thread with an error or end of file.
    func shutdown() {
        lock.withLock {
            isShutDown = true
            if fd >= 0 && readIsSocket { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }
            if writeFD >= 0 && writeFD != fd && writeIsSocket { _ = Glibc.shutdown(writeFD, Int32(SHUT_RDWR)) }
        }
    }

    var wasShutDown: Bool { lock.withLock { isShutDown } }

    /// False for a stream read from a snapshot file: nobody is there to answer.
    var canReply: Bool { lock.withLock { writeFD >= 0 } }

    /// Large buffers for bulk pages, no Nagle delay for the small control messages.
    func configureForBulkTransfer(timeoutSeconds: Int) {
        var size = TransportLimits.socketBufferBytes
        var one: Int32 = 1
        let intSize = socklen_t(MemoryLayout<Int32>.size)
        // Failures here only cost speed (or, for unix sockets, do not apply), never correctness.
        _ = setsockopt(writeFD, SOL_SOCKET, SO_SNDBUF, &size, intSize)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, intSize)
        _ = setsockopt(writeFD, Int32(IPPROTO_TCP), TCP_NODELAY, &one, intSize)
        setTimeout(seconds: timeoutSeconds)
    }

    /// Bytes written to a socket that it has not yet sent and had acknowledged (SIOCOUTQ),
    /// or nil for a pipe or file, which cannot say. Compression asks it to tell whether the
    /// link is the bottleneck.
    var unsentBytes: Int? {
        guard writeIsSocket, writeFD >= 0 else { return nil }
        var queued: Int32 = 0
        // SIOCOUTQ is TIOCOUTQ (0x5411) for sockets.
        guard ioctl(writeFD, UInt(TIOCOUTQ), &queued) == 0 else { return nil }
        return Int(queued)
    }

    /// Waits, while the guest still runs, until the socket holds at most `bytes` it has not
    /// sent, or `deadlineNanoseconds` (MonotonicClock) has passed, or `shouldStop` says so.
    /// Returns whether the queue got that short. Without it a switchover on a slow link waits
    /// behind the last pass's queued bytes with the guest paused (the send buffer is 8 MiB:
    /// 70 ms at 1 Gbit/s).
    @discardableResult
    func waitUntilSent(atMost bytes: Int, deadlineNanoseconds: UInt64, shouldStop: () -> Bool) -> Bool {
        while let queued = unsentBytes, queued > bytes {
            if shouldStop() || MonotonicClock.nanoseconds() >= deadlineNanoseconds { return false }
            usleep(500)
        }
        return true
    }

    /// Postcopy: a page a vCPU waits for queues behind whatever is already in the send buffer,
    /// so a smaller buffer bounds that wait (at the cost of more wake-ups for bulk pages).
    func limitSendBuffer(bytes: Int32) {
        var size = bytes
        _ = setsockopt(writeFD, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Bounds every blocking read and write: a stalled peer turns into `.timedOut`.
    func setTimeout(seconds: Int) {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        let size = socklen_t(MemoryLayout<timeval>.size)
        _ = setsockopt(writeFD, SOL_SOCKET, SO_SNDTIMEO, &timeout, size)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, size)
        timeoutSeconds = seconds
    }
    private(set) var timeoutSeconds = TransportLimits.stallTimeoutSeconds

    func writeAll(_ bytes: UnsafeRawBufferPointer, operation: String) throws {
        guard var base = bytes.baseAddress else { return }
        if let session = tlsSession { return try tlsWriteAll(session, base, count: bytes.count, operation: operation) }
        var left = bytes.count
        while left > 0 {
            let began = MonotonicClock.nanoseconds()
            if !writeIsSocket { try waitUntilReady(writeFD, events: POLLOUT, operation: operation) }
            // SAFETY: `base` and `left` always describe the unsent tail of `bytes`.
            let n = writeIsSocket ? Glibc.send(writeFD, base, left, Int32(MSG_NOSIGNAL)) : Glibc.write(writeFD, base, left)
            if n < 0 {
                try throwForFailedTransfer(operation: operation)
                continue
            }
            try checkShortWrite(sent: n, of: left, began: began, operation: operation)
            base += n
            left -= n
        }
    }

    /// Writes every byte the vectors describe, straight from where they lie (guest memory).
    /// `vectors` is consumed: entries are advanced past what was written.
    func writeAll(vectors: UnsafeMutableBufferPointer<iovec>, operation: String) throws {
        guard let first = vectors.baseAddress else { return }
        if let session = tlsSession, !session.kernelSends { return try tlsWriteAll(session, gathering: vectors, operation: operation) }
        var start = 0
        let count = vectors.count
        while start < count {
            var header = msghdr()
            header.msg_iov = first + start
            header.msg_iovlen = min(count - start, 1024 /* IOV_MAX on Linux */)
            let began = MonotonicClock.nanoseconds()
            if !writeIsSocket { try waitUntilReady(writeFD, events: POLLOUT, operation: operation) }
            // SAFETY: every vector points into guest RAM or a buffer the caller keeps alive for this call.
            var written = writeIsSocket ? Glibc.sendmsg(writeFD, &header, Int32(MSG_NOSIGNAL))
                                        : Glibc.writev(writeFD, header.msg_iov, Int32(header.msg_iovlen))
            if written < 0 {
                // With kernel TLS the socket is non-blocking: wait for room, bounded as pipes are.
                if tlsSession != nil && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    try waitUntilReady(writeFD, events: POLLOUT, operation: operation)
                    continue
                }
                try throwForFailedTransfer(operation: operation)
                continue
            }
            if written < (0..<header.msg_iovlen).reduce(0, { $0 + vectors[start + $1].iov_len }) {
                try checkShortWrite(sent: written, of: Int.max, began: began, operation: operation)
            }
            // Skip the vectors this call finished; trim the one it stopped inside.
            while start < count && written >= vectors[start].iov_len {
                written -= vectors[start].iov_len
                start += 1
            }
            if start < count && written > 0 {
                // SAFETY: `written` is less than this vector's length, so the new base stays inside it.
                vectors[start].iov_base = vectors[start].iov_base.map { $0 + written }
                vectors[start].iov_len -= written
            }
        }
    }

    /// From now on, reads fail with `.timedOut` once `seconds` pass without progress: a call
    /// to `noteProgress` (the reader finished a record) or `TransportLimits.progressBytes`
    /// received since the last one.
    func requireProgress(withinSeconds seconds: Double) {
        progressLimitNanoseconds = UInt64(max(seconds, 0.001) * 1_000_000_000)
        noteProgress()
    }

    func noteProgress() {
        lastProgress = MonotonicClock.nanoseconds()
        bytesSinceProgress = 0
    }

    /// Reads at most `count` bytes; returns 0 at end of stream.
    func readSome(into buffer: UnsafeMutableRawPointer, count: Int, operation: String) throws -> Int {
        if let session = tlsSession { return try tlsReadSome(session, into: buffer, count: count, operation: operation) }
        while true {
            if progressLimitNanoseconds > 0 {
                // Data is usually already there while RAM streams in: try the read first, so the
                // receive path costs one syscall per read, and poll only when it would block.
                if readIsSocket {
                    if wasShutDown { throw MigrationError.cancelled }
                    // SAFETY: the caller owns `count` writable bytes at `buffer`.
                    let n = receive(buffer, count, Int32(MSG_DONTWAIT))
                    if n >= 0 { return counted(n) }
                    if errno != EAGAIN && errno != EWOULDBLOCK {
                        try throwForFailedTransfer(operation: operation)
                        continue
                    }
                }
                try waitForInputBeforeProgressDeadline(operation: operation)
            } else if !readIsSocket {
                try waitUntilReady(fd, events: POLLIN, operation: operation)
            }
            // SAFETY: the caller owns `count` writable bytes at `buffer`.
            let n = readIsSocket ? receive(buffer, count, 0) : Glibc.read(fd, buffer, count)
            if n >= 0 { return counted(n) }
            try throwForFailedTransfer(operation: operation)
        }
    }

    /// Counts `n` bytes read towards the progress bound and returns them.
    func counted(_ n: Int) -> Int {
        bytesSinceProgress += n
        if bytesSinceProgress >= TransportLimits.progressBytes { noteProgress() }
        return n
    }

    /// Polls in slices (so a shutdown is seen on pipes too) until input is there, or fails
    /// once the time without progress is spent.
    func waitForInputBeforeProgressDeadline(operation: String) throws {
        let deadline = lastProgress + progressLimitNanoseconds
        while true {
            if wasShutDown { throw MigrationError.cancelled }
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else {
                let seconds = Int((Double(progressLimitNanoseconds) / 1e9).rounded(.up))
                throw MigrationError.timedOut(operation: operation, seconds: max(seconds, 1))
            }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let n = poll(&entry, 1, Int32(min((deadline - now) / 1_000_000 + 1, 200)))
            if n > 0 { return }
            if n < 0 && errno != EINTR { return }  // the read itself reports the error
        }
    }

    /// Reads and drops what the peer still sends, at most `maxBytes` and `seconds` in all, so
    /// that closing does not reset the connection before the peer has read our last words.
    func discardInput(maxBytes: Int, seconds: Double) {
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds * 1_000_000_000)
        if let session = tlsSession { return tlsDiscardInput(session, maxBytes: maxBytes, until: deadline) }
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        var drained = 0
        while drained < maxBytes {
            let now = MonotonicClock.nanoseconds()
            guard now < deadline, fd >= 0 else { return }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32((deadline - now) / 1_000_000 + 1))
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return }
            // SAFETY: reads at most the scratch buffer's own size into it.
            let n = scratch.withUnsafeMutableBytes { raw in
                Errno.retryingInterrupted { Glibc.read(fd, raw.baseAddress, min(raw.count, maxBytes - drained)) }
            }
            guard n > 0 else { return }
            drained += n
        }
    }

    /// Fills exactly `count` bytes or throws `.peerClosed`.
    func readExact(into buffer: UnsafeMutableRawPointer, count: Int, operation: String) throws {
        var done = 0
        while done < count {
            // SAFETY: done < count, so the remaining `count - done` bytes lie inside the caller's buffer.
            let n = try readSome(into: buffer + done, count: count - done, operation: operation)
            if n == 0 { throw MigrationError.peerClosed(during: operation) }
            done += n
        }
    }

    /// True when the peer has sent something (or closed) and a read would not block.
    func hasPendingInput(waitMilliseconds: Int32 = 0) -> Bool {
        if let session = tlsSession, session.pending > 0 { return true }
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Errno.retryingInterrupted { poll(&entry, 1, waitMilliseconds) } > 0
    }

    func shutdownWrite() {
        tlsSession?.closeNotify()
        lock.withLock {
            if writeIsSocket {
                _ = Glibc.shutdown(writeFD, Int32(SHUT_WR))
            } else if writeFD >= 0 && writeFD != fd {
                // End of file for a pipe's reader is closing its only writer.
                Glibc.close(writeFD)
                writeFD = -1
            }
        }
    }

    /// For pipes: polls in short slices until `fd` is ready, the socket is shut down
    /// (`.cancelled`) or nothing happened for the stall timeout (`.timedOut`).
    func waitUntilReady(_ fd: Int32, events: Int32, operation: String) throws {
        let slice: Int32 = 200
        var waited = 0
        while true {
            if wasShutDown { throw MigrationError.cancelled }
            var entry = pollfd(fd: fd, events: Int16(events), revents: 0)
            let n = poll(&entry, 1, slice)
            if n > 0 { return }
            if n < 0 && errno != EINTR { return }  // the read or write itself reports the error
            waited += Int(slice)
            if timeoutSeconds > 0 && waited >= timeoutSeconds * 1000 {
                throw MigrationError.timedOut(operation: operation, seconds: timeoutSeconds)
            }
        }
    }

    /// A send that hits SO_SNDTIMEO after moving some bytes returns the short count instead
    /// of failing; without this check a stalled peer would cost up to twice the timeout.
    private func checkShortWrite(sent: Int, of requested: Int, began: UInt64, operation: String) throws {
        guard sent < requested, timeoutSeconds > 0 else { return }
        if MonotonicClock.nanoseconds() - began >= UInt64(timeoutSeconds) * 1_000_000_000 {
            throw MigrationError.timedOut(operation: operation, seconds: timeoutSeconds)
        }
    }

    func throwForFailedTransfer(operation: String) throws {
        let err = errno
        if err == EINTR { return }
        if wasShutDown { throw MigrationError.cancelled }
        if err == EAGAIN || err == EWOULDBLOCK {
            throw MigrationError.timedOut(operation: operation, seconds: timeoutSeconds)
        }
        if err == EPIPE || err == ECONNRESET { throw MigrationError.peerClosed(during: operation) }
        throw MigrationError.io(operation: operation, errno: err)
    }
}
