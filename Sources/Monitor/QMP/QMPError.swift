/// A QMP error reply: `{"error": {"class": ..., "desc": ...}}`. The classes are QEMU's.
public struct QMPError: Error, Equatable, CustomStringConvertible {
    public enum ErrorClass: String, Sendable {
        case genericError = "GenericError"
        case commandNotFound = "CommandNotFound"
    }

    public var errorClass: ErrorClass
    public var desc: String

    public init(_ errorClass: ErrorClass, _ desc: String) {
        self.errorClass = errorClass
        self.desc = desc
    }

    /// A GenericError, the class QEMU uses for nearly everything.
    public init(_ desc: String) {
        self.init(.genericError, desc)
    }

    public var description: String { "\(errorClass.rawValue): \(desc)" }

    public var json: JSONValue {
        .object([("class", .string(errorClass.rawValue)), ("desc", .string(desc))])
    }

    static func missing(_ name: String) -> QMPError { QMPError("Parameter '\(name)' is missing") }
    static func wrongType(_ name: String, expected: String) -> QMPError {
        QMPError("Invalid parameter type for '\(name)', expected: \(expected)")
    }
    static func unexpected(_ name: String) -> QMPError { QMPError("Parameter '\(name)' is unexpected") }
}
