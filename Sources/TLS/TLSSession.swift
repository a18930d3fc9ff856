import COpenSSL
import Glibc

/// One TLS session over a connected, non-blocking socket. Every call does what it can without
/// blocking and says what it waits for (`Wait`); the owner polls the descriptor with its own
/// timeouts and shutdown rules (MigrationStream) and calls again.
public final class TLSSession {
    public enum Role { case client, server }

    /// What a call needs before it can go on.
    public enum Wait: Equatable { case readable, writable }

    public enum Transfer: Equatable {
        case bytes(Int)
        /// The peer ended the session cleanly (close_notify).
        case closed
        case wait(Wait)
    }

    /// Why a call failed, for the owner to word: the peer went away, the socket failed, or
    /// the TLS protocol did (a bad certificate, a peer that does not speak TLS...).
    public enum Failure: Error, Equatable {
        case peerClosed
        case system(errno: Int32)
        case tls(String)
    }

    private let ssl: OpaquePointer
    private let context: TLSContext
    public let role: Role
    /// For a PSK server: the identity the client offered (set by the key lookup callback).
    var offeredIdentity: String?

    /// `expectedName` (a client's): the host name or IP address the server's certificate must
    /// carry; also sent as SNI when it is a name. Nil skips the name check.
    public init(context: TLSContext, fd: Int32, expectedName: String?) throws {
        // OpenSSL writes to the socket without MSG_NOSIGNAL: a peer gone mid-write (a QMP
        // client, a migration destination) would end the whole process with SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        guard let ssl = SSL_new(context.context) else {
            throw TLSError.session(reason: openSSLReason(fallback: "OpenSSL could not create a session"))
        }
        self.ssl = ssl
        self.context = context
        role = context.credentials.endpoint == .server ? .server : .client
        // SAFETY: the session owns `ssl`, and the callbacks that read this pointer run only
        // inside its calls.
        SSL_set_ex_data(ssl, 0, Unmanaged.passUnretained(self).toOpaque())
        // Every property is set by now, so a throw runs deinit, which frees `ssl`.
        guard SSL_set_fd(ssl, fd) == 1 else {
            throw TLSError.session(reason: openSSLReason(fallback: "OpenSSL could not take the socket"))
        }
        if role == .client, let expectedName, case .x509(verifyPeer: true) = context.credentials.kind {
            let parameters = SSL_get0_param(ssl)
            if Self.isIPAddress(expectedName) {
                _ = X509_VERIFY_PARAM_set1_ip_asc(parameters, expectedName)
            } else {
                _ = X509_VERIFY_PARAM_set1_host(parameters, expectedName, 0)
                _ = cssl_set_tlsext_host_name(ssl, expectedName)
            }
        }
    }

    deinit { SSL_free(ssl) }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    /// One step of the handshake: nil once it is complete.
    public func handshake() throws -> Wait? {
        ERR_clear_error()
        let result = role == .client ? SSL_connect(ssl) : SSL_accept(ssl)
        if result == 1 { return nil }
        switch try classify(result) {
        case .wait(let wait): return wait
        case .closed, .bytes: throw Failure.peerClosed
        }
    }

    public func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Transfer {
        ERR_clear_error()
        let n = SSL_read(ssl, buffer, Int32(clamping: count))
        return n > 0 ? .bytes(Int(n)) : try classify(n)
    }

    public func write(_ buffer: UnsafeRawPointer, count: Int) throws -> Transfer {
        ERR_clear_error()
        let n = SSL_write(ssl, buffer, Int32(clamping: count))
        return n > 0 ? .bytes(Int(n)) : try classify(n)
    }

    /// From now on (after the handshake, without kernel TLS) records collect in a buffer of
    /// `bytes` and leave in large sends; `flush` sends what is left. One send per 16 KiB
    /// record cost the sender a quarter of its time.
    public func bufferWrites(bytes: Int) {
        guard !kernelSends else { return }
        _ = cssl_buffer_writes(ssl, Int32(clamping: bytes))
    }

    /// Sends buffered records: nil once all are out.
    public func flush() throws -> Wait? {
        switch cssl_flush_writes(ssl) {
        case 1: return nil
        case 0: return .writable
        default:
            let code = errno
            if code == EPIPE || code == ECONNRESET { throw Failure.peerClosed }
            throw Failure.system(errno: code)
        }
    }

    /// Decrypted bytes OpenSSL holds that a read returns without touching the socket.
    public var pending: Int { Int(SSL_pending(ssl)) }

    /// True when OpenSSL holds input poll(2) cannot see: decrypted bytes, or (with read-ahead)
    /// records it took from the socket but has not decrypted yet.
    public var hasBufferedInput: Bool { SSL_has_pending(ssl) == 1 }

    /// True when the kernel encrypts what is sent (kernel TLS): plain `sendmsg` on the socket
    /// then sends records, straight from the caller's buffers.
    public var kernelSends: Bool { cssl_ktls_send(ssl) != 0 }
    public var kernelReceives: Bool { cssl_ktls_recv(ssl) != 0 }

    /// The negotiated protocol and cipher, for logs: `TLSv1.3 TLS_AES_128_GCM_SHA256`.
    public var negotiated: String {
        let version = SSL_get_version(ssl).map { String(cString: $0) } ?? "?"
        let cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)).map { String(cString: $0) } ?? "?"
        return "\(version) \(cipher)"
    }

    /// Who the peer is, for `tls-authz`: its certificate's subject, or its PSK identity.
    public var peerIdentity: String? {
        if case .psk = context.credentials.kind { return offeredIdentity }
        var buffer = [CChar](repeating: 0, count: 1024)
        guard cssl_peer_subject(ssl, &buffer, Int32(buffer.count)) >= 0 else { return nil }
        return String(cString: buffer)
    }

    /// Sends close_notify (best effort: on a non-blocking socket it may not go out).
    public func closeNotify() {
        ERR_clear_error()
        _ = SSL_shutdown(ssl)
    }

    private func classify(_ result: Int32) throws -> Transfer {
        let code = SSL_get_error(ssl, result)
        let savedErrno = errno
        switch code {
        case SSL_ERROR_WANT_READ: return .wait(.readable)
        case SSL_ERROR_WANT_WRITE: return .wait(.writable)
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL:
            let queued = ERR_peek_error()
            if queued != 0 { throw Failure.tls(openSSLReason(fallback: "protocol error")) }
            if savedErrno == 0 || savedErrno == EPIPE || savedErrno == ECONNRESET { throw Failure.peerClosed }
            throw Failure.system(errno: savedErrno)
        default:
            var reason = openSSLReason(fallback: "protocol error")
            if reason == "unexpected eof while reading" { throw Failure.peerClosed }
            if reason == "binder does not verify" { reason += " (the pre-shared keys differ)" }
            let verified = SSL_get_verify_result(ssl)
            if verified != X509_V_OK, let text = X509_verify_cert_error_string(verified) {
                reason += " (\(String(cString: text)))"
            }
            throw Failure.tls(reason)
        }
    }
}

/// Records the identity a PSK client offered, so the server can check it against tls-authz.
func noteOfferedIdentity(_ ssl: OpaquePointer?, _ identity: String) {
    guard let ssl, let raw = SSL_get_ex_data(ssl, 0) else { return }
    // SAFETY: set in `TLSSession.init` to the session that owns `ssl`; it is alive during its calls.
    Unmanaged<TLSSession>.fromOpaque(raw).takeUnretainedValue().offeredIdentity = identity
}
