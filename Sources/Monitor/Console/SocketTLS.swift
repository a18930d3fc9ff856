import Glibc
import TLS

/// `tls-creds=ID[,tls-authz=ID]` of a `-qmp` or `-monitor` TCP socket, as given: QEMU's socket
/// chardev options. The ids are looked up when the server opens (`SocketTLS.resolve`).
public struct SocketTLSOptions: Equatable, Sendable {
    public var credentials: String
    public var authorization: String?

    public init(credentials: String, authorization: String? = nil) {
        self.credentials = credentials
        self.authorization = authorization
    }
}

/// A socket server's TLS, resolved: the server credentials and who may connect.
struct SocketTLS {
    let context: TLSContext
    let authorization: TLSAuthorization?

    static func resolve(_ options: SocketTLSOptions, objects: TLSObjectRegistry) throws -> SocketTLS {
        let property = "tls-creds=\(options.credentials)"
        let context: TLSContext
        do {
            context = try objects.context(id: options.credentials, endpoint: .server)
        } catch let error as TLSObjectRegistry.LookupError {
            switch error {
            case .notFound(let id): throw SocketTLSSetupError(property: property, reason: "No TLS credentials with id '\(id)'")
            case .wrongType(let id, _): throw SocketTLSSetupError(property: property, reason: "Object with id '\(id)' is not TLS credentials")
            case .wrongEndpoint:
                throw SocketTLSSetupError(property: property, reason: "Expected TLS credentials for a server endpoint (this socket listens: give the -object endpoint=server)")
            case .duplicate: throw SocketTLSSetupError(property: property, reason: "\(error)")
            }
        }
        var authorization: TLSAuthorization?
        if let id = options.authorization {
            do { authorization = try objects.authorization(id: id) } catch TLSObjectRegistry.LookupError.wrongType {
                throw SocketTLSSetupError(property: "tls-authz=\(id)", reason: "Object with id '\(id)' is not an authz-simple object")
            } catch {
                throw SocketTLSSetupError(property: "tls-authz=\(id)", reason: "No authz-simple object with id '\(id)'")
            }
        }
        return SocketTLS(context: context, authorization: authorization)
    }
}

/// Why a socket's `tls-creds=`/`tls-authz=` cannot be used, in QEMU's words where it has them.
public struct SocketTLSSetupError: Error, Equatable, CustomStringConvertible {
    public let property: String
    public let reason: String
    public var description: String { "\(property): \(reason)" }
}
