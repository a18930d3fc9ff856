import Glibc
import Machine
import SystemSupport

/// The threads that compress RAM batches for one StreamWriter (multifd-channels of them, at
/// most one per online CPU). The writer fills a slot with a batch's pages and submits it; it
/// writes the slots back in the order it submitted them, so the wire stays one ordered stream
/// with one digest. Each slot keeps its own libzstd context and buffers for the whole migration.
final class CompressionPool: @unchecked Sendable {
    /// One batch on its way through a compression thread.
    final class Slot {
        let compressor: BatchCompressor
        /// The batch's normal pages, copied in order.
        let pages: UnsafeMutableRawPointer
        var plainBytes = 0
        /// Records the writer had buffered before this batch: they go out in front of it.
        var prefix: [UInt8] = []
        var region = 0
        var firstPage = 0
        var kinds: [UInt8] = []
        // Set by the compressing thread, read once `done` (under the pool's lock).
        var frameLength: Int?
        /// From submission to compressed: queueing and waking a thread included, since the
        /// batch can go out only then.
        var nanoseconds: UInt64 = 0
        var submittedAt: UInt64 = 0
        var done = false

        init?(level: Int) {
            guard let compressor = BatchCompressor(level: level) else { return nil }
            self.compressor = compressor
            pages = .allocate(byteCount: StreamFormat.maxBatchPages * GuestRAMRegion.pageSize, alignment: GuestRAMRegion.pageSize)
        }

        deinit { pages.deallocate() }
    }

    let threads: Int
    private let lock = Mutex()
    private var queued: [Slot] = []
    private var stopping = false
    // The writer's thread only:
    private var free: [Slot]
    /// Submitted and not yet written, oldest first.
    private var inFlight: [Slot] = []

    /// nil when libzstd cannot make its contexts or a thread cannot start.
    init?(threads requested: Int, level: Int) {
        threads = max(1, min(requested, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))))
        // One more slot than threads: the writer fills or writes one while all threads compress.
        var slots: [Slot] = []
        for _ in 0...threads {
            guard let slot = Slot(level: level) else { return nil }
            slots.append(slot)
        }
        free = slots
        for index in 0..<threads {
            do { try HostThread.detach(name: "zstd\(index)") { [self] in work() } } catch {
                stop()
                return nil
            }
        }
    }

    /// Ends the threads once they finish what they are compressing; the writer is done with them.
    func stop() {
        lock.withLock { stopping = true }
        lock.broadcast()
    }

    var hasInFlight: Bool { !inFlight.isEmpty }

    /// A slot to fill; when every slot is busy, the oldest is waited for and handed to `write` first.
    func freeSlot(writing write: (Slot) throws -> Void) rethrows -> Slot {
        if free.isEmpty { try writeOldest(write) }
        let slot = free.removeLast()
        slot.done = false
        slot.frameLength = nil
        return slot
    }

    /// Gives back a slot taken but not submitted (its batch turned out to hold only zero pages).
    func giveBack(_ slot: Slot) { free.append(slot) }

    func submit(_ slot: Slot) {
        slot.submittedAt = MonotonicClock.nanoseconds()
        inFlight.append(slot)
        lock.withLock { queued.append(slot) }
        lock.broadcast()
    }

    /// Hands every submitted slot to `write`, in order, each once it is compressed.
    func drain(writing write: (Slot) throws -> Void) rethrows {
        while !inFlight.isEmpty { try writeOldest(write) }
    }

    private func writeOldest(_ write: (Slot) throws -> Void) rethrows {
        let slot = inFlight.removeFirst()
        lock.lock()
        if let waiting = queued.firstIndex(where: { $0 === slot }) {
            // No thread has taken it yet: compressing it here beats waiting for one to wake
            // (tens of ms on a loaded machine, while the link may run dry).
            queued.remove(at: waiting)
            lock.unlock()
            compress(slot)
        } else {
            while !slot.done { _ = lock.wait() }
            lock.unlock()
        }
        // A slot whose write failed is not reused: the migration has failed.
        try write(slot)
        free.append(slot)
    }

    private func work() {
        while true {
            lock.lock()
            while queued.isEmpty && !stopping { _ = lock.wait() }
            if stopping {
                lock.unlock()
                return
            }
            let slot = queued.removeFirst()
            lock.unlock()
            compress(slot)
        }
    }

    private func compress(_ slot: Slot) {
        var run = iovec(iov_base: slot.pages, iov_len: slot.plainBytes)
        let length = withUnsafePointer(to: &run) {
            slot.compressor.compress(UnsafeBufferPointer(start: $0, count: 1), plainBytes: slot.plainBytes)
        }
        let took = MonotonicClock.nanoseconds() - slot.submittedAt
        lock.withLock {
            slot.frameLength = length
            slot.nanoseconds = took
            slot.done = true
        }
        lock.broadcast()
    }
}
