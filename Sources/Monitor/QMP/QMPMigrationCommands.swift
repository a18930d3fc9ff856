import Machine
import Migration

/// QMP's migration commands over the process's `MigrationController`, and the MIGRATION /
/// MIGRATION_PASS events (sent only while the `events` capability is on, as in QEMU).
public enum QMPMigrationCommands {
    public static func register(in table: QMPCommandTable, controller: MigrationController,
                                machine: MigratableMachine, events: QMPEventHub,
                                startIncoming: ((String) throws -> Void)?,
                                incomingPostcopy: MigrationCommands.IncomingPostcopy? = nil) {
        reportEvents(of: controller, to: events)
        QMPObjectCommands.register(in: table, objects: controller.tlsObjects)
        table.register(QMPCommand("migrate", arguments: ["uri", "blk", "inc", "detach", "resume"]) { args in
            let uri = try args.string("uri")
            for flag in ["blk", "inc"] where try args.optionalBool(flag) == true {
                throw QMPError("Parameter '\(flag)' is not supported by swiftkvm")
            }
            if try args.optionalBool("resume") == true {
                try controller.resumePostcopy(uri: uri)
            } else {
                try controller.migrate(uri: uri, machine: machine)
            }
            return .emptyObject
        })
        table.register(QMPCommand("migrate-start-postcopy") { _ in
            try controller.startPostcopy()
            return .emptyObject
        })
        table.register(QMPCommand("migrate-pause") { _ in
            try MigrationCommands.pausePostcopy(controller, incoming: incomingPostcopy)
            return .emptyObject
        })
        table.register(QMPCommand("migrate-recover", arguments: ["uri"]) { args in
            guard let incomingPostcopy else { throw MigrationError.recoverOutsidePostcopyPause }
            try incomingPostcopy.recover(try args.string("uri"))
            return .emptyObject
        })
        table.register(QMPCommand("migrate_cancel") { _ in
            controller.cancel()
            return .emptyObject
        })
        table.register(QMPCommand("migrate-incoming", arguments: ["uri"]) { args in
            let uri = try args.string("uri")
            guard let startIncoming else { throw QMPError("'-incoming' was not specified on the command line") }
            try startIncoming(uri)
            return .emptyObject
        })
        table.register(QMPCommand("query-migrate") { _ in json(controller.stats) })
        table.register(QMPCommand("migrate-set-parameters", arguments: MigrationParameter.all.map(\.name)) { args in
            let changes = try args.members.map { name, json in
                let parameter = try MigrationParameter.named(name)
                return (parameter, try value(of: json, for: parameter))
            }
            try controller.setParameters(changes)
            return .emptyObject
        })
        table.register(QMPCommand("query-migrate-parameters") { _ in
            let parameters = controller.parameters
            return .object(MigrationParameter.all.map { ($0.name, json(parameters[$0])) })
        })
        table.register(QMPCommand("migrate-set-capabilities", arguments: ["capabilities"]) { args in
            guard let list = args["capabilities"] else { throw QMPError.missing("capabilities") }
            guard case .array(let items) = list else { throw QMPError.wrongType("capabilities", expected: "array") }
            let changes = try items.map { item -> (MigrationCapability, Bool) in
                guard case .object = item else { throw QMPError.wrongType("capabilities[0]", expected: "object") }
                let entry = try QMPArguments(item, allowed: ["capability", "state"])
                let capability = try MigrationCapability.named(try entry.string("capability"))
                guard let state = try entry.optionalBool("state") else { throw QMPError.missing("state") }
                return (capability, state)
            }
            try controller.setCapabilities(changes)
            return .emptyObject
        })
        table.register(QMPCommand("query-migrate-capabilities") { _ in
            let capabilities = controller.capabilities
            return .array(MigrationCapability.all.map {
                .object([("capability", .string($0.name)), ("state", .bool(capabilities.isOn($0)))])
            })
        })
    }

    /// A member of `migrate-set-parameters`, as the parameter's QAPI type reads JSON: integers
    /// stay integers (bytes for max-bandwidth, not the human monitor's MiB).
    static func value(of json: JSONValue, for parameter: MigrationParameter) throws -> MigrationParameterValue {
        switch (parameter.type, json) {
        case (.uint8, .integer(let number)), (.uint64, .integer(let number)), (.size, .integer(let number)):
            guard number >= 0 else { break }
            return .unsigned(UInt64(number))
        case (.bool, .bool(let flag)):
            return .bool(flag)
        case (.string, .string(let text)), (.choice, .string(let text)):
            return .string(text)
        case (.string, .null) where parameter.name.hasPrefix("tls-"):
            // QAPI StrOrNull: null turns TLS off, as the empty string does.
            return .string("")
        default:
            break
        }
        throw QMPError.wrongType(parameter.name, expected: parameter.type.qapiName)
    }

    static func json(_ value: MigrationParameterValue) -> JSONValue {
        switch value {
        case .unsigned(let number): return .integer(Int64(clamping: number))
        case .bool(let flag): return .bool(flag)
        case .string(let text): return .string(text)
        }
    }

    /// MIGRATION {"status"} and MIGRATION_PASS {"pass"} for every outgoing migration, whether
    /// QMP or the human monitor started it, while the `events` capability is on.
    static func reportEvents(of controller: MigrationController, to events: QMPEventHub) {
        controller.addObserver { notification in
            guard controller.capabilities.events else { return }
            switch notification {
            case .statusChanged(let status):
                events.emit("MIGRATION", data: .object([("status", .string(status.description))]))
            case .event(.passCompleted(let report)):
                events.emit("MIGRATION_PASS", data: .object([("pass", .integer(Int64(report.pass)))]))
            case .event(.finished), .event(.postcopyStarted), .event(.postcopyPaused), .event(.postcopyRecovered):
                break  // its status change was already reported
            }
        }
    }

    /// QEMU's MigrationInfo: empty before any migration; `ram` once pages move.
    static func json(_ stats: MigrationStats) -> JSONValue {
        if stats.status == .none { return .emptyObject }
        var members: [(String, JSONValue)] = [("status", .string(stats.status.description))]
        if case .failed(let reason) = stats.status { members.append(("error-desc", .string(reason))) }
        members.append(("setup-time", .integer(Int64(clamping: stats.setupTimeMs))))
        members.append(("total-time", .integer(Int64(clamping: stats.totalTimeMs))))
        if let downtime = stats.downtimeMs, stats.status == .completed {
            members.append(("downtime", .integer(Int64(clamping: downtime))))
        } else if let expected = stats.expectedDowntimeMs, stats.status != .completed {
            members.append(("expected-downtime", .integer(Int64(clamping: expected))))
        }
        guard stats.status == .active || stats.status == .completed || stats.status == .cancelling
                || stats.status.isPostcopy else {
            return .object(members)
        }
        var ram: [(String, JSONValue)] = [
            ("transferred", .integer(Int64(clamping: stats.transferredBytes))),
            ("remaining", .integer(Int64(clamping: stats.remainingBytes))),
            ("total", .integer(Int64(clamping: stats.totalBytes))),
            ("duplicate", .integer(Int64(clamping: stats.duplicatePages))),
            ("skipped", .integer(0)),
            ("normal", .integer(Int64(clamping: stats.normalPages))),
            ("normal-bytes", .integer(Int64(clamping: stats.normalBytes))),
            ("dirty-sync-count", .integer(Int64(clamping: stats.dirtySyncCount))),
            ("page-size", .integer(Int64(GuestRAMRegion.pageSize))),
            ("mbps", .double(stats.throughputMbps)),
            ("pages-per-second", .integer(Int64(clamping: stats.pagesPerSecond))),
            ("multifd-bytes", .integer(Int64(clamping: stats.compression?.wireBytes ?? 0))),
            ("precopy-bytes", .integer(Int64(clamping: stats.precopyBytes))),
            ("downtime-bytes", .integer(Int64(clamping: stats.downtimeBytes))),
            ("postcopy-bytes", .integer(Int64(clamping: stats.postcopyBytes))),
            ("postcopy-requests", .integer(Int64(clamping: stats.postcopyRequests))),
        ]
        if stats.dirtyPagesRate > 0 && stats.status != .completed {
            ram.append(("dirty-pages-rate", .integer(Int64(clamping: stats.dirtyPagesRate))))
        }
        members.append(("ram", .object(ram)))
        if let compression = stats.compression {
            members.append(("compression", .object([
                ("pages", .integer(Int64(clamping: compression.pages))),
                ("busy", .integer(Int64(clamping: compression.notTried))),
                ("busy-rate", .double(compression.busyRate)),
                ("compressed-size", .integer(Int64(clamping: compression.frameBytes))),
                ("compression-rate", .double(compression.rate)),
            ])))
        }
        if let faults = stats.postcopyFaults {
            members.append(("postcopy-blocktime", .integer(Int64(clamping: faults.blocktimeMs))))
        }
        return .object(members)
    }
}
