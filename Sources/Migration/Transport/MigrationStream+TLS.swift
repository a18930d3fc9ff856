import SystemSupport
import Glibc
import Machine
import TLS

/// TLS on a migration socket: the handshake, then the stream's reads and writes through the
/// session. The socket is non-blocking from the handshake on, so every wait is a poll with the
/// stream's bounds (the per-call timeout, the progress bound, shutdown). With kernel TLS the
/// kernel encrypts what is sent, and pages still go from guest memory to the socket in one
/// `sendmsg`; without it they are gathered into one buffer and encrypted by OpenSSL.
extension MigrationStream {
    /// Gathered writes are encrypted this many bytes at a time (several full 16 KiB records).
    static let tlsStagingBytes = 256 * 1024

    /// Runs the handshake, bounded in total by `seconds` (a peer trickling bytes cannot hold
    /// it longer), and routes the stream through the session from then on.
    func startTLS(context: TLSContext, expectedName: String?, seconds: Int) throws -> TLSSession {
        let operation = MigrationTLS.handshake
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0 else { throw MigrationError.io(operation: operation, errno: errno) }
        let session: TLSSession
        do { session = try TLSSession(context: context, fd: fd, expectedName: expectedName) } catch {
            throw MigrationError.tls(during: operation, reason: "\(error)")
        }
        let deadline = MonotonicClock.nanoseconds() + UInt64(seconds) * 1_000_000_000
        while let wait = try tlsCall(operation, { try session.handshake() }) {
            try waitForHandshake(wait, until: deadline, seconds: seconds)
        }
        session.bufferWrites(bytes: Self.tlsStagingBytes)
        tlsSession = session
        return session
    }

    private func waitForHandshake(_ wait: TLSSession.Wait, until deadline: UInt64, seconds: Int) throws {
        while true {
            if wasShutDown { throw MigrationError.cancelled }
            let now = MonotonicClock.nanoseconds()
            guard now < deadline else { throw MigrationError.timedOut(operation: MigrationTLS.handshake, seconds: seconds) }
            var entry = pollfd(fd: fd, events: Int16(wait == .readable ? POLLIN : POLLOUT), revents: 0)
            let n = poll(&entry, 1, Int32(min((deadline - now) / 1_000_000 + 1, 200)))
            if n > 0 || (n < 0 && errno != EINTR) { return }  // the next step reports any error
        }
    }

    func tlsWriteAll(_ session: TLSSession, _ base: UnsafeRawPointer, count: Int, operation: String) throws {
        var done = 0
        while done < count {
            // SAFETY: done < count, so the unsent tail lies inside the caller's buffer.
            switch try tlsCall(operation, { try session.write(base + done, count: count - done) }) {
            case .bytes(let n): done += n
            case .closed: throw MigrationError.peerClosed(during: operation)
            case .wait(let wait): try waitForTLS(wait, operation: operation)
            }
        }
        while let wait = try tlsCall(operation, { try session.flush() }) {
            try waitForTLS(wait, operation: operation)
        }
    }

    /// The vectors' bytes, gathered into the staging buffer a few records at a time.
    func tlsWriteAll(_ session: TLSSession, gathering vectors: UnsafeMutableBufferPointer<iovec>, operation: String) throws {
        let staging = tlsStaging ?? UnsafeMutableRawBufferPointer.allocate(byteCount: Self.tlsStagingBytes, alignment: 64)
        tlsStaging = staging
        guard let stagingBase = staging.baseAddress else { return }
        var filled = 0
        for vector in vectors {
            guard var source = vector.iov_base.map(UnsafeRawPointer.init) else { continue }
            var left = vector.iov_len
            while left > 0 {
                let chunk = min(left, staging.count - filled)
                // SAFETY: `chunk` fits in the staging buffer after `filled`, and `source` has `left` >= chunk bytes.
                (stagingBase + filled).copyMemory(from: source, byteCount: chunk)
                filled += chunk; source += chunk; left -= chunk
                if filled == staging.count {
                    try tlsWriteAll(session, stagingBase, count: filled, operation: operation)
                    filled = 0
                }
            }
        }
        if filled > 0 { try tlsWriteAll(session, stagingBase, count: filled, operation: operation) }
    }

    func tlsReadSome(_ session: TLSSession, into buffer: UnsafeMutableRawPointer, count: Int, operation: String) throws -> Int {
        while true {
            switch try tlsCall(operation, { try session.read(into: buffer, count: count) }) {
            case .bytes(let n): return counted(n)
            case .closed: return 0
            case .wait(let wait): try waitForTLS(wait, operation: operation)
            }
        }
    }

    /// As `discardInput` for a plain socket: reads and drops until `deadline` or `maxBytes`.
    func tlsDiscardInput(_ session: TLSSession, maxBytes: Int, until deadline: UInt64) {
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        var drained = 0
        while drained < maxBytes {
            // SAFETY: reads at most the scratch buffer's own size into it.
            let result = scratch.withUnsafeMutableBytes { buffer in
                try? session.read(into: buffer.baseAddress!, count: min(buffer.count, maxBytes - drained))
            }
            switch result {
            case .bytes(let n)?:
                drained += n
            case .wait(let wait)?:
                let now = MonotonicClock.nanoseconds()
                guard now < deadline else { return }
                var entry = pollfd(fd: fd, events: Int16(wait == .readable ? POLLIN : POLLOUT), revents: 0)
                if poll(&entry, 1, Int32((deadline - now) / 1_000_000 + 1)) == 0 { return }
            case .closed?, nil:
                return
            }
        }
    }

    /// Waits as the plain socket's calls do: within the progress bound when one is set, else
    /// within the per-call timeout; a shutdown ends the wait.
    private func waitForTLS(_ wait: TLSSession.Wait, operation: String) throws {
        if wait == .readable && progressLimitNanoseconds > 0 {
            try waitForInputBeforeProgressDeadline(operation: operation)
        } else {
            try waitUntilReady(fd, events: wait == .readable ? POLLIN : POLLOUT, operation: operation)
        }
    }

    /// Runs one session call, turning its failure into the stream's errors.
    private func tlsCall<T>(_ operation: String, _ call: () throws -> T) throws -> T {
        do {
            return try call()
        } catch let failure as TLSSession.Failure {
            if wasShutDown { throw MigrationError.cancelled }
            switch failure {
            case .peerClosed: throw MigrationError.peerClosed(during: operation)
            case .system(let code): throw MigrationError.io(operation: operation, errno: code)
            case .tls(let reason): throw MigrationError.tls(during: operation, reason: reason)
            }
        }
    }
}
