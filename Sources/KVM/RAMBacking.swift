/// What holds the pages of one guest RAM region. The host address of a region never changes
/// (KVM's memory slot points at it); a backing is swapped by mapping over the same range.
/// Whatever the backing, the region is one writable host range of `size` bytes, so anything
/// that works on host addresses (dirty logging, userfaultfd registration) treats them alike.
public enum RAMBacking: Equatable, Sendable {
    /// Private anonymous memory, the default: a page the host never backed reads as zero.
    case anonymous
    /// Part of a memfd mapped shared (`-object memory-backend-memfd`), at `offset` in it. The
    /// memfd can be handed to another process, which then maps the same pages (x-ignore-shared).
    case memfd(offset: Int)
    /// A snapshot file mapped copy-on-write (a mapped-ram restore): pages the guest has not
    /// written read from the file, written ones are private anonymous copies.
    case privateFile

    /// Whether a page the host never backed (neither present nor swapped in /proc/self/pagemap)
    /// reads as zero. Only for anonymous memory: an untouched page of a file or memfd mapping
    /// reads what the file holds.
    public var untouchedPagesReadAsZero: Bool { self == .anonymous }
}

/// How a machine's RAM is created.
public enum RAMBackingKind: Equatable, Sendable {
    case anonymous
    /// One memfd for all regions, each at its own offset, mapped shared.
    case memfd
}
