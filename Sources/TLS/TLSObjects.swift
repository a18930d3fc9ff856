import Units

/// The `-object` / `object-add` types that TLS needs, with QEMU's type and property names:
/// `tls-creds-x509`, `tls-creds-psk` and `authz-simple`.
public enum TLSObject: Equatable, Sendable {
    case credentials(TLSCredentials)
    case authorization(TLSAuthorization)

    public static let types = ["tls-creds-x509", "tls-creds-psk", "authz-simple"]

    public var id: String {
        switch self {
        case .credentials(let credentials): return credentials.id
        case .authorization(let authorization): return authorization.id
        }
    }

    /// What is wrong with an object written as text (`-object`, HMP's `object_add`).
    public enum SpecError: Error, Equatable, CustomStringConvertible {
        case missingType
        case notKeyValue(String)
        case object(TLSError)

        public var description: String {
            switch self {
            case .missingType: return "Parameter 'qom-type' is missing"
            case .notKeyValue(let element): return "write each property as KEY=VALUE ('\(element)' has no '=')"
            case .object(let error): return "\(error)"
            }
        }
    }

    /// An object as QEMU's `-object` and HMP's `object_add` write it:
    /// `TYPE,id=ID[,PROP=VALUE...]`, the type also as `qom-type=TYPE`.
    public static func parse(_ spec: String) throws -> TLSObject {
        var items = PropertyList(spec).items
        guard let first = items.first, first.key == nil || first.key == "qom-type", !first.value.isEmpty else {
            throw SpecError.missingType
        }
        items.removeFirst()
        var properties: [(key: String, value: String)] = []
        for item in items {
            guard let key = item.key else { throw SpecError.notKeyValue(item.value) }
            properties.append((key, item.value))
        }
        do {
            return try make(type: first.value, properties: properties)
        } catch let error as TLSError {
            throw SpecError.object(error)
        }
    }

    /// Builds an object from its type and properties (`id` among them), refusing unknown or
    /// missing properties as QEMU does. Credentials files are not read here (see `TLSContext`).
    public static func make(type: String, properties: [(key: String, value: String)]) throws -> TLSObject {
        var remaining = [String: String]()
        for (key, value) in properties {
            guard remaining[key] == nil else { throw TLSError.badProperty(object: type, reason: "property '\(key)' given twice") }
            remaining[key] = value
        }
        func take(_ key: String) -> String? { remaining.removeValue(forKey: key) }
        guard let id = take("id"), !id.isEmpty else { throw TLSError.badProperty(object: type, reason: "Parameter 'id' is missing") }
        let object: TLSObject
        switch type {
        case "tls-creds-x509", "tls-creds-psk":
            let endpoint = try TLSCredentials.Endpoint.parse(take("endpoint") ?? "client", object: type)
            guard let directory = take("dir"), !directory.isEmpty else {
                throw TLSError.badProperty(object: type, reason: "Parameter 'dir' is missing (the directory with the credentials files)")
            }
            let kind: TLSCredentials.Kind
            if type == "tls-creds-x509" {
                kind = .x509(verifyPeer: try onOff(take("verify-peer") ?? "on", key: "verify-peer", object: type))
            } else {
                kind = .psk(username: take("username") ?? TLSCredentials.defaultPSKUsername)
            }
            object = .credentials(TLSCredentials(id: id, kind: kind, directory: directory, endpoint: endpoint))
        case "authz-simple":
            guard let identity = take("identity"), !identity.isEmpty else {
                throw TLSError.badProperty(object: type, reason: "Parameter 'identity' is missing")
            }
            object = .authorization(TLSAuthorization(id: id, identity: identity))
        default:
            throw TLSError.badProperty(object: type, reason: "invalid object type: \(type) (swiftkvm knows \(types.joined(separator: ", ")))")
        }
        if let unknown = remaining.keys.sorted().first {
            throw TLSError.badProperty(object: type, reason: "Property '\(type).\(unknown)' not found")
        }
        return object
    }

    private static func onOff(_ text: String, key: String, object: String) throws -> Bool {
        switch text {
        case "on", "yes", "true": return true
        case "off", "no", "false": return false
        default: throw TLSError.badProperty(object: object, reason: "Parameter '\(key)' expects 'on' or 'off'")
        }
    }
}

/// `tls-creds-x509` or `tls-creds-psk`: where the files are and which side of a session they
/// are for. File names inside `directory` are QEMU's (see `TLSCredentials.FileName`).
public struct TLSCredentials: Equatable, Sendable {
    public enum Endpoint: String, Equatable, Sendable {
        case server, client

        static func parse(_ text: String, object: String) throws -> Endpoint {
            guard let endpoint = Endpoint(rawValue: text) else {
                throw TLSError.badProperty(object: object, reason: "Parameter 'endpoint' expects 'server' or 'client', not '\(text)'")
            }
            return endpoint
        }
    }

    public enum Kind: Equatable, Sendable {
        /// Certificates; a server with `verifyPeer` requires a client certificate signed by the
        /// CA, a client with it checks the server's certificate and name (QEMU's default: on).
        case x509(verifyPeer: Bool)
        /// A pre-shared key from `keys.psk`; a client sends `username` as its identity.
        case psk(username: String)
    }

    /// QEMU's names for the files in `dir`.
    public enum FileName {
        public static let caCertificate = "ca-cert.pem"
        public static let serverCertificate = "server-cert.pem"
        public static let serverKey = "server-key.pem"
        public static let clientCertificate = "client-cert.pem"
        public static let clientKey = "client-key.pem"
        public static let preSharedKeys = "keys.psk"
    }

    /// QEMU's default `username` for `tls-creds-psk`.
    public static let defaultPSKUsername = "qemu"

    public let id: String
    public let kind: Kind
    public let directory: String
    public let endpoint: Endpoint

    public init(id: String, kind: Kind, directory: String, endpoint: Endpoint) {
        self.id = id; self.kind = kind; self.directory = directory; self.endpoint = endpoint
    }

    func path(_ name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }
}

/// `authz-simple`: the one identity a TLS server lets in. For certificates the identity is the
/// client certificate's distinguished name as RFC 4514 writes it (`CN=src.example.com,O=Example`,
/// most specific first, as QEMU prints it); for a pre-shared key it is the client's username.
public struct TLSAuthorization: Equatable, Sendable {
    public let id: String
    public let identity: String

    public init(id: String, identity: String) { self.id = id; self.identity = identity }

    public func check(_ peer: String) throws {
        guard peer == identity else { throw TLSError.notAuthorized(identity: peer, authz: id) }
    }
}
