import Sockets

/// `tcp:HOST:PORT`. The destination listens with SO_REUSEADDR, so a port can be used again
/// at once after a migration on it (ping-pong migration); `tcp:0:PORT`, `tcp::PORT` and
/// `tcp:0.0.0.0:PORT` listen on every address, IPv6 dual-stack first as QEMU does.
struct TCPTransport: SocketTransport {
    let uri: MigrationURI
    let host: String
    let port: UInt16

    init(uri: MigrationURI, host: String, port: String) {
        self.uri = uri
        self.host = host
        // MigrationURI.parse admits only 0...65535.
        self.port = UInt16(port) ?? 0
    }

    var connectEndpoint: SocketEndpoint { .tcp(host: host, port: port) }
    var listenEndpoint: SocketEndpoint { .tcp(host: uri.listensOnAllAddresses ? "" : host, port: port) }
}
