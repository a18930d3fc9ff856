/// A stream socket address as the command line writes it: `HOST:PORT` (TCP) or a unix path.
/// Migration URIs, `-qmp`, `-monitor` and `-serial` all name sockets this way.
public enum SocketEndpoint: Equatable, Sendable, CustomStringConvertible {
    /// An empty host listens on every address (or connects to localhost); port 0 asks the
    /// kernel for a free port when listening.
    case tcp(host: String, port: UInt16)
    case unix(path: String)

    /// `sockaddr_un` holds at most this many path bytes before its terminator.
    public static let maxUnixPathBytes = 107

    /// `tcp:HOST:PORT` or `unix:PATH`, brackets around an IPv6 host.
    public var description: String {
        switch self {
        case .tcp(let host, let port): return "tcp:" + HostPort.text(host: host, port: String(port))
        case .unix(let path): return "unix:" + path
        }
    }
}

/// `HOST:PORT`, `:PORT` (every address) or `[IPV6]:PORT`, as QEMU's inet addresses.
public enum HostPort {
    public enum SyntaxError: Error, Equatable, CustomStringConvertible {
        case missingPort
        case badPort
        case unbracketedIPv6

        /// Worded as what to do, for "invalid value ... (use ...)" messages.
        public var description: String {
            switch self {
            case .missingPort: return "give the address as HOST:PORT"
            case .badPort: return "the port must be a number from 0 to 65535"
            case .unbracketedIPv6: return "write an IPv6 address in brackets: [::1]:PORT"
            }
        }
    }

    /// Splits at the last colon; the port must be plain decimal digits.
    public static func parse(_ address: Substring) throws -> (host: String, port: UInt16) {
        guard let colon = address.lastIndex(of: ":") else { throw SyntaxError.missingPort }
        var host = String(address[..<colon])
        let portText = address[address.index(after: colon)...]
        guard !portText.isEmpty, portText.allSatisfy({ $0.isASCII && $0.isNumber }), let port = UInt16(portText) else {
            throw SyntaxError.badPort
        }
        let bracketed = host.hasPrefix("[") && host.hasSuffix("]") && host.count >= 2
        if bracketed { host = String(host.dropFirst().dropLast()) }
        guard !host.contains(":") || bracketed else { throw SyntaxError.unbracketedIPv6 }
        guard !host.contains("[") && !host.contains("]") else { throw SyntaxError.unbracketedIPv6 }
        return (host, port)
    }

    public static func parse(_ address: String) throws -> (host: String, port: UInt16) {
        try parse(address[...])
    }

    /// `HOST:PORT`, the host in brackets when it is an IPv6 address.
    /// True when `host` names this machine only (`localhost`, 127.0.0.0/8, `::1`): nobody
    /// else can reach a socket there. An empty host, `0` and `0.0.0.0` are every address.
    public static func isLoopback(_ host: String) -> Bool {
        let name = host.lowercased()
        if name == "localhost" || name.hasSuffix(".localhost") || name == "::1" { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    public static func text(host: String, port: String) -> String {
        (host.contains(":") ? "[\(host)]" : host) + ":" + port
    }
}
