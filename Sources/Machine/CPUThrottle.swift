import Glibc
import KVM
import SystemSupport

/// Auto-converge's CPU throttle, as QEMU does it: with throttle p%, each vCPU sleeps
/// p/(100-p) x 10 ms after every 10 ms of running. A timer thread interrupts the vCPU every
/// 10 ms; the vCPU thread then sleeps its share before re-entering the guest.
final class CPUThrottle {
    private let lock = Mutex()
    private var percent = 0
    private var thread: HostThread?
    private var stopping = false
    var kick: () -> Void = {}

    static let sliceNanoseconds: UInt64 = 10_000_000

    var currentPercent: Int { lock.withLock { percent } }

    func set(percent newValue: Int) {
        let clamped = min(max(newValue, 0), 99)
        let needThread: Bool = lock.withLock {
            percent = clamped
            lock.broadcast()
            return clamped > 0 && thread == nil
        }
        if needThread {
            let t = try? HostThread(name: "throttle") { [unowned self] in self.timerLoop() }
            lock.withLock { thread = t }
        }
    }

    func stop() {
        let t: HostThread? = lock.withLock {
            stopping = true
            lock.broadcast()
            return thread
        }
        t?.join()
    }

    /// Called on the vCPU thread after KVM_RUN was interrupted.
    func sleepIfThrottled() {
        let p = currentPercent
        guard p > 0 else { return }
        let sleepNs = Self.sliceNanoseconds * UInt64(p) / UInt64(100 - p)
        MonotonicClock.sleep(nanoseconds: sleepNs)
    }

    private func timerLoop() {
        while true {
            let active: Bool = lock.withLock {
                if !stopping && percent == 0 { lock.wait() }
                return !stopping
            }
            guard active else { return }
            // One slice, cut short by a signal if one comes: the next kick is due anyway.
            var ts = timespec(tv_sec: 0, tv_nsec: Int(Self.sliceNanoseconds))
            nanosleep(&ts, nil)
            if currentPercent > 0 { kick() }
        }
    }
}
