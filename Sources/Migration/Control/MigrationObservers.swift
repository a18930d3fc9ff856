import SystemSupport

/// A thread-safe list of observers. Notifications are delivered one at a time, in the order
/// they were published, on the publishing thread; an observer must not publish itself.
final class MigrationObservers: @unchecked Sendable {
    typealias Observer = @Sendable (MigrationNotification) -> Void

    private let lock = Mutex()
    /// Held for a whole delivery, so notifications from the migration thread and from a
    /// cancelling monitor thread reach every observer in one order.
    private let deliveryLock = Mutex()
    private var observers: [(MigrationObserverToken, Observer)] = []
    private var nextID = 0

    func add(_ observer: @escaping Observer) -> MigrationObserverToken {
        lock.withLock {
            nextID += 1
            let token = MigrationObserverToken(id: nextID)
            observers.append((token, observer))
            return token
        }
    }

    func remove(_ token: MigrationObserverToken) {
        lock.withLock { observers.removeAll { $0.0 == token } }
    }

    func publish(_ notification: MigrationNotification) {
        deliveryLock.withLock {
            for (_, observer) in lock.withLock({ observers }) { observer(notification) }
        }
    }

    /// Runs `body` (which decides what to publish) and publishes its result in one step, so
    /// no other publication can come between the change and its notification.
    func publishing(_ body: () -> MigrationNotification?) {
        deliveryLock.withLock {
            guard let notification = body() else { return }
            for (_, observer) in lock.withLock({ observers }) { observer(notification) }
        }
    }
}
