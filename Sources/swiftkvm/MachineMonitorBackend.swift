import Machine
import Monitor

/// The monitor's view of a `Machine`.
extension Machine: MonitorBackend {
    public func stop() throws {
        if runState.isRunning { try pause(reason: nil) }
    }

    public func requestQuit() {}

    public func cpus() -> [CPUInfo] {
        vcpuStatus().enumerated().map { CPUInfo(index: $0.offset, threadID: $0.element.threadID, halted: $0.element.halted) }
    }
}
