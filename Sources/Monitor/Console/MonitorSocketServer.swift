import Glibc
import Sockets
import SystemSupport
import TLS

/// `-monitor unix:PATH,server[,nowait]` or `tcp:HOST:PORT,server[,nowait]` (with `tls-creds=`,
/// the banner comes after the TLS handshake and the `tls-authz` check, see ClientListener): up
/// to `maxClients` clients at once (further ones wait in the listen backlog until one leaves),
/// each with a plain line protocol: a banner and a `(monitor) ` prompt, then one command per
/// line, its output, and the prompt again. Lines that arrive on their own (migration progress)
/// come between commands, each batch followed by a fresh prompt, as the terminal redraws its
/// prompt under them: a client that reads until the output ends with a prompt never waits for
/// one that does not come. No echo and no line editing (use `socat READLINE UNIX:PATH` for those).
/// A client's next command runs only once its earlier output has mostly been read (see
/// SocketConnection); progress lines it does not read past the queue's bound disconnect it.
final class MonitorSocketServer {
    static let maxClients = 8
    static let banner = "swiftkvm monitor - type 'help' for more information\n"

    private final class Client {
        let connection: SocketConnection
        var splitter = LineSplitter()
        /// Lines read but not yet run, while the client's output is backed up.
        var pending: [LineSplitter.Piece] = []
        var token: PollLoop.Token?
        init(connection: SocketConnection) { self.connection = connection }
    }

    private let listener: ClientListener
    private let prompt: String
    private let execute: (String) -> CommandOutcome
    /// Called after a client's `quit`.
    private let onQuit: () -> Void
    private var clients: [Client] = []
    private var loop: PollLoop?

    convenience init(path: String, prompt: String, execute: @escaping (String) -> CommandOutcome, onQuit: @escaping () -> Void) throws {
        try self.init(endpoint: .unix(path: path), tls: nil, prompt: prompt, execute: execute, onQuit: onQuit)
    }

    init(endpoint: SocketEndpoint, tls: SocketTLS?, prompt: String, execute: @escaping (String) -> CommandOutcome,
         onQuit: @escaping () -> Void) throws {
        listener = ClientListener(try .console(endpoint), tls: tls, role: "monitor")
        self.prompt = prompt
        self.execute = execute
        self.onQuit = onQuit
    }

    var clientCount: Int { clients.count }
    /// `unix:PATH` or `tcp:HOST:PORT` (the port bound).
    var label: String { listener.label }

    func register(in loop: PollLoop) {
        self.loop = loop
        listener.register(in: loop, hasRoom: { [unowned self] in
            self.clients.count + self.listener.handshaking < Self.maxClients
        }) { [unowned self] connection in self.adopt(connection) }
        for client in clients { watch(client) }
    }

    func waitForClient() {
        guard clients.isEmpty else { return }
        FileIO.writeAll(2, "swiftkvm: waiting for connection on monitor \(listener.label),server\n")
        if let connection = listener.waitForClient() { adopt(connection) }
    }

    /// Output that arrived on its own (migration progress, for example) goes to every client,
    /// then the prompt again. Commands run on this same loop, so no client is mid-command now.
    func broadcast(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let ending = bytes.last == UInt8(ascii: "\n") ? prompt : "\n" + prompt
        for client in clients { client.connection.send(bytes + Array(ending.utf8)) }
        dropClosedClients()
    }

    private func adopt(_ connection: SocketConnection) {
        let client = Client(connection: connection)
        clients.append(client)
        client.connection.send(Self.banner + prompt)
        if loop != nil { watch(client) }
    }

    private func watch(_ client: Client) {
        guard let loop else { return }
        client.token = loop.watch(fd: client.connection.fd, interest: {
            (client.connection.isOpen && !client.connection.isBackedUp && client.pending.isEmpty, client.connection.wantsWrite)
        }, hasBufferedInput: { client.connection.hasBufferedInput }) { [unowned self] events in
            if events & Int16(POLLOUT) != 0 {
                client.connection.flush()
                self.runPending(for: client)
            }
            if events & Int16(POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0 && !client.connection.isBackedUp {
                self.readCommands(from: client)
            }
            self.dropClosedClients()
        }
    }

    private func readCommands(from client: Client) {
        switch client.connection.read() {
        case .bytes(let bytes):
            client.pending += client.splitter.feed(bytes)
            runPending(for: client)
        case .wouldBlock:
            break
        case .endOfFile, .failed:
            client.connection.close()
        }
    }

    private func runPending(for client: Client) {
        var next = 0
        while next < client.pending.count && client.connection.isOpen && !client.connection.isBackedUp {
            let piece = client.pending[next]
            next += 1
            run(piece, for: client)
        }
        client.pending.removeFirst(next)
    }

    private func run(_ piece: LineSplitter.Piece, for client: Client) {
        var reply = ""
        var quit = false
        switch piece {
        case .tooLong(let byteCount):
            reply = "line of \(byteCount) bytes is longer than \(LineSplitter.defaultMaxLineBytes) allowed; ignored\n"
        case .line(let text):
            let command = text.trimmingWhitespace()
            if !command.isEmpty {
                let outcome = execute(command)
                reply = outcome.output
                if let error = outcome.error { reply += error.endingWithNewline() }
                quit = outcome.quit
            }
        }
        client.connection.send(quit ? reply : reply + prompt)
        if quit { onQuit() }
    }

    private func dropClosedClients() {
        for client in clients where !client.connection.isOpen {
            if let token = client.token { loop?.unwatch(token) }
        }
        clients.removeAll { !$0.connection.isOpen }
    }

    func close() {
        for client in clients { client.connection.close() }
        dropClosedClients()
        listener.close()
    }
}
