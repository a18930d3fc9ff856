import KVM
import SystemSupport

/// The machine's run state and its vCPUs. The guest runs only while the state is `running`
/// and nobody holds the vCPUs (the monitor resetting, a migration saving or loading state, a
/// guest-requested reset). Holding sends every vCPU `paused` and waits until each is parked
/// outside KVM_RUN; letting go sends `running` again if the state allows it.
///
/// Calls from vCPU threads (a guest shutting down, resetting) never wait for their own vCPU,
/// and the only one that waits for the others is the one vCPU carrying out a guest reset.
final class RunControl {
    let vcpus: [VCPUThread]
    private let lock = Mutex()
    private var state: RunState
    private var holds = 0
    private var resetPending = false
    private var resetInProgress = false
    /// Told of every change of the run state, outside the lock.
    let stateObservers = ObserverList<RunState>()

    init(vcpus: [VCPUThread], initialState: RunState) {
        self.vcpus = vcpus
        self.state = initialState
    }

    var runState: RunState { lock.withLock { state } }

    /// Changes the run state and tells every vCPU; does not wait for them to park.
    func setState(_ new: RunState) {
        lock.withLock {
            state = new
            sendRunOrPark()
        }
        stateObservers.publish(new)
    }

    /// Sets the pause reason only if the machine is paused.
    func setPausedReason(_ reason: PauseReason?) {
        let changed: Bool = lock.withLock {
            guard case .paused = state else { return false }
            state = .paused(reason)
            return true
        }
        if changed { stateObservers.publish(.paused(reason)) }
    }

    /// Stops the guest and records why; returns once no vCPU runs guest code (other than the
    /// calling vCPU, when a vCPU thread calls).
    func pause(reason: PauseReason?) {
        hold()
        lock.withLock { state = .paused(reason) }
        release()
        stateObservers.publish(.paused(reason))
    }

    /// Runs `body` with every vCPU out of KVM_RUN; the run state does not change.
    func withParked<T>(_ body: () throws -> T) rethrows -> T {
        hold()
        defer { release() }
        return try body()
    }

    private func hold() {
        lock.withLock {
            holds += 1
            sendRunOrPark()
        }
        for vcpu in vcpus where !vcpu.isCurrentThread { vcpu.waitUntilParked() }
    }

    private func release() {
        lock.withLock {
            holds -= 1
            sendRunOrPark()
        }
    }

    /// Lock held.
    private func sendRunOrPark() {
        let event: VCPUThread.State = state.isRunning && holds == 0 ? .running : .paused
        for vcpu in vcpus { vcpu.send(event) }
    }

    func kickAll() {
        for vcpu in vcpus { vcpu.kick() }
    }

    // MARK: Guest-requested resets

    /// The guest asked for a reset (from any vCPU, possibly inside its I/O exit): the first
    /// vCPU to come out of KVM_RUN afterwards carries it out (`takeReset`).
    func requestReset() {
        lock.withLock { resetPending = true }
        if let own = vcpus.first(where: { $0.isCurrentThread }) { own.vcpu.requestImmediateExit() } else { kickAll() }
    }

    /// True for exactly one caller per request while no other reset runs; that caller must
    /// call `finishReset` when done.
    func takeReset() -> Bool {
        lock.withLock {
            guard resetPending, !resetInProgress else { return false }
            resetPending = false
            resetInProgress = true
            return true
        }
    }

    func finishReset() {
        lock.withLock { resetInProgress = false }
    }

    func stopThreads() {
        for vcpu in vcpus { vcpu.finish() }
    }
}
