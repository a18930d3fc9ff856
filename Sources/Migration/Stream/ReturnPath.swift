import Glibc

/// The destination's single answer to the source, on the same socket (see StreamFormat.swift).
enum ReturnPath {
    enum Reply: Equatable {
        case ack
        case error(String)
    }

    static func sendAck(on socket: MigrationStream) throws {
        var tag = StreamFormat.ReplyTag.ack.rawValue
        try withUnsafeBytes(of: &tag) { try socket.writeAll($0, operation: "acknowledging the migration") }
    }

    static func sendError(_ message: String, on socket: MigrationStream) throws {
        let text = Array(message.utf8.prefix(StreamFormat.maxErrorMessageBytes))
        var bytes: [UInt8] = [StreamFormat.ReplyTag.error.rawValue]
        var length = UInt32(text.count).littleEndian
        withUnsafeBytes(of: &length) { bytes += $0 }
        bytes += text
        try bytes.withUnsafeBytes { try socket.writeAll($0, operation: "reporting an error to the source") }
    }

    static func readReply(from socket: MigrationStream) throws -> Reply {
        let operation = "waiting for the destination's acknowledgement"
        var tag: UInt8 = 0
        try socket.readExact(into: &tag, count: 1, operation: operation)
        switch StreamFormat.ReplyTag(rawValue: tag) {
        case .ack:
            return .ack
        case .error:
            return .error(try readErrorMessage(from: socket, operation: operation))
        case .pageRequest?, .missingPages?, .resumed?:
            throw MigrationError.malformedStream("the destination sent postcopy reply 0x\(String(tag, radix: 16)) to a migration without postcopy")
        case nil:
            throw MigrationError.malformedStream("the destination answered with unknown tag 0x\(String(tag, radix: 16))")
        }
    }

    /// The body of an error reply (after its tag): length u32, then that many UTF-8 bytes.
    static func readErrorMessage(from socket: MigrationStream, operation: String) throws -> String {
        var length: UInt32 = 0
        try socket.readExact(into: &length, count: 4, operation: operation)
        let count = Int(UInt32(littleEndian: length))
        guard count <= StreamFormat.maxErrorMessageBytes else {
            throw MigrationError.malformedStream("the destination's error message claims \(count) bytes")
        }
        var text = [UInt8](repeating: 0, count: max(count, 1))
        try text.withUnsafeMutableBytes { try socket.readExact(into: $0.baseAddress!, count: count, operation: operation) }
        text.removeLast(text.count - count)
        return String(decoding: text, as: UTF8.self)
    }
}
