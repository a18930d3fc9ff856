import KVM
import SystemSupport

/// Dirty-page tracking for migration. KVM logs the guest's writes per memory slot; writes the
/// VMM makes itself (loading an image on reset) are not in KVM's log, so they are recorded
/// here and merged into the next collection.
///
/// Manual protection (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 with INITIALLY_SET) when KVM offers it,
/// as QEMU uses it; plain KVM_GET_DIRTY_LOG otherwise. Plain GET clears the log and
/// write-protects every dirty page of the slot at once, at the sync, so a page the guest writes
/// between the sync and the pass reaching it faults, is sent with that write, and is sent again
/// next pass; and switching logging on write-protects all of RAM at once. With manual
/// protection switching on protects nothing (every page starts dirty), reading the log leaves
/// it as it is, and the sender re-arms `rearmChunkPages` at a time just before it reads them
/// (PageSender). Measured (release, loopback, PVM, load 2-3, against the build before, 3 reps):
/// within noise natively (the `dirty` guest's sweeps/s during migration 833 vs 739, f 179 vs
/// 186; totals 0.87-1.0x), where a write-protect fault costs the same either way; under nested
/// SVM (bench/linux.py) migration setup went from 378-438 ms to 107-226 ms, still noisy there.
/// The chunk: 16 MiB is 64 calls per GiB per pass, each a TLB flush of the vCPUs, small next
/// to sending 16 MiB. The dirty ring would need enabling before vCPUs exist and harvesting
/// per vCPU, for no gain at these vCPU counts.
/// Earlier, with plain GET (release, loopback): GET_DIRTY_LOG of a 256 MiB slot took 0.78 ms;
/// switching logging on for 1 GiB 0.3-3.9 ms, for 150 MiB 0.3 ms; the sync after pass 1 of the
/// dirty guest (96 MiB rewritten) 2.8-5.8 ms, later syncs 0.02-0.6 ms.
///
/// The switchover, measured with SWIFTKVM_TRACE_SWITCHOVER (release, loopback, idle 8 GiB
/// guest, medians of 3-4 runs): KVM_GET_DIRTY_LOG of both slots takes 0.03-0.05 ms, so the
/// suspicion that the final sync grows with RAM was wrong for the ioctl, and manual protect has
/// nothing to win here. The Swift side did grow: fresh bitmaps per sync (0.12 ms, first-touch
/// faults on 256 KiB), merging the VMM's all-zero bitmaps word by word (0.16 ms) and building a
/// merged copy of pending | latest (0.1 ms). Now two bitmap sets are allocated when logging
/// starts and used in turn, the VMM merge is skipped when the VMM wrote nothing, and the final
/// pass reads the union directly: 0.43 ms -> 0.05-0.09 ms. The source's whole switchover is
/// about 0.6 ms at 8 GiB; most of the downtime was the destination (its RAM prefaulter, see
/// RAMPrefaulter, and waking the vCPU before acknowledging), 9 ms -> 1 ms in all.
final class DirtyTracking {
    /// Manual protect is on for this VM (set once, before logging first starts).
    var manualProtect = false
    /// Pages re-armed per KVM_CLEAR_DIRTY_LOG call.
    static let rearmChunkPages = 4096
    private let lock = Mutex()
    private(set) var enabled = false
    /// Pages the VMM wrote since the last collection, per region; empty when not logging.
    private var vmmWrites: [[UInt64]] = []
    /// Whether any bit of `vmmWrites` is set, so a collection need not look at them otherwise.
    private var vmmWrote = false
    /// Two sets of bitmaps, used in turn: allocated (and their pages touched) when logging
    /// starts, so that no sync, above all the switchover's, allocates. A caller keeps the set it
    /// got last until the next collection (as the pre-copy loop's pending pages), so the other
    /// set is usually free to be overwritten; when it is not, copy-on-write gives the new
    /// collection its own storage.
    private var bitmapSets: [[[UInt64]]] = []

    func start(_ memory: GuestMemory) {
        lock.withLock {
            enabled = true
            vmmWrites = Self.emptyBitmaps(memory)
            vmmWrote = false
            bitmapSets = [Self.emptyBitmaps(memory), Self.emptyBitmaps(memory)]
        }
    }

    func stop() {
        lock.withLock {
            enabled = false
            vmmWrites = []
            vmmWrote = false
            bitmapSets = []
        }
    }

    func markAll(_ memory: GuestMemory) {
        lock.withLock {
            guard enabled else { return }
            for i in vmmWrites.indices { vmmWrites[i] = [UInt64](repeating: ~0, count: vmmWrites[i].count) }
            vmmWrote = true
        }
    }

    /// Bitmaps for the next collection, one per region, of the right size; their contents are
    /// stale and must be overwritten in full (KVM_GET_DIRTY_LOG writes every word).
    func takeBitmaps(_ memory: GuestMemory) -> [[UInt64]] {
        lock.withLock {
            guard !bitmapSets.isEmpty else { return Self.emptyBitmaps(memory) }
            return bitmapSets.removeFirst()
        }
    }

    /// ORs in and clears what the VMM wrote, then remembers `bitmaps` for reuse.
    func finishCollection(_ bitmaps: inout [[UInt64]]) {
        lock.withLock {
            if vmmWrote {
                for (r, words) in vmmWrites.enumerated() where r < bitmaps.count {
                    for (i, w) in words.enumerated() where w != 0 && i < bitmaps[r].count { bitmaps[r][i] |= w }
                    vmmWrites[r] = [UInt64](repeating: 0, count: words.count)
                }
                vmmWrote = false
            }
            if enabled && bitmapSets.count < 2 { bitmapSets.append(bitmaps) }
        }
    }

    private static func emptyBitmaps(_ memory: GuestMemory) -> [[UInt64]] {
        memory.regions.map { [UInt64](repeating: 0, count: words($0.size)) }
    }

    static func words(_ regionSize: Int) -> Int { (regionSize / 4096 + 63) / 64 }
}
