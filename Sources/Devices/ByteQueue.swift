/// A fixed-capacity FIFO of bytes in a ring, so popping the oldest byte costs nothing.
struct ByteQueue {
    private var storage: [UInt8]
    private var head = 0
    private(set) var count = 0

    init(capacity: Int) {
        storage = [UInt8](repeating: 0, count: max(1, capacity))
    }

    var capacity: Int { storage.count }
    var isEmpty: Bool { count == 0 }
    var isFull: Bool { count == storage.count }

    /// Appends what fits; returns how many bytes were taken.
    mutating func append(contentsOf bytes: ArraySlice<UInt8>) -> Int {
        let taken = min(bytes.count, storage.count - count)
        var source = bytes.startIndex
        for _ in 0..<taken {
            storage[(head + count) % storage.count] = bytes[source]
            count += 1
            source += 1
        }
        return taken
    }

    mutating func popFirst() -> UInt8? {
        guard count > 0 else { return nil }
        let byte = storage[head]
        head = (head + 1) % storage.count
        count -= 1
        return byte
    }

    mutating func removeAll() {
        head = 0
        count = 0
    }

    var contents: [UInt8] {
        (0..<count).map { storage[(head + $0) % storage.count] }
    }
}
