/// QEMU's migration globals (`-global migration.NAME=...`), which `info migrate` lists under
/// `globals:`. swiftkvm cannot change them; each says what its stream does. QEMU's
/// `decompress-error-check` and `clear-bitmap-shift` have no counterpart here and are left out.
public struct MigrationGlobal: Equatable, Sendable {
    public let name: String
    public let isOn: Bool
    public let documentation: String

    /// In QEMU's order.
    public static let all: [MigrationGlobal] = [
        MigrationGlobal(name: "store-global-state", isOn: true,
                        documentation: "The stream carries the guest's run state (RunStateSection), so a stopped guest arrives stopped"),
        MigrationGlobal(name: "only-migratable", isOn: false,
                        documentation: "Nothing in a swiftkvm machine blocks migration, so there is nothing to refuse"),
        MigrationGlobal(name: "send-configuration", isOn: true,
                        documentation: "The stream starts with the machine's layout (RAM regions, vCPUs, devices), checked by the destination"),
        MigrationGlobal(name: "send-section-footer", isOn: false,
                        documentation: "State sections carry their length instead of a footer; the whole stream ends with an XXH64 digest"),
    ]
}
