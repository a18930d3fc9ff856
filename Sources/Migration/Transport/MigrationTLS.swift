import Glibc
import TLS

/// How one migration connection is secured, resolved from `tls-creds`, `tls-hostname` and
/// `tls-authz` when the connection is made (the destination reads them when the source
/// connects, so they may be set after `-incoming`, as in QEMU). TLS needs a socket: `tcp:` or
/// `unix:` (`exec:` streams are usually ssh, which encrypts already; a file has no peer).
///
/// After the handshake the destination checks the source's identity against `tls-authz` and
/// answers on the encrypted stream, with the return path's own ack or error, before any
/// migration data: so a refused source says why instead of finding a closed connection.
struct MigrationTLS {
    static let handshake = "the TLS handshake"
    let credentialsID: String
    let context: TLSContext
    /// The client's: the name or address the server's certificate must carry.
    let expectedName: String?
    /// The server's: who may connect.
    let authorization: TLSAuthorization?

    static func resolve(_ parameters: MigrationParameters, objects: TLSObjectRegistry,
                        endpoint: TLSCredentials.Endpoint, uri: MigrationURI) throws -> MigrationTLS? {
        let id = parameters.tlsCreds
        guard !id.isEmpty else { return nil }
        guard uri.transport is SocketTransport else {
            throw MigrationError.tlsSetup("tls-creds is set, but a \(uri.schemeName) migration cannot use TLS; use tcp: or unix:, or set tls-creds to ''")
        }
        let context: TLSContext
        var authorization: TLSAuthorization?
        do {
            context = try objects.context(id: id, endpoint: endpoint)
            if endpoint == .server && !parameters.tlsAuthz.isEmpty {
                authorization = try objects.authorization(id: parameters.tlsAuthz)
            }
        } catch {
            throw MigrationError.tlsSetup("\(error)")
        }
        var expectedName: String?
        if endpoint == .client {
            if !parameters.tlsHostname.isEmpty {
                expectedName = parameters.tlsHostname
            } else if case .tcp(let host, _) = uri {
                expectedName = host
            }
            if expectedName == nil, case .x509(verifyPeer: true) = context.credentials.kind {
                throw MigrationError.tlsSetup("No hostname available for TLS: set tls-hostname to the name in the destination's certificate")
            }
        }
        return MigrationTLS(credentialsID: id, context: context, expectedName: expectedName, authorization: authorization)
    }

    /// The source's side: handshake, then the destination's verdict.
    func secureOutgoing(_ stream: MigrationStream) throws {
        do {
            _ = try stream.startTLS(context: context, expectedName: expectedName, seconds: TransportLimits.tlsHandshakeSeconds)
        } catch MigrationError.tls(let during, let reason) where Self.looksPlain(reason) {
            throw MigrationError.tls(during: during, reason: reason + " (the destination does not speak TLS: has it tls-creds set?)")
        } catch MigrationError.tls(let during, let reason) where pskUsername != nil {
            let hint = " (do both sides have the same key for '\(pskUsername ?? "")' in keys.psk?)"
            throw MigrationError.tls(during: during, reason: reason + hint)
        }
        do {
            switch try ReturnPath.readReply(from: stream) {
            case .ack: return
            case .error(let message): throw MigrationError.destinationFailed(message)
            }
        } catch MigrationError.tls(_, let reason) {
            // TLS 1.3 clients finish first: the server's verdict on our certificate comes after.
            throw MigrationError.tls(during: Self.handshake, reason: reason + " (the destination refused this source's credentials)")
        }
    }

    /// The destination's side: refuses a plain source with a message it can read, runs the
    /// handshake, checks `tls-authz` and tells the source. Returns the source's identity.
    @discardableResult
    func secureIncoming(_ stream: MigrationStream) throws -> String? {
        if !startsWithTLSRecord(stream) {
            refuse(MigrationError.tlsRequired(credentials: credentialsID), on: stream)
            throw MigrationError.tlsRequired(credentials: credentialsID)
        }
        let session = try stream.startTLS(context: context, expectedName: nil, seconds: TransportLimits.tlsHandshakeSeconds)
        let identity = session.peerIdentity
        if let authorization {
            do { try authorization.check(identity ?? "") } catch {
                let refusal = MigrationError.tlsRefused("\(error)")
                refuse(refusal, on: stream)
                throw refusal
            }
        }
        try ReturnPath.sendAck(on: stream)
        return identity
    }

    /// Waits (within the handshake bound) for the source's first byte and peeks at it: a TLS
    /// handshake record starts with 0x16, a plain swiftkvm stream with its magic.
    private func startsWithTLSRecord(_ stream: MigrationStream) -> Bool {
        var entry = pollfd(fd: stream.fd, events: Int16(POLLIN), revents: 0)
        var waited = 0
        while waited < TransportLimits.tlsHandshakeSeconds * 1000 && !stream.wasShutDown {
            let n = poll(&entry, 1, 200)
            if n != 0 && !(n < 0 && errno == EINTR) { break }
            waited += 200
        }
        var first: UInt8 = 0
        // Nothing arrived or the peer left: let the handshake report it.
        guard recv(stream.fd, &first, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 1 else { return true }
        return first == 0x16
    }

    private func refuse(_ error: MigrationError, on stream: MigrationStream) {
        guard (try? ReturnPath.sendError("\(error)", on: stream)) != nil else { return }
        stream.shutdownWrite()
        stream.discardInput(maxBytes: TransportLimits.drainMaxBytes, seconds: TransportLimits.drainSeconds)
    }

    private var pskUsername: String? {
        if case .psk(let username) = context.credentials.kind { return username }
        return nil
    }

    /// OpenSSL's words for a record that is not TLS at all (a plain migration stream's reply).
    private static func looksPlain(_ reason: String) -> Bool {
        ["wrong version number", "packet length too long", "record layer failure", "unknown protocol"].contains { reason.contains($0) }
    }
}
