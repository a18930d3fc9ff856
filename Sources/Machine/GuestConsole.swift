/// The host side of the guest's serial console, as the console back ends see it.
public protocol GuestConsole: AnyObject {
    /// Read end of a non-blocking pipe carrying the guest's serial output. The machine drops
    /// output when the pipe is full, so a flooding guest cannot grow this process's memory.
    var guestOutputFD: Int32 { get }
    /// Offers bytes typed for the guest; returns how many the UART's receive buffer took.
    /// Offer the rest again later: the guest has not read its buffer yet.
    func sendToGuest(_ bytes: ArraySlice<UInt8>) -> Int
}
