import Glibc

/// `stdio` (`-incoming stdio` only): the stream is our stdin, the reply goes to our stdout,
/// as the far end of an outgoing `exec:ssh host swiftkvm -incoming stdio`.
struct StdioTransport: MigrationTransport {
    /// The source's stdin and stdout belong to its monitor and console.
    func connect() throws -> OutgoingLink {
        throw MigrationError.invalidURI("stdio")
    }

    /// Duplicates, so closing the migration's descriptors leaves 0 and 1 in place.
    func listen() throws -> IncomingEndpoint {
        PreopenedEndpoint(stream: MigrationStream(readFD: fcntl(0, F_DUPFD_CLOEXEC, 3), writeFD: fcntl(1, F_DUPFD_CLOEXEC, 3)))
    }
}
