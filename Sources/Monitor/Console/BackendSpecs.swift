/// Where the guest's serial port goes (`-serial`), in QEMU's syntax; the command line parses
/// the option (Sources/swiftkvm/Options/EndpointParsing.swift).
public enum SerialBackendSpec: Equatable, Sendable {
    /// The process's terminal; shared with the monitor when the monitor is on stdio too.
    case stdio
    /// Output dropped, no input.
    case null
    /// Output written to a file, truncated at open.
    case file(path: String)
    /// A listening unix socket, one client at a time. `wait`: the guest starts only after the
    /// first client connected (QEMU's `server` without `nowait`).
    case unixServer(path: String, wait: Bool)
    /// A new pseudo-terminal; its `/dev/pts/N` is printed at start and shown by `info chardev`.
    case pty
    /// A listening TCP socket, one client at a time; an empty host listens on every address.
    case tcpServer(host: String, port: UInt16, wait: Bool)
}

/// Where the human monitor goes (`-monitor`).
public enum MonitorBackendSpec: Equatable, Sendable {
    case stdio
    case none
    /// Each connected client gets a `(monitor) ` prompt and a plain line protocol.
    case unixServer(path: String, wait: Bool)
    /// The same on TCP; an empty host listens on every address. `tls`: QEMU's
    /// `tls-creds=`/`tls-authz=`.
    case tcpServer(host: String, port: UInt16, wait: Bool, tls: SocketTLSOptions? = nil)

    /// The guest starts only after the first client connected (`server` without `nowait`).
    var waitsForClient: Bool {
        switch self {
        case .unixServer(_, let wait), .tcpServer(_, _, let wait, _): return wait
        case .stdio, .none: return false
        }
    }
}
