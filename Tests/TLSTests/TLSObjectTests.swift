@testable import TLS
import XCTest

/// The `-object` types, their QEMU property rules, and `keys.psk`, without sockets.
final class TLSObjectTests: XCTestCase {
    func testCredentialsTakeQEMUsPropertiesAndDefaults() throws {
        XCTAssertEqual(try TLSObject.make(type: "tls-creds-x509", properties: [("id", "tls0"), ("dir", "/pki")]),
                       .credentials(TLSCredentials(id: "tls0", kind: .x509(verifyPeer: true), directory: "/pki", endpoint: .client)))
        XCTAssertEqual(try TLSObject.make(type: "tls-creds-x509", properties: [("id", "t"), ("dir", "/d"), ("endpoint", "server"), ("verify-peer", "off")]),
                       .credentials(TLSCredentials(id: "t", kind: .x509(verifyPeer: false), directory: "/d", endpoint: .server)))
        XCTAssertEqual(try TLSObject.make(type: "tls-creds-psk", properties: [("id", "p"), ("dir", "/d")]),
                       .credentials(TLSCredentials(id: "p", kind: .psk(username: "qemu"), directory: "/d", endpoint: .client)))
        XCTAssertEqual(try TLSObject.make(type: "authz-simple", properties: [("id", "a"), ("identity", "CN=x,O=y")]),
                       .authorization(TLSAuthorization(id: "a", identity: "CN=x,O=y")))
    }

    func testBadPropertiesSayWhatIsWrong() {
        let cases: [(String, [(key: String, value: String)], String)] = [
            ("tls-creds-x509", [("dir", "/d")], "Parameter 'id' is missing"),
            ("tls-creds-x509", [("id", "t")], "Parameter 'dir' is missing"),
            ("tls-creds-x509", [("id", "t"), ("dir", "/d"), ("endpoint", "both")], "expects 'server' or 'client', not 'both'"),
            ("tls-creds-x509", [("id", "t"), ("dir", "/d"), ("verify-peer", "maybe")], "Parameter 'verify-peer' expects 'on' or 'off'"),
            ("tls-creds-psk", [("id", "t"), ("dir", "/d"), ("verify-peer", "on")], "Property 'tls-creds-psk.verify-peer' not found"),
            ("authz-simple", [("id", "a")], "Parameter 'identity' is missing"),
            ("memory-backend-ram", [("id", "m")], "invalid object type: memory-backend-ram"),
        ]
        for (type, properties, expected) in cases {
            XCTAssertThrowsError(try TLSObject.make(type: type, properties: properties)) { error in
                XCTAssertTrue("\(error)".contains(expected), "\(type) \(properties): \(error)")
            }
        }
    }

    func testPreSharedKeysFileIsQEMUsFormat() throws {
        let keys = try PreSharedKeys(text: "qemu:00ff10\n\nother:ABCD\n", path: "keys.psk")
        XCTAssertEqual(keys.keys, ["qemu": [0x00, 0xff, 0x10], "other": [0xab, 0xcd]])
        // Blanks around a line are ignored; a line of blanks only is skipped.
        let padded = try PreSharedKeys(text: " \tqemu:00ff10 \t\n   \n", path: "keys.psk")
        XCTAssertEqual(padded.keys, ["qemu": [0x00, 0xff, 0x10]])
        for bad in ["qemu", ":00", "qemu:0g", "qemu:123", ""] {
            XCTAssertThrowsError(try PreSharedKeys(text: bad, path: "keys.psk"), bad)
        }
    }

    func testRegistryRefusesDuplicatesAndWrongKinds() throws {
        let registry = TLSObjectRegistry()
        try registry.add(.authorization(TLSAuthorization(id: "auth0", identity: "CN=a")))
        XCTAssertThrowsError(try registry.add(.authorization(TLSAuthorization(id: "auth0", identity: "CN=b")))) {
            XCTAssertEqual("\($0)", "Duplicate ID 'auth0' for object")
        }
        XCTAssertThrowsError(try registry.context(id: "auth0", endpoint: .client)) {
            XCTAssertEqual("\($0)", "Object 'auth0' is not tls-creds-x509 or tls-creds-psk")
        }
        XCTAssertThrowsError(try registry.authorization(id: "nope"))
        XCTAssertEqual(try registry.authorization(id: "auth0").identity, "CN=a")
        XCTAssertThrowsError(try TLSAuthorization(id: "auth0", identity: "CN=a").check("CN=b")) {
            XCTAssertEqual("\($0)", "TLS identity 'CN=b' is not allowed by authz object 'auth0'")
        }
        try registry.remove(id: "auth0")
        XCTAssertThrowsError(try registry.authorization(id: "auth0"))
    }
}
