import Glibc
import SystemSupport

/// QEMU's (GnuTLS's) `keys.psk`: one `username:hexkey` line per identity, e.g.
/// `qemu:9b3f...` made with `psktool -u qemu -p keys.psk` or `printf 'qemu:%s\n' $(openssl rand -hex 32)`.
struct PreSharedKeys: Equatable {
    private(set) var keys: [String: [UInt8]] = [:]

    init(path: String) throws {
        let data: [UInt8]
        do { data = try HostFile.readAll(path, limit: 1 << 20) } catch {
            throw TLSError.credentialsFile(path: path, reason: "\(error)")
        }
        try self.init(text: String(decoding: data, as: UTF8.self), path: path)
    }

    init(text: String, path: String) throws {
        for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
            var trimmed = line.drop(while: blank)
            while let last = trimmed.last, blank(last) { trimmed = trimmed.dropLast() }
            if trimmed.isEmpty { continue }
            let bad = { (why: String) in TLSError.credentialsFile(path: path, reason: "line \(number + 1): \(why)") }
            guard let colon = trimmed.firstIndex(of: ":") else { throw bad("expected username:hexkey") }
            let name = String(trimmed[..<colon])
            let hex = trimmed[trimmed.index(after: colon)...]
            guard !name.isEmpty else { throw bad("the username is empty") }
            guard let key = Self.bytes(hex: hex), !key.isEmpty else { throw bad("the key is not an even number of hex digits") }
            keys[name] = key
        }
        guard !keys.isEmpty else { throw TLSError.credentialsFile(path: path, reason: "no username:hexkey line") }
    }

    private static func bytes(hex: Substring) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let high = nibble(digits[index]), let low = nibble(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func nibble(_ digit: UInt8) -> UInt8? {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return digit - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
