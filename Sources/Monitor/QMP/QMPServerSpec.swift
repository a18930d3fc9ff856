/// Where a QMP server listens (`-qmp`), in QEMU's syntax.
public enum QMPServerSpec: Equatable, Sendable {
    case unix(path: String, wait: Bool)
    /// An empty host listens on every address. `tls`: QEMU's `tls-creds=`/`tls-authz=`.
    case tcp(host: String, port: UInt16, wait: Bool, tls: SocketTLSOptions? = nil)

    public var wait: Bool {
        switch self {
        case .unix(_, let wait), .tcp(_, _, let wait, _): return wait
        }
    }
}
