/// Where a migration stream goes or comes from, in QEMU's URI syntax.
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

    public static func parse(_ text: String) throws -> MigrationURI {
        if text == "stdio" { return .stdio }
        if text.hasPrefix("exec:") {
            let command = String(text.dropFirst("exec:".count))
            guard !command.allSatisfy({ $0 == " " || $0 == "\t" }) else { throw MigrationError.invalidURI(text) }
            return .exec(command: command)
        }
        if text.hasPrefix("file:") {
            let path = String(text.dropFirst("file:".count))
            guard !path.isEmpty else { throw MigrationError.invalidURI(text) }
            return .file(path: path)
        }
        if text.hasPrefix("unix:") {
            let path = String(text.dropFirst("unix:".count))
            // sockaddr_un holds at most 107 path bytes and a terminator.
            guard !path.isEmpty, path.utf8.count < 108 else { throw MigrationError.invalidURI(text) }
            return .unix(path: path)
        }
        guard text.hasPrefix("tcp:") else { throw MigrationError.invalidURI(text) }
        let rest = text.dropFirst("tcp:".count)
        guard let colon = rest.lastIndex(of: ":") else { throw MigrationError.invalidURI(text) }
        var host = String(rest[rest.startIndex..<colon])
        let port = String(rest[rest.index(after: colon)...])
        if host.hasPrefix("[") && host.hasSuffix("]") && host.count >= 2 {
            host = String(host.dropFirst().dropLast())
        }
        guard let number = Int(port), (0...65535).contains(number), !port.hasPrefix("+"),
              !host.contains("[") && !host.contains("]") else {
            throw MigrationError.invalidURI(text)
        }
        return .tcp(host: host, port: String(number))
    }

    /// False for snapshot files: no destination reads the stream as it is written, so no
    /// acknowledgement or refusal can come back.
    var hasReturnPath: Bool {
        if case .file = self { return false }
        return true
    }

    /// True when a listener on this URI accepts connections on every local address.
    var listensOnAllAddresses: Bool {
        if case .tcp(let host, _) = self { return host.isEmpty || host == "0" || host == "0.0.0.0" || host == "::" }
        return false
    }

    public var description: String {
        switch self {
        case .tcp(let host, let port):
            return host.contains(":") ? "tcp:[\(host)]:\(port)" : "tcp:\(host):\(port)"
        case .unix(let path):
            return "unix:\(path)"
        case .exec(let command):
            return "exec:\(command)"
        case .stdio:
            return "stdio"
        case .file(let path):
            return "file:\(path)"
        }
    }
}
