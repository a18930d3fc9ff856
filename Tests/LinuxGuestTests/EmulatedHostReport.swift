/// What the emulated host's checks driver (tests/linux-host/driver) printed on L1's console,
/// parsed from its "@@ " lines.
struct EmulatedHostReport {
    struct Step: Equatable {
        enum Outcome: Equatable { case started, ok, failed(String), skipped }
        var outcome: Outcome
        var seconds: Double?
    }

    /// Steps in the order they ran.
    private(set) var stepOrder: [String] = []
    private(set) var steps: [String: Step] = [:]
    private(set) var results: [String: String] = [:]
    /// A guest command's output lines, without its "@@ status" line.
    private(set) var outputs: [String: [String]] = [:]
    private(set) var statuses: [String: Int] = [:]
    /// The guests' consoles and swiftkvm's output ("@@ live NAME: LINE"), by name in the
    /// order they first appear.
    private(set) var logs: [(name: String, lines: [String])] = []
    /// The first line in which the emulated host's own kernel reports a crash (not a guest's:
    /// those come as "@@ live" lines or inside an output block), e.g. "BUG: TASK stack guard
    /// page was hit", which nested SVM under TCG has been seen to hit.
    private(set) var hostKernelCrash: String?
    static let hostCrashSignatures = ["BUG: ", "Oops: ", "Kernel panic", "general protection fault"]
    static func isHostCrash(_ line: String) -> Bool { hostCrashSignatures.contains(where: line.contains) }
    /// A step's failure reason (tests/linux-host/driver's `why`) that means the guest gave no
    /// answer in its time, as opposed to a wrong one: "no answer to NAME in Ns" for a command,
    /// "no \"READY\" in Ns" or "no \"READY\" again in Ns" for a boot or reboot.
    static func isGuestStall(_ reason: String) -> Bool {
        reason.hasPrefix("no answer to ") || (reason.hasPrefix("no \"") && reason.hasSuffix("s") && reason.contains("\" "))
    }

    init(console: String) {
        var block: (kind: String, name: String, lines: [String])?
        // "\r\n" is one Character in Swift, and a newline.
        for raw in console.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = String(raw)
            if line.hasPrefix("@@ live "), let colon = line.range(of: ": ") {
                live(String(line[line.index(line.startIndex, offsetBy: 8)..<colon.lowerBound]),
                     String(line[colon.upperBound...]))
                continue
            }
            if var open = block {
                if line == "@@ end \(open.name)" {
                    outputs[open.name] = open.lines
                    block = nil
                } else if line.hasPrefix("@@ status "), let status = Int(line.dropFirst(10)) {
                    statuses[open.name] = status
                } else {
                    open.lines.append(line)
                    block = open
                }
                continue
            }
            if hostKernelCrash == nil, Self.isHostCrash(line) {
                hostKernelCrash = line
            }
            // Kernel messages may share a console line with the driver's: look for the marker.
            guard let marker = line.range(of: "@@ ") else { continue }
            let words = line[marker.upperBound...].split(separator: " ", maxSplits: 4).map(String.init)
            switch (words.first, words.count) {
            case ("step", 3...):
                step(words)
            case ("result", 2...):
                results[words[1]] = words.count > 2 ? words[2...].joined(separator: " ") : ""
            case ("out", 2):
                block = (words[0], words[1], [])
            default:
                break
            }
        }
        // A block the console never closed was cut short by L1's end: what it holds after the
        // last output may be L1's own last words, so a crash there is L1's.
        if let open = block, hostKernelCrash == nil {
            hostKernelCrash = open.lines.first(where: Self.isHostCrash)
        }
    }

    private mutating func live(_ name: String, _ line: String) {
        if let index = logs.firstIndex(where: { $0.name == name }) {
            logs[index].lines.append(line)
        } else {
            logs.append((name, [line]))
        }
    }

    private mutating func step(_ words: [String]) {
        let name = words[1]
        if steps[name] == nil { stepOrder.append(name) }
        let seconds = words.count > 3 ? Double(words[3]) : nil
        switch words[2] {
        case "start": steps[name] = Step(outcome: .started, seconds: nil)
        case "ok": steps[name] = Step(outcome: .ok, seconds: seconds)
        case "fail": steps[name] = Step(outcome: .failed(words.count > 4 ? words[4] : ""), seconds: seconds)
        case "skipped": steps[name] = Step(outcome: .skipped, seconds: nil)
        default: break
        }
    }

    /// What a reader of a failed run needs first, in a few lines meant to come last in the log
    /// (CI may keep only its tail): each step's outcome, the VMMs' own messages (a triple
    /// fault, the run state), the end of each guest console, and L1's crash.
    func failureSummary() -> String {
        var lines = ["emulated host summary:"]
        lines.append("  steps: " + stepOrder.map { name in
            switch steps[name]?.outcome {
            case .ok?: return "\(name) ok"
            case .failed(let why)?: return "\(name) FAILED (\(why))"
            case .skipped?: return "\(name) skipped"
            case .started?, nil: return "\(name) unfinished"
            }
        }.joined(separator: ", "))
        for log in logs {
            let kept = log.name.hasPrefix("vmm-")
                ? log.lines.filter(Self.isVMMStateLine)
                : log.lines.filter { !$0.isEmpty }
            for line in kept.suffix(8) { lines.append("  \(log.name): \(line)") }
        }
        for (name, value) in results.sorted(by: { $0.key < $1.key }) where name.hasSuffix("-threads") {
            lines.append("  \(name): \(value)")
        }
        if let hostKernelCrash { lines.append("  L1: \(hostKernelCrash)") }
        return lines.joined(separator: "\n")
    }

    /// A VMM's line worth a summary: its own messages (not the unknown-port notes), the run
    /// state, `info cpus` and each vCPU's RIP line of `info registers -a`.
    static func isVMMStateLine(_ line: String) -> Bool {
        (line.hasPrefix("swiftkvm: ") && !line.contains("unknown I/O port")) || line.hasPrefix("VM status")
            || line.hasPrefix("RIP=") || line.hasPrefix("* CPU #") || line.hasPrefix("  CPU #")
    }

    /// A result as a number, nil when missing or not a number.
    func number(_ name: String) -> Double? { results[name].flatMap(Double.init) }

    /// The last "memcheck: pass N errors E gap_ms G max_gap_ms M" line of an output.
    func memcheck(_ output: String) -> (pass: Int, errors: Int, maxGapMs: Int)? {
        guard let line = outputs[output]?.last(where: { $0.hasPrefix("memcheck: pass ") }) else { return nil }
        let words = line.split(separator: " ").map(String.init)
        guard words.count >= 9, let pass = Int(words[2]), let errors = Int(words[4]), let gap = Int(words[8])
        else { return nil }
        return (pass, errors, gap)
    }
}
