import TLS

/// QMP's `object-add` and `object-del` for the TLS objects (`tls-creds-x509`, `tls-creds-psk`,
/// `authz-simple`), with QEMU 7.2's flat arguments:
/// `{"qom-type": "tls-creds-x509", "id": "tls0", "dir": "/pki", "endpoint": "server", "verify-peer": true}`.
enum QMPObjectCommands {
    static let properties = ["qom-type", "id", "dir", "endpoint", "verify-peer", "username", "identity"]

    static func register(in table: QMPCommandTable, objects: TLSObjectRegistry) {
        table.register(QMPCommand("object-add", arguments: properties) { args in
            let type = try args.string("qom-type")
            let texts = try args.members.filter { $0.0 != "qom-type" }.map { name, value -> (key: String, value: String) in
                switch value {
                case .string(let text): return (name, text)
                case .bool(let flag): return (name, flag ? "on" : "off")
                default: throw QMPError.wrongType(name, expected: name == "verify-peer" ? "bool" : "string")
                }
            }
            do { try objects.add(try TLSObject.make(type: type, properties: texts)) } catch {
                throw QMPError("\(error)")
            }
            return .emptyObject
        })
        table.register(QMPCommand("object-del", arguments: ["id"]) { args in
            do { try objects.remove(id: try args.string("id")) } catch let error as TLSObjectRegistry.LookupError {
                throw QMPError("\(error)")
            }
            return .emptyObject
        })
    }
}
