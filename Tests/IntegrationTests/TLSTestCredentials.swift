import Foundation
import XCTest

/// Certificates and pre-shared keys made by the `openssl` command for one test, in QEMU's
/// file layout (ca-cert.pem, server-cert.pem, ...), under a temporary folder removed at the end.
struct TLSTestCredentials {
    /// A CA, a server certificate for localhost and 127.0.0.1, and a client certificate.
    let good: String
    /// The same names signed by another CA.
    let otherCA: String
    /// The good CA only: a client without a certificate.
    let caOnly: String
    /// The good CA with a server certificate that expired.
    let expired: String
    /// Two different keys for the PSK username `qemu`.
    let psk: String
    let otherPSK: String
    /// The client certificate's subject as tls-authz identities are written.
    static let clientIdentity = "CN=client.example,O=swiftkvm"

    init(_ test: XCTestCase) throws {
        let root = Paths.temporary(test, "tls")
        test.addTeardownBlock { try? FileManager.default.removeItem(atPath: root) }
        good = root + "/good"; otherCA = root + "/other"; caOnly = root + "/ca-only"
        expired = root + "/expired"; psk = root + "/psk"; otherPSK = root + "/psk2"
        // scripts/make-pki makes a CA with server and client certificates in QEMU's layout.
        let pki = Paths.repository + "/scripts/make-pki"
        let script = """
            set -e
            '\(pki)' '\(good)'; '\(pki)' '\(otherCA)'; '\(pki)' '\(expired)' -1
            cp '\(good)/ca-cert.pem' '\(expired)/ca-cert.pem'
            cd '\(expired)'
            openssl x509 -req -in server.csr -CA '\(good)/ca-cert.pem' -CAkey '\(good)/ca-key.pem' -CAcreateserial \\
                -out server-cert.pem -days -1 -extfile server.ext
            cd - >/dev/null
            mkdir -p '\(caOnly)' '\(psk)' '\(otherPSK)'
            cp '\(good)/ca-cert.pem' '\(caOnly)/'
            printf 'qemu:%s\\n' "$(openssl rand -hex 32)" > '\(psk)/keys.psk'
            printf 'qemu:%s\\n' "$(openssl rand -hex 32)" > '\(otherPSK)/keys.psk'
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script]
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw NSError(domain: "TLSTestCredentials", code: Int(process.terminationStatus),
                          userInfo: [NSLocalizedDescriptionKey: "openssl failed: " + String(decoding: message, as: UTF8.self)])
        }
    }

    static func x509(_ dir: String, _ endpoint: String, extra: String = "") -> [String] {
        ["-object", "tls-creds-x509,id=tls0,dir=\(dir),endpoint=\(endpoint)\(extra)"]
    }

    static func psk(_ dir: String, _ endpoint: String) -> [String] {
        ["-object", "tls-creds-psk,id=tls0,dir=\(dir),endpoint=\(endpoint)"]
    }
}
