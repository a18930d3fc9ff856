@testable import Devices

/// Records every access it gets, on either bus; reads answer `readValue`.
final class RecordingDevice: PortDevice, MMIODevice {
    let name: String
    let portRanges: [PortRange]
    let mmioRanges: [MMIORange]
    var reads: [(offset: UInt64, size: Int)] = []
    var writes: [(offset: UInt64, size: Int, value: UInt64)] = []
    var readValue: UInt64 = 0x0102_0304_0506_0708

    init(_ name: String, ports: [PortRange] = [], mmio: [MMIORange] = []) {
        self.name = name; self.portRanges = ports; self.mmioRanges = mmio
    }

    convenience init(_ name: String, base: UInt16, count: UInt16) {
        self.init(name, ports: [PortRange(base: base, count: count)])
    }

    convenience init(_ name: String, base: UInt64, size: UInt64) {
        self.init(name, mmio: [MMIORange(base: base, size: size)])
    }

    func portRead(offset: UInt16, size: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: mmioRead(offset: UInt64(offset), size: size))
    }

    func portWrite(offset: UInt16, size: Int, value: UInt32) {
        mmioWrite(offset: UInt64(offset), size: size, value: UInt64(value))
    }

    func mmioRead(offset: UInt64, size: Int) -> UInt64 {
        reads.append((offset, size))
        return readValue
    }

    func mmioWrite(offset: UInt64, size: Int, value: UInt64) {
        writes.append((offset, size, value))
    }
}
