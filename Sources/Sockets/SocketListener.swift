import Glibc

/// A listening stream socket, TCP or unix: the one listener behind `-incoming`, `-qmp`,
/// `-monitor unix:` and the `-serial` socket servers.
///
/// - TCP listeners set SO_REUSEADDR, as QEMU's do: a port whose last connection is still in
///   TIME_WAIT (a migration that just finished on it) can be listened on again at once.
/// - A stale unix socket file from an earlier run is replaced.
/// - Each listener keeps one descriptor in reserve. At the process's file limit (EMFILE,
///   ENFILE) `accept` fails and leaves the connection queued, so the listener stays readable
///   and a poll loop would spin; with the reserve freed for a moment, the connection is taken
///   and then refused (closed) or, for a listener that waits for one peer it must not lose
///   (an incoming migration), kept.
public final class SocketListener {
    public let endpoint: SocketEndpoint
    public let fd: Int32
    /// The bound TCP port (differs from the endpoint's when it asked for port 0); nil for unix.
    public let boundPort: UInt16?
    private let removesPathOnClose: Bool
    private var reserve: Int32
    private var closed = false
    /// Clients refused at the file limit since the last one accepted (to report a burst once).
    public private(set) var refusalsInARow = 0

    /// What to do with a connection that arrives while the process has no descriptor free.
    public enum AtFileLimit {
        /// Take it with the reserve and hang up at once.
        case refuse
        /// Take it with the reserve and keep it (the listener accepts nothing more after it).
        case keep
    }

    public enum Accepted: Equatable {
        case client(Int32)
        /// Non-blocking listener, nobody waiting.
        case noneWaiting
        /// A client came at the file limit and was hung up on (`AtFileLimit.refuse`).
        case refusedAtFileLimit(errno: Int32)
        case failed(errno: Int32)
    }

    /// Binds and listens. `host` empty listens on every address. `nonBlocking` listeners are
    /// for poll loops; blocking ones for a thread that waits in `accept` (`shutdown` wakes it).
    public init(_ endpoint: SocketEndpoint, backlog: Int32, nonBlocking: Bool, removesPathOnClose: Bool = true) throws {
        switch endpoint {
        case .unix(let path):
            var address = try UnixAddress.make(path)
            let fd = try SocketDescriptor.open(family: AF_UNIX, type: Int32(SOCK_STREAM.rawValue), proto: 0)
            unlink(path)
            let bound = UnixAddress.withSockaddr(&address) { bind(fd, $0, $1) }
            guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
                let code = Glibc.errno
                Glibc.close(fd)
                throw SocketError.system(operation: bound == 0 ? "listen" : "bind", errno: code)
            }
            self.fd = fd
            boundPort = nil
        case .tcp(let host, let port):
            var lastError = SocketError.system(operation: "bind", errno: EADDRNOTAVAIL)
            var bound: Int32 = -1
            for candidate in try ResolvedAddress.resolve(host: host.isEmpty ? nil : host, port: String(port), passive: true) {
                let fd: Int32
                do { fd = try SocketDescriptor.open(family: candidate.family, type: candidate.type, proto: candidate.proto) } catch let error as SocketError {
                    lastError = error
                    continue
                }
                var one: Int32 = 1
                _ = setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
                let didBind = candidate.withSockaddr { bind(fd, $0, $1) } == 0
                if didBind && Glibc.listen(fd, backlog) == 0 { bound = fd; break }
                lastError = .system(operation: didBind ? "listen" : "bind", errno: Glibc.errno)
                Glibc.close(fd)
            }
            guard bound >= 0 else { throw lastError }
            fd = bound
            boundPort = SocketDescriptor.boundPort(bound) ?? port
        }
        if nonBlocking {
            let flags = fcntl(fd, F_GETFL)
            if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
        }
        self.endpoint = endpoint
        self.removesPathOnClose = removesPathOnClose
        reserve = Self.openReserve()
    }

    deinit { close() }

    /// `unix:PATH` or `tcp:HOST:PORT` with the port actually bound.
    public var label: String {
        if case .tcp(let host, _) = endpoint, let boundPort { return SocketEndpoint.tcp(host: host, port: boundPort).description }
        return endpoint.description
    }

    /// False while the process is at its file limit and the reserve could not be taken back:
    /// a poll loop should not watch the listener then, or it would wake for nothing.
    public var canAcceptAtFileLimit: Bool {
        if reserve < 0 && !closed { reserve = Self.openReserve() }
        return reserve >= 0
    }

    /// One connection, close-on-exec and (for a non-blocking listener) non-blocking.
    public func accept(atFileLimit policy: AtFileLimit) -> Accepted {
        let outcome = acceptOnce(atFileLimit: policy)
        switch outcome {
        case .client: refusalsInARow = 0
        case .refusedAtFileLimit: refusalsInARow += 1
        case .failed(let code) where code == EMFILE || code == ENFILE: refusalsInARow += 1
        case .noneWaiting, .failed: break
        }
        return outcome
    }

    private func acceptOnce(atFileLimit policy: AtFileLimit) -> Accepted {
        while true {
            let client = takeConnection()
            if client >= 0 { return .client(client) }
            let code = Glibc.errno
            switch code {
            case EINTR, ECONNABORTED:
                continue
            case EAGAIN, EWOULDBLOCK:
                return .noneWaiting
            case EMFILE, ENFILE:
                guard reserve >= 0 else { return .failed(errno: code) }
                Glibc.close(reserve)
                reserve = -1
                let taken = takeConnection()
                if taken >= 0 && policy == .keep { return .client(taken) }
                if taken >= 0 { Glibc.close(taken) }
                reserve = Self.openReserve()
                return taken >= 0 ? .refusedAtFileLimit(errno: code) : .failed(errno: code)
            default:
                return .failed(errno: code)
            }
        }
    }

    /// Blocks until a client connects (QEMU's `server` without `nowait`); nil if the listener fails.
    public func waitForClient() -> Int32? {
        while true {
            switch accept(atFileLimit: .refuse) {
            case .client(let client): return client
            case .noneWaiting, .refusedAtFileLimit:
                var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&pending, 1, isNonBlocking ? -1 : 100)
            case .failed:
                return nil
            }
        }
    }

    /// Wakes a thread blocked in `accept` (it then fails with EINVAL). Safe from any thread.
    public func shutdown() {
        _ = Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    public func close() {
        guard !closed else { return }
        closed = true
        Glibc.close(fd)
        if reserve >= 0 { Glibc.close(reserve); reserve = -1 }
        if removesPathOnClose, case .unix(let path) = endpoint { unlink(path) }
    }

    /// accept(2), then the listener's blocking mode and close-on-exec on the new socket.
    private func takeConnection() -> Int32 {
        let client = Glibc.accept(fd, nil, nil)
        guard client >= 0 else { return client }
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        if isNonBlocking {
            let flags = fcntl(client, F_GETFL)
            if flags >= 0 { _ = fcntl(client, F_SETFL, flags | O_NONBLOCK) }
        }
        return client
    }

    private var isNonBlocking: Bool { fcntl(fd, F_GETFL) & O_NONBLOCK != 0 }

    private static func openReserve() -> Int32 {
        open("/dev/null", O_RDONLY | O_CLOEXEC)
    }
}
