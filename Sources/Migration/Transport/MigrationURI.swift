import Sockets

/// Where a migration stream goes or comes from, in QEMU's URI syntax. Parsed once, where the
/// text enters (the command line, `migrate`, `migrate_incoming`, QMP); everything after
/// works on this value. `transport` says how each scheme travels (MigrationTransport.swift).
public enum MigrationURI: Equatable, Sendable, CustomStringConvertible {
    /// `tcp:HOST:PORT`. An empty host, `0` or `0.0.0.0` listens on every address; IPv6 hosts
    /// are written in brackets (`tcp:[::1]:4444`).
    case tcp(host: String, port: String)
    /// `unix:PATH`.
    case unix(path: String)
    /// `exec:COMMAND`: a `/bin/sh -c COMMAND` child carries the stream; its stdin receives
    /// what we send and its stdout is what we read (an outgoing stream, or `-incoming exec:`).
    case exec(command: String)
    /// `stdio` (`-incoming` only): the stream arrives on stdin, the reply goes to stdout.
    case stdio
    /// `file:PATH`: a snapshot. `migrate` writes the stream into the file, `-incoming` reads it
    /// back; there is no destination to answer, so nothing travels back.
    case file(path: String)

    /// What is wrong with a URI, for messages that can say more than "invalid".
    public enum SyntaxError: Error, Equatable {
        case unknownScheme
        case emptyTarget
        case address(HostPort.SyntaxError)
    }

    public static func parse(_ text: String) throws -> MigrationURI {
        do { return try parseExplaining(text) } catch { throw MigrationError.invalidURI(text) }
    }

    /// As `parse`, throwing a `SyntaxError` that says what is wrong.
    public static func parseExplaining(_ text: String) throws -> MigrationURI {
        if text == "stdio" { return .stdio }
        if let command = text.dropping(prefix: "exec:") {
            guard !command.allSatisfy({ $0 == " " || $0 == "\t" }) else { throw SyntaxError.emptyTarget }
            return .exec(command: command)
        }
        if let path = text.dropping(prefix: "file:") {
            guard !path.isEmpty else { throw SyntaxError.emptyTarget }
            return .file(path: path)
        }
        if let path = text.dropping(prefix: "unix:") {
            guard !path.isEmpty, path.utf8.count <= SocketEndpoint.maxUnixPathBytes else { throw SyntaxError.emptyTarget }
            return .unix(path: path)
        }
        guard let address = text.dropping(prefix: "tcp:") else { throw SyntaxError.unknownScheme }
        do {
            let (host, port) = try HostPort.parse(address)
            return .tcp(host: host, port: String(port))
        } catch let problem as HostPort.SyntaxError {
            throw SyntaxError.address(problem)
        }
    }

    /// False for snapshot files: no destination reads the stream as it is written, so no
    /// acknowledgement or refusal can come back.
    var hasReturnPath: Bool { transport.hasReturnPath }

    /// True when a listener on this URI accepts connections on every local address.
    var listensOnAllAddresses: Bool {
        if case .tcp(let host, _) = self { return host.isEmpty || host == "0" || host == "0.0.0.0" || host == "::" }
        return false
    }

    /// `tcp:`, `exec:`..., for messages about the kind of stream.
    var schemeName: String {
        switch self {
        case .tcp: return "tcp:"
        case .unix: return "unix:"
        case .exec: return "exec:"
        case .stdio: return "stdio"
        case .file: return "file:"
        }
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port): return "tcp:" + HostPort.text(host: host, port: port)
        case .unix(let path): return "unix:\(path)"
        case .exec(let command): return "exec:\(command)"
        case .stdio: return "stdio"
        case .file(let path): return "file:\(path)"
        }
    }
}

private extension String {
    func dropping(prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
