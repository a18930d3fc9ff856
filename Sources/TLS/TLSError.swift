import COpenSSL

/// Everything that can go wrong with TLS credentials or a TLS session, worded for the person
/// who set them up; OpenSSL's own reason is kept at the end.
public enum TLSError: Error, Equatable, CustomStringConvertible {
    /// A `-object`/`object-add` property is missing, unknown or has a bad value.
    case badProperty(object: String, reason: String)
    /// A credentials file could not be read or used.
    case credentialsFile(path: String, reason: String)
    /// The handshake failed; `reason` says why, as precisely as OpenSSL tells.
    case handshake(reason: String)
    /// Reading or writing the encrypted session failed after the handshake.
    case session(reason: String)
    /// The peer's identity is not one that `tls-authz` lets in.
    case notAuthorized(identity: String, authz: String)

    public var description: String {
        switch self {
        case .badProperty(let object, let reason): return "\(object): \(reason)"
        case .credentialsFile(let path, let reason): return "Unable to use credentials \(path): \(reason)"
        case .handshake(let reason): return "TLS handshake failed: \(reason)"
        case .session(let reason): return "TLS session failed: \(reason)"
        case .notAuthorized(let identity, let authz):
            return "TLS identity '\(identity)' is not allowed by authz object '\(authz)'"
        }
    }
}

/// The oldest queued OpenSSL error of this thread as text (`certificate verify failed`),
/// and clears the queue so the next call starts clean.
func openSSLReason(fallback: String) -> String {
    let code = ERR_get_error()
    defer { ERR_clear_error() }
    guard code != 0, let text = ERR_reason_error_string(code) else { return fallback }
    return String(cString: text)
}
