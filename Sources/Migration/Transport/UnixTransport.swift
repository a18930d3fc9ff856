import Sockets

/// `unix:PATH`: a stale socket file from an earlier run is replaced when listening.
struct UnixTransport: SocketTransport {
    let uri: MigrationURI
    let path: String

    var connectEndpoint: SocketEndpoint { .unix(path: path) }
    var listenEndpoint: SocketEndpoint { .unix(path: path) }
}
