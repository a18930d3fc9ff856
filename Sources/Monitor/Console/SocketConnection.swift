/// One connected socket client with an output queue, so a slow client never blocks the
/// poll loop. Past `maxQueuedBytes` further output is dropped: a client that stops reading
/// must not grow this process's memory.
final class SocketConnection {
    static let maxQueuedBytes = 4 << 20

    let fd: Int32
    private(set) var isOpen = true
    private var queued: [UInt8] = []
    private var queuedStart = 0

    init(fd: Int32) {
        self.fd = fd
    }

    var wantsWrite: Bool { isOpen && queuedStart < queued.count }

    func send(_ bytes: [UInt8]) {
        guard isOpen, !bytes.isEmpty else { return }
        if !wantsWrite {
            guard let written = FileIO.writeSome(fd, bytes[...], isSocket: true) else { close(); return }
            if written == bytes.count { return }
            queued = Array(bytes[written...])
            queuedStart = 0
            return
        }
        let room = Self.maxQueuedBytes - (queued.count - queuedStart)
        if room > 0 { queued.append(contentsOf: bytes.prefix(room)) }
    }

    func send(_ text: String) { send(Array(text.utf8)) }

    /// The socket can take more: write what is queued.
    func flush() {
        guard wantsWrite else { return }
        guard let written = FileIO.writeSome(fd, queued[queuedStart...], isSocket: true) else { close(); return }
        queuedStart += written
        if queuedStart == queued.count { queued.removeAll(); queuedStart = 0 }
    }

    func close() {
        guard isOpen else { return }
        isOpen = false
        FileIO.close(fd)
        queued.removeAll()
    }
}
