import CKVM
import Glibc
@testable import KVM
@testable import Machine
import XCTest

/// The MTRRs a vCPU powers on with (enabled, write-back by default), put back by every reset,
/// and carried by migration and snapshots.
final class MTRRMachineTests: XCTestCase {
    private func config(_ guest: String, _ commandLine: String, incoming: Bool = false) -> MachineConfiguration {
        MachineConfiguration(memorySize: 64 << 20, boot: .kernel(path: GuestImages.path(guest), commandLine: commandLine),
                             debugExit: .init(), incoming: incoming, vcpuCount: 2)
    }
    private func smp(incoming: Bool = false) -> MachineConfiguration { config("smp.elf", "size=4M every=1024", incoming: incoming) }

    private func makeMachine(_ config: MachineConfiguration) throws -> Machine {
        requireKVM()
        let m = try Machine(configuration: config)
        m.onGuestExit = { status in XCTFail("the guest exited with status \(status)") }
        m.log = { _ in }
        return m
    }

    private func msrs(_ m: Machine, cpu: Int) throws -> [UInt32: UInt64] {
        let set = m.stateMSRs.mtrrs + [PowerOnMSRs.miscEnable]
        return Dictionary(uniqueKeysWithValues: try m.vcpus[cpu].perform { try $0.getMSRs(set) }.map { ($0.index, $0.value) })
    }

    private func powerOn(_ m: Machine) -> [UInt32: UInt64] {
        Dictionary(uniqueKeysWithValues: PowerOnMSRs.mtrrs(m.stateMSRs.mtrrs).map { ($0.index, $0.value) })
    }

    /// Values a guest could have written, none of them the power-on one: UC by default with
    /// fixed ranges on, one variable range, write-protected fixed ranges. Differs per vCPU.
    private func guestWritten(_ m: Machine, cpu: Int) -> [(index: UInt32, value: UInt64)] {
        m.stateMSRs.mtrrs.map { index in
            switch index {
            case MTRR.defaultTypeMSR: return (index, 0xc00)
            case 0x200: return (index, 0x0100_0006 + UInt64(cpu) << 24)
            case 0x201: return (index, 0xf_ff00_0800)
            case 0x250: return (index, 0x0606_0606_0606_0606)
            default: return (index, MTRR.fixedRangeMSRs.contains(index) ? 0x0505_0505_0505_0505 : 0)
            }
        }
    }

    private func write(_ values: [(index: UInt32, value: UInt64)], _ m: Machine, cpu: Int) throws {
        try m.vcpus[cpu].perform { try $0.setMSRs(values) }
    }

    /// Both vCPUs get `guestWritten`.
    private func writeGuestMTRRs(_ m: Machine) throws {
        for cpu in 0..<2 { try write(guestWritten(m, cpu: cpu), m, cpu: cpu) }
    }

    /// The smp guest, run until both vCPUs are up, paused for `reason`, with `guestWritten` MTRRs.
    private func pausedSMPMachineWithGuestMTRRs(reason: PauseReason?) throws -> Machine {
        let m = try makeMachine(smp())
        do {
            m.start()
            let console = ConsoleCollector(m)
            XCTAssertTrue(console.waitFor("smp: all 2 cpus up"), console.text)
            try m.pause(reason: reason)
            try writeGuestMTRRs(m)
            return m
        } catch {
            m.shutdownThreads()
            throw error
        }
    }

    private func assertPowerOnMTRRs(_ m: Machine, _ what: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try assertMTRRs(m, { _ in PowerOnMSRs.mtrrs(m.stateMSRs.mtrrs) }, what, file: file, line: line)
    }

    private func assertMTRRs(_ m: Machine, _ expected: (Int) -> [(index: UInt32, value: UInt64)], _ what: String,
                             file: StaticString = #filePath, line: UInt = #line) throws {
        for cpu in 0..<2 {
            let got = try msrs(m, cpu: cpu)
            for (index, value) in expected(cpu) {
                XCTAssertEqual(got[index], value, "\(what): CPU \(cpu), MSR 0x\(String(index, radix: 16))", file: file, line: line)
            }
        }
    }

    func testEveryVCPUPowersOnWithMTRRsEnabledWriteBackAndFastStrings() throws {
        let m = try makeMachine(smp())
        defer { m.shutdownThreads() }
        let supported = try KVMSystem().supportedCPUID()
        XCTAssertTrue(MTRR.advertised(in: supported), "this host's KVM offers MTRR (CPUID 1 EDX bit 12)")
        XCTAssertEqual(m.stateMSRs.mtrrs.count, 1 + 16 + 11, "MTRRdefType, KVM's 8 variable pairs, the 11 fixed ranges")
        for cpu in 0..<2 {
            let cpuid = try m.vcpus[cpu].perform { try $0.getCPUID() }
            XCTAssertTrue(MTRR.advertised(in: cpuid), "CPU \(cpu)'s CPUID advertises MTRR")
            let got = try msrs(m, cpu: cpu)
            XCTAssertEqual(got[MTRR.defaultTypeMSR], 0x806, "CPU \(cpu): MTRRdefType E | WB")
            XCTAssertEqual(got[0x200], 0, "CPU \(cpu): no variable range")
            XCTAssertEqual((got[PowerOnMSRs.miscEnable] ?? 0) & PowerOnMSRs.fastStrings, 1, "CPU \(cpu): fast strings")
        }
        // The power-on state that `system_reset` restores holds them.
        XCTAssertEqual(m.bootVCPUStates.map { $0.msrs.first { $0.index == MTRR.defaultTypeMSR }?.value }, [0x806, 0x806])
    }

    func testSystemResetAndAGuestsOwnResetPutThePowerOnMTRRsBack() throws {
        let m = try pausedSMPMachineWithGuestMTRRs(reason: nil)
        defer { m.shutdownThreads() }
        try assertMTRRs(m, { self.guestWritten(m, cpu: $0) }, "written")
        try m.systemReset()
        try assertPowerOnMTRRs(m, "after system_reset")

        // The guest resets itself through the keyboard controller, again after each boot.
        let resetting = try makeMachine(config("faults.elf", "mode=reset"))
        defer { resetting.shutdownThreads() }
        try writeGuestMTRRs(resetting)
        let resets = ConditionCounter()
        resetting.guestResetObservers.add { resets.increment() }
        resetting.start()
        let resetConsole = ConsoleCollector(resetting)
        XCTAssertTrue(resetConsole.waitFor("faults: reset via i8042 now", count: 2), resetConsole.text)
        try resetting.pause(reason: nil)
        XCTAssertGreaterThanOrEqual(resets.value, 1)
        try assertPowerOnMTRRs(resetting, "after the guest's reset")
    }

    func testMTRRsSetOnTheSourceArriveOnTheDestination() throws {
        let a = try pausedSMPMachineWithGuestMTRRs(reason: .finishMigrate)
        defer { a.shutdownThreads() }
        let state = try a.saveState()
        XCTAssertEqual(state.sections.filter { $0.name.hasPrefix("cpu") }.map(\.version), [2, 2])

        let b = try makeMachine(smp(incoming: true))
        defer { b.shutdownThreads() }
        try assertPowerOnMTRRs(b, "the destination before the state")
        for (ra, rb) in zip(a.ramRegions, b.ramRegions) { rb.host.copyMemory(from: ra.host, byteCount: ra.size) }
        try b.loadState(state)
        try assertMTRRs(b, { self.guestWritten(b, cpu: $0) }, "the destination")
        try b.resume()
        let moved = ConsoleCollector(b)
        for cpu in 0..<2 { XCTAssertTrue(moved.waitFor("cpu \(cpu) sweep"), moved.text) }
        // The destination's own power-on state is what its reset restores.
        try b.pause(reason: nil)
        try b.systemReset()
        try assertPowerOnMTRRs(b, "the destination after system_reset")
    }

    /// A state from a build before the MTRRs were saved: vCPU sections of version 1, whose MSR
    /// field holds KVM's list only. It loads, and its vCPUs get the power-on MTRRs.
    func testAnOlderStateWithoutMTRRsLoadsWithThePowerOnMTRRsAndOthersAreRefused() throws {
        let a = try makeMachine(smp())
        defer { a.shutdownThreads() }
        try writeGuestMTRRs(a)
        let state = try a.saveState()
        let mtrrs = Set(a.stateMSRs.mtrrs)
        func rewritingCPUs(version: UInt32, dropMTRRs: Bool) throws -> MachineState {
            var rewritten = state
            for i in rewritten.sections.indices where rewritten.sections[i].name.hasPrefix("cpu") {
                var cpu = try VCPUState(fields: Machine.decode(rewritten.sections[i].bytes, section: "cpu"))
                if dropMTRRs { cpu.msrs.removeAll { mtrrs.contains($0.index) } }
                rewritten.sections[i] = StateSection(name: rewritten.sections[i].name, version: version,
                                                     bytes: Machine.encode(cpu.encodedFields()))
            }
            return rewritten
        }

        let b = try makeMachine(smp(incoming: true))
        defer { b.shutdownThreads() }
        // Not what it powered on with, so that the load must set them.
        try writeGuestMTRRs(b)
        try b.loadState(try rewritingCPUs(version: 1, dropMTRRs: true))
        try assertPowerOnMTRRs(b, "after loading a version 1 state")

        XCTAssertThrowsError(try b.loadState(try rewritingCPUs(version: 1, dropMTRRs: false))) { error in
            XCTAssertTrue("\(error)".hasPrefix("state section 'cpu0': bad MSR state: MSR 0x2ff is not one"), "\(error)")
        }
        XCTAssertThrowsError(try b.loadState(try rewritingCPUs(version: 3, dropMTRRs: false))) { error in
            XCTAssertEqual("\(error)", "state section 'cpu0': state version 3 is newer than this build reads (versions 1 to 2); migrate to a build at least as new as the source")
        }
        var oldVM = state
        let vm = try XCTUnwrap(oldVM.sections.firstIndex { $0.name == "kvm-vm" })
        oldVM.sections[vm].version = 0
        XCTAssertThrowsError(try b.loadState(oldVM)) { error in
            XCTAssertTrue("\(error)".hasPrefix("state section 'kvm-vm': state version 0 is older than this build reads (version 1)"), "\(error)")
        }
    }

    func testPowerOnEntriesKeepKVMsOtherMiscEnableBitsAndFollowCPUID() {
        var leaf1 = kvm_cpuid_entry2()
        leaf1.function = 1
        leaf1.edx = MTRR.cpuidBit
        let set = MTRR.stateMSRs(capability: 0x508)
        let entries = PowerOnMSRs.entries(cpuid: [leaf1], mtrrs: set, kvmMiscEnable: 0x1800)
        XCTAssertEqual(entries.first?.index, 0x1a0)
        XCTAssertEqual(entries.first?.value, 0x1801, "fast strings on, KVM's PEBS/BTS-unavailable bits kept")
        XCTAssertEqual(entries.dropFirst().map(\.index), set)
        XCTAssertEqual(entries.dropFirst().map(\.value), [0x806] + [UInt64](repeating: 0, count: set.count - 1))
        leaf1.edx = 0
        XCTAssertEqual(PowerOnMSRs.entries(cpuid: [leaf1], mtrrs: set, kvmMiscEnable: nil).count, 0,
                       "no MTRRs without CPUID's bit, no MISC_ENABLE where KVM has none")
    }
}
