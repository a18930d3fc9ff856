import Glibc
@testable import Machine
import XCTest

/// The PC platform seen from guest code on this host's KVM: tiny real-mode boot sectors that
/// poke the ports Linux uses.
final class PlatformDeviceTests: XCTestCase {
    private func bootSector(_ code: [UInt8]) -> String {
        var sector = code + [UInt8](repeating: 0xf4, count: 510 - code.count)
        sector += [0x55, 0xaa]
        let path = "/tmp/swiftkvm-platform-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).img"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        _ = sector.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        addTeardownBlock { unlink(path) }
        return path
    }

    private func makeMachine(_ path: String) throws -> Machine {
        requireKVM()
        let m = try Machine(configuration: MachineConfiguration(memorySize: 16 << 20, boot: .bootSector(path: path)))
        m.log = { _ in }
        m.onGuestExit = { _ in }
        return m
    }

    /// Port 0x61 is KVM's PIT speaker port (KVM_PIT_SPEAKER_DUMMY): the channel 2 gate the
    /// guest sets reads back, where the i8042's range would answer 0xFF.
    func testSpeakerPortIsTheInKernelPIT() throws {
        let m = try makeMachine(bootSector([
            0xb0, 0x01,        // mov al, 1      (gate channel 2 on, speaker off)
            0xe6, 0x61,        // out 0x61, al
            0xe4, 0x61,        // in al, 0x61
            0xba, 0xf8, 0x03,  // mov dx, 0x3f8
            0xee,              // out dx, al
            0xb0, 0x0a,        // mov al, '\n'
            0xee,              // out dx, al
        ]))
        defer { m.shutdownThreads() }
        m.start()
        let console = ConsoleCollector(m)
        XCTAssertTrue(console.waitFor("\n"))
        let byte = console.text.utf8.first
        XCTAssertNotNil(byte)
        XCTAssertEqual((byte ?? 0xff) & 0xc3, 0x01, "gate set, speaker data off, no all-ones: \(String(describing: byte))")
    }

    /// system_powerdown presses the ACPI power button; the guest sees PWRBTN_STS, clears it,
    /// and powers off through SLP_TYP = S5 | SLP_EN, which stops the machine and reports it.
    func testPowerButtonAndS5PowerOff() throws {
        let m = try makeMachine(bootSector([
            0xba, 0x02, 0x06,  // mov dx, 0x602   (PM1_EN)
            0xb8, 0x00, 0x01,  // mov ax, 0x100   (PWRBTN_EN)
            0xef,              // out dx, ax
            0xba, 0xf8, 0x03,  // mov dx, 0x3f8
            0xb0, 0x52,        // mov al, 'R'
            0xee,              // out dx, al      (ready)
            0xba, 0x00, 0x06,  // mov dx, 0x600   (PM1_STS)
            0xed,              // wait: in ax, dx
            0xa9, 0x00, 0x01,  // test ax, 0x100
            0x74, 0xfa,        // jz wait
            0xef,              // out dx, ax      (write 1 to clear)
            0xba, 0x04, 0x06,  // mov dx, 0x604   (PM1_CNT)
            0xb8, 0x01, 0x34,  // mov ax, 5 << 10 | SLP_EN | SCI_EN
            0xef,              // out dx, ax
            0xba, 0xf8, 0x03,  // mov dx, 0x3f8
            0xb0, 0x58,        // mov al, 'X'     (must never run)
            0xee,              // out dx, al
        ]))
        defer { m.shutdownThreads() }
        let poweredOff = DispatchSemaphore(value: 0)
        m.onGuestPowerOff = { poweredOff.signal() }
        m.start()
        let console = ConsoleCollector(m)
        XCTAssertTrue(console.waitFor("R"), console.text)
        XCTAssertEqual(poweredOff.wait(timeout: .now() + 0.5), .timedOut, "no power-off before the button")
        m.systemPowerdown()
        XCTAssertEqual(poweredOff.wait(timeout: .now() + 20), .success)
        XCTAssertEqual(m.runState, .paused(.shutdown))
        console.waitFor("X", seconds: 0.5)
        XCTAssertFalse(console.text.contains("X"), "the vCPU stopped at the S5 write")
    }
}
