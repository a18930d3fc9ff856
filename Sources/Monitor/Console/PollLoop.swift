import Glibc

/// A poll(2) loop over descriptors that come and go. Each watch says, every round, whether
/// it wants to read or write; its handler gets the returned events.
final class PollLoop {
    typealias Interest = (read: Bool, write: Bool)

    private final class Watch {
        let fd: Int32
        let interest: () -> Interest
        let handle: (Int16) -> Void
        var active = true
        init(fd: Int32, interest: @escaping () -> Interest, handle: @escaping (Int16) -> Void) {
            self.fd = fd; self.interest = interest; self.handle = handle
        }
    }

    struct Token: Hashable { fileprivate let id: Int }

    private var watches: [Int: Watch] = [:]
    private var nextID = 0

    @discardableResult
    func watch(fd: Int32, interest: @escaping () -> Interest = { (true, false) },
               handle: @escaping (Int16) -> Void) -> Token {
        nextID += 1
        watches[nextID] = Watch(fd: fd, interest: interest, handle: handle)
        return Token(id: nextID)
    }

    func unwatch(_ token: Token) {
        watches[token.id]?.active = false
        watches[token.id] = nil
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and runs the handlers of ready
    /// descriptors. A signal interrupting the wait is not an error.
    func runOnce(timeoutMilliseconds: Int32) throws {
        var round: [(Watch, pollfd)] = []
        for (_, watch) in watches.sorted(by: { $0.key < $1.key }) {
            let interest = watch.interest()
            var events: Int16 = 0
            if interest.read { events |= Int16(POLLIN) }
            if interest.write { events |= Int16(POLLOUT) }
            // Hang-ups are reported even with no events asked for; skip idle descriptors.
            if events != 0 { round.append((watch, pollfd(fd: watch.fd, events: events, revents: 0))) }
        }
        var fds = round.map { $0.1 }
        let ready = poll(&fds, nfds_t(fds.count), timeoutMilliseconds)
        if ready < 0 {
            if errno == EINTR { return }
            throw FrontendError.pollFailed(errno: errno)
        }
        for (index, entry) in round.enumerated() where fds[index].revents != 0 && entry.0.active {
            entry.0.handle(fds[index].revents)
        }
    }
}
