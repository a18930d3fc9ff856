/// printf-style padding helpers, so formatting needs neither Foundation nor C varargs.
enum Pad {
    /// Lower-case hex, zero-padded to `width` digits (`%0*llx`).
    static func hex(_ value: UInt64, _ width: Int) -> String {
        zeros(String(value, radix: 16), width)
    }

    static func zeros(_ digits: String, _ width: Int) -> String {
        digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    /// Right-aligned in a field of `width` (`%*s`).
    static func left(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// Left-aligned in a field of `width` (`%-*s`).
    static func right(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }
}
