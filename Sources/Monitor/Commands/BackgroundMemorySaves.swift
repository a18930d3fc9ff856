import Glibc
import SystemSupport

/// `pmemsave` and `memsave` on a thread of their own, so that writing gigabytes of guest
/// memory (or into a FIFO nobody reads yet) never stalls the poll loop that serves QMP, the
/// other monitors and the guest console. One save runs at a time.
///
/// Where the caller may wait (a piped script, `migrate`'s rule) the command still returns
/// only when the file is complete, so the script's next line sees it; everywhere else (the
/// interactive terminal, `-monitor unix:` clients, QMP's `human-monitor-command`) it returns
/// at once, the file appears under its name only when complete (ReplacementFile), and an
/// error is printed as a line of its own (`pmemsave: ...`) when the save fails.
public enum BackgroundMemorySaves {
    public enum SaveError: Error, CustomStringConvertible {
        case alreadyRunning
        public var description: String { "a memory save is already in progress; try again when it has finished" }
    }

    /// Replaces the interpreter's `pmemsave` and `memsave` with background versions.
    public static func register(in interpreter: CommandInterpreter, output: AsyncOutput, waitWithoutDetach: Bool) {
        let jobs = Jobs()
        for name in ["pmemsave", "memsave"] {
            guard var command = interpreter.command(named: name) else { continue }
            let physical = name == "pmemsave"
            command.handler = { args, context in
                let address = try args.integer("addr"), size = try args.integer("size"), path = try args.string("file")
                let backend = context.backend
                let cpu = context.interpreter.currentCPU
                let read: (UInt64, Int) throws -> [UInt8] = { at, count in
                    physical ? try backend.readPhysical(at, count: count) : try backend.readVirtual(at, count: count, cpu: cpu)
                }
                let save = { try GuestMemorySaver.save(address: address, size: size, to: path, read: read) }
                if waitWithoutDetach && context.mayWait {
                    try jobs.runWaiting(save)
                } else {
                    try jobs.start(save) { error in output.printAsync("\(name): \(error)\n") }
                }
                return ""
            }
            interpreter.register(command)
        }
    }

    private final class Jobs: @unchecked Sendable {
        private let lock = Mutex()
        private var running = false

        private func claim() throws {
            try lock.withLock {
                guard !running else { throw SaveError.alreadyRunning }
                running = true
            }
        }

        private func release() { lock.withLock { running = false } }

        func runWaiting(_ save: () throws -> Void) throws {
            try claim()
            defer { release() }
            try save()
        }

        func start(_ save: @escaping () throws -> Void, onFailure: @escaping (Error) -> Void) throws {
            try claim()
            do {
                try HostThread.detach(name: "memory-save") { [self] in
                    defer { release() }
                    do { try save() } catch { onFailure(error) }
                }
            } catch {
                release()
                throw error
            }
        }
    }
}
