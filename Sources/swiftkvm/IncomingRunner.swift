import Glibc
import Machine
import Migration
import Monitor
import SystemSupport

/// The destination side: listens on the `-incoming` URI (or the one `migrate_incoming` gives
/// after `-incoming defer`), receives one migration on its own thread, and ends the process
/// with an error if the stream fails: a half-received guest never runs.
final class IncomingRunner {
    enum RunnerError: Error, CustomStringConvertible {
        case alreadyStarted
        var description: String { "an incoming migration was already started; a machine accepts one" }
    }

    private let machine: Machine
    /// Its parameters say whether a source that connects must use TLS.
    private let controller: MigrationController
    private let resumeWhenDone: Bool
    private let log: (String) -> Void
    private let fail: (Int32) -> Void
    private let lock = Mutex()
    private var started = false
    private var current: IncomingMigration?

    init(machine: Machine, controller: MigrationController, resumeWhenDone: Bool, log: @escaping (String) -> Void, fail: @escaping (Int32) -> Void) {
        self.machine = machine
        self.controller = controller
        self.resumeWhenDone = resumeWhenDone
        self.log = log
        self.fail = fail
    }

    /// Why `start` failed, worded to follow `-incoming URI: ` (the URI is said once, and the
    /// `migrate:` prefix of the monitor's messages does not apply).
    static func reason(_ error: Error) -> String {
        switch error as? MigrationError {
        case .listenFailed(_, let code)?: return "cannot listen: \(Errno.text(code))"
        case .addressNotFound(let host, let port, let reason)?: return "cannot resolve '\(host):\(port)': \(reason)"
        default: return "\(error)"
        }
    }

    /// Binds now (so a bad address is reported at once), then receives in the background.
    func start(uri: MigrationURI) throws {
        try lock.withLock {
            guard !started else { throw RunnerError.alreadyStarted }
            started = true
        }
        let incoming: IncomingMigration
        do {
            incoming = try IncomingMigration.listen(uri: uri, controller: controller)
        } catch {
            lock.withLock { started = false }
            throw error
        }
        lock.withLock { current = incoming }
        do {
            try HostThread.detach(name: "incoming") { [machine, controller, resumeWhenDone, log, fail] in
                Self.receive(incoming, into: machine, controller: controller, resume: resumeWhenDone, log: log, fail: fail)
            }
        } catch {
            lock.withLock { started = false }
            throw error
        }
    }

    private static func receive(_ incoming: IncomingMigration, into machine: Machine, controller: MigrationController,
                                resume resumeWhenDone: Bool, log: @escaping (String) -> Void, fail: (Int32) -> Void) {
        do {
            let report = try incoming.receive(into: machine, resume: resumeWhenDone, controller: controller, log: log)
            if report.wasPostcopy {
                let faults = controller.stats.postcopyFaults.map {
                    "; \($0.faults) page faults waited, median \($0.medianMicroseconds) us, p99 \($0.p99Microseconds) us"
                } ?? ""
                log("swiftkvm: incoming postcopy migration completed (\(report.passes) passes before switchover, \(report.postcopyPages) pages after\(faults))")
                return
            }
            let stopped = report.sourceState.isRunning ? "" : "; the guest stays \(report.sourceState), as on the source"
            let what = report.sharedRAM ? "guest RAM handed over as shared memory"
                : "\(report.passes) passes, \(report.normalPages) pages, \(report.zeroPages) zero"
            log("swiftkvm: incoming migration completed (\(what))\(stopped)")
        } catch where incoming.postcopyStarted {
            log("swiftkvm: incoming postcopy migration failed: \(error); the guest cannot go on without its missing pages")
            fail(1)
        } catch {
            log("swiftkvm: incoming migration failed: \(error); the guest was not started")
            fail(1)
        }
    }

    /// `migrate_recover URI`: listen for the source's `migrate -r` while postcopy is paused.
    func recoverPostcopy(uri: String) throws {
        guard let incoming = lock.withLock({ current }) else { throw MigrationError.recoverOutsidePostcopyPause }
        try incoming.recover(uri: uri)
    }

    /// `migrate_pause` on the destination.
    func pausePostcopy() throws {
        guard let incoming = lock.withLock({ current }) else { throw MigrationError.pauseOutsidePostcopy }
        try incoming.pausePostcopy()
    }
}
