import Machine

/// Bytes typed for the guest that its UART has not taken yet. Nothing is dropped: what the
/// guest does not accept now is offered again on the next retry.
final class GuestInputQueue {
    /// Above this many waiting bytes the sources stop being read (back pressure).
    static let highWater = 64 << 10
    /// How often to offer waiting bytes again.
    static let retryMilliseconds: Int32 = 10

    private let console: GuestConsole?
    private var waiting: [UInt8] = []

    init(console: GuestConsole?) {
        self.console = console
    }

    var isEmpty: Bool { waiting.isEmpty }
    var isFull: Bool { waiting.count >= Self.highWater }

    func send(_ bytes: [UInt8]) {
        guard console != nil else { return }
        waiting.append(contentsOf: bytes)
        retry()
    }

    func retry() {
        guard let console, !waiting.isEmpty else { return }
        let accepted = console.sendToGuest(waiting[...])
        waiting.removeFirst(min(max(accepted, 0), waiting.count))
    }
}
