import Machine

/// Where the pre-copy loop puts RAM: the migration stream (StreamWriter) or the fixed places
/// of a mapped-ram snapshot file (MappedRAMWriter). PageSender and PrecopyLoop see only this.
protocol PageSink: AnyObject {
    /// True once the guest can no longer write its RAM (switchover): pages may be read in
    /// place; before that each page is copied once and the copy is what gets written.
    var pagesAreStable: Bool { get set }
    /// Bytes written so far (`transferred ram` counts these).
    var bytesWritten: UInt64 { get }
    /// One batch: `kinds[i]` says what page `firstPage + i` of region `region` is; a `.normal`
    /// page whose copy turns out all zero becomes `.zero` in `kinds`. Returns the bytes written.
    @discardableResult
    func writeBatch(region: Int, firstPage: Int, kinds: UnsafeMutableBufferPointer<UInt8>,
                    regionBase: UnsafeMutableRawPointer) throws -> Int
    func writePassEnd(_ pass: Int)
    func flush() throws
}

extension StreamWriter: PageSink {}
