import TLS
import Migration
import Monitor

/// Everything the command line asks for, as plain values. Parsing does no I/O; `main` acts on it.
struct Configuration: Equatable {
    static let mebibyte: UInt64 = 1 << 20
    static let defaultMemorySize: UInt64 = 128 * mebibyte
    static let minimumMemorySize: UInt64 = 2 * mebibyte
    static let maximumMemorySize: UInt64 = 64 << 30

    enum Action: Equatable {
        case run
        case showHelp
        case showVersion
    }

    /// Where the guest's serial port goes (QEMU's `-serial` chardev syntax).
    enum SerialBackend: Equatable {
        case stdio
        case null
        case file(path: String)
        case unixSocket(path: String, server: Bool, wait: Bool)
        case pty
        case tcp(host: String, port: UInt16, server: Bool, wait: Bool)
    }

    /// Where the human monitor listens. `tls`: `tls-creds=`/`tls-authz=` (TCP only).
    enum MonitorEndpoint: Equatable {
        case stdio
        case none
        case unixSocket(path: String, server: Bool, wait: Bool)
        case tcp(host: String, port: UInt16, server: Bool, wait: Bool, tls: SocketTLSOptions? = nil)
    }

    /// Where a QMP server listens (`-qmp`); only listening sockets. `tls` as for the monitor.
    enum QMPEndpoint: Equatable {
        case unixSocket(path: String, server: Bool, wait: Bool)
        case tcp(host: String, port: UInt16, server: Bool, wait: Bool, tls: SocketTLSOptions? = nil)
    }

    /// Where an incoming migration comes from; `deferred` waits for `migrate_incoming`.
    enum IncomingMigration: Equatable {
        /// Parsed once, by MigrationURI, when the option is read.
        case uri(MigrationURI)
        case deferred

        static func tcp(host: String, port: UInt16) -> IncomingMigration { .uri(.tcp(host: host, port: String(port))) }
        static func unixSocket(path: String) -> IncomingMigration { .uri(.unix(path: path)) }
        /// A snapshot written by `migrate file:PATH`.
        static func file(path: String) -> IncomingMigration { .uri(.file(path: path)) }
        static func exec(command: String) -> IncomingMigration { .uri(.exec(command: command)) }
        static var stdio: IncomingMigration { .uri(.stdio) }
    }

    struct Drive: Equatable {
        var file: String
        /// Only raw images are supported; kept so messages and `info block` can say so.
        var format = "raw"
    }

    struct DebugExitDevice: Equatable {
        var iobase: UInt16 = 0xf4
        var iosize: UInt16 = 0x04
    }

    var action = Action.run
    /// Guest RAM in bytes, rounded up to whole 4 KiB pages.
    var memorySize = defaultMemorySize
    var kernel: String?
    var append: String?
    var initrd: String?
    /// In command-line order; `-drive` accumulates rather than replacing.
    var drives: [Drive] = []
    var debugExit: DebugExitDevice?
    var startPaused = false
    /// nil when not given: `main` applies QEMU's default (stdio with -nographic).
    var serial: SerialBackend?
    /// nil when not given: `main` applies QEMU's default.
    var monitor: MonitorEndpoint?
    var nographic = false
    /// In command-line order; `-qmp` is repeatable.
    var qmp: [QMPEndpoint] = []
    /// `-daemonize`: detach from the terminal once everything is set up.
    var daemonize = false
    /// `-pidfile FILE`: write the process id (after daemonizing) and remove it at exit.
    var pidFile: String?
    var name: String?
    var cpuCount = 1
    /// Whether -m was given (a memory backend's size stands in for it otherwise).
    var memorySizeGiven = false
    /// `-object memory-backend-memfd,...`, in order.
    var memoryBackends: [MemoryBackend] = []
    /// `-machine memory-backend=ID`.
    var machineMemoryBackend: String?
    /// `-mem-prealloc`.
    var preallocateMemory = false

    struct MemoryBackend: Equatable {
        var id: String
        var size: UInt64
    }
    var incoming: IncomingMigration?
    /// The `-incoming` argument, for messages.
    var incomingURI: String? {
        switch incoming {
        case .uri(let uri)?: return uri.description
        case .deferred?: return "defer"
        case nil: return nil
        }
    }
    /// `-object`s in command-line order (TLS credentials and authz, for migration).
    var objects: [TLSObject] = []
    /// Things worth telling the user that do not stop the run (QEMU prints these as warnings).
    var warnings: [String] = []
}
