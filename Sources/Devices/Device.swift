/// A device the machine holds in its list: it has a name, may claim port and MMIO ranges (see
/// `PortDevice` and `MMIODevice`), resets to its power-on state, and may carry state that
/// migrates as a versioned value. The machine loops over its devices for bus registration,
/// migration sections (named after the device), the layout check and reset.
public protocol Device: AnyObject {
    /// The instance name ("serial0"): bus listings and errors, the migration section and the
    /// layout entry all use it, so it must stay the same across builds that migrate to each other.
    var name: String { get }
    /// Back to power-on state; wiring (callbacks, configured ranges) stays.
    func reset()
    /// The state versions this build reads (QEMU's minimum_version_id...version_id), or nil for a
    /// device with nothing to migrate.
    var readableStateVersions: ClosedRange<UInt32>? { get }
    /// The device's state at the version this build writes; nil for a stateless device.
    func saveState() -> VersionedState?
    /// Decodes and checks `saved` without touching the device; the returned closure applies it,
    /// so a machine can check every section before it changes anything.
    func prepareRestore(_ saved: VersionedState) throws -> () -> Void
    /// Whether the migration layout lists the device; a destination must have the same list.
    var inMigrationLayout: Bool { get }
}

extension Device {
    public func reset() {}
    public var readableStateVersions: ClosedRange<UInt32>? { nil }
    public func saveState() -> VersionedState? { nil }
    public func prepareRestore(_ saved: VersionedState) throws -> () -> Void {
        throw DeviceStateError(device: name, cause: .stateless)
    }
    public var inMigrationLayout: Bool { true }
}

/// A device whose whole state is one `DeviceState` value: saving encodes it, restoring builds it
/// from the bytes, and reset restores the state's power-on value.
public protocol StatefulDevice: Device {
    associatedtype State: DeviceState
    var state: State { get }
    func restore(_ state: State)
}

extension StatefulDevice {
    public func reset() { restore(State()) }

    public var readableStateVersions: ClosedRange<UInt32>? { State.minimumVersion...State.version }

    public func saveState() -> VersionedState? {
        VersionedState(version: State.version, bytes: state.encoded())
    }

    public func prepareRestore(_ saved: VersionedState) throws -> () -> Void {
        let decoded: State
        do {
            decoded = try State(decoding: saved.bytes, version: saved.version)
        } catch let error as StateDecodingError {
            throw DeviceStateError(device: name, cause: error)
        }
        return { self.restore(decoded) }
    }
}

/// A device's state as it travels: the layout version it was written in, and its bytes.
public struct VersionedState: Equatable, Sendable {
    public var version: UInt32
    public var bytes: [UInt8]

    public init(version: UInt32, bytes: [UInt8]) {
        self.version = version; self.bytes = bytes
    }
}

/// A device's state could not be restored; says which device, and keeps why.
public struct DeviceStateError: Error, Equatable, CustomStringConvertible {
    public var device: String
    public var cause: StateDecodingError

    public init(device: String, cause: StateDecodingError) {
        self.device = device; self.cause = cause
    }

    public var description: String { "device \(device): \(cause)" }
}
