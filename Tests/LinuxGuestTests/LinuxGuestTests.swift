import Foundation
import XCTest

/// A Linux guest under swiftkvm on a real SVM KVM: our machines' KVM is PVM, which cannot run a
/// stock Linux kernel, so the test builds an emulated AMD host (QEMU TCG, `-cpu max`, nested
/// SVM) from Debian's packages, boots it once, and inside it loads kvm_amd and runs swiftkvm
/// with Debian's kernel and an initramfs of the test's own (scripts/emulated-host,
/// tests/linux-host). Everything a user would check is checked in that one boot; a failure
/// prints L1's console with the guest's consoles and swiftkvm's output.
final class LinuxGuestTests: XCTestCase {
    /// The guest's vCPUs: more than one, so Linux brings up an AP through INIT/SIPI and the
    /// migration carries every vCPU.
    let vcpus = 2
    let guestMiB = 256
    /// How long the guest's boot (and reboot) may take: about 10 s here and 30 s in CI; one that
    /// takes longer has stalled (see `runRetryingEmulationFailures`), and waiting longer only delays
    /// the retry.
    let bootTimeoutSeconds = 240
    /// What the driver does, in order (tests/linux-host/driver).
    let steps = ["kvm", "boot", "shell", "migrate", "postcopy", "snapshot", "pause", "reboot", "poweroff"]

    /// Trouble swiftkvm's guest shows today and the emulated host does not, each still printed.
    /// Empty: every kind in `troubleInDmesg` fails the test unless L1's own kernel shows it too.
    static let knownOpenTrouble: [String] = []

    /// Kernel messages that mean the guest is unwell: warnings and oopses, stalls, lockups, a
    /// clock Linux gave up on, a serial interrupt the 8250 driver could not keep up with, and
    /// MTRRs left off or blank ("x86/PAT: MTRRs disabled, skipping PAT initialization too",
    /// "CPU MTRRs all blank - virtualized system"), which QEMU's and Firecracker's guests never see.
    static let troubleInDmesg = ["WARNING:", "BUG:", "Oops", "Call Trace", "soft lockup", "hard LOCKUP",
                                 "self-detected stall", "detected stalls", "hung_task", "TSC unstable",
                                 "clocksource watchdog", "Marking clocksource", "timekeeping watchdog",
                                 "too much work for irq", "MTRRs disabled", "MTRRs all blank"]
    /// The PAT layout Linux boots with, which the driver prints with the trouble: Linux's own
    /// ("WB  WC  UC- UC  WB  WP  UC- WT") where it kept its MTRR and PAT support, the power-on
    /// one without write-combining where it gave them up.
    static let patConfiguration = "x86/PAT: Configuration"

    func testLinuxGuestBootsRunsCommandsMigratesPostcopiesSnapshotsPausesRebootsAndPowersOff() throws {
        let host = try EmulatedHost(test: self)
        try host.build(["--guest-kernel", "vmlinuz-cloud", "--smp", "\(vcpus)", "--mem", "\(guestMiB)M", "--boot-timeout", "\(bootTimeoutSeconds)",
                        "--dmesg-filter", (Self.troubleInDmesg + [Self.patConfiguration]).joined(separator: "|"), "--steps", steps.joined(separator: " ")])
        let report = try runRetryingEmulationFailures(host)
        defer {
            if (testRun?.failureCount ?? 0) > 0 { host.printFailedRun(report) }
        }
        print(host.timings(report))

        XCTAssertEqual(report.stepOrder, steps, "the driver did not run every step")
        for name in steps {
            XCTAssertEqual(report.steps[name]?.outcome, .ok, "step \(name)")
        }
        XCTAssertGreaterThan(report.number("svm") ?? 0, 0, "the emulated host's CPUs show no svm")
        XCTAssertEqual(report.results["npt"], "Y", "kvm_amd runs without nested paging")

        checkShell(report)
        if steps.contains("migrate") { checkMigration(report) }
        if steps.contains("postcopy") { checkPostcopy(report) }
        if steps.contains("snapshot") { checkSnapshot(report) }
        if steps.contains("pause") { checkPause(report) }
        if steps.contains("reboot") { checkReboot(report) }
        if steps.contains("poweroff") {
            XCTAssertEqual(report.results["poweroff-status"], "0", "swiftkvm's exit status after the guest's poweroff")
        }
    }

    /// L1 boots at most this often: a run whose guest stalled or whose L1 crashed is run again.
    let l1Runs = 3

    /// Runs L1 again, up to `l1Runs` in all, when L1's own kernel crashed or the guest stopped
    /// answering (a command, its boot or its reboot got nothing in its time). Nested SVM under
    /// QEMU TCG has crashed L1 (a stack guard page hit in kvm_amd's path, a corrupted stack in
    /// its scheduler, soft lockups of L1's CPUs inside a guest vCPU's KVM_RUN) in runs whose
    /// guest checks had all passed, and deadlocks the guest's spinlocks now and then (README,
    /// "What the emulated host does differently"): QEMU as the VMM inside L1 deadlocks the
    /// same way. Each failed run's console and summary are printed, so the evidence stays in
    /// the log; the last run's failures fail the test, and a wrong answer is never retried.
    private func runRetryingEmulationFailures(_ host: EmulatedHost) throws -> EmulatedHostReport {
        for run in 1...l1Runs {
            let report: EmulatedHostReport
            do {
                report = try host.run(timeoutSeconds: 1500)
            } catch {
                let cut = EmulatedHostReport(console: host.console)
                host.printFailedRun(cut)
                guard run < l1Runs, let crash = cut.hostKernelCrash else { throw error }
                print("emulated host: run \(run) of \(l1Runs): L1's own kernel crashed (\(crash)); booting L1 again")
                continue
            }
            guard run < l1Runs, let reason = Self.retryReason(report) else {
                if run == l1Runs { XCTAssertNil(report.hostKernelCrash, "the emulated host's kernel crashed in every run") }
                return report
            }
            host.printFailedRun(report)
            print("emulated host: run \(run) of \(l1Runs): \(reason); booting L1 again")
        }
        preconditionFailure("the last run returns or throws")
    }

    /// Why a run is worth one more: L1's kernel crashed, or the first step that failed did so
    /// because the guest gave no answer in its time. A wrong answer is never retried.
    static func retryReason(_ report: EmulatedHostReport) -> String? {
        if let crash = report.hostKernelCrash { return "L1's own kernel crashed (\(crash))" }
        for name in report.stepOrder {
            if case .failed(let why)? = report.steps[name]?.outcome {
                return EmulatedHostReport.isGuestStall(why) ? "step \(name): \(why)" : nil
            }
        }
        return nil
    }

    private func checkShell(_ report: EmulatedHostReport) {
        XCTAssertEqual(report.outputs["cpus"], ["\(vcpus)"], "processors in the guest's /proc/cpuinfo")
        let hostModel = report.results["host-model-name"] ?? ""
        XCTAssertFalse(hostModel.isEmpty, "L1's /proc/cpuinfo has no model name")
        XCTAssertEqual(report.outputs["model-name"], [hostModel], "the guest's CPU is not named as L1's")
        XCTAssertTrue(report.outputs["uptime"]?.first?.contains(" up ") ?? false, "uptime: \(report.outputs["uptime"] ?? [])")
        // A 900-character line typed in one go crosses the 16-byte FIFO whole: the 8250
        // driver took every byte from its interrupts (echo's newline makes 901).
        XCTAssertEqual(report.outputs["long-input"], ["901"], "a long typed line lost bytes")
        checkDmesg(report, "dmesg")
        let start = report.memcheck("memcheck-start")
        XCTAssertNotNil(start, "memcheck did not start: \(report.outputs["memcheck-start"] ?? [])")
        XCTAssertEqual(start?.errors, 0)
    }

    private func checkMigration(_ report: EmulatedHostReport) {
        checkLiveMigration(report, step: "migrate", workload: "memcheck-migrated", after: "memcheck-start", dmesg: "dmesg-migrated")
    }

    /// Postcopy on a real KVM: the guest moved before its RAM did, pages came after the
    /// switchover through userfaultfd faults of the guest's vCPUs and the destination's push,
    /// and the workload found every page as it left it.
    private func checkPostcopy(_ report: EmulatedHostReport) {
        let line = checkLiveMigration(report, step: "postcopy", workload: "memcheck-postcopied", after: "memcheck-migrated",
                                      dmesg: "dmesg-postcopied")
        let destination = report.results["postcopy-destination-line"] ?? ""
        print("postcopy in the emulated host: \(line); \(destination)")
        XCTAssertGreaterThan(Self.count(before: " pages after", in: destination) ?? 0, 0,
                             "no page came after the switchover: \(destination)")
    }

    /// A live migration step (`step`-line is the source's end line): it completed, the workload
    /// kept running and found nothing wrong, the guest's clock neither stalled nor jumped (it
    /// moved as the host's did, within the downtime and a second: the console round trips cost
    /// the same on both sides), and the kernel log is clean. Returns the end line.
    @discardableResult
    private func checkLiveMigration(_ report: EmulatedHostReport, step: String, workload: String, after earlier: String,
                                    dmesg: String) -> String {
        let line = report.results["\(step)-line"] ?? ""
        XCTAssertTrue(line.hasPrefix("migration: completed"), "\(step): \(line)")
        checkWorkload(report, after: workload, before: earlier)
        if let downtime = Self.downtimeSeconds(line) {
            checkClock(report, step, slack: downtime + 1)
        } else {
            XCTFail("no downtime in \"\(line)\"")
        }
        checkDmesg(report, dmesg)
        return line
    }

    private func checkSnapshot(_ report: EmulatedHostReport) {
        let line = report.results["snapshot-line"] ?? ""
        XCTAssertTrue(line.hasPrefix("migration: completed"), "snapshot save: \(line)")
        // mapped-ram: the file is guest RAM (each page in its place) with a small header and
        // trailer, and its zero pages take no space.
        let ramBytes = Double(guestMiB) * 1_048_576
        let length = report.number("snapshot-bytes") ?? 0
        XCTAssertTrue(length >= ramBytes && length < ramBytes * 1.01, "the mapped-ram file is \(length) bytes for \(ramBytes) of RAM")
        let allocated = report.number("snapshot-allocated-bytes") ?? 0
        XCTAssertGreaterThan(allocated, 1_048_576, "the snapshot file holds too little")
        XCTAssertLessThan(allocated, ramBytes * 0.8, "the snapshot file's zero pages take disk space")
        checkWorkload(report, after: "memcheck-restored", before: "memcheck-postcopied")
        checkDmesg(report, "dmesg-restored")
    }

    /// After a `stop` longer than the soft-lockup threshold and `cont`: the guest's clock stood
    /// still while it was stopped (it moved as the host's did, less the pause), and no lockup.
    private func checkPause(_ report: EmulatedHostReport) {
        guard let paused = report.number("pause-host-seconds") else { return XCTFail("no pause length") }
        checkClock(report, "pause", slack: 1, standingStill: paused)
        checkDmesg(report, "dmesg-paused")
    }

    private func checkReboot(_ report: EmulatedHostReport) {
        let before = report.number("snapshot-after-guest") ?? report.number("migrate-after-guest") ?? 0
        let after = report.outputs["uptime-rebooted"]?.first.flatMap { Double($0.split(separator: " ")[0]) }
        XCTAssertNotNil(after, "no uptime after the reboot")
        if let after, before > 0 { XCTAssertLessThan(after, before, "the guest's uptime did not start again") }
        XCTAssertEqual(report.outputs["cpus-rebooted"], ["\(vcpus)"], "processors after the reboot")
        // The reset put back the power-on MTRRs: the rebooted kernel finds them as the first did.
        checkDmesg(report, "dmesg-rebooted")
    }

    /// The workload kept running and found every page as it left it.
    private func checkWorkload(_ report: EmulatedHostReport, after: String, before: String) {
        guard let now = report.memcheck(after) else {
            return XCTFail("no memcheck line in \(after): \(report.outputs[after] ?? [])")
        }
        XCTAssertEqual(now.errors, 0, "memcheck found damaged memory: \(report.outputs[after] ?? [])")
        XCTAssertEqual(report.outputs[after]?.last, "0", "memcheck mismatch lines: \(report.outputs[after] ?? [])")
        if let earlier = report.memcheck(before) {
            XCTAssertGreaterThan(now.pass, earlier.pass, "memcheck stopped making passes")
        }
    }

    /// `standingStill`: seconds of the host's time during which the guest's clock should not move.
    private func checkClock(_ report: EmulatedHostReport, _ name: String, slack: Double, standingStill: Double = 0) {
        guard let guestBefore = report.number("\(name)-before-guest"), let hostBefore = report.number("\(name)-before-host"),
              let guestAfter = report.number("\(name)-after-guest"), let hostAfter = report.number("\(name)-after-host")
        else { return XCTFail("\(name): no clock marks") }
        let guestMoved = guestAfter - guestBefore, hostMoved = hostAfter - hostBefore
        // Each mark is only known within half its console round trip.
        let uncertainty = (report.number("\(name)-before-host-spread") ?? 0) + (report.number("\(name)-after-host-spread") ?? 0)
        XCTAssertEqual(guestMoved, hostMoved - standingStill, accuracy: slack + uncertainty,
                       "\(name): the guest's clock moved \(guestMoved) s while the host's moved \(hostMoved) s (\(standingStill) s of it stopped)")
    }

    /// No trouble in the guest's kernel log, except the kinds the emulated host's own kernel
    /// also reports on the same emulated CPU (TCG's CPUID and timing are theirs, not swiftkvm's):
    /// those are printed, not failed.
    private func checkDmesg(_ report: EmulatedHostReport, _ output: String) {
        guard let lines = report.outputs[output] else { return XCTFail("no \(output) output") }
        // The driver prints only the log's lines with trouble, then the log's length: a whole
        // boot's log is several hundred lines.
        let length = lines.last.flatMap { $0.hasPrefix("dmesg-lines ") ? Int($0.dropFirst(12)) : nil }
        XCTAssertGreaterThan(length ?? 0, 100, "\(output): the guest's kernel log is missing or cut short: \(lines.suffix(3))")
        let hostLines = report.outputs["host-dmesg"] ?? []
        let hostKinds = Set(hostLines.flatMap(Self.troubleKinds))
        var trouble: [String] = []
        // A call trace belongs to the warning or oops before it, and is excused with it.
        var lastExcused = false
        for line in lines {
            let kinds = Self.troubleKinds(line)
            if kinds.isEmpty { continue }
            if kinds == ["Call Trace"] {
                if !lastExcused { trouble.append(line) }
                continue
            }
            let hostOrKnown = kinds.allSatisfy { hostKinds.contains($0) || Self.knownOpenTrouble.contains($0) }
            lastExcused = hostOrKnown
            if kinds.allSatisfy(hostKinds.contains) {
                print("\(output): the emulated host shows this too, not counted: \(line)")
            } else if hostOrKnown {
                print("\(output): KNOWN OPEN PROBLEM, not counted yet: \(line)")
            } else {
                trouble.append(line)
            }
        }
        XCTAssertEqual(trouble, [], "\(output) shows trouble")
        let pat = lines.filter { $0.contains(Self.patConfiguration) }
        XCTAssertTrue(pat.count == 1 && pat[0].contains(" WC "), "\(output): Linux did not set up its PAT with write-combining (MTRRs off?): \(pat)")
    }

    /// The kinds of trouble a kernel log line shows: each pattern it contains, with the source
    /// location of a WARNING ("at arch/x86/kernel/fpu/xstate.c:606"), so that only the same
    /// warning matches.
    static func troubleKinds(_ line: String) -> [String] {
        Self.troubleInDmesg.filter { line.contains($0) }.map { kind in
            guard kind == "WARNING:", let at = line.range(of: " at ") else { return kind }
            return kind + (line[at.upperBound...].split(separator: " ").first.map { " " + $0 } ?? "")
        }
    }

    /// The number just before `suffix` in `line` ("12288" for " pages after" in "..., 12288 pages after; ...").
    static func count(before suffix: String, in line: String) -> Int? {
        guard let range = line.range(of: suffix) else { return nil }
        return line[..<range.lowerBound].split(separator: " ").last.flatMap { Int($0) }
    }

    /// The downtime of a "migration: completed in T ms, downtime D ms (...)" line, in seconds.
    static func downtimeSeconds(_ line: String) -> Double? {
        guard let range = line.range(of: "downtime ") else { return nil }
        return line[range.upperBound...].split(separator: " ").first.flatMap { Double($0) }.map { $0 / 1000 }
    }
}
