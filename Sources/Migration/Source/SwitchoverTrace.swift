import Glibc

/// `SWIFTKVM_TRACE_SWITCHOVER=1` in the environment: both sides print one line to stderr per
/// switchover phase, `switchover <side> <phase> <microseconds> at <CLOCK_MONOTONIC µs>`, each
/// measured from the previous mark (both sides share the clock on one host, so lines line up). Used to find where downtime goes; when unset, a mark is one branch.
struct SwitchoverTrace {
    static let enabled = getenv("SWIFTKVM_TRACE_SWITCHOVER") != nil

    private let side: String
    private var last: UInt64

    init(side: String) {
        self.side = side
        last = Self.enabled ? MonotonicClock.nanoseconds() : 0
    }

    /// Prints the time since the previous mark (or since `init`) under `phase`.
    mutating func mark(_ phase: @autoclosure () -> String) {
        guard Self.enabled else { return }
        let now = MonotonicClock.nanoseconds()
        Self.print(side: side, phase: phase(), nanoseconds: now - last, at: now)
        last = now
    }

    static func print(side: String, phase: String, nanoseconds: UInt64, at now: UInt64 = MonotonicClock.nanoseconds()) {
        fputs("switchover \(side) \(phase) \(nanoseconds / 1000) at \(now / 1000)\n", stderr)
    }
}
