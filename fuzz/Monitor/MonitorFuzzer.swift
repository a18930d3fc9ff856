import Glibc
import Machine
import Migration
@testable import Monitor

/// libFuzzer entry point for the human monitor's command line: the tokenizer, the argument
/// parser over every registered command's specs, the handlers that decode their own
/// arguments (x/xp formats, cpu, migrate_set_parameter values, capabilities, help), and tab
/// completion at several word positions. Each input is a client's bytes, run against a
/// fresh interpreter (FuzzMonitor) so a finding replays alone. Errors are expected; traps,
/// sanitizer reports and the invariants below are findings.

private let verbose = getenv("SWIFTKVM_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    let controller = MigrationController()
    let interpreter = FuzzMonitor.interpreter(backend: FuzzBackend(), machine: FuzzMachine(running: true),
                                              controller: controller)
    // Lines as a `-monitor unix:`/`tcp:` client's bytes are cut (CR LF, overlong lines), with
    // a small bound so that overlong lines occur in small inputs.
    var splitter = LineSplitter(maxLineBytes: 512)
    for piece in splitter.feed(bytes) + splitter.finish() {
        guard case .line(let line) = piece else { continue }
        let outcome = interpreter.execute(line, mayWait: true)
        if verbose { fputs("\(line.debugDescription) -> \(outcome)\n", stderr) }
        // An error is one message the frontend prints as a line: never empty, no newline after.
        if let error = outcome.error, error.isEmpty || error.hasSuffix("\n") { abort() }
        if !outcome.output.isEmpty && !outcome.output.hasSuffix("\n") { abort() }
        complete(line, in: interpreter)
    }
    if interpreter.history.count > CommandInterpreter.historyLimit { abort() }
    return 0
}

/// Completion as readline asks for it, at one of three places chosen by the line's length (all
/// three for every line made completion most of the time spent): the last word, an empty word
/// at the end, or a word starting at an arbitrary byte (maybe inside a UTF-8 sequence or a
/// quoted word).
private func complete(_ line: String, in interpreter: CommandInterpreter) {
    let utf8 = Array(line.utf8)
    let lastBlank = utf8.lastIndex { CommandLineTokenizer.isBlank($0) }.map { $0 + 1 } ?? 0
    let places = [lastBlank, utf8.count, utf8.count * 2 / 3]
    for start in [places[utf8.count % places.count]] {
        let word = String(decoding: utf8[start...], as: UTF8.self)
        let candidates = interpreter.completions(line: line, wordStart: start, word: word)
        // Candidates complete the word: each starts with what was typed.
        if let candidates, candidates.contains(where: { !$0.hasPrefix(word) }) { abort() }
    }
}
