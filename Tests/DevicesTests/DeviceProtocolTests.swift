import XCTest
@testable import Devices

/// A state whose layout grew: version 2 added `extra`, and this build still reads version 2
/// while writing version 3 (which added `flag`).
struct EvolvingState: DeviceState {
    static let version: UInt32 = 3
    static let minimumVersion: UInt32 = 2
    var value: UInt8 = 0
    var extra: UInt16 = 0
    var flag = false

    init() {}

    func encode(into writer: inout ByteWriter) {
        writer.write(value)
        writer.write(extra)
        writer.write(flag)
    }

    init(from reader: inout ByteReader, version: UInt32) throws {
        value = try reader.read(UInt8.self, field: "value")
        extra = try reader.read(UInt16.self, field: "extra")
        if version >= 3 { flag = try reader.readBool(field: "flag") }
    }
}

final class EvolvingDevice: StatefulDevice {
    let name = "evolving0"
    private(set) var state = EvolvingState()
    func restore(_ state: EvolvingState) { self.state = state }
    func set(_ value: UInt8) { state.value = value }
}

final class DeviceProtocolTests: XCTestCase {
    func testAStatefulDeviceSavesItsStateAtTheVersionThisBuildWrites() throws {
        let device = EvolvingDevice()
        device.set(7)
        XCTAssertEqual(device.readableStateVersions, 2...3)
        let saved = try XCTUnwrap(device.saveState())
        XCTAssertEqual(saved, VersionedState(version: 3, bytes: [7, 0, 0, 0]))
        let copy = EvolvingDevice()
        try copy.prepareRestore(saved)()
        XCTAssertEqual(copy.state, device.state)
    }

    func testAnOlderReadableVersionIsRead() throws {
        let device = EvolvingDevice()
        try device.prepareRestore(VersionedState(version: 2, bytes: [5, 0x34, 0x12]))()
        XCTAssertEqual(device.state.value, 5)
        XCTAssertEqual(device.state.extra, 0x1234)
        XCTAssertFalse(device.state.flag)
    }

    func testNewerAndTooOldVersionsAreRefusedNamingTheDeviceAndBothVersions() {
        let device = EvolvingDevice()
        XCTAssertThrowsError(try device.prepareRestore(VersionedState(version: 4, bytes: [1, 0, 0, 0, 0]))) { error in
            XCTAssertEqual(error as? DeviceStateError, DeviceStateError(device: "evolving0", cause: .unsupportedVersion(version: 4, readable: 2...3)))
            XCTAssertEqual("\(error)", "device evolving0: state version 4 is newer than this build reads (versions 2 to 3); migrate to a build at least as new as the source")
        }
        XCTAssertThrowsError(try device.prepareRestore(VersionedState(version: 1, bytes: [1]))) { error in
            XCTAssertEqual("\(error)", "device evolving0: state version 1 is older than this build reads (versions 2 to 3); it comes from a build too old to migrate from directly")
        }
        XCTAssertThrowsError(try SerialState(decoding: SerialState().encoded(), version: 2)) { error in
            XCTAssertTrue("\(error)".contains("state version 2 is newer than this build reads (version 1)"), "\(error)")
        }
    }

    func testPreparingARestoreChangesNothingUntilApplied() throws {
        let source = EvolvingDevice()
        source.set(9)
        let device = EvolvingDevice()
        let apply = try device.prepareRestore(try XCTUnwrap(source.saveState()))
        XCTAssertEqual(device.state.value, 0)
        apply()
        XCTAssertEqual(device.state.value, 9)
    }

    func testMalformedBytesNameTheDeviceAndKeepTheCause() {
        XCTAssertThrowsError(try EvolvingDevice().prepareRestore(VersionedState(version: 3, bytes: [1, 0, 0, 2]))) { error in
            XCTAssertEqual(error as? DeviceStateError, DeviceStateError(device: "evolving0", cause: .invalidValue(field: "flag", value: 2)))
        }
        XCTAssertThrowsError(try EvolvingDevice().prepareRestore(VersionedState(version: 3, bytes: [1, 0, 0, 0, 0]))) { error in
            XCTAssertEqual((error as? DeviceStateError)?.cause, .trailingBytes(count: 1))
        }
    }

    func testResetRestoresThePowerOnState() {
        let device = EvolvingDevice()
        device.set(3)
        device.reset()
        XCTAssertEqual(device.state, EvolvingState())
        let controller = I8042(onReset: {})
        controller.portWrite(offset: 4, size: 1, value: 0x60)
        controller.portWrite(offset: 0, size: 1, value: 0x47)
        controller.reset()
        XCTAssertEqual(controller.state, I8042State())
    }

    func testAStatelessDeviceSavesNothingAndRefusesAState() {
        let device = DebugExit(onExit: { _ in })
        XCTAssertNil(device.readableStateVersions)
        XCTAssertNil(device.saveState())
        XCTAssertThrowsError(try device.prepareRestore(VersionedState(version: 1, bytes: []))) { error in
            XCTAssertEqual(error as? DeviceStateError, DeviceStateError(device: "isa-debug-exit", cause: .stateless))
        }
    }

    func testThePCDevicesSaveUnderTheirOwnNames() throws {
        let devices: [Device] = [SerialHarness().serial, I8042(onReset: {}), CMOS(), IgnoredPort(),
                                 ACPIPM(onSCI: { _ in }, onSleep: { _ in }), DebugExit(onExit: { _ in })]
        XCTAssertEqual(devices.map(\.name), ["serial0", "i8042", "cmos", "post", "acpi-pm", "isa-debug-exit"])
        XCTAssertEqual(devices.map { $0.saveState()?.version }, [1, 2, 1, nil, 1, nil])
        XCTAssertEqual(devices.map(\.inMigrationLayout), [true, true, true, false, true, true])
    }

    func testTheI8042HasDataAndCommandPortsAndNothingBetween() throws {
        var unknown: [UInt16] = []
        let bus = PortBus(onUnknownPort: { port, _ in unknown.append(port) })
        var resets = 0
        try bus.register(I8042(onReset: { resets += 1 }))
        bus.write(port: 0x64, size: 1, value: 0xfe)
        XCTAssertEqual(resets, 1)
        XCTAssertEqual(bus.read(port: 0x60, size: 1), 0)
        _ = bus.read(port: 0x62, size: 1)
        XCTAssertEqual(unknown, [0x62])
        XCTAssertEqual(bus.ranges.map(\.base), [0x60, 0x64])
    }

    func testADeviceWhoseRangesClashIsNotRegisteredAtAll() throws {
        let bus = PortBus()
        let clashing = RecordingDevice("self-overlap", ports: [PortRange(base: 0x100, count: 4), PortRange(base: 0x102, count: 4)])
        XCTAssertThrowsError(try bus.register(clashing)) { error in
            guard case let .overlap(new, existing)? = error as? BusError else { return XCTFail("\(error)") }
            XCTAssertEqual(new.device, "self-overlap")
            XCTAssertEqual(existing.device, "self-overlap")
        }
        XCTAssertEqual(bus.ranges, [], "no range of a refused device stays on the bus")
        try bus.register(RecordingDevice("ok", base: 0x100, count: 4))
    }
}
