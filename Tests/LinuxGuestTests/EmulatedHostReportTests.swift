import XCTest

/// The parsing of the checks driver's console lines, on a made-up console.
final class EmulatedHostReportTests: XCTestCase {
    let console = """
        \u{1b}c\u{1b}[?7lSeaBIOS (version 1.16.2)
        @@ host up 10.89
        @@ result host-boot-wall 18.6
        @@ step kvm start
        @@ result npt Y
        @@ step kvm ok 2.43
        @@ step shell start
        @@ out cpus
        2\r
        @@ status 0
        @@ end cpus
        @@ live console-1: guest-init: ready
        @@ out memcheck-migrated
        @@ live vmm-2: migration: pass 1
        memcheck: pass 41 errors 0 gap_ms 210 max_gap_ms 930
        0
        @@ status 1
        @@ end memcheck-migrated
        [   12.5] some kernel line @@ step shell fail 3.10 no answer to dmesg in 60s
        @@ step reboot skipped after shell
        @@ result migrate-line migration: completed in 5 ms, downtime 2 ms (2 passes, 9 MiB sent)
        @@ live console-1: @@ end cpus
        @@ host done
        """

    func testStepsResultsOutputsAndLogsAreParsed() {
        let report = EmulatedHostReport(console: console)
        XCTAssertEqual(report.stepOrder, ["kvm", "shell", "reboot"])
        XCTAssertNil(report.hostKernelCrash)
        XCTAssertEqual(report.steps["kvm"], .init(outcome: .ok, seconds: 2.43))
        XCTAssertEqual(report.steps["shell"], .init(outcome: .failed("no answer to dmesg in 60s"), seconds: 3.10))
        XCTAssertEqual(report.steps["reboot"]?.outcome, .skipped)
        XCTAssertEqual(report.results["npt"], "Y")
        XCTAssertEqual(report.number("host-boot-wall"), 18.6)
        XCTAssertEqual(report.results["migrate-line"], "migration: completed in 5 ms, downtime 2 ms (2 passes, 9 MiB sent)")
        XCTAssertEqual(report.outputs["cpus"], ["2"])
        XCTAssertEqual(report.statuses["cpus"], 0)
        XCTAssertEqual(report.statuses["memcheck-migrated"], 1)
        XCTAssertEqual(report.logs.map(\.name), ["console-1", "vmm-2"])
        XCTAssertEqual(report.logs.first?.lines, ["guest-init: ready", "@@ end cpus"])
        XCTAssertEqual(report.outputs["memcheck-migrated"]?.count, 2, "live lines stay out of outputs")
    }

    func testMemcheckLineIsParsed() {
        let report = EmulatedHostReport(console: console)
        let line = report.memcheck("memcheck-migrated")
        XCTAssertEqual(line?.pass, 41)
        XCTAssertEqual(line?.errors, 0)
        XCTAssertEqual(line?.maxGapMs, 930)
        XCTAssertNil(report.memcheck("cpus"))
    }
}

/// How a kernel log line's trouble is named, so the host's own warnings can be told apart.
final class DmesgTroubleTests: XCTestCase {
    func testWarningsAreKnownByTheirSourceLocation() {
        let line = "[ 75.8] WARNING: CPU: 0 PID: 0 at arch/x86/kernel/fpu/xstate.c:606 fpu__init_system_xstate+0x85a/0xb19"
        XCTAssertEqual(LinuxGuestTests.troubleKinds(line), ["WARNING: arch/x86/kernel/fpu/xstate.c:606"])
        XCTAssertEqual(LinuxGuestTests.troubleKinds("[ 9.1] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!"),
                       ["BUG:", "soft lockup"])
        XCTAssertEqual(LinuxGuestTests.troubleKinds("[ 0.1] clocksource: Switched to clocksource kvm-clock"), [])
    }

    /// What Debian's 6.1 kernel printed under swiftkvm before the vCPUs powered on with MTRRs.
    func testMTRRsLeftOffAreTrouble() {
        XCTAssertEqual(LinuxGuestTests.troubleKinds("[ 0.000000] x86/PAT: MTRRs disabled, skipping PAT initialization too."),
                       ["MTRRs disabled"])
        XCTAssertEqual(LinuxGuestTests.troubleKinds("[ 0.000000] CPU MTRRs all blank - virtualized system."), ["MTRRs all blank"])
        XCTAssertEqual(LinuxGuestTests.troubleKinds("[ 0.000000] x86/PAT: Configuration [0-7]: WB  WC  UC- UC  WB  WP  UC- WT  "), [])
    }

    func testDowntimeIsReadFromTheCompletionLine() {
        XCTAssertEqual(LinuxGuestTests.downtimeSeconds("migration: completed in 701 ms, downtime 228 ms (2 passes, 192 MiB sent)"), 0.228)
        XCTAssertNil(LinuxGuestTests.downtimeSeconds("migration: failed after 3 ms: x"))
    }

    func testACrashOfTheEmulatedHostsOwnKernelIsFoundButNotAGuests() {
        let guestOnly = EmulatedHostReport(console: """
            @@ live console-1: [    3.1] BUG: kernel NULL pointer dereference
            @@ out dmesg
            [    3.1] Oops: 0002 [#1] SMP
            @@ end dmesg
            """)
        XCTAssertNil(guestOnly.hostKernelCrash)
        let hostCrash = EmulatedHostReport(console: """
            @@ step migrate start
            [   61.2] BUG: TASK stack guard page was hit at 00000000b5c7e0b1
            @@ step migrate fail 30.0 no answer
            """)
        XCTAssertEqual(hostCrash.hostKernelCrash, "[   61.2] BUG: TASK stack guard page was hit at 00000000b5c7e0b1")
        // CI, 2026-12-01: L1 died while a guest command's output was being printed; the block
        // never closed.
        let cutShort = EmulatedHostReport(console: """
            @@ out memcheck-migrated
            memcheck: pass 3 errors 0 gap_ms 10 max_gap_ms 40
            [  338.0] Kernel panic - not syncing: corrupted stack end detected inside scheduler
            emulated-host: QEMU ran 340.3 s, status 0
            """)
        XCTAssertEqual(cutShort.hostKernelCrash, "[  338.0] Kernel panic - not syncing: corrupted stack end detected inside scheduler")
    }

}

/// Which failed runs the Linux guest test boots L1 again for, and what it prints of them.
final class EmulatedHostRetryTests: XCTestCase {
    func testOnlyAGuestThatGaveNoAnswerOrAnL1CrashIsRunAgain() {
        let unanswered = EmulatedHostReport(console: """
            @@ step boot ok 10.6
            @@ step shell start
            @@ out dmesg
            (no answer in 600s)
            @@ end dmesg
            @@ step shell fail 601.9 no answer to dmesg in 600s
            """)
        XCTAssertEqual(LinuxGuestTests.retryReason(unanswered), "step shell: no answer to dmesg in 600s")
        // CI, 2026-12-01: the guest never printed its ready line.
        let noBoot = EmulatedHostReport(console: """
            @@ step boot start
            @@ live vmm-1: swiftkvm: guest read from unknown I/O port 0xcfe (reported once per port)
            no "guest-init: ready" in 600s
            @@ step boot fail 600.4 no "guest-init: ready" in 600s
            @@ step shell skipped after boot
            @@ live vmm-1: VM status: running
            """)
        XCTAssertEqual(LinuxGuestTests.retryReason(noBoot), "step boot: no \"guest-init: ready\" in 600s")
        let noReboot = EmulatedHostReport(console: """
            @@ step reboot fail 240.1 no "guest-init: ready" again in 240s
            """)
        XCTAssertNotNil(LinuxGuestTests.retryReason(noReboot))
        let wrongAnswer = EmulatedHostReport(console: """
            @@ step migrate start
            @@ step migrate fail 30.0 migration failed
            """)
        XCTAssertNil(LinuxGuestTests.retryReason(wrongAnswer))
        // Only the first failure counts: a stall after a wrong answer is not retried.
        let stallAfterWrong = EmulatedHostReport(console: """
            @@ step migrate fail 30.0 migration failed
            @@ step snapshot fail 120.0 no answer to snapshot-before in 120s
            """)
        XCTAssertNil(LinuxGuestTests.retryReason(stallAfterWrong))
        let crash = EmulatedHostReport(console: """
            [   36.5] Kernel panic - not syncing: softlockup: hung tasks
            """)
        XCTAssertEqual(LinuxGuestTests.retryReason(crash), "L1's own kernel crashed ([   36.5] Kernel panic - not syncing: softlockup: hung tasks)")
    }

    func testTheSummaryNamesTheFailedStepTheVMMsWordsAndTheConsolesEnd() {
        let report = EmulatedHostReport(console: """
            @@ step kvm ok 0.9
            @@ step shell start
            @@ live vmm-1: swiftkvm: guest read from unknown I/O port 0x2e9 (reported once per port)
            @@ live console-1: [    0.098540]   node   0: [mem 0x0000000000001000-0x000000000009efff]
            @@ step shell fail 601.9 no answer to dmesg in 600s
            @@ live vmm-1: swiftkvm: the guest triple-faulted on CPU #1 (KVM_EXIT_SHUTDOWN) and is stopped; system_reset boots it again
            @@ live vmm-1: VM status: paused (shutdown)
            @@ live vmm-1: * CPU #0: thread_id=131 (halted)
            @@ live vmm-1:   CPU #1: thread_id=132
            @@ live vmm-1: RAX=000000000001ad40 RBX=0000000000000000
            @@ live vmm-1: RIP=ffffffff81a189fe RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
            @@ result vmm-1-threads swiftkvm:S:do_sys_poll vcpu0:S:kvm_vcpu_block vcpu1:R:0
            @@ step migrate skipped after shell
            """)
        XCTAssertEqual(report.failureSummary(), """
            emulated host summary:
              steps: kvm ok, shell FAILED (no answer to dmesg in 600s), migrate skipped
              vmm-1: swiftkvm: the guest triple-faulted on CPU #1 (KVM_EXIT_SHUTDOWN) and is stopped; system_reset boots it again
              vmm-1: VM status: paused (shutdown)
              vmm-1: * CPU #0: thread_id=131 (halted)
              vmm-1:   CPU #1: thread_id=132
              vmm-1: RIP=ffffffff81a189fe RFL=00000046 [---Z-P-] CPL=0 II=0 A20=1 SMM=0 HLT=0
              console-1: [    0.098540]   node   0: [mem 0x0000000000001000-0x000000000009efff]
              vmm-1-threads: swiftkvm:S:do_sys_poll vcpu0:S:kvm_vcpu_block vcpu1:R:0
            """)
    }
}
