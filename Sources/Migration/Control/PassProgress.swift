/// How far the pre-copy pass being sent has got: what a person watching wants to know
/// (share done, wire rate, time left), read from `MigrationStats.currentPass`.
public struct PassProgress: Equatable, Sendable {
    public var pass: Int
    /// Pages this pass sends in all (all of RAM for pass 1, the dirty set after).
    public var totalPages: Int
    /// Pages sent so far, zero pages included.
    public var pagesSent: Int
    /// Bytes this pass has put on the wire so far.
    public var bytesSent: UInt64
    /// Time since the pass started.
    public var elapsedNs: UInt64

    public init(pass: Int, totalPages: Int, pagesSent: Int, bytesSent: UInt64, elapsedNs: UInt64) {
        self.pass = pass; self.totalPages = totalPages; self.pagesSent = pagesSent
        self.bytesSent = bytesSent; self.elapsedNs = elapsedNs
    }

    /// Whole percent of the pass's pages sent, 0...100.
    public var percent: Int {
        guard totalPages > 0 else { return 0 }
        return min(100, max(0, pagesSent) * 100 / totalPages)
    }

    /// Wire rate over the pass so far, bytes per second (0 before any time has passed).
    public var bytesPerSecond: UInt64 {
        guard elapsedNs > 0 else { return 0 }
        return UInt64(Double(bytesSent) * 1e9 / Double(elapsedNs))
    }

    /// Seconds left at the page rate so far, rounded up; nil until a page has gone.
    public var secondsLeft: UInt64? {
        guard pagesSent > 0, elapsedNs > 0 else { return nil }
        let remaining = max(totalPages - pagesSent, 0)
        let seconds = Double(remaining) * Double(elapsedNs) / Double(pagesSent) / 1e9
        return UInt64(seconds.rounded(.up))
    }
}
