import CKVM
import Glibc

/// Where a guest access signals an ioeventfd: a port or a guest-physical MMIO address.
public enum IOEventAddress: Equatable, Sendable {
    case port(UInt16)
    case mmio(UInt64)
}

/// ioeventfd and irqfd: the fast paths virtio needs. A guest write to a registered address
/// signals an eventfd inside KVM instead of exiting to user space, and signalling a registered
/// eventfd raises an interrupt line of the in-kernel irqchip.
extension VirtualMachine {
    /// KVM_IOEVENTFD: guest writes of `length` bytes (1, 2, 4 or 8; 0 matches any length, MMIO
    /// only) to `address` signal `event` and complete without an exit. With `value`, only writes
    /// of exactly that value do; others exit as usual.
    public func registerIOEvent(_ event: EventFD, at address: IOEventAddress, length: UInt32, matching value: UInt64? = nil) throws {
        var request = Self.ioEventRequest(event, address, length, value)
        try fd.ioctl("KVM_IOEVENTFD", CKVM_IOEVENTFD, &request)
    }

    /// Removes a registration made with the same arguments; writes exit to user space again.
    public func unregisterIOEvent(_ event: EventFD, at address: IOEventAddress, length: UInt32, matching value: UInt64? = nil) throws {
        var request = Self.ioEventRequest(event, address, length, value)
        request.flags |= CKVM_IOEVENTFD_FLAG_DEASSIGN
        try fd.ioctl("KVM_IOEVENTFD (deassign)", CKVM_IOEVENTFD, &request)
    }

    /// KVM_IRQFD: each signal of `event` pulses interrupt line `gsi` (an edge on the PIC and
    /// IOAPIC pins of the default routing, where GSI n is ISA IRQ n below 16).
    public func registerIRQFD(_ event: EventFD, gsi: UInt32) throws {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: event.rawValue)
        request.gsi = gsi
        try fd.ioctl("KVM_IRQFD", CKVM_IRQFD, &request)
    }

    public func unregisterIRQFD(_ event: EventFD, gsi: UInt32) throws {
        var request = kvm_irqfd()
        request.fd = UInt32(bitPattern: event.rawValue)
        request.gsi = gsi
        request.flags = UInt32(KVM_IRQFD_FLAG_DEASSIGN)
        try fd.ioctl("KVM_IRQFD (deassign)", CKVM_IRQFD, &request)
    }

    /// KVM_GET_IRQCHIP for one chip (0: master PIC, 1: slave PIC, 2: IOAPIC).
    public func irqchip(_ chip: UInt32) throws -> kvm_irqchip {
        var state = kvm_irqchip()
        state.chip_id = chip
        try fd.ioctl("KVM_GET_IRQCHIP", CKVM_GET_IRQCHIP, &state)
        return state
    }

    private static func ioEventRequest(_ event: EventFD, _ address: IOEventAddress, _ length: UInt32, _ value: UInt64?) -> kvm_ioeventfd {
        var request = kvm_ioeventfd()
        request.fd = event.rawValue
        request.len = length
        switch address {
        case .port(let port):
            request.addr = UInt64(port)
            request.flags = CKVM_IOEVENTFD_FLAG_PIO
        case .mmio(let address):
            request.addr = address
        }
        if let value {
            request.datamatch = value
            request.flags |= CKVM_IOEVENTFD_FLAG_DATAMATCH
        }
        return request
    }
}
