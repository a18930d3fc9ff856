import Foundation
import XCTest

/// A Linux guest under swiftkvm on a real SVM KVM: our machines' KVM is PVM, which cannot run a
/// stock Linux kernel, so the test builds an emulated AMD host (QEMU TCG, `-cpu max`, nested
/// SVM) from Debian's packages, boots it once, and inside it loads kvm_amd and runs swiftkvm
/// with Debian's kernel and an initramfs of the test's own (scripts/emulated-host,
/// tests/linux-host). Everything a user would check is checked in that one boot; a failure
/// prints L1's console with the guest's consoles and swiftkvm's output.
final class LinuxGuestTests: XCTestCase {
    /// The guest's vCPUs (1 until swiftkvm's -smp takes more).
    let vcpus = 1

    func testLinuxGuestBootsRunsCommandsMigratesSnapshotsRebootsAndPowersOff() throws {
        let host = try EmulatedHost(test: self)
        try host.build([
            "--guest-kernel", "vmlinux-cloud", "--no-guest-initrd", "--smp", "\(vcpus)",
            "--ready", "VFS: Unable to mount root fs", "--steps", "kvm boot",
        ])
        let report = try host.run(timeoutSeconds: 1500)
        defer { if (testRun?.failureCount ?? 0) > 0 { print(host.console) } }
        print(host.timings(report))

        let expected = ["kvm", "boot"]
        XCTAssertEqual(report.stepOrder, expected, "the driver did not run every step")
        for name in expected {
            XCTAssertEqual(report.steps[name]?.outcome, .ok, "step \(name)")
        }
        XCTAssertGreaterThan(report.number("svm") ?? 0, 0, "the emulated host's CPUs show no svm")
        XCTAssertEqual(report.results["npt"], "Y", "kvm_amd runs without nested paging")
    }
}
