import Glibc
import Sockets
import SystemSupport

/// Where the guest's serial output goes and where its input comes from, for every `-serial`
/// kind but `stdio` (the terminal handles that one).
protocol SerialBackend: AnyObject {
    func writeGuestOutput(_ bytes: [UInt8])
    /// What `info chardev` shows after `filename=`.
    var chardevFilename: String { get }
    /// Adds this back end's descriptors to the loop; input is queued for the guest.
    func register(in loop: PollLoop, input: GuestInputQueue)
    /// Blocks until a client is there, for socket back ends that must not start without one.
    func waitForClient()
    /// At exit, before `close`: lets a connected reader take what is still queued (see
    /// `ExitFlush`). Back ends that write synchronously have nothing to do.
    func flushBeforeExit()
    func close()
}

/// How long the console back ends wait at exit for a reader to take queued guest output.
enum ExitFlush {
    /// A connected socket client or a stdout reader: it exists, so give it time.
    static let noProgressMilliseconds: Int32 = 5000
    /// A pty may have nobody attached at all; wait only while someone is reading.
    static let ptyNoProgressMilliseconds: Int32 = 500
}

/// `-serial null`.
final class NullSerialBackend: SerialBackend {
    var chardevFilename: String { "null" }
    func writeGuestOutput(_ bytes: [UInt8]) {}
    func register(in loop: PollLoop, input: GuestInputQueue) {}
    func waitForClient() {}
    func flushBeforeExit() {}
    func close() {}
}

/// `-serial file:PATH`: truncated at open, like QEMU.
final class FileSerialBackend: SerialBackend {
    private let fd: Int32
    let chardevFilename: String

    init(path: String) throws {
        chardevFilename = "file:" + path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FrontendError.fileOpenFailed(path: path, errno: errno) }
    }

    func writeGuestOutput(_ bytes: [UInt8]) { FileIO.writeAll(fd, bytes) }
    func register(in loop: PollLoop, input: GuestInputQueue) {}
    func waitForClient() {}
    func flushBeforeExit() {}
    func close() { FileIO.close(fd) }
}

/// `-serial unix:PATH,server[,nowait]` and `-serial tcp:HOST:PORT,server[,nowait]`: one
/// client at a time; while one is connected, others wait in the listen backlog. Output with
/// no client connected, and output past what a slow client has left unread
/// (`SocketConnection.maxQueuedBytes`), is dropped: the guest never waits for the console.
final class SocketSerialBackend: SerialBackend {
    private let listener: SocketListener
    private(set) var client: SocketConnection?
    private var loop: PollLoop?
    private var input: GuestInputQueue?
    private var clientToken: PollLoop.Token?

    init(listener: SocketListener) {
        self.listener = listener
    }

    /// QEMU's `info chardev` spelling: `disconnected:` while no client is there.
    var chardevFilename: String { (client == nil ? "disconnected:" : "") + listener.label + ",server=on" }

    func writeGuestOutput(_ bytes: [UInt8]) {
        client?.send(bytes)
        if client?.isOpen == false { dropClient() }
    }

    func register(in loop: PollLoop, input: GuestInputQueue) {
        self.loop = loop
        self.input = input
        loop.watch(fd: listener.fd, interest: { [unowned self] in
            (self.client == nil && self.listener.canAcceptAtFileLimit, false)
        }) { [unowned self] _ in
            if let fd = self.listener.acceptClient(serving: "serial") { self.adopt(fd) }
        }
        if let client { watchClient(client) }
    }

    func waitForClient() {
        guard client == nil else { return }
        FileIO.writeAll(2, "swiftkvm: waiting for connection on serial \(listener.label),server\n")
        if let fd = listener.waitForClient() { adopt(fd) }
    }

    private func adopt(_ fd: Int32) {
        let connection = SocketConnection(fd: fd, overflow: .drop)
        client = connection
        if loop != nil { watchClient(connection) }
    }

    private func watchClient(_ connection: SocketConnection) {
        guard let loop else { return }
        clientToken = loop.watch(fd: connection.fd, interest: { [unowned self] in
            (connection.isOpen && !(self.input?.isFull ?? false), connection.wantsWrite)
        }) { [unowned self] events in
            if events & Int16(POLLOUT) != 0 { connection.flush() }
            if events & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
                switch FileIO.read(connection.fd) {
                case .bytes(let bytes): self.input?.send(bytes)
                case .wouldBlock: break
                case .endOfFile, .failed: connection.close()
                }
            }
            if !connection.isOpen { self.dropClient() }
        }
    }

    private func dropClient() {
        if let clientToken { loop?.unwatch(clientToken) }
        clientToken = nil
        client?.close()
        client = nil
    }

    /// What the client has not taken yet sits in the connection's queue; the kernel sends
    /// what is already in the socket after close.
    func flushBeforeExit() {
        guard let client else { return }
        while client.wantsWrite {
            var ready = pollfd(fd: client.fd, events: Int16(POLLOUT), revents: 0)
            let n = Errno.retryingInterrupted { poll(&ready, 1, ExitFlush.noProgressMilliseconds) }
            guard n > 0, ready.revents & Int16(POLLOUT) != 0 else { break }
            client.flush()
        }
    }

    func close() {
        dropClient()
        listener.close()
    }
}

extension SocketSerialBackend {
    /// `-serial unix:PATH,server`.
    convenience init(path: String) throws {
        self.init(listener: try .console(.unix(path: path)))
    }
}

typealias UnixSocketSerialBackend = SocketSerialBackend
