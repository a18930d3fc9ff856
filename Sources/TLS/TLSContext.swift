import Glibc
import COpenSSL
import SystemSupport

/// A loaded set of credentials: OpenSSL's SSL_CTX for one endpoint, TLS 1.3 only (both ends
/// are swiftkvm, so there is no older peer to talk to, and 1.3 encrypts the certificates too).
/// AES-128-GCM comes first: AES-NI runs it at several GB/s a core, and the kernel offers it for
/// kernel TLS. Kernel TLS is asked for (SSL_OP_ENABLE_KTLS); whether the kernel took it is
/// per session (`TLSSession.kernelSends`).
public final class TLSContext: @unchecked Sendable {
    public let credentials: TLSCredentials
    let context: OpaquePointer
    /// For `tls-creds-psk`: every key of `keys.psk` (a server looks the client's identity up).
    let preSharedKeys: PreSharedKeys?

    static let cipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    public init(_ credentials: TLSCredentials) throws {
        self.credentials = credentials
        let method = credentials.endpoint == .server ? TLS_server_method() : TLS_client_method()
        guard let context = SSL_CTX_new(method) else {
            throw TLSError.credentialsFile(path: credentials.directory, reason: openSSLReason(fallback: "OpenSSL could not create a context"))
        }
        self.context = context
        if case .psk = credentials.kind {
            do { preSharedKeys = try PreSharedKeys(path: credentials.path(TLSCredentials.FileName.preSharedKeys)) } catch {
                SSL_CTX_free(context)
                throw error
            }
        } else {
            preSharedKeys = nil
        }
        // Every property is set: from here a throw runs deinit, which frees the context.
        try configure()
    }

    deinit { SSL_CTX_free(context) }

    private func configure() throws {
        _ = cssl_ctx_set_min_proto_version(context, TLS1_3_VERSION)
        _ = SSL_CTX_set_ciphersuites(context, Self.cipherSuites)
        // No session tickets: a migration is one session, and nothing but our own records
        // should follow the handshake on the socket.
        _ = SSL_CTX_set_num_tickets(context, 0)
        _ = cssl_ctx_set_options(context, cssl_op_enable_ktls() | cssl_op_no_ticket())
        _ = cssl_ctx_set_mode(context, cssl_mode_partial_write())
        // Read several records per recv: a migration is one long bulk stream.
        cssl_ctx_set_read_ahead(context, 1)
        SSL_CTX_set_default_read_buffer_len(context, 256 * 1024)
        switch credentials.kind {
        case .x509(let verifyPeer):
            try loadCertificates(verifyPeer: verifyPeer)
        case .psk:
            // SAFETY: the context lives as long as this object, which owns it; callbacks read it back.
            SSL_CTX_set_ex_data(context, 0, Unmanaged.passUnretained(self).toOpaque())
            if credentials.endpoint == .server {
                SSL_CTX_set_psk_server_callback(context, pskServerCallback)
            } else {
                SSL_CTX_set_psk_client_callback(context, pskClientCallback)
            }
        }
    }

    private func loadCertificates(verifyPeer: Bool) throws {
        let names = TLSCredentials.FileName.self
        let caPath = credentials.path(names.caCertificate)
        let isServer = credentials.endpoint == .server
        let certificatePath = credentials.path(isServer ? names.serverCertificate : names.clientCertificate)
        let keyPath = credentials.path(isServer ? names.serverKey : names.clientKey)
        // A server must present a certificate; a client presents one when it has one (a
        // server with verify-peer=on then requires it).
        let hasCertificate = isServer || access(certificatePath, F_OK) == 0
        if verifyPeer || isServer || access(caPath, F_OK) == 0 {
            try requireReadable(caPath)
            guard SSL_CTX_load_verify_locations(context, caPath, nil) == 1 else {
                throw TLSError.credentialsFile(path: caPath, reason: openSSLReason(fallback: "not a PEM CA certificate"))
            }
        }
        if hasCertificate {
            try requireReadable(certificatePath)
            try requireReadable(keyPath)
            guard SSL_CTX_use_certificate_chain_file(context, certificatePath) == 1 else {
                throw TLSError.credentialsFile(path: certificatePath, reason: openSSLReason(fallback: "not a PEM certificate"))
            }
            guard SSL_CTX_use_PrivateKey_file(context, keyPath, SSL_FILETYPE_PEM) == 1 else {
                throw TLSError.credentialsFile(path: keyPath, reason: openSSLReason(fallback: "not a PEM private key"))
            }
            guard SSL_CTX_check_private_key(context) == 1 else {
                throw TLSError.credentialsFile(path: keyPath, reason: "the key does not match \(certificatePath)")
            }
        }
        if verifyPeer {
            let mode = isServer ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_PEER
            SSL_CTX_set_verify(context, mode, nil)
        } else {
            SSL_CTX_set_verify(context, SSL_VERIFY_NONE, nil)
        }
    }

    private func requireReadable(_ path: String) throws {
        guard access(path, R_OK) == 0 else {
            throw TLSError.credentialsFile(path: path, reason: Errno.text(errno))
        }
    }

    /// The identity a client offers with a pre-shared key, and its key.
    var clientKey: (identity: String, key: [UInt8])? {
        guard case .psk(let username) = credentials.kind, let key = preSharedKeys?.keys[username] else { return nil }
        return (username, key)
    }

    static func from(_ ssl: OpaquePointer?) -> TLSContext? {
        guard let ssl, let context = SSL_get_SSL_CTX(ssl), let raw = SSL_CTX_get_ex_data(context, 0) else { return nil }
        // SAFETY: set in `configure` to this object, which outlives every session on its context.
        return Unmanaged<TLSContext>.fromOpaque(raw).takeUnretainedValue()
    }
}

/// Copies `key` to OpenSSL's buffer; 0 (no key, the handshake fails) when it does not fit.
private func copy(_ key: [UInt8], to buffer: UnsafeMutablePointer<UInt8>?, capacity: UInt32) -> UInt32 {
    guard let buffer, key.count <= Int(capacity) else { return 0 }
    // SAFETY: OpenSSL hands a buffer of `capacity` bytes, and key.count <= capacity.
    key.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: key.count) }
    return UInt32(key.count)
}

private let pskClientCallback: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafeMutablePointer<CChar>?, UInt32,
                                                UnsafeMutablePointer<UInt8>?, UInt32) -> UInt32 = { ssl, _, identity, identityCapacity, psk, pskCapacity in
    guard let (name, key) = TLSContext.from(ssl)?.clientKey, let identity else { return 0 }
    let bytes = Array(name.utf8)
    guard bytes.count < Int(identityCapacity) else { return 0 }
    // SAFETY: OpenSSL hands `identityCapacity` bytes; the name and its terminator fit.
    bytes.withUnsafeBufferPointer { raw in
        raw.withMemoryRebound(to: CChar.self) { identity.update(from: $0.baseAddress!, count: bytes.count) }
    }
    identity[bytes.count] = 0
    return copy(key, to: psk, capacity: pskCapacity)
}

private let pskServerCallback: @convention(c) (OpaquePointer?, UnsafePointer<CChar>?, UnsafeMutablePointer<UInt8>?, UInt32) -> UInt32 = { ssl, identity, psk, capacity in
    guard let identity else { return 0 }
    let name = String(cString: identity)
    noteOfferedIdentity(ssl, name)
    guard let key = TLSContext.from(ssl)?.preSharedKeys?.keys[name] else { return 0 }
    return copy(key, to: psk, capacity: capacity)
}
