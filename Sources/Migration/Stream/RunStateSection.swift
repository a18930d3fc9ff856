import Machine

/// Whether the guest was running when switchover began (QEMU's "globalstate" section). The
/// destination runs the guest only if it ran on the source: a guest the user had stopped, or
/// one stopped by a shutdown or a panic, arrives stopped the same way, as in QEMU. Streams
/// without this section (format 1.0) are treated as running.
///
/// Bytes: the run state as `info status` spells it after `VM status: `, in UTF-8, at most 64
/// bytes: `running`, `paused`, or `paused (REASON)` with one of QEMU's reasons.
enum RunStateSection {
    static let name = "run-state"
    static let version: UInt32 = 1
    private static let maxBytes = 64

    static func section(for state: RunState) -> StateSection {
        StateSection(name: name, version: version, bytes: Array(state.description.utf8))
    }

    static func decode(_ section: StateSection) throws -> RunState {
        guard section.version == version else {
            throw MigrationError.malformedStream("run-state section version \(section.version) (this swiftkvm reads \(version))")
        }
        let text = section.bytes.count <= maxBytes ? String(decoding: section.bytes, as: UTF8.self) : ""
        if text == "running" { return .running }
        if text == "paused" { return .paused(nil) }
        if text.hasPrefix("paused ("), text.hasSuffix(")"),
           let reason = PauseReason(rawValue: String(text.dropFirst("paused (".count).dropLast())) {
            return .paused(reason)
        }
        throw MigrationError.malformedStream("run-state section holds an unknown state '\(text.prefix(maxBytes))'")
    }
}
