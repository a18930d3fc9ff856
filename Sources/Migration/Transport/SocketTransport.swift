import Glibc
import Sockets
import SystemSupport

/// What TCPTransport and UnixTransport share: both are a `SocketEndpoint` with the same
/// connect, listen-and-accept-one and acknowledgement.
protocol SocketTransport: MigrationTransport {
    var uri: MigrationURI { get }
    /// Where the source connects.
    var connectEndpoint: SocketEndpoint { get }
    /// What the destination binds.
    var listenEndpoint: SocketEndpoint { get }
}

extension SocketTransport {
    func connect() throws -> OutgoingLink {
        do {
            let fd = try SocketConnector.connect(connectEndpoint, timeoutSeconds: TransportLimits.connectTimeoutSeconds)
            return AcknowledgedLink(stream: MigrationStream(fd: fd))
        } catch let error as SocketError {
            throw MigrationError(error, connectingTo: uri)
        }
    }

    func listen() throws -> IncomingEndpoint {
        do {
            // Backlog 1: a migration accepts one connection; the listener closes after it.
            let listener = try SocketListener(listenEndpoint, backlog: 1, nonBlocking: false, removesPathOnClose: false)
            return SingleConnectionListener(listener: listener)
        } catch let error as SocketError {
            throw MigrationError(error, listeningOn: uri)
        }
    }
}

/// Accepts exactly one connection and closes the listener, so later connections are
/// refused. At the file limit the listener's reserve descriptor takes the connection: an
/// exhausted process still receives its migration.
final class SingleConnectionListener: IncomingEndpoint {
    private let lock = Mutex()
    private var listener: SocketListener?
    private var cancelled = false
    let boundPort: Int?

    init(listener: SocketListener) {
        self.listener = listener
        boundPort = listener.boundPort.map(Int.init)
    }

    deinit { listener?.close() }

    func accept() throws -> MigrationStream {
        guard let listener = lock.withLock({ cancelled ? nil : self.listener }) else { throw MigrationError.cancelled }
        defer { lock.withLock { self.listener?.close(); self.listener = nil } }
        while true {
            switch listener.accept(atFileLimit: .keep) {
            case .client(let fd):
                return MigrationStream(fd: fd)
            case .noneWaiting, .refusedAtFileLimit:
                continue
            case .failed(let code) where (code == EMFILE || code == ENFILE) && !lock.withLock({ cancelled }):
                // Not even the reserve is left (another thread took its slot): the source
                // waits in the backlog until a descriptor is free.
                usleep(100_000)
            case .failed(let code):
                if code == EINVAL || lock.withLock({ cancelled }) { throw MigrationError.cancelled }
                throw MigrationError.acceptFailed(errno: code)
            }
        }
    }

    func cancel() {
        lock.withLock {
            cancelled = true
            listener?.shutdown()
        }
    }
}

extension MigrationError {
    init(_ error: SocketError, connectingTo uri: MigrationURI) {
        switch error {
        case .unresolved(let host, let port, let reason): self = .addressNotFound(host: host, port: port, reason: reason)
        case .pathTooLong: self = .invalidURI(uri.description)
        case .system(_, let code): self = .connectFailed(uri: uri.description, errno: code)
        }
    }

    init(_ error: SocketError, listeningOn uri: MigrationURI) {
        switch error {
        case .unresolved(let host, let port, let reason): self = .addressNotFound(host: host, port: port, reason: reason)
        case .pathTooLong: self = .invalidURI(uri.description)
        case .system(_, let code): self = .listenFailed(uri: uri.description, errno: code)
        }
    }
}
