import SystemSupport

/// One connected socket client with a bounded output queue, so a slow client never blocks
/// the poll loop and never grows this process's memory. What happens at the bound depends
/// on the channel (README, "When things go wrong"):
/// - a console (`-serial unix:`/`tcp:`) drops output its client does not read, as a pty
///   nobody reads does;
/// - QMP and the monitor socket stop reading a client's commands while more than
///   `backPressureBytes` of its output wait (`isBackedUp`), so a client that pipelines
///   commands is served at the pace it reads; output that would still take the queue past
///   `maxQueuedBytes` (events or progress lines nobody reads) disconnects the client.
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
    let maxQueuedBytes: Int
    private(set) var isOpen = true
    private var chunks: [[UInt8]] = []
    /// Chunks before this index are sent; `offset` bytes of the next one are.
    private var firstChunk = 0
    private var offset = 0
    /// Bytes waiting to be sent.
    private(set) var queuedBytes = 0

    init(fd: Int32, overflow: Overflow, maxQueuedBytes: Int = SocketConnection.maxQueuedBytes) {
        self.fd = fd
        self.overflow = overflow
        self.maxQueuedBytes = maxQueuedBytes
    }

    var wantsWrite: Bool { isOpen && queuedBytes > 0 }
    var isBackedUp: Bool { queuedBytes >= Self.backPressureBytes }

    /// Bytes held for the queue, sent or not (what the queue costs in memory).
    var storedBytes: Int { chunks[firstChunk...].reduce(0) { $0 + $1.count } }

    func send(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        var rest = bytes[...]
        if queuedBytes == 0 {
            guard let written = FileIO.writeSome(fd, rest, isSocket: true) else { close(); return }
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
            guard let written = FileIO.writeSome(fd, chunk[offset...], isSocket: true) else { close(); return }
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

    func close() {
        guard isOpen else { return }
        isOpen = false
        FileIO.close(fd)
        chunks.removeAll()
        firstChunk = 0
        offset = 0
        queuedBytes = 0
    }
}
