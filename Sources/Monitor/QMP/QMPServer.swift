import Glibc

/// The QMP servers of one process (`-qmp`, repeatable), each with any number of clients.
/// Everything runs on the monitor's poll-loop thread, so QMP commands and human-monitor
/// commands never run at the same time and all clients see the same state.
public final class QMPServer {
    private final class Client {
        let connection: SocketConnection
        let session: QMPSession
        var token: PollLoop.Token?
        init(connection: SocketConnection, session: QMPSession) {
            self.connection = connection
            self.session = session
        }
    }

    private struct Endpoint {
        let listener: ConnectionListener
        let wait: Bool
    }

    public let table: QMPCommandTable
    public let events: QMPEventHub
    private var endpoints: [Endpoint] = []
    private var clients: [Client] = []
    private var loop: PollLoop?

    /// Opens every listener now, so a bad address fails before the guest starts.
    public init(specs: [QMPServerSpec], table: QMPCommandTable, events: QMPEventHub) throws {
        self.table = table
        self.events = events
        do {
            for spec in specs {
                switch spec {
                case .unix(let path, let wait):
                    endpoints.append(Endpoint(listener: try UnixSocketListener(path: path), wait: wait))
                case .tcp(let host, let port, let wait):
                    endpoints.append(Endpoint(listener: try TCPSocketListener(host: host, port: port), wait: wait))
                }
            }
        } catch {
            for endpoint in endpoints { endpoint.listener.close() }
            throw error
        }
    }

    public var clientCount: Int { clients.count }

    /// `info chardev` lines, QEMU's `compat_monitorN` labels after the human monitor's.
    func chardevLines(firstIndex: Int) -> [String] {
        endpoints.enumerated().map { index, endpoint in
            "compat_monitor\(firstIndex + index): filename=\(endpoint.listener.label),server=on"
        }
    }

    /// The TCP ports bound, in `-qmp` order (0 for unix sockets).
    public var boundTCPPorts: [UInt16] {
        endpoints.map { ($0.listener as? TCPSocketListener)?.port ?? 0 }
    }

    func register(in loop: PollLoop) {
        self.loop = loop
        for endpoint in endpoints {
            loop.watch(fd: endpoint.listener.fd) { [unowned self] _ in
                while let fd = endpoint.listener.accept() { self.adopt(fd) }
            }
        }
        loop.watch(fd: events.wakeReadFD) { [unowned self] _ in self.deliver(self.events.takeQueued()) }
        for client in clients { watch(client) }
    }

    /// Blocks until every listener without `nowait` has its first client (QEMU does the same).
    func waitForClients() {
        for endpoint in endpoints where endpoint.wait {
            FileIO.writeAll(2, "swiftkvm: waiting for connection on qmp \(endpoint.listener.label),server\n")
            if let fd = endpoint.listener.waitForClient() { adopt(fd) }
        }
    }

    private func adopt(_ fd: Int32) {
        let client = Client(connection: SocketConnection(fd: fd), session: QMPSession(table: table))
        clients.append(client)
        client.connection.send(QMPSession.line(QMPSession.greeting))
        if loop != nil { watch(client) }
    }

    private func watch(_ client: Client) {
        guard let loop else { return }
        client.token = loop.watch(fd: client.connection.fd, interest: {
            (client.connection.isOpen && !client.session.mustClose, client.connection.wantsWrite)
        }) { [unowned self] events in
            if events & Int16(POLLOUT) != 0 { client.connection.flush() }
            if events & Int16(POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0 { self.read(from: client) }
            if client.session.mustClose && !client.connection.wantsWrite { client.connection.close() }
            self.dropClosedClients()
        }
    }

    private func read(from client: Client) {
        switch FileIO.read(client.connection.fd) {
        case .bytes(let bytes):
            for reply in client.session.receive(bytes) { client.connection.send(reply) }
        case .wouldBlock:
            break
        case .endOfFile, .failed:
            client.connection.close()
        }
    }

    private func deliver(_ queued: [JSONValue]) {
        guard !queued.isEmpty else { return }
        let text = queued.map(QMPSession.line).joined()
        for client in clients where client.session.negotiated { client.connection.send(text) }
        dropClosedClients()
    }

    private func dropClosedClients() {
        for client in clients where !client.connection.isOpen {
            if let token = client.token { loop?.unwatch(token) }
        }
        clients.removeAll { !$0.connection.isOpen }
    }

    /// Sends what is still queued (the reply to `quit`, the last events), briefly, then closes.
    func close() {
        deliver(events.takeQueued())
        for client in clients {
            var tries = 0
            while client.connection.wantsWrite && tries < 20 {
                var pending = pollfd(fd: client.connection.fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&pending, 1, 50)
                client.connection.flush()
                tries += 1
            }
            client.connection.close()
        }
        dropClosedClients()
        for endpoint in endpoints { endpoint.listener.close() }
    }
}
