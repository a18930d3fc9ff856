import Units
import Migration
import Sockets

/// Parsers for where bytes go: the serial port, the monitor and an incoming migration.
enum EndpointParsing {
    static let serialForms = "use stdio, null, file:PATH, unix:PATH[,server][,nowait], pty or tcp:HOST:PORT[,server][,nowait]"
    static let monitorForms = "use stdio, none or unix:PATH[,server][,nowait]"
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
            let (path, server, wait) = try socketOptions(rest, option: option, forms: serialForms, whole: text)
            return .unixSocket(path: path, server: server, wait: wait)
        }
        if let rest = text.strippingPrefix("tcp:") {
            let (address, server, wait) = try socketOptions(rest, option: option, forms: serialForms, whole: text)
            let (host, port) = try hostAndPort(address, option: option, whole: text)
            return .tcp(host: host, port: port, server: server, wait: wait)
        }
        throw OptionError.invalidValue(option: option, value: text, expected: serialForms)
    }

    static func monitor(_ text: String) throws -> Configuration.MonitorEndpoint {
        switch text {
        case "stdio": return .stdio
        case "none", "null": return .none
        default: break
        }
        if let rest = text.strippingPrefix("unix:") {
            let (path, server, wait) = try socketOptions(rest, option: "-monitor", forms: monitorForms, whole: text)
            return .unixSocket(path: path, server: server, wait: wait)
        }
        throw OptionError.invalidValue(option: "-monitor", value: text, expected: monitorForms)
    }

    static let qmpForms = "use unix:PATH,server[,nowait] or tcp:HOST:PORT,server[,nowait]"

    static func qmp(_ text: String) throws -> Configuration.QMPEndpoint {
        let option = "-qmp"
        if let rest = text.strippingPrefix("unix:") {
            let (path, server, wait) = try socketOptions(rest, option: option, forms: qmpForms, whole: text)
            guard server else { throw OptionError.invalidValue(option: option, value: text, expected: "only listening sockets are supported; add ,server") }
            return .unixSocket(path: path, server: server, wait: wait)
        }
        if let rest = text.strippingPrefix("tcp:") {
            let (address, server, wait) = try socketOptions(rest, option: option, forms: qmpForms, whole: text)
            guard server else { throw OptionError.invalidValue(option: option, value: text, expected: "only listening sockets are supported; add ,server") }
            let (host, port) = try hostAndPort(address, option: option, whole: text)
            return .tcp(host: host, port: port, server: server, wait: wait)
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

    /// `PATH[,server][,nowait]`, also the `server=on|off` and `wait=on|off` spellings.
    private static func socketOptions(_ text: String, option: String, forms: String, whole: String) throws -> (String, server: Bool, wait: Bool) {
        let items = PropertyList(text).items
        guard let first = items.first, first.key == nil, !first.value.isEmpty else {
            throw OptionError.invalidValue(option: option, value: whole, expected: forms)
        }
        var server = false
        var wait = true
        for item in items.dropFirst() {
            switch (item.key, item.value) {
            case (nil, "server"): server = true
            case (nil, "nowait"): wait = false
            case (nil, "wait"): wait = true
            case ("server"?, let value): server = try onOff(value, option: option, property: "server")
            case ("wait"?, let value): wait = try onOff(value, option: option, property: "wait")
            default:
                throw OptionError.unknownProperty(option: option, property: item.key ?? item.value, supported: ["server", "nowait", "wait"])
            }
        }
        return (first.value, server, wait)
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
