import TLS
import XCTest
@testable import Monitor

/// `tls-creds=`/`tls-authz=` of a socket server resolved against the -object registry, with
/// QEMU's words for what is wrong. (Loading real credentials is TLSMonitorTests' part.)
final class SocketTLSTests: XCTestCase {
    func testMissingOrWrongObjectsAreRefusedNamingTheProperty() throws {
        let objects = TLSObjectRegistry()
        try objects.add(.authorization(TLSAuthorization(id: "auth0", identity: "CN=client")))
        let cases: [(SocketTLSOptions, String)] = [
            (SocketTLSOptions(credentials: "tls0"), "tls-creds=tls0: No TLS credentials with id 'tls0'"),
            (SocketTLSOptions(credentials: "auth0"), "tls-creds=auth0: Object with id 'auth0' is not TLS credentials"),
        ]
        for (options, message) in cases {
            XCTAssertThrowsError(try SocketTLS.resolve(options, objects: objects)) { error in
                XCTAssertEqual("\(error)", message)
                XCTAssertTrue(error is SocketTLSSetupError, "\(error)")
            }
        }
    }
}
