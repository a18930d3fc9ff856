import Glibc
import SystemSupport
import TLS

/// One connected socket client with a bounded output queue, so a slow client never blocks
/// the poll loop and never grows this process's memory. What happens at the bound depends
/// on the channel (README, "When things go wrong"):
/// - a console (`-serial unix:`/`tcp:`) drops output its client does not read, as a pty
///   nobody reads does;
/// - QMP and the monitor socket stop reading a client's commands while more than
///   `backPressureBytes` of its output wait (`isBackedUp`), so a client that pipelines
///   commands is served at the pace it reads; output that would still take the queue past
///   `maxQueuedBytes` (events or progress lines nobody reads) disconnects the client.
///
/// A client of a `tls-creds=` server has its TLS session here, after the handshake: every read
/// and write goes through it, and `hasBufferedInput` says when OpenSSL holds input the socket
/// no longer shows.
final class SocketConnection {
    enum Overflow {
        case drop
        case disconnect
    }

    static let maxQueuedBytes = 4 << 20
    static let backPressureBytes = 256 << 10
    /// Small sends are packed into chunks up to this size, so many tiny writes do not cost
    /// one array each.
    private static let chunkBytes = 64 << 10

    let fd: Int32
    let overflow: Overflow
    private let session: TLSSession?
    let maxQueuedBytes: Int
    private(set) var isOpen = true
    private var chunks: [[UInt8]] = []
    /// Chunks before this index are sent; `offset` bytes of the next one are.
    private var firstChunk = 0
    private var offset = 0
    /// Bytes waiting to be sent.
    private(set) var queuedBytes = 0

    init(fd: Int32, overflow: Overflow, maxQueuedBytes: Int = SocketConnection.maxQueuedBytes, session: TLSSession? = nil) {
        self.fd = fd
        self.overflow = overflow
        self.maxQueuedBytes = maxQueuedBytes
        self.session = session
    }

    /// What the client sent, decrypted for a TLS client (at most one record per call).
    func read() -> FileIO.ReadResult {
        guard let session else { return FileIO.read(fd) }
        var failure: Int32 = 0
        var ended = false
        let bytes = [UInt8](unsafeUninitializedCapacity: Self.readBytes) { buffer, initialized in
            initialized = 0
            guard let base = buffer.baseAddress else { return }
            do {
                switch try session.read(into: base, count: buffer.count) {
                case .bytes(let n): initialized = n
                case .closed: ended = true
                case .wait: break
                }
            } catch TLSSession.Failure.peerClosed {
                ended = true
            } catch TLSSession.Failure.system(let code) {
                failure = code
            } catch {
                failure = EPROTO
            }
        }
        if ended { return .endOfFile }
        if failure != 0 { return .failed(failure) }
        return bytes.isEmpty ? .wouldBlock : .bytes(bytes)
    }

    /// Input OpenSSL took from the socket but `read` has not returned yet: poll(2) does not
    /// see it, so the poll loop counts this connection readable.
    var hasBufferedInput: Bool { isOpen && (session?.hasBufferedInput ?? false) }

    private static let readBytes = 65536

    var wantsWrite: Bool { isOpen && queuedBytes > 0 }
    var isBackedUp: Bool { queuedBytes >= Self.backPressureBytes }

    /// Bytes held for the queue, sent or not (what the queue costs in memory).
    var storedBytes: Int { chunks[firstChunk...].reduce(0) { $0 + $1.count } }

    func send(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        var rest = bytes[...]
        if queuedBytes == 0 {
            guard let written = writeSome(rest) else { close(); return }
            rest = rest.dropFirst(written)
            if rest.isEmpty { return }
        }
        let room = maxQueuedBytes - queuedBytes
        if rest.count > room {
            switch overflow {
            case .disconnect:
                close()
                return
            case .drop:
                rest = rest.prefix(room)
                if rest.isEmpty { return }
            }
        }
        if firstChunk < chunks.count, let last = chunks.last, last.count + rest.count <= Self.chunkBytes {
            chunks[chunks.count - 1].append(contentsOf: rest)
        } else {
            chunks.append(Array(rest))
        }
        queuedBytes += rest.count
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// The socket can take more: write what is queued, freeing each chunk once it is sent.
    func flush() {
        while isOpen && firstChunk < chunks.count {
            let chunk = chunks[firstChunk]
            guard let written = writeSome(chunk[offset...]) else { close(); return }
            offset += written
            queuedBytes -= written
            guard offset == chunk.count else { return }
            chunks[firstChunk] = []
            firstChunk += 1
            offset = 0
        }
        if firstChunk == chunks.count || firstChunk > 64 {
            chunks.removeFirst(firstChunk)
            firstChunk = 0
        }
    }

    /// Bytes the socket took now (0: it is full); nil when the client is gone or TLS failed.
    /// A TLS write that has to wait keeps its record inside OpenSSL and is retried with the
    /// same bytes first, as OpenSSL requires: the queue's unsent bytes start with them.
    private func writeSome(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard let session else { return FileIO.writeSome(fd, bytes, isSocket: true) }
        guard !bytes.isEmpty else { return 0 }
        return bytes.withUnsafeBytes { raw -> Int? in
            guard let base = raw.baseAddress else { return 0 }
            switch try? session.write(base, count: raw.count) {
            case .bytes(let n)?: return n
            case .wait?: return 0
            case .closed?, nil: return nil
            }
        }
    }

    func close() {
        guard isOpen else { return }
        isOpen = false
        // A TLS client learns the session ended on purpose (close_notify), not by a cut.
        session?.closeNotify()
        FileIO.close(fd)
        chunks.removeAll()
        firstChunk = 0
        offset = 0
        queuedBytes = 0
    }
}
