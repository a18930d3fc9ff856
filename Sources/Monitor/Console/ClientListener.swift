import Glibc
import Sockets
import SystemSupport
import TLS

/// The listening side of the QMP and monitor socket servers: hands each new client over as a
/// `SocketConnection`. A plain client at once; a client of a `tls-creds=` server only after
/// its TLS handshake and the `tls-authz` check, so nothing (no greeting, no banner) reaches
/// it before. Handshakes run on the poll loop, one step per readiness, never blocking it
/// (other clients, the guest console and migrations are served meanwhile), and each is
/// bounded in time: a client that connects and says nothing is dropped after
/// `handshakeSeconds`. Clients in their handshake count against the server's client limit.
final class ClientListener {
    static let handshakeSeconds = 5

    private let listener: SocketListener
    private let tls: SocketTLS?
    /// `qmp` or `monitor`, for messages.
    private let role: String
    /// Clients accepted whose handshake is not done yet.
    private(set) var handshaking = 0

    init(_ listener: SocketListener, tls: SocketTLS?, role: String) {
        self.listener = listener
        self.tls = tls
        self.role = role
    }

    var label: String { listener.label }
    var boundPort: UInt16? { listener.boundPort }
    func close() { listener.close() }

    /// Accepts while `hasRoom` (the server's limit, which counts `handshaking` too) and gives
    /// each admitted client to `adopt`.
    func register(in loop: PollLoop, hasRoom: @escaping () -> Bool, adopt: @escaping (SocketConnection) -> Void) {
        loop.watch(fd: listener.fd, interest: { [unowned self] in
            (hasRoom() && self.listener.canAcceptAtFileLimit, false)
        }) { [unowned self] _ in
            while hasRoom(), let fd = self.listener.acceptClient(serving: self.role) {
                self.admit(fd, in: loop) { connection in if let connection { adopt(connection) } }
            }
        }
    }

    /// Blocks until a client is admitted (QEMU's `wait=on`, before the guest starts); clients
    /// refused on the way are dropped and the wait goes on. Nil if the listener fails.
    func waitForClient() -> SocketConnection? {
        while let fd = listener.waitForClient() {
            guard tls != nil else { return SocketConnection(fd: fd, overflow: .disconnect) }
            let loop = PollLoop()
            var outcome: SocketConnection??
            admit(fd, in: loop) { outcome = .some($0) }
            // The handshake's deadline bounds this.
            while outcome == nil {
                do { try loop.runOnce(timeoutMilliseconds: -1) } catch { break }
            }
            if let connection = outcome ?? nil { return connection }
        }
        return nil
    }

    private func admit(_ fd: Int32, in loop: PollLoop, then done: @escaping (SocketConnection?) -> Void) {
        guard let tls else { return done(SocketConnection(fd: fd, overflow: .disconnect)) }
        let session: TLSSession
        do { session = try TLSSession(context: tls.context, fd: fd, expectedName: nil) } catch {
            refuse(fd, session: nil, "\(error)")
            return done(nil)
        }
        handshaking += 1
        var wait = TLSSession.Wait.readable
        var token: PollLoop.Token?
        let finish = { [unowned self] (connection: SocketConnection?) in
            self.handshaking -= 1
            done(connection)
        }
        let deadline = MonotonicClock.nanoseconds() + UInt64(Self.handshakeSeconds) * 1_000_000_000
        token = loop.watch(fd: fd, until: deadline, interest: { (wait == .readable, wait == .writable) }, expired: { [unowned self] in
            self.refuse(fd, session: nil, "the TLS handshake did not finish within \(Self.handshakeSeconds) s")
            finish(nil)
        }) { [unowned self] _ in
            do {
                if let next = try session.handshake() { wait = next; return }
            } catch {
                if let token { loop.unwatch(token) }
                self.refuse(fd, session: nil, Self.reason(error))
                return finish(nil)
            }
            if let token { loop.unwatch(token) }
            if let authorization = tls.authorization {
                do { try authorization.check(session.peerIdentity ?? "") } catch {
                    self.refuse(fd, session: session, "\(error)")
                    return finish(nil)
                }
            }
            finish(SocketConnection(fd: fd, overflow: .disconnect, session: session))
        }
    }

    /// Hangs up on a client that may not come in, and says why on stderr (as a refused migration does).
    private func refuse(_ fd: Int32, session: TLSSession?, _ reason: String) {
        session?.closeNotify()
        FileIO.close(fd)
        FileIO.writeAll(2, "swiftkvm: \(role) \(label): refused a client: \(reason)\n")
    }

    private static func reason(_ error: Error) -> String {
        switch error {
        case TLSSession.Failure.peerClosed: return "it left during the TLS handshake"
        case TLSSession.Failure.system(let code): return "TLS handshake failed: \(Errno.text(code))"
        case TLSSession.Failure.tls(let reason):
            // OpenSSL's words for bytes that are not a TLS record at all.
            let plain = ["wrong version number", "packet length too long", "http request", "unknown protocol"].contains { reason.contains($0) }
            return "\(TLSError.handshake(reason: reason))" + (plain ? " (the client does not speak TLS)" : "")
        default: return "\(error)"
        }
    }
}
