import Units
import Migration
import Monitor
import Sockets

/// Parsers for where bytes go: the serial port, the monitor and an incoming migration.
enum EndpointParsing {
    static let serialForms = "use stdio, null, file:PATH, unix:PATH[,server][,nowait], pty or tcp:HOST:PORT[,server][,nowait]"
    static let monitorForms = "use stdio, none, unix:PATH[,server][,nowait] or tcp:HOST:PORT,server[,nowait][,tls-creds=ID][,tls-authz=ID]"
    static let incomingForms = "use tcp:HOST:PORT, unix:PATH, file:PATH, exec:COMMAND, stdio or defer"

    static func serial(_ text: String) throws -> Configuration.SerialBackend {
        let option = "-serial"
        switch text {
        case "stdio": return .stdio
        case "null", "none": return .null
        case "pty": return .pty
        default: break
        }
        if let path = text.strippingPrefix("file:"), !path.isEmpty {
            return .file(path: path)
        }
        if let rest = text.strippingPrefix("unix:") {
            let socket = try socketOptions(rest, option: option, forms: serialForms, whole: text)
            return .unixSocket(path: socket.target, server: socket.server, wait: socket.wait)
        }
        if let rest = text.strippingPrefix("tcp:") {
            let socket = try socketOptions(rest, option: option, forms: serialForms, whole: text)
            let (host, port) = try hostAndPort(socket.target, option: option, whole: text)
            return .tcp(host: host, port: port, server: socket.server, wait: socket.wait)
        }
        throw OptionError.invalidValue(option: option, value: text, expected: serialForms)
    }

    static func monitor(_ text: String) throws -> Configuration.MonitorEndpoint {
        let option = "-monitor"
        switch text {
        case "stdio": return .stdio
        case "none", "null": return .none
        default: break
        }
        if let rest = text.strippingPrefix("unix:") {
            let socket = try socketOptions(rest, option: option, forms: monitorForms, whole: text, allowsTLS: true)
            try refuseTLS(socket, option: option, whole: text)
            return .unixSocket(path: socket.target, server: socket.server, wait: socket.wait)
        }
        if let rest = text.strippingPrefix("tcp:") {
            let socket = try listeningSocket(rest, option: option, forms: monitorForms, whole: text)
            let (host, port) = try hostAndPort(socket.target, option: option, whole: text)
            return .tcp(host: host, port: port, server: true, wait: socket.wait, tls: socket.tls)
        }
        throw OptionError.invalidValue(option: option, value: text, expected: monitorForms)
    }

    static let qmpForms = "use unix:PATH,server[,nowait] or tcp:HOST:PORT,server[,nowait][,tls-creds=ID][,tls-authz=ID]"

    static func qmp(_ text: String) throws -> Configuration.QMPEndpoint {
        let option = "-qmp"
        if let rest = text.strippingPrefix("unix:") {
            let socket = try listeningSocket(rest, option: option, forms: qmpForms, whole: text)
            try refuseTLS(socket, option: option, whole: text)
            return .unixSocket(path: socket.target, server: true, wait: socket.wait)
        }
        if let rest = text.strippingPrefix("tcp:") {
            let socket = try listeningSocket(rest, option: option, forms: qmpForms, whole: text)
            let (host, port) = try hostAndPort(socket.target, option: option, whole: text)
            return .tcp(host: host, port: port, server: true, wait: socket.wait, tls: socket.tls)
        }
        throw OptionError.invalidValue(option: option, value: text, expected: qmpForms)
    }

    /// `-incoming`: `defer`, or a migration URI parsed once, here, by MigrationURI itself.
    static func incoming(_ text: String) throws -> Configuration.IncomingMigration {
        if text == "defer" { return .deferred }
        do {
            return .uri(try MigrationURI.parseExplaining(text))
        } catch MigrationURI.SyntaxError.address(let problem) {
            throw OptionError.invalidValue(option: "-incoming", value: text, expected: problem.description)
        } catch {
            throw OptionError.invalidValue(option: "-incoming", value: text, expected: incomingForms)
        }
    }

    /// A socket chardev's options: `PATH[,server][,nowait]`, also the `server=on|off` and
    /// `wait=on|off` spellings, and (where `allowsTLS`) QEMU's `tls-creds=ID` and `tls-authz=ID`.
    struct SocketOptions {
        var target: String
        var server = false
        var wait = true
        var tls: SocketTLSOptions?
    }

    private static func socketOptions(_ text: String, option: String, forms: String, whole: String,
                                      allowsTLS: Bool = false) throws -> SocketOptions {
        let items = PropertyList(text).items
        guard let first = items.first, first.key == nil, !first.value.isEmpty else {
            throw OptionError.invalidValue(option: option, value: whole, expected: forms)
        }
        var options = SocketOptions(target: first.value)
        var credentials: String?
        var authorization: String?
        for item in items.dropFirst() {
            switch (item.key, item.value) {
            case (nil, "server"): options.server = true
            case (nil, "nowait"): options.wait = false
            case (nil, "wait"): options.wait = true
            case ("server"?, let value): options.server = try onOff(value, option: option, property: "server")
            case ("wait"?, let value): options.wait = try onOff(value, option: option, property: "wait")
            case ("tls-creds"?, let value) where allowsTLS: credentials = try objectID(value, option: option, property: "tls-creds")
            case ("tls-authz"?, let value) where allowsTLS: authorization = try objectID(value, option: option, property: "tls-authz")
            default:
                let supported = ["server", "nowait", "wait"] + (allowsTLS ? ["tls-creds", "tls-authz"] : [])
                throw OptionError.unknownProperty(option: option, property: item.key ?? item.value, supported: supported)
            }
        }
        if let credentials {
            options.tls = SocketTLSOptions(credentials: credentials, authorization: authorization)
        } else if authorization != nil {
            // QEMU: "'tls_authz' option requires 'tls_creds' option".
            throw OptionError.invalidValue(option: option, value: whole, expected: "tls-authz requires tls-creds")
        }
        return options
    }

    /// QMP and the monitor serve clients; connecting out (without `server`) is not supported.
    private static func listeningSocket(_ text: String, option: String, forms: String, whole: String) throws -> SocketOptions {
        let socket = try socketOptions(text, option: option, forms: forms, whole: whole, allowsTLS: true)
        guard socket.server else {
            throw OptionError.invalidValue(option: option, value: whole, expected: "only listening sockets are supported; add ,server")
        }
        return socket
    }

    /// QEMU's words: TLS is for TCP sockets (a unix socket's file permissions decide who connects).
    private static func refuseTLS(_ socket: SocketOptions, option: String, whole: String) throws {
        guard socket.tls == nil else {
            throw OptionError.invalidValue(option: option, value: whole, expected: "TLS can only be used over TCP socket")
        }
    }

    private static func objectID(_ value: String, option: String, property: String) throws -> String {
        guard !value.isEmpty else {
            throw OptionError.invalidValue(option: option, value: "\(property)=", expected: "give the id of an -object")
        }
        return value
    }

    private static func onOff(_ value: String, option: String, property: String) throws -> Bool {
        switch value {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: throw OptionError.invalidValue(option: option, value: "\(property)=\(value)", expected: "use on or off")
        }
    }

    /// `HOST:PORT`, `:PORT` (every interface) or `[IPV6]:PORT`. Port 0 asks for any free port.
    static func hostAndPort(_ address: String, option: String, whole: String) throws -> (String, UInt16) {
        do {
            return try HostPort.parse(address)
        } catch let problem as HostPort.SyntaxError {
            throw OptionError.invalidValue(option: option, value: whole, expected: problem.description)
        }
    }
}

extension Configuration {
    /// With `-incoming stdio` the process's stdin and stdout carry the migration stream and
    /// its reply, so nothing else may use them: the monitor defaults to none and the serial
    /// port to null (give -monitor unix:PATH,server or -serial file:PATH to keep them), and
    /// asking for either on stdio is an error.
    func applyingIncomingStdioRules() throws -> Configuration {
        guard incoming == .stdio else { return self }
        let expected = "with -incoming stdio, stdin and stdout carry the migration; use none, file:PATH or unix:PATH"
        if monitor == .stdio { throw OptionError.invalidValue(option: "-monitor", value: "stdio", expected: expected) }
        if serial == .stdio { throw OptionError.invalidValue(option: "-serial", value: "stdio", expected: expected) }
        if nographic { throw OptionError.invalidValue(option: "-nographic", value: "", expected: expected) }
        // Daemonizing points stdin and stdout at /dev/null, which would cut the stream.
        if daemonize { throw OptionError.invalidValue(option: "-daemonize", value: "", expected: expected) }
        var adjusted = self
        if adjusted.monitor == nil { adjusted.monitor = MonitorEndpoint.none }
        if adjusted.serial == nil { adjusted.serial = .null }
        return adjusted
    }
}

fileprivate extension String {
    func strippingPrefix(_ prefix: String) -> String? {
        hasPrefix(prefix) ? String(dropFirst(prefix.count)) : nil
    }
}
