import Glibc
import SystemSupport

/// A poll(2) loop over descriptors that come and go. Each watch says, every round, whether
/// it wants to read or write; its handler gets the returned events.
///
/// Two additions for TLS clients: a watch may hold input poll(2) cannot see (bytes OpenSSL
/// already took from the socket), which counts as readable at once; and a watch may have a
/// deadline (a handshake's), after which it is dropped and told so.
final class PollLoop {
    typealias Interest = (read: Bool, write: Bool)

    private final class Watch {
        let fd: Int32
        let interest: () -> Interest
        let hasBufferedInput: () -> Bool
        let handle: (Int16) -> Void
        /// CLOCK_MONOTONIC nanoseconds; `expired` runs once it passes.
        let deadline: UInt64?
        let expired: () -> Void
        var active = true
        init(fd: Int32, interest: @escaping () -> Interest, hasBufferedInput: @escaping () -> Bool,
             deadline: UInt64?, expired: @escaping () -> Void, handle: @escaping (Int16) -> Void) {
            self.fd = fd; self.interest = interest; self.hasBufferedInput = hasBufferedInput
            self.deadline = deadline; self.expired = expired; self.handle = handle
        }
    }

    struct Token: Hashable { fileprivate let id: Int }

    private var watches: [Int: Watch] = [:]
    private var nextID = 0

    @discardableResult
    func watch(fd: Int32, interest: @escaping () -> Interest = { (true, false) },
               hasBufferedInput: @escaping () -> Bool = { false },
               handle: @escaping (Int16) -> Void) -> Token {
        add(Watch(fd: fd, interest: interest, hasBufferedInput: hasBufferedInput, deadline: nil, expired: {}, handle: handle))
    }

    /// A watch that ends at `deadline` (CLOCK_MONOTONIC nanoseconds): unless unwatched before,
    /// it is removed then and `expired` runs.
    @discardableResult
    func watch(fd: Int32, until deadline: UInt64, interest: @escaping () -> Interest,
               expired: @escaping () -> Void, handle: @escaping (Int16) -> Void) -> Token {
        add(Watch(fd: fd, interest: interest, hasBufferedInput: { false }, deadline: deadline, expired: expired, handle: handle))
    }

    private func add(_ watch: Watch) -> Token {
        nextID += 1
        watches[nextID] = watch
        return Token(id: nextID)
    }

    func unwatch(_ token: Token) {
        watches[token.id]?.active = false
        watches[token.id] = nil
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever), less when a deadline or buffered input
    /// comes first, and runs the handlers of ready descriptors, then those of expired
    /// deadlines. A signal interrupting the wait is not an error.
    func runOnce(timeoutMilliseconds: Int32) throws {
        var round: [(Watch, pollfd, buffered: Bool)] = []
        var timeout = timeoutMilliseconds
        let now = MonotonicClock.nanoseconds()
        for (_, watch) in watches.sorted(by: { $0.key < $1.key }) {
            if let deadline = watch.deadline {
                let left = Int32(clamping: deadline > now ? (deadline - now + 999_999) / 1_000_000 : 0)
                timeout = timeout < 0 ? left : min(timeout, left)
            }
            let interest = watch.interest()
            var events: Int16 = 0
            if interest.read { events |= Int16(POLLIN) }
            if interest.write { events |= Int16(POLLOUT) }
            let buffered = interest.read && watch.hasBufferedInput()
            if buffered { timeout = 0 }
            // Hang-ups are reported even with no events asked for; skip idle descriptors.
            if events != 0 { round.append((watch, pollfd(fd: watch.fd, events: events, revents: 0), buffered)) }
        }
        var fds = round.map { $0.1 }
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready < 0 {
            if errno == EINTR { return }
            throw FrontendError.pollFailed(errno: errno)
        }
        for (index, entry) in round.enumerated() where entry.0.active {
            let events = fds[index].revents | (entry.buffered ? Int16(POLLIN) : 0)
            if events != 0 { entry.0.handle(events) }
        }
        let after = MonotonicClock.nanoseconds()
        for (id, watch) in watches.sorted(by: { $0.key < $1.key }) where watch.active {
            guard let deadline = watch.deadline, deadline <= after else { continue }
            unwatch(Token(id: id))
            watch.expired()
        }
    }
}
