import Glibc
import Sockets
import SystemSupport
import TLS

/// The QMP servers of one process (`-qmp`, repeatable), each with up to `maxClients`
/// clients; further clients wait in the listen backlog until one leaves (QEMU serves one
/// client per QMP socket; a few at once let a management tool and a person share one).
/// Everything runs on the monitor's poll-loop thread, so QMP commands and human-monitor
/// commands never run at the same time and all clients see the same state.
///
/// A client's commands are read and run only while its replies are taken (see
/// SocketConnection): one that pipelines commands and reads slowly holds at most
/// `SocketConnection.backPressureBytes` of replies plus one, here.
///
/// A `tcp:` server with `tls-creds=` greets a client only after its TLS handshake and the
/// `tls-authz` check (see ClientListener); its clients then speak QMP inside TLS.
public final class QMPServer {
    public static let maxClients = 8

    private final class Client {
        let connection: SocketConnection
        let session: QMPSession
        let endpoint: Endpoint
        var token: PollLoop.Token?
        init(connection: SocketConnection, session: QMPSession, endpoint: Endpoint) {
            self.connection = connection
            self.session = session
            self.endpoint = endpoint
        }
    }

    private final class Endpoint {
        let listener: ClientListener
        let wait: Bool
        var clients = 0
        init(listener: ClientListener, wait: Bool) { self.listener = listener; self.wait = wait }
        var hasRoom: Bool { clients + listener.handshaking < QMPServer.maxClients }
    }

    public let table: QMPCommandTable
    public let events: QMPEventHub
    private var endpoints: [Endpoint] = []
    private var clients: [Client] = []
    private var loop: PollLoop?

    /// Opens every listener now, so a bad address or TLS object fails before the guest starts.
    /// `tlsObjects` holds what `tls-creds=`/`tls-authz=` name.
    public init(specs: [QMPServerSpec], table: QMPCommandTable, events: QMPEventHub,
                tlsObjects: TLSObjectRegistry = TLSObjectRegistry()) throws {
        self.table = table
        self.events = events
        do {
            for spec in specs {
                switch spec {
                case .unix(let path, let wait):
                    let listener = ClientListener(try .console(.unix(path: path)), tls: nil, role: "qmp")
                    endpoints.append(Endpoint(listener: listener, wait: wait))
                case .tcp(let host, let port, let wait, let options):
                    let tls = try options.map { try SocketTLS.resolve($0, objects: tlsObjects) }
                    let listener = ClientListener(try .console(.tcp(host: host, port: port)), tls: tls, role: "qmp")
                    endpoints.append(Endpoint(listener: listener, wait: wait))
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
        endpoints.map { $0.listener.boundPort ?? 0 }
    }

    func register(in loop: PollLoop) {
        self.loop = loop
        for endpoint in endpoints {
            endpoint.listener.register(in: loop, hasRoom: { endpoint.hasRoom }) { [unowned self] connection in
                self.adopt(connection, from: endpoint)
            }
        }
        loop.watch(fd: events.wakeReadFD) { [unowned self] _ in self.deliver(self.events.takeQueued()) }
        for client in clients { watch(client) }
    }

    /// Blocks until every listener without `nowait` has its first client (QEMU does the same).
    func waitForClients() {
        for endpoint in endpoints where endpoint.wait {
            FileIO.writeAll(2, "swiftkvm: waiting for connection on qmp \(endpoint.listener.label),server\n")
            if let connection = endpoint.listener.waitForClient() { adopt(connection, from: endpoint) }
        }
    }

    private func adopt(_ connection: SocketConnection, from endpoint: Endpoint) {
        let client = Client(connection: connection, session: QMPSession(table: table), endpoint: endpoint)
        endpoint.clients += 1
        clients.append(client)
        client.connection.send(QMPSession.line(QMPSession.greeting))
        if loop != nil { watch(client) }
    }

    private func watch(_ client: Client) {
        guard let loop else { return }
        client.token = loop.watch(fd: client.connection.fd, interest: {
            (client.connection.isOpen && !client.session.mustClose && !client.connection.isBackedUp
                && !client.session.hasPendingMessages, client.connection.wantsWrite)
        }, hasBufferedInput: { client.connection.hasBufferedInput }) { [unowned self] events in
            if events & Int16(POLLOUT) != 0 {
                client.connection.flush()
                self.runPending(for: client)
            }
            if events & Int16(POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0 && !client.connection.isBackedUp {
                self.read(from: client)
            }
            if client.session.mustClose && !client.connection.wantsWrite { client.connection.close() }
            self.dropClosedClients()
        }
    }

    private func read(from client: Client) {
        switch client.connection.read() {
        case .bytes(let bytes):
            client.session.feed(bytes)
            runPending(for: client)
        case .wouldBlock:
            break
        case .endOfFile, .failed:
            client.connection.close()
        }
    }

    /// Runs framed commands while the client keeps up with their replies.
    private func runPending(for client: Client) {
        while client.connection.isOpen && !client.connection.isBackedUp, let reply = client.session.nextReply() {
            client.connection.send(reply)
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
            client.endpoint.clients -= 1
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
