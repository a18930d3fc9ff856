import TLS

/// HMP's `object_add` and `object_del` for the TLS objects, as QEMU's human monitor has them:
/// `object_add tls-creds-x509,id=tls1,dir=/pki,endpoint=client` takes `-object`'s syntax, so
/// credentials can be added or replaced without restarting (QMP has `object-add`).
enum ObjectCommands {
    static func register(in interpreter: CommandInterpreter, objects: TLSObjectRegistry) {
        interpreter.register(MonitorCommand(
            name: "object_add", arguments: [ArgumentSpec("object", .string)],
            help: "create QOM object ([qom-type=]type,id=str[,prop=value][,...])") { args, _ in
            let spec = try args.string("object")
            do {
                try objects.add(try TLSObject.parse(spec))
            } catch TLSObject.SpecError.object(let error) {
                throw MigrationCommands.CommandError.refused(error)
            } catch let error as TLSObject.SpecError {
                // The text is not an object at all: say which text.
                throw MigrationCommands.CommandError.refused(TLSError.badProperty(object: spec, reason: "\(error)"))
            } catch {
                throw MigrationCommands.CommandError.refused(error)
            }
            return ""
        })
        interpreter.register(MonitorCommand(
            name: "object_del", arguments: [ArgumentSpec("id", .string)],
            help: "destroy QOM object") { args, _ in
            do { try objects.remove(id: try args.string("id")) } catch { throw MigrationCommands.CommandError.refused(error) }
            return ""
        })
    }
}
