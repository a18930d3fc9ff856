import Devices
@testable import Machine
import XCTest

/// The machine's device list as migration sees it: entry and section names must stay what
/// earlier builds wrote, or their streams and snapshot files would no longer load.
final class DeviceListTests: XCTestCase {
    private func makeMachine(debugExit: Bool) throws -> Machine {
        requireKVM()
        let config = MachineConfiguration(memorySize: 64 << 20, boot: .kernel(path: GuestImages.path("hello.elf"), commandLine: ""),
                                          debugExit: debugExit ? .init() : nil)
        let machine = try Machine(configuration: config)
        machine.log = { _ in }
        return machine
    }

    private func deviceSections(_ state: MachineState) -> [String] {
        state.sections.map(\.name).filter { !$0.hasPrefix("cpu") && $0 != "kvm-vm" }
    }

    func testLayoutAndSectionNamesAreThoseEarlierBuildsWrite() throws {
        let withExit = try makeMachine(debugExit: true)
        defer { withExit.shutdownThreads() }
        XCTAssertEqual(withExit.layout.devices, ["i8042@0x60", "cmos@0x70", "isa-debug-exit@0xf4", "serial0@0x3f8", "acpi-pm@0x600"])
        let saved = try withExit.saveState()
        XCTAssertEqual(deviceSections(saved), ["serial0", "i8042", "cmos", "acpi-pm"])
        XCTAssertEqual(saved.sections.prefix(4).map(\.version), [1, 2, 1, 1], "i8042 version 2: the full controller")

        let plain = try makeMachine(debugExit: false)
        defer { plain.shutdownThreads() }
        XCTAssertEqual(plain.layout.devices, ["i8042@0x60", "cmos@0x70", "serial0@0x3f8", "acpi-pm@0x600"])
    }

    func testADeviceSectionFromANewerBuildIsRefusedNamingTheDeviceAndBothVersions() throws {
        let machine = try makeMachine(debugExit: false)
        defer { machine.shutdownThreads() }
        var state = try machine.saveState()
        let serial = try XCTUnwrap(state.sections.firstIndex { $0.name == "serial0" })
        state.sections[serial].version = 2
        XCTAssertThrowsError(try machine.loadState(state)) { error in
            XCTAssertEqual("\(error)", "state section 'serial0': state version 2 is newer than this build reads (version 1); migrate to a build at least as new as the source")
        }
    }

    func testABadDeviceSectionChangesNoDevice() throws {
        let machine = try makeMachine(debugExit: false)
        defer { machine.shutdownThreads() }
        let original = try machine.saveState()
        // Input waiting in the UART is serial state that a restore of `original` would drop.
        XCTAssertEqual(machine.console.sendToGuest(Array("kept".utf8)[...]), 4)
        let withInput = try machine.saveState()
        XCTAssertNotEqual(withInput, original)
        var bad = original
        let cmos = try XCTUnwrap(bad.sections.firstIndex { $0.name == "cmos" })
        bad.sections[cmos].bytes[0] = 0xff   // an index past CMOS RAM
        XCTAssertThrowsError(try machine.loadState(bad)) { error in
            guard case .unreadableState(section: "cmos", let cause)? = error as? MachineError,
                  cause.error is StateDecodingError else { return XCTFail("\(error)") }
        }
        XCTAssertEqual(try machine.saveState().sections.first { $0.name == "serial0" },
                       withInput.sections.first { $0.name == "serial0" }, "the serial section was decoded but not applied")
    }
}
