import CZstd
import Glibc
import Machine

/// zstd for RAM batches (stream 1.5, StreamFormat.swift): one frame per batch holding its
/// normal pages in order. One compressor per sending thread and one decompressor per
/// receiver, each keeping its libzstd context for the whole migration.
final class BatchCompressor {
    /// A batch goes compressed only when its frame is at most this share of its plain pages:
    /// a smaller saving would not pay for the destination's decompression.
    static let acceptNumerator = 7
    static let acceptDenominator = 8
    /// Room in front of the frame for the batch's header, so both leave in one write.
    static let headerRoom = 64 * 1024
    static let capacity = StreamFormat.maxBatchPages * GuestRAMRegion.pageSize * acceptNumerator / acceptDenominator

    let level: Int
    private let context: OpaquePointer
    private let buffer: UnsafeMutableRawPointer

    /// nil when libzstd cannot make a context (out of memory): batches then go plain.
    init?(level: Int) {
        guard let created = ZSTD_createCCtx() else { return nil }
        context = created
        self.level = level
        // Level 0 is zstd's default (3), as QEMU passes multifd-zstd-level straight through.
        _ = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        buffer = .allocate(byteCount: Self.headerRoom + Self.capacity, alignment: 16)
    }

    deinit {
        ZSTD_freeCCtx(context)
        buffer.deallocate()
    }

    /// Where the last frame lies; `headerRoom` bytes before it belong to the same allocation.
    var frame: UnsafeMutableRawPointer { buffer + Self.headerRoom }

    /// Compresses the `plainBytes` that `runs` describe into one frame at `frame` and returns
    /// its length, or nil when the frame would not be clearly smaller (the batch goes plain).
    func compress(_ runs: UnsafeBufferPointer<iovec>, plainBytes: Int) -> Int? {
        let limit = plainBytes / Self.acceptDenominator * Self.acceptNumerator
        guard plainBytes > 0, limit > 0, limit <= Self.capacity else { return nil }
        _ = ZSTD_CCtx_reset(context, ZSTD_reset_session_only)
        // The frame header then says its size; the destination checks it against the kinds.
        _ = ZSTD_CCtx_setPledgedSrcSize(context, UInt64(plainBytes))
        // The limit is the output's size: zstd stops as soon as the frame would not fit.
        var output = ZSTD_outBuffer(dst: frame, size: limit, pos: 0)
        for index in runs.indices {
            var input = ZSTD_inBuffer(src: runs[index].iov_base, size: runs[index].iov_len, pos: 0)
            let last = index == runs.count - 1
            while true {
                let left = ZSTD_compressStream2(context, &output, &input, last ? ZSTD_e_end : ZSTD_e_continue)
                if ZSTD_isError(left) != 0 { return nil }
                if last ? left == 0 : input.pos == input.size { break }
                // Output full with input or flushing left: the frame would exceed the limit.
                if output.pos == output.size { return nil }
            }
        }
        return output.pos
    }
}

/// Decodes one batch's frame straight into guest memory, run by run, checking that it holds
/// exactly the batch's normal pages. The frame is untrusted: its header may claim any size,
/// so nothing is sized by it; zstd's window is capped at what one batch needs.
final class BatchDecompressor {
    /// The largest window a frame of one batch can need (4 MiB = maxBatchPages pages).
    static let windowLog: Int32 = 22

    private let context: OpaquePointer
    private var input = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
    private var frameEnded = false

    init?() {
        guard let created = ZSTD_createDCtx() else { return nil }
        context = created
        _ = ZSTD_DCtx_setParameter(context, ZSTD_d_windowLogMax, Self.windowLog)
    }

    deinit { ZSTD_freeDCtx(context) }

    /// Starts decoding `frame`, which must stay valid until `finish`.
    func begin(_ frame: UnsafeRawBufferPointer) {
        _ = ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
        input = ZSTD_inBuffer(src: frame.baseAddress, size: frame.count, pos: 0)
        frameEnded = false
    }

    /// Fills exactly `count` bytes at `destination` with the frame's next bytes.
    func fill(_ destination: UnsafeMutableRawPointer, count: Int) throws(BatchDecodingError) {
        var output = ZSTD_outBuffer(dst: destination, size: count, pos: 0)
        while output.pos < output.size {
            if frameEnded { throw .tooShort }
            let before = (input.pos, output.pos)
            let result = ZSTD_decompressStream(context, &output, &input)
            if ZSTD_isError(result) != 0 { throw .zstd(String(cString: ZSTD_getErrorName(result))) }
            if result == 0 { frameEnded = true }
            if (input.pos, output.pos) == before && input.pos == input.size && !frameEnded { throw .truncated }
        }
    }

    /// After the last run: the frame must end here, with nothing after it.
    func finish() throws(BatchDecodingError) {
        var spare: UInt8 = 0
        while !frameEnded {
            let before = input.pos
            let result = withUnsafeMutableBytes(of: &spare) { byte -> Int in
                var output = ZSTD_outBuffer(dst: byte.baseAddress, size: 1, pos: 0)
                let result = ZSTD_decompressStream(context, &output, &input)
                return ZSTD_isError(result) == 0 && output.pos > 0 ? -1 : result
            }
            if result == -1 { throw .tooLong }
            if ZSTD_isError(result) != 0 { throw .zstd(String(cString: ZSTD_getErrorName(result))) }
            if result == 0 { frameEnded = true }
            if !frameEnded && input.pos == before { throw .truncated }
        }
        if input.pos != input.size { throw .trailingBytes(input.size - input.pos) }
    }
}

/// Why a compressed batch's frame was refused (MigrationError.corruptCompressedBatch).
public enum BatchDecodingError: Error, Equatable, CustomStringConvertible {
    case zstd(String)
    /// The frame ended before the batch's normal pages were full.
    case tooShort
    /// The frame's bytes ran out in the middle of it.
    case truncated
    /// The frame holds more than the batch's normal pages.
    case tooLong
    case trailingBytes(Int)

    public var description: String {
        switch self {
        case .zstd(let reason): return "zstd: \(reason)"
        case .tooShort: return "it decompresses to fewer bytes than its normal pages"
        case .truncated: return "its frame is cut short"
        case .tooLong: return "it decompresses to more bytes than its normal pages"
        case .trailingBytes(let count): return "\(count) bytes follow its frame"
        }
    }
}
