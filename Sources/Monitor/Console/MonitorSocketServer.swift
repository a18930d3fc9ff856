import Glibc

/// `-monitor unix:PATH,server[,nowait]`: any number of clients, each with a plain line
/// protocol: a banner and a `(monitor) ` prompt, then one command per line, its output, and
/// the prompt again. Lines that arrive on their own (migration progress) come between
/// commands, each batch followed by a fresh prompt, as the terminal redraws its prompt under
/// them: a client that reads until the output ends with a prompt never waits for one that
/// does not come. No echo and no line editing (use `socat READLINE UNIX:PATH` for those).
final class MonitorSocketServer {
    static let banner = "swiftkvm monitor - type 'help' for more information\n"

    private final class Client {
        let connection: SocketConnection
        var splitter = LineSplitter()
        var token: PollLoop.Token?
        init(connection: SocketConnection) { self.connection = connection }
    }

    private let listener: UnixSocketListener
    private let prompt: String
    private let execute: (String) -> CommandOutcome
    /// Called after a client's `quit`.
    private let onQuit: () -> Void
    private var clients: [Client] = []
    private var loop: PollLoop?

    init(path: String, prompt: String, execute: @escaping (String) -> CommandOutcome, onQuit: @escaping () -> Void) throws {
        listener = try UnixSocketListener(path: path)
        self.prompt = prompt
        self.execute = execute
        self.onQuit = onQuit
    }

    var path: String { listener.path }
    var clientCount: Int { clients.count }

    func register(in loop: PollLoop) {
        self.loop = loop
        loop.watch(fd: listener.fd) { [unowned self] _ in
            while let fd = self.listener.accept() { self.adopt(fd) }
        }
        for client in clients { watch(client) }
    }

    func waitForClient() {
        guard clients.isEmpty else { return }
        FileIO.writeAll(2, "swiftkvm: waiting for connection on monitor unix:\(listener.path),server\n")
        if let fd = listener.waitForClient() { adopt(fd) }
    }

    /// Output that arrived on its own (migration progress, for example) goes to every client,
    /// then the prompt again. Commands run on this same loop, so no client is mid-command now.
    func broadcast(_ bytes: [UInt8]) {
        guard !bytes.isEmpty else { return }
        let ending = bytes.last == UInt8(ascii: "\n") ? prompt : "\n" + prompt
        for client in clients { client.connection.send(bytes + Array(ending.utf8)) }
        dropClosedClients()
    }

    private func adopt(_ fd: Int32) {
        let client = Client(connection: SocketConnection(fd: fd))
        clients.append(client)
        client.connection.send(Self.banner + prompt)
        if loop != nil { watch(client) }
    }

    private func watch(_ client: Client) {
        guard let loop else { return }
        client.token = loop.watch(fd: client.connection.fd, interest: {
            (client.connection.isOpen, client.connection.wantsWrite)
        }) { [unowned self] events in
            if events & Int16(POLLOUT) != 0 { client.connection.flush() }
            if events & Int16(POLLIN | POLLHUP | POLLERR | POLLNVAL) != 0 { self.readCommands(from: client) }
            self.dropClosedClients()
        }
    }

    private func readCommands(from client: Client) {
        switch FileIO.read(client.connection.fd) {
        case .bytes(let bytes):
            for piece in client.splitter.feed(bytes) { run(piece, for: client) }
        case .wouldBlock:
            break
        case .endOfFile, .failed:
            client.connection.close()
        }
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
