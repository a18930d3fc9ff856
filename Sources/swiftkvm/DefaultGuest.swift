import Glibc

/// Finds the guest swiftkvm boots when given no -kernel or -drive: the committed
/// hello.elf of this checkout (or of SWIFTKVM_GUESTS, a folder holding the built guests).
enum DefaultGuest {
    static let fileName = "hello.elf"

    static func path() -> String? {
        var candidates: [String] = []
        if let dir = getenv("SWIFTKVM_GUESTS") { candidates.append(String(cString: dir) + "/" + fileName) }
        var parts = #filePath.split(separator: "/").map(String.init)
        parts.removeLast(3)  // Sources/swiftkvm/<this file>
        candidates.append("/" + parts.joined(separator: "/") + "/guests/build/" + fileName)
        return candidates.first { access($0, R_OK) == 0 }
    }
}
