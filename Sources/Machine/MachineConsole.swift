/// The guest's console as the back ends see it. Until an incoming migration or snapshot has
/// been loaded, the UART is a placeholder that `loadState` overwrites, FIFO and all: bytes typed
/// then (a user or script talking to a restored guest at once) would vanish with it, and a
/// Linux guest, whose 8250 driver waits for a receive interrupt, would never hear them. So
/// while the machine is `paused (inmigrate)` nothing is accepted and the back end keeps the
/// bytes queued, offering them again once the loaded guest's own UART is in place.
final class MachineConsole: GuestConsole {
    private let devices: PlatformDevices
    private let runState: () -> RunState

    init(devices: PlatformDevices, runState: @escaping () -> RunState) {
        self.devices = devices
        self.runState = runState
    }

    var guestOutputFD: Int32 { devices.guestOutputFD }

    func sendToGuest(_ bytes: ArraySlice<UInt8>) -> Int {
        // The run state leaves inmigrate only after the loaded state is in place.
        if case .paused(.inmigrate?) = runState() { return 0 }
        return devices.sendToGuest(bytes)
    }
}
