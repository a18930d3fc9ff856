@testable import Devices

/// A UART wired to buffers: what it sent and every interrupt line transition.
final class SerialHarness {
    var transmitted: [UInt8] = []
    var lineChanges: [Bool] = []
    var serial: Serial16550!

    init(receiveCapacity: Int = Serial16550.defaultReceiveCapacity) {
        serial = Serial16550(receiveCapacity: receiveCapacity,
                             onTransmit: { [unowned self] in self.transmitted.append($0) },
                             onInterruptLine: { [unowned self] in self.lineChanges.append($0) })
    }

    init(restoring state: SerialState) {
        serial = Serial16550(state: state,
                             onTransmit: { [unowned self] in self.transmitted.append($0) },
                             onInterruptLine: { [unowned self] in self.lineChanges.append($0) })
    }

    func read(_ offset: UInt16) -> UInt8 { UInt8(serial.portRead(offset: offset, size: 1)) }
    func write(_ offset: UInt16, _ value: UInt8) { serial.portWrite(offset: offset, size: 1, value: UInt32(value)) }

    var iir: UInt8 { read(2) }
    var lsr: UInt8 { read(5) }
    var msr: UInt8 { read(6) }

    func receive(_ bytes: [UInt8]) -> Int { serial.receive(bytes[...]) }
}
