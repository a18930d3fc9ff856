import Glibc
import Machine
@testable import Migration

/// libFuzzer entry point for the destination's stream parser (StreamReceiver and Stream/*).
/// Each input is fed, whole, through a socket pair to a fresh receive into a small machine.
/// Crashes, sanitizer reports and the invariants below are findings; thrown errors are not.

private let destination = FuzzMachine(running: false)
/// SWIFTKVM_FUZZ_VERBOSE=1 prints each input's outcome (for replaying single files).
private let verbose = getenv("SWIFTKVM_FUZZ_VERBOSE") != nil

@_cdecl("LLVMFuzzerInitialize")
public func fuzzInitialize(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> Int32 {
    if let directory = getenv("SWIFTKVM_FUZZ_WRITE_SEEDS") {
        SeedStreams.write(to: String(cString: directory))
        exit(0)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    var bytes = Array(UnsafeBufferPointer(start: data, count: size))
    sealDigest(&bytes)
    destination.reset()
    guard let (receiveFD, sendFD) = bytes.withUnsafeBytes({ loadedSocketPair($0) }) else { return -1 }
    let connection = MigrationStream(fd: receiveFD)
    let result = Result { try StreamReceiver.receive(from: connection, into: destination, resume: true) }
    connection.close()
    close(sendFD)
    if verbose { fputs("\(size) bytes: \(result)\n", stderr) }
    switch result {
    case .success:
        // Only a stream whose digest matched may load and resume, and then exactly once.
        if destination.loads != 1 || destination.resumes != 1 { abort() }
    case .failure(let error):
        if destination.resumes != 0 || destination.state == .running { abort() }
        // Every refusal must read well: a non-empty message.
        if "\(error)".isEmpty { abort() }
    }
    return 0
}

/// When the input ends like a stream (end tag, then 8 bytes), the digest is made to match
/// the bytes before it, so mutations reach the loading path instead of stopping at the
/// digest check. FuzzCorpusReplayTests applies the same rule when it replays findings.
func sealDigest(_ bytes: inout [UInt8]) {
    let count = bytes.count
    guard count >= 9, bytes[count - 9] == StreamFormat.Tag.end.rawValue else { return }
    let digest = bytes.withUnsafeBytes { StreamDigest.ofStream(UnsafeRawBufferPointer(rebasing: $0[0..<(count - 8)])) }
    withUnsafeBytes(of: digest.littleEndian) { bytes.replaceSubrange((count - 8)..<count, with: $0) }
}

/// A unix socket pair whose receive side already holds every input byte and then end of
/// file, so one thread can run the receiver without a feeder.
private func loadedSocketPair(_ input: UnsafeRawBufferPointer) -> (Int32, Int32)? {
    var fds: [Int32] = [0, 0]
    guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { return nil }
    var size: Int32 = 16 << 20
    let intSize = socklen_t(MemoryLayout<Int32>.size)
    // SO_SNDBUFFORCE needs root (the fuzzer runs as root here); otherwise inputs stay small.
    if setsockopt(fds[1], SOL_SOCKET, SO_SNDBUFFORCE, &size, intSize) != 0 {
        _ = setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &size, intSize)
    }
    var sent = 0
    while sent < input.count {
        let n = send(fds[1], input.baseAddress! + sent, input.count - sent, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
        if n <= 0 { close(fds[0]); close(fds[1]); return nil }
        sent += n
    }
    shutdown(fds[1], Int32(SHUT_WR))
    return (fds[0], fds[1])
}
