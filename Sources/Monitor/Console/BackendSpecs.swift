/// Where the guest's serial port goes (`-serial`), in QEMU's syntax.
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

    /// Parses `stdio`, `null`, `none`, `file:PATH`, `unix:PATH,server[,nowait]`.
    public init(parsing text: String) throws {
        switch text {
        case "stdio": self = .stdio
        case "null", "none": self = .null
        default:
            if text.hasPrefix("file:"), text.count > 5 {
                self = .file(path: String(text.dropFirst(5)))
            } else if text.hasPrefix("unix:") {
                let (path, wait) = try parseUnixServer(text, option: "-serial")
                self = .unixServer(path: path, wait: wait)
            } else {
                throw BackendSpecError.unsupported(option: "-serial", value: text,
                                                   accepted: "stdio, null, file:PATH, unix:PATH,server[,nowait]")
            }
        }
    }
}

/// Where the human monitor goes (`-monitor`).
public enum MonitorBackendSpec: Equatable, Sendable {
    case stdio
    case none
    /// Each connected client gets a `(monitor) ` prompt and a plain line protocol.
    case unixServer(path: String, wait: Bool)

    /// Parses `stdio`, `none`, `unix:PATH,server[,nowait]`.
    public init(parsing text: String) throws {
        switch text {
        case "stdio": self = .stdio
        case "none", "null": self = .none
        default:
            guard text.hasPrefix("unix:") else {
                throw BackendSpecError.unsupported(option: "-monitor", value: text,
                                                   accepted: "stdio, none, unix:PATH,server[,nowait]")
            }
            let (path, wait) = try parseUnixServer(text, option: "-monitor")
            self = .unixServer(path: path, wait: wait)
        }
    }
}

public enum BackendSpecError: Error, Equatable, CustomStringConvertible {
    case unsupported(option: String, value: String, accepted: String)
    case notAServer(option: String, value: String)
    case unknownSocketOption(option: String, value: String, socketOption: String)

    public var description: String {
        switch self {
        case .unsupported(let option, let value, let accepted):
            return "\(option) '\(value)' is not supported; use one of: \(accepted)"
        case .notAServer(let option, let value):
            return "\(option) '\(value)': only listening sockets are supported; add ',server' (and ',nowait' to start without a client)"
        case .unknownSocketOption(let option, let value, let socketOption):
            return "\(option) '\(value)': unknown socket option '\(socketOption)'; accepted: server, nowait, server=on, wait=off"
        }
    }
}

/// `unix:PATH,server[,nowait]`, also QEMU's newer `server=on,wait=off` spelling.
private func parseUnixServer(_ text: String, option: String) throws -> (path: String, wait: Bool) {
    let parts = text.dropFirst(5).split(separator: ",", omittingEmptySubsequences: false).map(String.init)
    guard let path = parts.first, !path.isEmpty else {
        throw BackendSpecError.unsupported(option: option, value: text, accepted: "unix:PATH,server[,nowait]")
    }
    var server = false
    var wait = true
    for socketOption in parts.dropFirst() {
        switch socketOption {
        case "server", "server=on": server = true
        case "nowait", "wait=off": wait = false
        case "wait", "wait=on": wait = true
        default: throw BackendSpecError.unknownSocketOption(option: option, value: text, socketOption: socketOption)
        }
    }
    guard server else { throw BackendSpecError.notAServer(option: option, value: text) }
    return (path, wait)
}
