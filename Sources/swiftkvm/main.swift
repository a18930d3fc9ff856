// SCRATCH main for trying the monitor front end by hand; the lead replaces it.
import Foundation
import Glibc
import Machine
import Monitor

/// A fake guest: echoes typed bytes back on its output pipe, and prints now and then.
final class EchoConsole: GuestConsole {
    let guestOutputFD: Int32
    let writeFD: Int32
    init() {
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)
        _ = fcntl(fds[0], F_SETFL, O_NONBLOCK)
        guestOutputFD = fds[0]
        writeFD = fds[1]
    }
    func emit(_ text: String) { let bytes = Array(text.utf8); _ = write(writeFD, bytes, bytes.count) }
    func sendToGuest(_ bytes: ArraySlice<UInt8>) -> Int {
        var echoed: [UInt8] = []
        for byte in bytes { echoed += byte == 13 ? [13, 10] : [byte] }
        _ = write(writeFD, echoed, echoed.count)
        return bytes.count
    }
}

let env = ProcessInfo.processInfo.environment
let commands = ["info", "help", "quit", "stop", "cont", "migrate"]
let execute: (String) -> CommandOutcome = { line in
    switch line {
    case "quit", "q": return CommandOutcome(quit: true)
    case "info status": return CommandOutcome(output: "VM status: running\n")
    case "help": return CommandOutcome(output: commands.joined(separator: "\n") + "\n")
    default: return CommandOutcome(error: "unknown command: '\(line)'")
    }
}
let complete: (String, Int, String) -> [String]? = { line, wordStart, word in
    if wordStart == 0 { return commands.filter { $0.hasPrefix(word) } }
    if line.hasPrefix("info ") { return ["status", "cpus", "registers"].filter { $0.hasPrefix(word) } }
    if line.hasPrefix("migrate ") { return nil }
    return []
}
let console = EchoConsole()
do {
    let serial = try SerialBackendSpec(parsing: env["SERIAL"] ?? "stdio")
    let monitor = try MonitorBackendSpec(parsing: env["MONITOR"] ?? "stdio")
    let frontend = try MonitorFrontend(execute: execute, complete: complete, console: console,
                                       serial: serial, monitor: monitor,
                                       startInMonitor: env["START_IN_MONITOR"] != nil)
    frontend.waitForClients()
    if let period = env["TICK"].flatMap(Double.init) {
        let out = frontend.asyncOutput
        Thread.detachNewThread {
            var n = 0
            while true {
                Thread.sleep(forTimeInterval: period)
                n += 1
                if n % 2 == 0 { out.printAsync("tick \(n)\n") } else { console.emit("guest\(n) ") }
            }
        }
    }
    exit(frontend.run())
} catch {
    FileIO_error: do { fputs("swiftkvm: \(error)\n", stderr) }
    exit(1)
}
