import Glibc
import SystemSupport

/// The process's TLS objects by id: what `-object` and QMP's `object-add` create and
/// `tls-creds`/`tls-authz` name. Credentials are loaded when they are added (so a missing
/// file is reported by `-object`, as in QEMU) and kept as a ready `TLSContext`. Safe from any
/// thread.
public final class TLSObjectRegistry: @unchecked Sendable {
    public enum LookupError: Error, Equatable, CustomStringConvertible {
        case duplicate(String)
        case notFound(String)
        case wrongType(id: String, expected: String)
        case wrongEndpoint(id: String, expected: TLSCredentials.Endpoint)

        public var description: String {
            switch self {
            case .duplicate(let id): return "Duplicate ID '\(id)' for object"
            case .notFound(let id): return "No TLS credentials or authz object with id '\(id)'"
            case .wrongType(let id, let expected): return "Object '\(id)' is not \(expected)"
            case .wrongEndpoint(let id, let expected):
                return "TLS credentials '\(id)' have the wrong endpoint: this side needs endpoint=\(expected.rawValue)"
            }
        }
    }

    private let lock = Mutex()
    private var credentials: [String: TLSContext] = [:]
    private var authorizations: [String: TLSAuthorization] = [:]

    public init() {}

    public func add(_ object: TLSObject) throws {
        // Load outside the lock: reading the files may take a moment.
        let context: TLSContext?
        if case .credentials(let found) = object { context = try TLSContext(found) } else { context = nil }
        try lock.withLock {
            guard credentials[object.id] == nil, authorizations[object.id] == nil else { throw LookupError.duplicate(object.id) }
            switch object {
            case .credentials: credentials[object.id] = context
            case .authorization(let authorization): authorizations[object.id] = authorization
            }
        }
    }

    /// QMP's `object-del`.
    public func remove(id: String) throws {
        try lock.withLock {
            guard credentials.removeValue(forKey: id) != nil || authorizations.removeValue(forKey: id) != nil else {
                throw LookupError.notFound(id)
            }
        }
    }

    /// The credentials `id` names, which must be for `endpoint`.
    public func context(id: String, endpoint: TLSCredentials.Endpoint) throws -> TLSContext {
        try lock.withLock {
            guard let context = credentials[id] else {
                throw authorizations[id] == nil ? LookupError.notFound(id) : LookupError.wrongType(id: id, expected: "tls-creds-x509 or tls-creds-psk")
            }
            guard context.credentials.endpoint == endpoint else { throw LookupError.wrongEndpoint(id: id, expected: endpoint) }
            return context
        }
    }

    public func authorization(id: String) throws -> TLSAuthorization {
        try lock.withLock {
            guard let authorization = authorizations[id] else {
                throw credentials[id] == nil ? LookupError.notFound(id) : LookupError.wrongType(id: id, expected: "authz-simple")
            }
            return authorization
        }
    }
}
