import Glibc

/// Small errno-checked wrappers over the descriptor calls the consoles, monitor and QMP make.
public enum FileIO {
    public enum ReadResult: Equatable {
        case bytes([UInt8])
        case endOfFile
        case wouldBlock
        case failed(Int32)
    }

    public static func read(_ fd: Int32, upTo count: Int = 65536) -> ReadResult {
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            // SAFETY: read writes at most `count` bytes into the buffer of that capacity.
            let n = Errno.retryingInterrupted { Glibc.read(fd, buffer.baseAddress, count) }
            if n < 0 { failure = errno; initialized = 0 } else { initialized = n }
        }
        if failure == EAGAIN || failure == EWOULDBLOCK { return .wouldBlock }
        if failure != 0 { return .failed(failure) }
        return bytes.isEmpty ? .endOfFile : .bytes(bytes)
    }

    /// Writes what the descriptor takes now; returns the count written, or nil on an error
    /// other than "would block" (a closed peer, for example). `send` with MSG_NOSIGNAL on
    /// sockets so a client that went away does not kill the process with SIGPIPE.
    public static func writeSome(_ fd: Int32, _ bytes: ArraySlice<UInt8>, isSocket: Bool) -> Int? {
        guard !bytes.isEmpty else { return 0 }
        let n = bytes.withUnsafeBytes { raw in
            // SAFETY: the pointer and count describe the slice's own storage.
            Errno.retryingInterrupted {
                isSocket ? send(fd, raw.baseAddress, raw.count, Int32(MSG_NOSIGNAL))
                         : Glibc.write(fd, raw.baseAddress, raw.count)
            }
        }
        if n >= 0 { return n }
        if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
        return nil
    }

    /// Blocking write of everything (terminal and file output); waits when the descriptor is
    /// non-blocking and full. Returns false when the descriptor failed.
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var rest = bytes[...]
        while !rest.isEmpty {
            guard let n = writeSome(fd, rest, isSocket: false) else { return false }
            if n == 0 {
                var pending = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&pending, 1, 100)
            }
            rest = rest.dropFirst(n)
        }
        return true
    }

    public static func writeAll(_ fd: Int32, _ text: String) {
        writeAll(fd, Array(text.utf8))
    }

    public static func setNonBlocking(_ fd: Int32) {
        let flags = fcntl(fd, F_GETFL)
        if flags >= 0 { _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    public static func setCloseOnExec(_ fd: Int32) {
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
    }

    /// A non-blocking pipe: (read end, write end).
    public static func makePipe() throws -> (Int32, Int32) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw SystemCallError(call: "pipe", errno: errno) }
        for fd in fds { setNonBlocking(fd); setCloseOnExec(fd) }
        return (fds[0], fds[1])
    }

    public static func close(_ fd: Int32) {
        if fd >= 0 { _ = Glibc.close(fd) }
    }
}
