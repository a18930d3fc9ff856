/// A command's `arguments` object, with typed accessors whose errors are QEMU's messages.
/// Every member must be declared by the command: an unknown one is an error, as in QEMU.
public struct QMPArguments {
    public let members: [(String, JSONValue)]

    init(_ value: JSONValue?, allowed: [String]) throws {
        switch value {
        case nil, .null?: members = []
        case .object(let list)?: members = list
        default: throw QMPError("QMP input member 'arguments' must be an object")
        }
        if let unknown = members.first(where: { !allowed.contains($0.0) }) { throw QMPError.unexpected(unknown.0) }
    }

    public subscript(name: String) -> JSONValue? { members.first { $0.0 == name }?.1 }

    public func string(_ name: String) throws -> String {
        guard let value = self[name] else { throw QMPError.missing(name) }
        guard case .string(let text) = value else { throw QMPError.wrongType(name, expected: "string") }
        return text
    }

    public func optionalString(_ name: String) throws -> String? {
        self[name] == nil ? nil : try string(name)
    }

    public func optionalBool(_ name: String) throws -> Bool? {
        guard let value = self[name] else { return nil }
        guard case .bool(let flag) = value else { throw QMPError.wrongType(name, expected: "bool") }
        return flag
    }

    /// A non-negative integer (QMP's uint64 and friends).
    public func optionalUnsigned(_ name: String) throws -> UInt64? {
        guard let value = self[name] else { return nil }
        guard case .integer(let number) = value, number >= 0 else {
            throw QMPError.wrongType(name, expected: "uint64")
        }
        return UInt64(number)
    }
}
