/// Identifies one observer of an `ObserverList`, for `remove`.
public struct ObserverToken: Hashable, Sendable {
    let id: Int
}

/// The parties that listen for one kind of event (run-state changes, guest resets, migration
/// notifications), safe to use from any thread. Values are delivered one at a time, in the
/// order they were published, on the publishing thread, to every observer in the order they
/// were added. An observer must be short and must not publish to the same list.
public final class ObserverList<Value>: @unchecked Sendable {
    public typealias Observer = (Value) -> Void

    private let lock = Mutex()
    /// Held for a whole delivery, so values published from two threads reach every observer
    /// in one order.
    private let deliveryLock = Mutex()
    private var observers: [(ObserverToken, Observer)] = []
    private var nextID = 0

    public init() {}

    @discardableResult
    public func add(_ observer: @escaping Observer) -> ObserverToken {
        lock.withLock {
            nextID += 1
            let token = ObserverToken(id: nextID)
            observers.append((token, observer))
            return token
        }
    }

    public func remove(_ token: ObserverToken) {
        lock.withLock { observers.removeAll { $0.0 == token } }
    }

    public func publish(_ value: Value) {
        deliveryLock.withLock { deliver(value) }
    }

    /// Runs `body` (which decides what to publish, if anything) and publishes its result in
    /// one step, so no other publication comes between the change and its notification.
    public func publishing(_ body: () -> Value?) {
        deliveryLock.withLock {
            guard let value = body() else { return }
            deliver(value)
        }
    }

    private func deliver(_ value: Value) {
        for (_, observer) in lock.withLock({ observers }) { observer(value) }
    }
}
