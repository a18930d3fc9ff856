import Glibc
@testable import Machine
import XCTest

/// A machine with several vCPUs, each on its own thread, run by one run control.
final class SMPMachineTests: XCTestCase {
    func smpConfig(_ cpus: Int, incoming: Bool = false) -> MachineConfiguration {
        MachineConfiguration(memorySize: 64 << 20, boot: .kernel(path: GuestImages.path("smp.elf"), commandLine: "size=4M every=1024"),
                             debugExit: .init(), incoming: incoming, vcpuCount: cpus)
    }

    func makeMachine(_ config: MachineConfiguration) throws -> Machine {
        requireKVM()
        let m = try Machine(configuration: config)
        m.onGuestExit = { status in XCTFail("the guest exited with status \(status)") }
        m.log = { _ in }
        return m
    }

    func testPausingParksEveryVCPUAndResumingRunsThemAll() throws {
        let m = try makeMachine(smpConfig(4))
        defer { m.shutdownThreads() }
        XCTAssertEqual(m.layout.vcpuCount, 4)
        XCTAssertEqual(Set(m.vcpuStatus().map(\.threadID)).count, 4, "one thread per vCPU")
        m.start()
        let console = ConsoleCollector(m)
        XCTAssertTrue(console.waitFor("smp: all 4 cpus up"), console.text)
        for cpu in 0..<4 { XCTAssertTrue(console.waitFor("cpu \(cpu) sweep"), console.text) }
        try m.pause(reason: nil)
        let before = try (0..<4).map { try m.registers(cpu: $0) }
        usleep(100_000)
        for cpu in 0..<4 {
            XCTAssertEqual(try m.registers(cpu: cpu), before[cpu], "CPU \(cpu) must not run while paused")
            XCTAssertEqual(before[cpu].cs.dpl, 3, "CPU \(cpu) sweeps in ring 3")
        }
        XCTAssertEqual(Set(before.map(\.rsp)).count, 4, "each CPU has its own stack")
        XCTAssertThrowsError(try m.registers(cpu: 4)) { XCTAssertEqual($0 as? MachineError, .noSuchCPU(4)) }
        try m.resume()
        let sweepsBefore = console.occurrences(of: " sweep ")
        XCTAssertTrue(console.waitFor(" sweep ", count: sweepsBefore + 8), console.text)
        XCTAssertFalse(console.text.contains("MISMATCH"), console.text)
    }

    func testStateOfEveryVCPUMovesToAnotherMachine() throws {
        let a = try makeMachine(smpConfig(3))
        defer { a.shutdownThreads() }
        a.start()
        let console = ConsoleCollector(a)
        XCTAssertTrue(console.waitFor("smp: all 3 cpus up"), console.text)
        try a.pause(reason: .finishMigrate)
        let state = try a.saveState()
        XCTAssertEqual(state.sections.map(\.name).filter { $0.hasPrefix("cpu") }, ["cpu0", "cpu1", "cpu2"])
        let before = try (0..<3).map { try a.registers(cpu: $0) }

        let b = try makeMachine(smpConfig(3, incoming: true))
        defer { b.shutdownThreads() }
        for (ra, rb) in zip(a.ramRegions, b.ramRegions) { rb.host.copyMemory(from: ra.host, byteCount: ra.size) }
        try b.loadState(state)
        for cpu in 0..<3 { XCTAssertEqual(try b.registers(cpu: cpu), before[cpu], "CPU \(cpu)") }
        try b.resume()
        let moved = ConsoleCollector(b)
        for cpu in 0..<3 { XCTAssertTrue(moved.waitFor("cpu \(cpu) sweep"), moved.text) }
        XCTAssertFalse(moved.text.contains("smp: 3 cpus"), "it continued, it did not boot again: \(moved.text)")

        // A machine with another vCPU count has no place for cpu2 (or lacks cpu3).
        let two = try makeMachine(smpConfig(2, incoming: true))
        defer { two.shutdownThreads() }
        XCTAssertThrowsError(try two.loadState(state)) { XCTAssertEqual($0 as? MachineError, .unexpectedStateSection("cpu2")) }
        let four = try makeMachine(smpConfig(4, incoming: true))
        defer { four.shutdownThreads() }
        XCTAssertThrowsError(try four.loadState(state)) { XCTAssertEqual($0 as? MachineError, .missingStateSection("cpu3")) }
    }

    func faultsConfig(_ mode: String) -> MachineConfiguration {
        MachineConfiguration(memorySize: 64 << 20, boot: .kernel(path: GuestImages.path("faults.elf"), commandLine: "mode=\(mode)"),
                             debugExit: .init(), vcpuCount: 2)
    }

    func testATripleFaultStopsTheWholeMachineAndResetBootsItAgain() throws {
        let m = try makeMachine(faultsConfig("triple"))
        defer { m.shutdownThreads() }
        m.start()
        let deadline = Date().addingTimeInterval(30)
        while m.runState != .paused(.shutdown) && Date() < deadline { usleep(10_000) }
        XCTAssertEqual(m.runState, .paused(.shutdown))
        // The AP never got a start-up IPI: it still waits, parked like the boot CPU.
        XCTAssertEqual(m.vcpuStatus().map(\.halted), [false, true])
        let console = ConsoleCollector(m)
        try m.systemReset()
        // It boots again (and soon triple-faults again).
        XCTAssertTrue(console.waitFor("faults: triple fault now", count: 2), "once per boot: " + console.text)
    }

    func testAGuestResetThroughTheKeyboardControllerResetsEveryVCPU() throws {
        // faults resets itself again right after every boot: each reset parks both vCPUs,
        // boots the image again and lets them go, and none of it may deadlock.
        let m = try makeMachine(faultsConfig("reset"))
        defer { m.shutdownThreads() }
        let resets = ConditionCounter()
        m.guestResetObservers.add { resets.increment() }
        m.start()
        let console = ConsoleCollector(m)
        XCTAssertTrue(console.waitFor("faults: reset via i8042 now", count: 4), console.text)
        XCTAssertGreaterThanOrEqual(resets.value, 3)
        XCTAssertEqual(m.runState, .running)
        try m.pause(reason: nil)
        XCTAssertEqual(m.vcpuStatus().map(\.halted), [false, true], "the AP is back to waiting for SIPI")
    }

    func testTooManyVCPUsAreRefusedWithTheHostsLimit() throws {
        requireKVM()
        XCTAssertThrowsError(try Machine(configuration: smpConfig(100_000))) { error in
            guard case .unsupportedVCPUCount(100_000, let maximum)? = error as? MachineError else {
                return XCTFail("\(error)")
            }
            XCTAssertGreaterThanOrEqual(maximum, 8, "this project supports at least 8 vCPUs")
            XCTAssertTrue("\(error)".contains("KVM_CAP_MAX_VCPUS"), "\(error)")
        }
    }
}

/// A count other threads increment.
final class ConditionCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}
