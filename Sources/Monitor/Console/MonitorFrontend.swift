import Glibc
import Machine
import Sockets
import SystemSupport
import TLS

/// The monitor and the guest console's host side, wired to the terminal, files and sockets.
///
/// `run()` owns the thread that calls it (the main thread, by design): one poll loop serves
/// stdin, the guest's output pipe, the sockets and the async-output wakeups. vCPU and
/// migration threads talk to it only through `asyncOutput` and `requestExit(status:)`.
///
/// How stdin is used:
/// - a terminal, `-monitor stdio`: the monitor with readline; with `-serial stdio` too, the
///   guest console shares the terminal (Ctrl-a c / x / h, as QEMU's `-nographic`);
/// - a terminal, `-serial stdio` only: raw keys to the guest;
/// - not a terminal, `-monitor stdio`: a command script (see `ScriptRunner`); its end does not
///   end the process, `quit` does;
/// - not a terminal, `-serial stdio` only: bytes to the guest.
public final class MonitorFrontend {
    public static let prompt = "(monitor) "

    /// Where other threads print (migration progress and the like). Thread-safe.
    public var asyncOutput: AsyncOutput { queue }
    /// Asked a few times a second for a transient line to show above the prompt (migration
    /// progress); used only by an interactive terminal. Called on the loop's thread.
    public var liveStatus: (() -> LiveStatus)?
    /// Lines of a piped script that failed so far.
    public var failedLines: Int { script?.failedLines ?? 0 }

    private let execute: (String) -> CommandOutcome
    private let complete: ReadlineEditor.Completer
    private let console: GuestConsole?
    private let serialSpec: SerialBackendSpec
    private let monitorSpec: MonitorBackendSpec
    private let startInMonitor: Bool
    private let historyPath: String?
    private let stdinFD: Int32

    private let queue: AsyncOutputQueue
    private let loop = PollLoop()
    private let guestInput: GuestInputQueue
    private let serialBackend: SerialBackend?
    private var monitorServer: MonitorSocketServer?
    private var terminal: TerminalSession?
    private var script: ScriptRunner?
    private var stdinToken: PollLoop.Token?
    private var qmpServer: QMPServer?
    /// Stdout when it is not a terminal and the guest console or the monitor uses it.
    private var stdout: StdoutQueue?

    private let exitLock = Mutex()
    private var requestedExit: Int32?

    /// Opens files and listening sockets now, so their errors surface before the guest starts.
    public convenience init(interpreter: CommandInterpreter, console: GuestConsole?,
                            serial: SerialBackendSpec, monitor: MonitorBackendSpec,
                            tlsObjects: TLSObjectRegistry = TLSObjectRegistry(),
                            startInMonitor: Bool = false,
                            historyPath: String? = MonitorFrontend.defaultHistoryPath()) throws {
        try self.init(execute: { interpreter.execute($0) },
                      executeForSocket: { interpreter.execute($0, mayWait: false) },
                      complete: { interpreter.completions(line: $0, wordStart: $1, word: $2) },
                      console: console, serial: serial, monitor: monitor, tlsObjects: tlsObjects,
                      startInMonitor: startInMonitor, historyPath: historyPath)
        interpreter.registerInfo(InfoCommand(name: "chardev", help: "show the character devices") { [unowned self] _, _ in
            self.chardevInfo()
        })
    }

    /// The same with the interpreter given as functions (tests, other interpreters).
    /// `executeForSocket` serves `-monitor unix:`/`tcp:` clients (default: `execute`); it must
    /// not wait for long-running work, since the loop it blocks serves everyone. `tlsObjects`
    /// holds what a `-monitor tcp:` server's `tls-creds=`/`tls-authz=` name.
    public init(execute: @escaping (String) -> CommandOutcome,
                executeForSocket: ((String) -> CommandOutcome)? = nil,
                complete: @escaping (_ line: String, _ wordStart: Int, _ word: String) -> [String]?,
                console: GuestConsole?, serial: SerialBackendSpec, monitor: MonitorBackendSpec,
                tlsObjects: TLSObjectRegistry = TLSObjectRegistry(),
                startInMonitor: Bool = false, historyPath: String? = MonitorFrontend.defaultHistoryPath(),
                stdinFD: Int32 = 0) throws {
        self.execute = execute
        self.complete = complete
        self.console = console
        self.serialSpec = serial
        self.monitorSpec = monitor
        self.startInMonitor = startInMonitor
        self.historyPath = historyPath
        self.stdinFD = stdinFD
        self.queue = try AsyncOutputQueue()
        self.guestInput = GuestInputQueue(console: console)
        switch serial {
        case .stdio: serialBackend = nil
        case .null: serialBackend = NullSerialBackend()
        case .file(let path): serialBackend = try FileSerialBackend(path: path)
        case .unixServer(let path, _): serialBackend = try SocketSerialBackend(path: path)
        case .pty:
            let pty = try PtySerialBackend()
            serialBackend = pty
            // QEMU's message, which scripts look for to find the terminal.
            FileIO.writeAll(2, "char device redirected to \(pty.slavePath) (label serial0)\n")
        case .tcpServer(let host, let port, _):
            serialBackend = SocketSerialBackend(listener: try .console(.tcp(host: host, port: port)))
        }
        let endpoint: SocketEndpoint?
        var tls: SocketTLS?
        switch monitor {
        case .unixServer(let path, _): endpoint = .unix(path: path)
        case .tcpServer(let host, let port, _, let options):
            endpoint = .tcp(host: host, port: port)
            tls = try options.map { try SocketTLS.resolve($0, objects: tlsObjects) }
        case .stdio, .none: endpoint = nil
        }
        if let endpoint {
            monitorServer = try MonitorSocketServer(endpoint: endpoint, tls: tls, prompt: Self.prompt,
                                                    execute: executeForSocket ?? execute) { [weak self] in
                self?.requestExit(status: 0)
            }
        }
    }

    /// `SWIFTKVM_HISTORY` when set (empty: no history file), else `~/.swiftkvm_history`.
    public static func defaultHistoryPath() -> String? {
        CommandHistory.defaultPath(environment: ["SWIFTKVM_HISTORY", "HOME"].reduce(into: [:]) { found, name in
            if let value = getenv(name) { found[name] = String(cString: value) }
        })
    }

    /// Serves QMP from this front end's loop (call before `waitForClients` and `run`).
    public func attach(_ server: QMPServer) {
        qmpServer = server
    }

    /// `info chardev`: one `label: filename=...` line per console back end, QEMU's labels.
    public func chardevInfo() -> String {
        var lines: [String] = []
        switch serialSpec {
        case .stdio: lines.append("serial0: filename=stdio")
        default: if let serialBackend { lines.append("serial0: filename=\(serialBackend.chardevFilename)") }
        }
        var monitorIndex = 0
        switch monitorSpec {
        case .stdio: lines.append("compat_monitor0: filename=stdio"); monitorIndex = 1
        case .unixServer, .tcpServer:
            if let monitorServer { lines.append("compat_monitor0: filename=\(monitorServer.label),server=on") }
            monitorIndex = 1
        case .none: break
        }
        lines += qmpServer?.chardevLines(firstIndex: monitorIndex) ?? []
        return lines.map { $0 + "\n" }.joined()
    }

    /// Blocks until every `unix:...,server` back end without `nowait` has its first client.
    /// Call before starting the guest, as QEMU does.
    public func waitForClients() {
        if case .unixServer(_, true) = serialSpec { serialBackend?.waitForClient() }
        if case .tcpServer(_, _, true) = serialSpec { serialBackend?.waitForClient() }
        if monitorSpec.waitsForClient { monitorServer?.waitForClient() }
        qmpServer?.waitForClients()
    }

    /// Ends `run()` from any thread (the guest shut down, for example).
    public func requestExit(status: Int32) {
        exitLock.lock()
        if requestedExit == nil { requestedExit = status }
        exitLock.unlock()
        queue.wake()
    }

    /// Serves everything until `quit`, Ctrl-a x or `requestExit`; restores the terminal and
    /// returns the process's exit status: 0 after `quit` or Ctrl-a x, the requested status
    /// after `requestExit`, but 1 instead of 0 when a piped script had failing lines, and 1
    /// when polling itself failed. SIGINT, SIGTERM and SIGHUP end it in order with 0, as in
    /// QEMU (see TerminationSignals). Call once.
    public func run() -> Int32 {
        if (serialSpec == .stdio || monitorSpec == .stdio) && isatty(1) == 0 {
            let queue = StdoutQueue()
            stdout = queue
            loop.watch(fd: queue.fd, interest: { (false, queue.wantsWrite) }) { _ in queue.flush() }
        }
        setUpStdin()
        loop.watch(fd: queue.wakeReadFD) { [unowned self] _ in self.showAsync(self.queue.takeQueued()) }
        var terminatingSignal: Int32?
        if let signals = TerminationSignals.install() {
            loop.watch(fd: signals) { [unowned self] _ in
                guard let signalNumber = TerminationSignals.take() else { return }
                terminatingSignal = terminatingSignal ?? signalNumber
                self.requestExit(status: 0)
            }
        }
        if let console {
            var outputToken: PollLoop.Token?
            outputToken = loop.watch(fd: console.guestOutputFD) { [unowned self] _ in
                switch FileIO.read(console.guestOutputFD) {
                case .bytes(let bytes): self.showGuestOutput(bytes)
                case .wouldBlock: break
                case .endOfFile, .failed: if let outputToken { self.loop.unwatch(outputToken) }
                }
            }
        }
        serialBackend?.register(in: loop, input: guestInput)
        monitorServer?.register(in: loop)
        qmpServer?.register(in: loop)
        terminal?.start()

        var status: Int32 = 0
        while true {
            if let exit = pendingExit() { status = exit; break }
            var timeout = guestInput.isEmpty ? -1 : GuestInputQueue.retryMilliseconds
            if refreshLiveStatus() != .idle {
                timeout = timeout < 0 ? LiveStatus.refreshMilliseconds : min(timeout, LiveStatus.refreshMilliseconds)
            }
            do {
                try loop.runOnce(timeoutMilliseconds: timeout)
            } catch {
                terminal?.stop()
                FileIO.writeAll(2, "swiftkvm: \(error)\n")
                terminal = nil
                status = 1
                break
            }
            guestInput.retry()
        }
        // Whatever the guest wrote before it exited (or before quit) is still in the pipe.
        drainGuestOutput()
        showAsync(queue.takeQueued())
        terminal?.stop()
        if let terminatingSignal { FileIO.writeAll(2, "swiftkvm: terminating on signal \(terminatingSignal)\n") }
        serialBackend?.flushBeforeExit()
        stdout?.finish(noProgressMilliseconds: ExitFlush.noProgressMilliseconds)
        serialBackend?.close()
        monitorServer?.close()
        qmpServer?.close()
        return status == 0 && failedLines > 0 ? 1 : status
    }

    /// Reads the guest's console pipe dry, bounded so a guest that keeps flooding it cannot
    /// hold up the exit (the pipe holds 64 KiB).
    private func drainGuestOutput() {
        guard let console else { return }
        var drained = 0
        while drained < 1 << 20, case .bytes(let bytes) = FileIO.read(console.guestOutputFD) {
            showGuestOutput(bytes)
            drained += bytes.count
        }
    }

    /// Redraws the terminal's status line; returns what the provider said.
    private func refreshLiveStatus() -> LiveStatus {
        guard let terminal, let liveStatus else { return .idle }
        let current = liveStatus()
        terminal.showStatus(current.text)
        return current
    }

    private func pendingExit() -> Int32? {
        exitLock.lock()
        defer { exitLock.unlock() }
        return requestedExit
    }

    private func setUpStdin() {
        let terminalMode = TerminalMode(fd: stdinFD)
        let monitorOnStdio = monitorSpec == .stdio
        let serialOnStdio = serialSpec == .stdio
        guard monitorOnStdio || serialOnStdio else { return }
        if let terminalMode {
            let role: TerminalSession.Role = monitorOnStdio
                ? (serialOnStdio ? .shared(startInMonitor: startInMonitor) : .monitorOnly)
                : .consoleOnly
            let session = TerminalSession(mode: terminalMode, role: role, prompt: Self.prompt,
                                          historyPath: historyPath, execute: execute, completer: complete,
                                          guestInput: guestInput) { [unowned self] in self.requestExit(status: $0) }
            terminal = session
            watchStdin(wantsInput: { session.wantsInput }, handle: session.handleInput)
        } else if monitorOnStdio {
            let runner = ScriptRunner(execute: execute,
                                      writeOutput: { [unowned self] in self.writeStdout($0) },
                                      writeError: { FileIO.writeAll(2, $0) })
            script = runner
            // A stalled stdout reader pauses the script rather than growing the queue.
            watchStdin(wantsInput: { [unowned self] in !(self.stdout?.isFull ?? false) }, handle: { [unowned self] bytes in
                runner.feed(bytes)
                if runner.quitRequested { self.requestExit(status: 0) }
            }, atEnd: { [unowned self] in
                runner.finish()
                if runner.quitRequested { self.requestExit(status: 0) }
            })
        } else {
            let input = guestInput
            watchStdin(wantsInput: { !input.isFull }, handle: { input.send($0) })
        }
    }

    private func watchStdin(wantsInput: @escaping () -> Bool, handle: @escaping ([UInt8]) -> Void,
                            atEnd: @escaping () -> Void = {}) {
        stdinToken = loop.watch(fd: stdinFD, interest: { (wantsInput(), false) }) { [unowned self] _ in
            switch FileIO.read(self.stdinFD) {
            case .bytes(let bytes): handle(bytes)
            case .wouldBlock: break
            case .endOfFile, .failed:
                // The guest keeps running; the monitor just stops reading (QEMU does the same).
                if let token = self.stdinToken { self.loop.unwatch(token) }
                self.stdinToken = nil
                atEnd()
            }
        }
    }

    private func showGuestOutput(_ bytes: [UInt8]) {
        if let serialBackend {
            serialBackend.writeGuestOutput(bytes)
        } else if let terminal {
            terminal.showGuestOutput(bytes)
        } else if let stdout {
            stdout.write(bytes, droppable: true)
        } else {
            FileIO.writeAll(1, bytes)
        }
    }

    private func writeStdout(_ text: String) {
        if let stdout { stdout.write(text) } else { FileIO.writeAll(1, text) }
    }

    private func showAsync(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        if let terminal {
            terminal.showMonitorLines(bytes)
        } else if let stdout {
            stdout.write(bytes, droppable: false)
        } else {
            FileIO.writeAll(1, bytes)
        }
        monitorServer?.broadcast(bytes)
    }
}
