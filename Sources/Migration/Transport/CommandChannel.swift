import Glibc

/// The `exec:` and `stdio` transports: a migration carried by a child command's standard
/// input and output (`exec:ssh host swiftkvm -incoming stdio ...`), or by our own.
enum CommandChannel {
    /// Starts `/bin/sh -c command` with one end of a socket pair as both its stdin and stdout
    /// (its stderr stays ours, so its complaints reach the user), and returns the other end.
    /// The child is reaped in the background; it may outlive the migration (it may be the
    /// destination machine itself).
    static func spawn(_ command: String, uri: MigrationURI) throws -> MigrationSocket {
        var fds: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &fds) == 0 else {
            throw MigrationError.connectFailed(uri: uri.description, errno: errno)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 0)
        posix_spawn_file_actions_adddup2(&actions, fds[1], 1)
        let arguments: [UnsafeMutablePointer<CChar>?] = [String](["/bin/sh", "-c", command]).map { strdup($0) }
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, "/bin/sh", &actions, nil, arguments + [nil], environ)
        Glibc.close(fds[1])
        guard result == 0 else {
            Glibc.close(fds[0])
            throw MigrationError.connectFailed(uri: uri.description, errno: result)
        }
        reapInBackground(pid)
        return MigrationSocket(fd: fds[0])
    }

    /// Our own stdin and stdout (`-incoming stdio`), duplicated so closing the migration's
    /// descriptors leaves 0 and 1 in place.
    static func standardIO() -> MigrationSocket {
        MigrationSocket(readFD: fcntl(0, F_DUPFD_CLOEXEC, 3), writeFD: fcntl(1, F_DUPFD_CLOEXEC, 3))
    }

    private static func reapInBackground(_ pid: pid_t) {
        var thread = pthread_t()
        let box = UnsafeMutablePointer<pid_t>.allocate(capacity: 1)
        box.initialize(to: pid)
        let started = pthread_create(&thread, nil, { raw in
            // SAFETY: `raw` is the pid box allocated above, owned and freed by this thread.
            let box = raw!.assumingMemoryBound(to: pid_t.self)
            var status: Int32 = 0
            while waitpid(box.pointee, &status, 0) < 0 && errno == EINTR {}
            box.deallocate()
            return nil
        }, box)
        if started == 0 { pthread_detach(thread) } else { box.deallocate() }
    }
}
