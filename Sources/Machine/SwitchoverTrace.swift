import Glibc
import SystemSupport

/// `SWIFTKVM_TRACE_SWITCHOVER=1` in the environment: both sides print one line to stderr per
/// switchover phase, `switchover <side> <phase> <microseconds> at <CLOCK_MONOTONIC µs>`, each
/// measured from the previous mark (both sides share the clock on one host, so lines line up).
/// Source, before pass 1: connect, setup-stream-header, setup-dirty-logging-on (or a
/// handoff's setup). Source at the switchover: pause, collect-dirty-pages, final-pass, final-pass-flush, save-state,
/// write-state-end-digest, wait-ack. Destination: pass-N (when each pass ended),
/// stop-prefaulter, state-end-digest, load-state, send-ack, resume. A mapped-ram restore prints
/// side `restore`: header, metadata, map-ram or read-ram, load-state, resume. The machine adds side
/// `machine`: each KVM_GET_DIRTY_LOG of a sync, and the KVM calls of a state load. Used to find
/// where downtime goes; when unset, a mark is one branch. It lives here, below the migration
/// layer, so both layers print through the one type.
public struct SwitchoverTrace {
    public static let enabled = getenv("SWIFTKVM_TRACE_SWITCHOVER") != nil

    private let side: String
    private var last: UInt64

    public init(side: String) {
        self.side = side
        last = Self.enabled ? MonotonicClock.nanoseconds() : 0
    }

    /// Prints the time since the previous mark (or since `init`) under `phase`.
    public mutating func mark(_ phase: @autoclosure () -> String) {
        guard Self.enabled else { return }
        let now = MonotonicClock.nanoseconds()
        fputs("switchover \(side) \(phase()) \((now - last) / 1000) at \(now / 1000)\n", stderr)
        last = now
    }
}
