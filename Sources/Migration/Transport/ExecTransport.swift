import Glibc
import SystemSupport

/// `exec:COMMAND`: a `/bin/sh -c COMMAND` child whose stdin and stdout carry the stream (an
/// outgoing `exec:ssh host swiftkvm -incoming stdio`, or `-incoming exec:cat file`). Its
/// stderr stays ours, so its complaints reach the user. The child is reaped in the
/// background; it may outlive the migration (it may be the destination machine itself).
struct ExecTransport: MigrationTransport {
    let uri: MigrationURI
    let command: String

    func connect() throws -> OutgoingLink {
        AcknowledgedLink(stream: try spawn())
    }

    func listen() throws -> IncomingEndpoint {
        PreopenedEndpoint(stream: try spawn())
    }

    /// One end of a socket pair becomes the child's stdin and stdout; we keep the other.
    private func spawn() throws -> MigrationStream {
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
        Self.reapInBackground(pid)
        return MigrationStream(fd: fds[0])
    }

    private static func reapInBackground(_ pid: pid_t) {
        // Without the thread the child stays a zombie until swiftkvm exits; nothing else is lost.
        try? HostThread.detach(name: "exec-reaper") {
            var status: Int32 = 0
            _ = Errno.retryingInterrupted { waitpid(pid, &status, 0) }
        }
    }
}
