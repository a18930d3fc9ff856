import Glibc

/// How long a peer may make no progress before we give up on it, and other transport sizes.
enum TransportLimits {
    /// A write or a read on a connected stream (including the source waiting for the ack).
    /// A variable only so tests can shorten it.
    static var stallTimeoutSeconds = 10
    /// The destination waiting for more data: the source may spend a while between passes.
    /// Also the bound on the total time the destination waits without progress (a whole
    /// record, or `progressBytes`); `SWIFTKVM_MIGRATION_IDLE_TIMEOUT` (seconds, fractions
    /// allowed) overrides it, so tests need not wait a minute. A variable so tests can set it.
    static var incomingIdleTimeoutSeconds: Double = idleTimeoutFromEnvironment() ?? 60
    /// Progress for the idle bound: this many bytes arriving count as progress even inside
    /// one record, so a slow but honest source (a low max-bandwidth) is not cut off.
    static let progressBytes = 64 * 1024
    /// After refusing a stream, the destination reads and drops what the source still sends
    /// so its error reaches the source before the connection is reset; this long in all.
    static let drainSeconds = 2.0
    static let drainMaxBytes = 64 << 20
    /// The whole TLS handshake, and the destination's verdict on the source's identity after it.
    static let tlsHandshakeSeconds = 10
    /// Outgoing connection setup.
    static let connectTimeoutSeconds = 10
    /// Socket buffers: large enough to keep a 4 MiB batch moving without many wake-ups.
    static let socketBufferBytes: Int32 = 4 << 20

    private static func idleTimeoutFromEnvironment() -> Double? {
        guard let raw = getenv("SWIFTKVM_MIGRATION_IDLE_TIMEOUT"), let seconds = Double(String(cString: raw)),
              seconds > 0 else { return nil }
        return seconds
    }
}
