/// What observers of a `MigrationController` hear about every outgoing migration, whoever
/// started it: each status change (QEMU's MIGRATION event) and each event the job reports.
public enum MigrationNotification: Equatable, Sendable {
    case statusChanged(MigrationStatus)
    case event(MigrationEvent)
}
