import Glibc
import SystemSupport
import XCTest

final class HostThreadTests: XCTestCase {
    private func threadName(_ tid: Int) -> String? {
        guard let file = fopen("/proc/self/task/\(tid)/comm", "r") else { return nil }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 64)
        guard fgets(&buffer, 64, file) != nil else { return nil }
        return String(cString: buffer).split(separator: "\n").first.map(String.init)
    }

    func testAJoinedThreadRunsItsBodyUnderItsName() throws {
        let lock = Mutex()
        var seen: (tid: Int, name: String?)?
        let thread = try HostThread(name: "swiftkvm-test-joined") {
            let tid = HostThread.currentKernelThreadID()
            let name = self.threadName(tid)
            lock.withLock { seen = (tid, name) }
        }
        thread.join()
        let result = lock.withLock { seen }
        XCTAssertNotEqual(result?.tid, HostThread.currentKernelThreadID())
        // The kernel keeps 15 bytes of a name.
        XCTAssertEqual(result?.name, "swiftkvm-test-j")
    }

    func testADetachedThreadRunsAndAnnouncesItsEnd() throws {
        let lock = Mutex()
        var name: String?
        var done = false
        try HostThread.detach(name: "detached") {
            let own = self.threadName(HostThread.currentKernelThreadID())
            lock.withLock { name = own; done = true; lock.broadcast() }
        }
        lock.withLock { while !done { lock.wait() } }
        XCTAssertEqual(lock.withLock { name }, "detached")
    }
}
