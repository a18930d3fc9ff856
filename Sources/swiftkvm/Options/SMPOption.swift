import Units
import Machine

/// `-smp [cpus=]N[,maxcpus=N][,sockets=1][,dies=1][,cores=N][,threads=1]`, QEMU's syntax.
/// swiftkvm gives the guest one socket of N cores with one thread each (what its CPUID and
/// APIC ids describe), so topology properties are accepted only where they say the same, and
/// maxcpus only equal to N (no CPU hotplug). As in QEMU, a missing count comes from maxcpus or
/// from the topology's product. The host's own limit (KVM_CAP_MAX_VCPUS) is checked when the
/// machine is built.
enum SMPOption {
    static let properties = ["cpus", "maxcpus", "sockets", "dies", "cores", "threads"]

    static func cpuCount(_ text: String) throws -> Int {
        var values: [String: Int] = [:]
        for item in PropertyList(text).items {
            let key = item.key ?? "cpus"
            guard properties.contains(key) else {
                throw OptionError.unknownProperty(option: "-smp", property: key, supported: properties)
            }
            guard let value = Int(item.value), value >= 0, item.value.allSatisfy(\.isNumber) else {
                throw OptionError.invalidValue(option: "-smp", value: item.value, expected: "use a CPU count such as 4")
            }
            values[key] = value
        }
        let topology = ["sockets", "dies", "cores", "threads"].compactMap { values[$0] }
        let count = values["cpus"] ?? values["maxcpus"] ?? (topology.isEmpty ? 1 : topology.reduce(1, *))
        guard count >= 1 else { throw OptionError.smp(text: text, problem: "the CPU count must be at least 1") }
        guard count <= MachineConfiguration.maxVCPUCount else {
            throw OptionError.smp(text: text, problem: "at most \(MachineConfiguration.maxVCPUCount) vCPUs")
        }
        if let max = values["maxcpus"], max != count {
            throw OptionError.smp(text: text, problem: "maxcpus=\(max) differs from the CPU count \(count); CPU hotplug is not supported, so maxcpus must equal it")
        }
        let expected = ["sockets": 1, "dies": 1, "cores": count, "threads": 1]
        for key in ["sockets", "dies", "cores", "threads"] {
            if let given = values[key], given != expected[key] {
                throw OptionError.smp(text: text, problem: "\(key)=\(given) does not match the topology swiftkvm gives the guest: one socket of \(count) cores with one thread each (sockets=1,cores=\(count),threads=1, or leave them out)")
            }
        }
        return count
    }
}
