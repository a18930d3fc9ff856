import Foundation
import XCTest

/// Our guests are ordinary PVH kernels: the same ELF boots under QEMU with KVM.
final class QEMUInteropTests: XCTestCase {
    func testHelloBootsUnderQEMU() throws {
        let qemu = "/usr/bin/qemu-system-x86_64"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: qemu),
                      "qemu-system-x86_64 is missing: apt-get install qemu-system-x86 (.ci/run does)")
        guard FileManager.default.isExecutableFile(atPath: qemu) else { return }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: qemu)
        p.arguments = ["-enable-kvm", "-m", "128M", "-display", "none", "-monitor", "none", "-serial", "stdio",
                       "-no-reboot", "-kernel", Paths.guest("hello.elf"), "-append", "from=qemu"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        defer { if p.isRunning { p.terminate() }; p.waitUntilExit() }
        var text = ""
        let deadline = Date().addingTimeInterval(60)
        let handle = out.fileHandleForReading
        while !text.contains("tick 1") && Date() < deadline && p.isRunning {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        XCTAssertTrue(text.contains("swiftkvm hello guest: 128 MiB RAM, cmdline \"from=qemu\""), text)
        XCTAssertTrue(text.contains("tick 1"), text)
    }
}
