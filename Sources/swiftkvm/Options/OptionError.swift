import Units

/// A command-line mistake. Each prints as one line naming the option and what to do instead;
/// `main` prints it, then the usage text, and exits with status 1.
enum OptionError: Error, Equatable, CustomStringConvertible {
    case unknownOption(String)
    case unexpectedArgument(String)
    case missingArgument(option: String)
    case invalidSize(option: String, text: String, problem: SizeParseError)
    case memoryTooSmall(text: String)
    case memoryTooLarge(text: String)
    case invalidValue(option: String, value: String, expected: String)
    case unknownProperty(option: String, property: String, supported: [String])
    case missingProperty(option: String, property: String)
    case unsupportedDevice(String)
    case unsupportedFormat(String)
    case smp(text: String, problem: String)
    case unsupported(option: String, reason: String)

    var description: String {
        "swiftkvm: " + message
    }

    private var message: String {
        switch self {
        case let .unknownOption(option):
            return "unknown option '\(option)' (see -help)"
        case let .unexpectedArgument(argument):
            return "unexpected argument '\(argument)' (disk images are given as -drive file=\(argument),format=raw)"
        case let .missingArgument(option):
            return "\(option): missing argument"
        case let .invalidSize(option, text, .tooLarge):
            return "\(option): size '\(text)' is too large"
        case let .invalidSize(option, text, _):
            return "\(option): invalid size '\(text)' (use a number with an optional B, K, M, G, T, P or E suffix)"
        case let .memoryTooSmall(text):
            return "-m \(text): too little memory (at least 2 MiB)"
        case let .memoryTooLarge(text):
            return "-m \(text): too much memory (at most 64 GiB)"
        case let .invalidValue(option, value, expected):
            return "\(option): invalid value '\(value)' (\(expected))"
        case let .unknownProperty(option, property, supported):
            return "\(option): unknown property '\(property)' (supported: \(supported.joined(separator: ", ")))"
        case let .missingProperty(option, property):
            return "\(option): '\(property)=' is required"
        case let .unsupportedDevice(name):
            return "-device: unsupported device '\(name)' (supported: isa-debug-exit)"
        case let .unsupportedFormat(format):
            return "-drive: unsupported format '\(format)' (only format=raw is supported)"
        case let .smp(text, problem):
            return "-smp \(text): \(problem)"
        case let .unsupported(option, reason):
            return "\(option): \(reason)"
        }
    }
}
