import Glibc
import KVM
import SystemSupport

/// What a vCPU thread reports to the machine, on that thread.
protocol VCPUThreadDelegate: AnyObject {
    /// KVM_RUN was interrupted (a kick, a signal): the machine may want something first.
    func vcpuInterrupted(_ vcpu: VCPUThread)
    /// Any other exit: shutdown, halt, system event, an error.
    func vcpuExited(_ vcpu: VCPUThread, _ exit: VCPUExit)
}

/// One vCPU and the thread that runs it: a small state machine, as Firecracker's vCPUs are.
/// The machine sends it events - run, park, end - and work (saving, restoring and inspecting
/// its state), done on its own thread while it runs, as KVM prefers, and on the caller's while
/// it is parked; it answers with the state it is in. A vCPU thread never waits for another
/// vCPU, so a guest event on one vCPU cannot deadlock against the machine pausing the rest.
final class VCPUThread {
    enum State: Equatable {
        case paused
        case running
        case exited
    }

    static let kickSignal = SIGUSR1

    let vcpu: VCPU
    var index: Int { vcpu.id }
    private let control = Mutex()
    private var wanted = State.paused
    /// What the thread is doing: `running` from the moment it leaves its wait until it parks
    /// again, so `paused` means it is certainly outside KVM_RUN.
    private var current = State.paused
    private var work: [WorkItem] = []
    /// Another thread is using the parked vCPU (`perform`): the thread stays parked until it
    /// is done.
    private var borrowed = false
    private var thread: HostThread?
    private var kernelThreadID = 0

    private final class WorkItem {
        let body: () -> Void
        var done = false
        init(_ body: @escaping () -> Void) { self.body = body }
    }

    /// Where the guest's port and MMIO accesses go.
    private unowned let handler: VCPUExitHandler

    init(vcpu: VCPU, handler: VCPUExitHandler) {
        self.vcpu = vcpu
        self.handler = handler
    }

    func start(delegate: VCPUThreadDelegate) throws {
        HostThread.installKickHandler(signal: Self.kickSignal)
        thread = try HostThread(name: "vcpu\(vcpu.id)") { [unowned self] in self.loop(delegate) }
        control.withLock { while kernelThreadID == 0 { control.wait() } }
    }

    /// The kernel's id for the thread, as `info cpus` shows it.
    var threadID: Int { control.withLock { kernelThreadID } }

    var isCurrentThread: Bool { HostThread.currentKernelThreadID() == threadID }

    var state: State { control.withLock { current } }

    // MARK: Events

    /// Asks the thread to run the guest, park or end; returns at once (see `waitUntilParked`).
    func send(_ event: State) {
        let kickNeeded: Bool = control.withLock {
            guard wanted != .exited else { return false }
            wanted = event
            control.broadcast()
            return event != .running && current == .running
        }
        if kickNeeded { kick() }
    }

    /// Waits until the thread is outside KVM_RUN and parked (or ended). Only meaningful once
    /// `send(.paused)` was sent and nobody can send `.running` meanwhile; never from this thread.
    func waitUntilParked() {
        control.lock()
        while current == .running && thread != nil {
            control.unlock()
            kick()
            control.lock()
            if current == .running { control.wait(timeoutNanoseconds: 50_000_000) }
        }
        control.unlock()
    }

    /// Ends the thread and waits for it.
    func finish() {
        send(.exited)
        kick()
        thread?.join()
        thread = nil
    }

    /// Runs `body` with the vCPU outside KVM_RUN and returns its result: on this thread while
    /// the vCPU is parked and meant to stay so (the vCPU thread waits until it is done), else
    /// on the vCPU's own thread between two entries into the guest (it is kicked out of
    /// KVM_RUN for it). On the vCPU's thread itself it runs at once. Calls never overlap.
    func perform<T>(_ body: @escaping (VCPU) throws -> T) throws -> T {
        if isCurrentThread || thread == nil { return try body(vcpu) }
        var result: Result<T, Error> = .failure(MachineError.vcpuThreadEnded(index: index))
        let vcpu = self.vcpu
        control.lock()
        guard current != .exited else {
            control.unlock()
            throw MachineError.vcpuThreadEnded(index: index)
        }
        while borrowed { control.wait() }
        // A vCPU parked to stay parked (a switchover, `info registers` while paused) is used
        // from this thread: handing the work to its thread would wait for the scheduler to run
        // it, measured at 0.5-20 ms per vCPU here under load. KVM only asks for the owning
        // thread for speed (a VMCS reload on the next entry, microseconds).
        if current == .paused && wanted == .paused && work.isEmpty {
            borrowed = true
            control.unlock()
            defer { control.withLock { borrowed = false; control.broadcast() } }
            return try body(vcpu)
        }
        let item = WorkItem { result = Result { try body(vcpu) } }
        work.append(item)
        control.broadcast()
        while !item.done && current != .exited {
            if current == .running {
                control.unlock()
                kick()
                control.lock()
            }
            if !item.done { control.wait(timeoutNanoseconds: 50_000_000) }
        }
        control.unlock()
        return try result.get()
    }

    /// Makes KVM_RUN return now (signal) or at its next entry (immediate_exit).
    func kick() {
        vcpu.requestImmediateExit()
        thread?.kick(signal: Self.kickSignal)
    }

    // MARK: The thread

    private func loop(_ delegate: VCPUThreadDelegate) {
        control.withLock {
            kernelThreadID = HostThread.currentKernelThreadID()
            control.broadcast()
        }
        while true {
            control.lock()
            while true {
                if borrowed {
                    control.wait()
                    continue
                }
                if !work.isEmpty {
                    let item = work.removeFirst()
                    control.unlock()
                    item.body()
                    control.lock()
                    item.done = true
                    control.broadcast()
                    continue
                }
                if wanted == .exited {
                    current = .exited
                    control.broadcast()
                    control.unlock()
                    return
                }
                if wanted == .running { break }
                if current != .paused {
                    current = .paused
                    control.broadcast()
                }
                control.wait()
            }
            current = .running
            control.unlock()

            let exit: VCPUExit
            do {
                exit = try vcpu.run(handler: handler)
            } catch {
                exit = .internalError(suberror: UInt32.max, data: [])
            }
            if exit == .interrupted {
                delegate.vcpuInterrupted(self)
            } else {
                delegate.vcpuExited(self, exit)
            }
        }
    }
}
