import Glibc
import KVM

/// Owns one vCPU's thread and decides when it may run. The guest runs only while the run
/// state is `running` and nobody holds it (the monitor reading registers, a throttle slice,
/// a migration switchover). To take the CPU back: raise a hold, set immediate_exit and signal
/// the thread, then wait until it reports itself parked outside KVM_RUN.
final class VCPURunner {
    static let kickSignal = SIGUSR1

    let vcpu: VCPU
    private let control = ConditionLock()
    private var state: RunState
    private var holds = 0
    private var parked = false
    private var exiting = false
    private var thread: HostThread?
    private(set) var threadID = 0
    /// What to do after an exit: the run state to enter (nil keeps the current one), and a
    /// message to report once that state is in place (so whoever reads the message sees it).
    struct ExitDecision {
        var state: RunState?
        var message: String?
    }
    /// Called on the vCPU thread for every exit other than `.interrupted`.
    var onExit: (VCPUExit) -> ExitDecision = { _ in ExitDecision() }
    var report: (String) -> Void = { _ in }
    /// Called on the vCPU thread whenever KVM_RUN was interrupted, before parking.
    var onInterrupted: () -> Void = {}
    var onStateChange: (RunState) -> Void = { _ in }

    private unowned let handler: VCPUExitHandler

    init(vcpu: VCPU, handler: VCPUExitHandler, initialState: RunState) {
        self.vcpu = vcpu
        self.handler = handler
        self.state = initialState
    }

    func start() throws {
        HostThread.installKickHandler(signal: Self.kickSignal)
        thread = try HostThread(name: "vcpu\(vcpu.id)") { [unowned self] in self.loop() }
        control.withLock { while threadID == 0 { control.wait() } }
    }

    var runState: RunState { control.withLock { state } }

    func setState(_ new: RunState) {
        control.withLock {
            state = new
            control.broadcast()
        }
        onStateChange(new)
    }

    /// Sets the pause reason only if the machine is paused.
    func setPausedReason(_ reason: PauseReason?) {
        let changed: Bool = control.withLock {
            guard case .paused = state else { return false }
            state = .paused(reason)
            return true
        }
        if changed { onStateChange(.paused(reason)) }
    }

    /// Runs `body` with the vCPU out of KVM_RUN; the run state does not change.
    func withParked<T>(_ body: () throws -> T) rethrows -> T {
        park()
        defer { unpark() }
        return try body()
    }

    /// Stops the guest and records why; returns once no guest code runs.
    func pause(reason: PauseReason?) {
        park()
        control.withLock { state = .paused(reason) }
        unpark()
        onStateChange(.paused(reason))
    }

    func stopThread() {
        control.withLock { exiting = true; control.broadcast() }
        kick()
        thread?.join()
    }

    private func park() {
        control.lock()
        holds += 1
        if !isOnVCPUThread {
            while !parked && !exiting && thread != nil {
                kick()
                control.wait(timeoutNanoseconds: 50_000_000)
            }
        }
        control.unlock()
    }

    private func unpark() {
        control.withLock {
            holds -= 1
            control.broadcast()
        }
    }

    /// Makes KVM_RUN return now (signal) or at its next entry (immediate_exit).
    func kick() {
        vcpu.requestImmediateExit()
        thread?.kick(signal: Self.kickSignal)
    }

    private var isOnVCPUThread: Bool { HostThread.currentKernelThreadID() == threadID }

    private func loop() {
        control.withLock {
            threadID = HostThread.currentKernelThreadID()
            control.broadcast()
        }
        while true {
            control.lock()
            while !exiting && !(state.isRunning && holds == 0) {
                parked = true
                control.broadcast()
                control.wait()
            }
            parked = false
            if exiting {
                parked = true
                control.broadcast()
                control.unlock()
                return
            }
            control.unlock()

            let exit: VCPUExit
            do {
                exit = try vcpu.run(handler: handler)
            } catch {
                exit = .internalError(suberror: UInt32.max, data: [])
            }
            if exit == .interrupted {
                onInterrupted()
                continue
            }
            let decision = onExit(exit)
            if let newState = decision.state { setState(newState) }
            if let message = decision.message { report(message) }
        }
    }
}
