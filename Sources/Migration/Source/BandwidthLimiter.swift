import Machine
import SystemSupport

/// Keeps the stream under `max-bandwidth`: a token bucket that refills at the limit and holds
/// at most one 100 ms window's worth (QEMU allows max-bandwidth/10 per 100 ms window).
struct BandwidthLimiter {
    private static let windowNs: UInt64 = 100_000_000
    /// Bytes per second; 0 means unlimited.
    var bytesPerSecond: UInt64
    private var windowStart: UInt64 = 0
    private var sentInWindow: UInt64 = 0

    init(bytesPerSecond: UInt64) { self.bytesPerSecond = bytesPerSecond }

    /// Accounts for `bytes` just sent and sleeps (in short steps, checking `shouldStop`) until
    /// the average since the window began is back under the limit.
    mutating func account(_ bytes: UInt64, shouldStop: () -> Bool) {
        guard bytesPerSecond > 0 else { return }
        let now = MonotonicClock.nanoseconds()
        if windowStart == 0 || now >= windowStart + due(sentInWindow) + BandwidthLimiter.windowNs {
            // Idle long enough that the bucket is full again: a new window.
            windowStart = now
            sentInWindow = 0
        }
        sentInWindow += bytes
        let allowedFrom = windowStart + due(sentInWindow)
        let burstEnd = allowedFrom > BandwidthLimiter.windowNs ? allowedFrom - BandwidthLimiter.windowNs : 0
        var current = now
        while current < burstEnd && !shouldStop() {
            MonotonicClock.sleep(nanoseconds: min(burstEnd - current, 20_000_000))
            current = MonotonicClock.nanoseconds()
        }
    }

    /// When `bytes` may have been sent at the limit, relative to the window's start.
    private func due(_ bytes: UInt64) -> UInt64 {
        let (high, low) = bytes.multipliedFullWidth(by: 1_000_000_000)
        guard high < bytesPerSecond else { return .max / 4 }
        return bytesPerSecond.dividingFullWidth((high, low)).quotient
    }
}
