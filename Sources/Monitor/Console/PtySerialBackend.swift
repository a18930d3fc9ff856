import Glibc
import SystemSupport

/// `-serial pty`: a new pseudo-terminal whose slave (`/dev/pts/N`) a user opens with
/// `screen`, `minicom` or `cat`. This process keeps a descriptor of the slave open itself, so
/// the master never reports a hang-up between users (the poll loop would spin on it) and a
/// user can come and go. Output nobody reads fills the pty's buffer, then is dropped.
final class PtySerialBackend: SerialBackend {
    private let master: Int32
    private let heldSlave: Int32
    let slavePath: String
    private var token: PollLoop.Token?
    private var loop: PollLoop?

    /// Linux's `_IOR('T', 0x30, unsigned int)` and `_IOW('T', 0x31, int)`; Swift does not import
    /// these function-like macros, and glibc's posix_openpt/ptsname need _XOPEN_SOURCE.
    private static let getPtyNumber: UInt = 0x8004_5430
    private static let setPtyLock: UInt = 0x4004_5431

    init() throws {
        let master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw FrontendError.ptyFailed(operation: "open /dev/ptmx", errno: errno) }
        var unlock: Int32 = 0
        var number: UInt32 = 0
        // SAFETY: both requests take a pointer to one 32-bit integer, which these are.
        guard ioctl(master, Self.setPtyLock, &unlock) == 0, ioctl(master, Self.getPtyNumber, &number) == 0 else {
            let code = errno
            Glibc.close(master)
            throw FrontendError.ptyFailed(operation: "unlock", errno: code)
        }
        let path = "/dev/pts/\(number)"
        let slave = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard slave >= 0 else {
            let code = errno
            Glibc.close(master)
            throw FrontendError.ptyFailed(operation: "open \(path)", errno: code)
        }
        // Raw, as QEMU sets it: guest bytes pass unchanged, no echo, no line discipline.
        var mode = termios()
        if tcgetattr(slave, &mode) == 0 {
            cfmakeraw(&mode)
            _ = tcsetattr(slave, TCSANOW, &mode)
        }
        FileIO.setNonBlocking(master)
        self.master = master
        self.heldSlave = slave
        self.slavePath = path
    }

    var chardevFilename: String { "pty:" + slavePath }

    func writeGuestOutput(_ bytes: [UInt8]) {
        _ = FileIO.writeSome(master, bytes[...], isSocket: false)
    }

    func register(in loop: PollLoop, input: GuestInputQueue) {
        self.loop = loop
        token = loop.watch(fd: master, interest: { (!input.isFull, false) }) { [unowned self] _ in
            switch FileIO.read(self.master) {
            case .bytes(let bytes): input.send(bytes)
            case .wouldBlock, .endOfFile: break
            case .failed:
                // The pty itself broke (it never should while the slave is held): stop reading.
                if let token = self.token { self.loop?.unwatch(token) }
                self.token = nil
            }
        }
    }

    func waitForClient() {}

    /// Closing the master hangs up the slave, which discards what its reader has not read
    /// yet: wait while a reader takes it, as long as it keeps taking. The kernel moves what
    /// was written to the master over to the slave asynchronously, so look after a tick.
    func flushBeforeExit() {
        usleep(10_000)
        var unread = Self.unreadBytes(heldSlave)
        var idle: Int32 = 0
        while unread > 0 && idle < ExitFlush.ptyNoProgressMilliseconds {
            usleep(10_000)
            let now = Self.unreadBytes(heldSlave)
            idle = now < unread ? 0 : idle + 10
            unread = now
        }
    }

    /// Bytes written to the master that the slave's reader has not read (FIONREAD).
    private static func unreadBytes(_ slave: Int32) -> Int32 {
        var count: Int32 = 0
        // SAFETY: FIONREAD stores one int through the pointer.
        return ioctl(slave, UInt(FIONREAD), &count) == 0 ? count : 0
    }

    func close() {
        if let token { loop?.unwatch(token) }
        token = nil
        FileIO.close(master)
        FileIO.close(heldSlave)
    }
}
