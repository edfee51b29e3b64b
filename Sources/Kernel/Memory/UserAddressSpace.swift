import Sync
import SystemPackage

/// The user address space of the simulated VMM process: the memory that `ioctl` argument
/// pointers, `req_uptr` and `resp_uptr` point into.
///
/// A real kernel reaches user memory with `copy_from_user` / `copy_to_user`; a pointer into an
/// unmapped page makes those fail and the ioctl returns `EFAULT`. Here, user memory is a set of
/// *mappings* (buffers), each a contiguous range of bytes at a user virtual address. Every access
/// names an address and a length; if any byte of the range is not mapped the access fails with
/// `EFAULT` (`Errno.badAddress`) and nothing is read or written (see docs/kernel.md, "copy faults
/// are all-or-nothing", our choice: a real `copy_to_user` may write a prefix before it faults).
///
/// Addresses: mappings made without a fixed address start at `0x7f00_0000_0000`, page aligned
/// (4096), with at least one unmapped guard page between two mappings, so a range that runs past
/// the end of one buffer always faults. Address 0 (NULL) is never mapped.
///
/// Thread safety: every access takes the address space's mutex for the duration of the copy, so
/// concurrent guest requests, mappings and unmappings never race; an unmap during an ioctl makes
/// the kernel's *next* copy fault, as on a real system.
///
/// Hot path: ``copyIn(from:into:)`` and ``copyOut(to:from:)`` move bytes between user memory and
/// caller-provided raw buffers without allocating.
public final class UserAddressSpace: Sendable {
    /// The page size used to align and separate mappings (bytes).
    public static let pageSize: UInt64 = 4096
    /// The address of the first mapping made without a fixed address.
    public static let firstMappingAddress: UInt64 = 0x7F00_0000_0000

    private let state: Locked<State>

    /// Creates an empty address space.
    public init() {
        state = Locked(State())
    }

    deinit {
        state.withLock { state in
            for region in state.regions { region.storage.deallocate() }
            state.regions.removeAll()
        }
    }

    // MARK: Mapping

    /// Maps `size` zero bytes and returns their user address.
    ///
    /// - Parameters:
    ///   - size: bytes, 1 ... 2^32.
    ///   - address: a fixed user address for the mapping, or `nil` to let the address space choose.
    ///   - writable: false maps it read-only: the kernel can copy from it, and a copy to it faults
    ///     (`EFAULT`), which is how the write-back faults of spec section 8 are produced.
    /// - Throws: `EINVAL` for a size of 0 or above 2^32, a fixed address of 0, or an
    ///   address range that wraps; `EEXIST` when a fixed range overlaps an existing mapping.
    @discardableResult
    public func map(size: Int, at address: UInt64? = nil, writable: Bool = true) throws(Errno) -> UInt64 {
        guard size > 0, size <= 1 << 32 else { throw .invalidArgument }
        return try state.withLock { state throws(Errno) -> UInt64 in
            let base: UInt64
            if let address {
                guard address != 0 else { throw .invalidArgument }
                let (end, overflow) = address.addingReportingOverflow(UInt64(size))
                guard !overflow else { throw .invalidArgument }
                for region in state.regions where region.base < end && address < region.end {
                    throw .fileExists
                }
                base = address
            } else {
                base = state.nextAddress(size: UInt64(size))
            }
            let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: size, alignment: 16)
            storage.initializeMemory(as: UInt8.self, repeating: 0)
            state.insert(Region(base: base, storage: storage, writable: writable))
            return base
        }
    }

    /// Maps a buffer holding `bytes` (at least one byte is mapped even when `bytes` is empty) and
    /// returns its user address.
    @discardableResult
    public func map(bytes: [UInt8], at address: UInt64? = nil, writable: Bool = true) throws(Errno) -> UInt64 {
        let base = try map(size: max(1, bytes.count), at: address)
        try write(base, bytes)
        if !writable { try protect(base, writable: false) }
        return base
    }

    /// Changes whether the mapping that starts at `address` is writable (`mprotect`).
    ///
    /// - Throws: `EINVAL` when no mapping starts at `address`.
    public func protect(_ address: UInt64, writable: Bool) throws(Errno) {
        try state.withLock { state throws(Errno) in
            guard let index = state.regions.firstIndex(where: { $0.base == address }) else { throw .invalidArgument }
            state.regions[index].writable = writable
        }
    }

    /// Removes the mapping that starts at `address`; later accesses to it fault (`EFAULT`).
    ///
    /// - Throws: `EINVAL` when no mapping starts at `address`.
    public func unmap(_ address: UInt64) throws(Errno) {
        try state.withLock { state throws(Errno) in
            guard let index = state.regions.firstIndex(where: { $0.base == address }) else {
                throw .invalidArgument
            }
            let region = state.regions.remove(at: index)
            region.storage.deallocate()
        }
    }

    /// The current mappings, lowest address first: (address, size in bytes).
    public var mappings: [(address: UInt64, size: Int)] {
        state.withLock { state in state.regions.map { ($0.base, $0.storage.count) } }
    }

    // MARK: Access

    /// Reads `count` bytes at `address` (copy_from_user).
    ///
    /// - Throws: `EFAULT` if any byte of `[address, address + count)` is unmapped; `EINVAL` for a
    ///   negative count.
    public func read(_ address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument }
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { buffer in Result { () throws(Errno) in try copyIn(from: address, into: buffer) } }.get()
        return out
    }

    /// Writes `bytes` at `address` (copy_to_user).
    ///
    /// - Throws: `EFAULT` if any byte of the range is unmapped; then nothing is written.
    public func write(_ address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        try bytes.withUnsafeBytes { buffer in Result { () throws(Errno) in try copyOut(to: address, from: buffer) } }.get()
    }

    /// Copies `buffer.count` bytes from user memory at `address` into `buffer` without allocating.
    ///
    /// - Throws: `EFAULT` if any byte is unmapped (then `buffer` is unchanged).
    public func copyIn(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) {
        if buffer.isEmpty { return }
        try state.withLock { state throws(Errno) in
            if let source = state.contiguous(address, count: buffer.count), let destination = buffer.baseAddress {
                destination.copyMemory(from: source, byteCount: buffer.count)
                return
            }
            try state.access(address, count: buffer.count) { region, offset, done, length in
                guard let destination = buffer.baseAddress, let source = region.storage.baseAddress else { return }
                (destination + done).copyMemory(from: source + offset, byteCount: length)
            }
        }
    }

    /// Copies `buffer` into user memory at `address` without allocating.
    ///
    /// - Throws: `EFAULT` if any byte of the destination is unmapped (then nothing is written).
    public func copyOut(to address: UInt64, from buffer: UnsafeRawBufferPointer) throws(Errno) {
        if buffer.isEmpty { return }
        try state.withLock { state throws(Errno) in
            if let destination = state.contiguous(address, count: buffer.count, write: true), let source = buffer.baseAddress {
                destination.copyMemory(from: source, byteCount: buffer.count)
                return
            }
            try state.access(address, count: buffer.count, write: true) { region, offset, done, length in
                guard let source = buffer.baseAddress, let destination = region.storage.baseAddress else { return }
                (destination + offset).copyMemory(from: source + done, byteCount: length)
            }
        }
    }

    /// Copies `count` bytes from user address `source` to user address `destination`
    /// (a driver moving a request into a response, e.g. an echo), through at most 256 bytes of
    /// stack at a time; no heap allocation.
    ///
    /// - Throws: `EFAULT` if either range is not fully mapped; checked before anything is written.
    public func copyWithin(from source: UInt64, to destination: UInt64, count: Int) throws(Errno) {
        guard count > 0 else { return }
        try state.withLock { state throws(Errno) in
            // Both ranges inside one mapping each (the common case): check both, then one
            // `memmove` (`copyMemory`), which gives the same bytes as going through the scratch
            // even when the ranges overlap.
            if let from = state.contiguous(source, count: count),
               let to = state.contiguous(destination, count: count, write: true) {
                to.copyMemory(from: from, byteCount: count)
                return
            }
            // One chunk (the common case): its own source read and destination write check each
            // range before the destination is touched, so the up-front checks would repeat them.
            if count > 256 {
                try state.access(source, count: count) { _, _, _, _ in }
                try state.access(destination, count: count, write: true) { _, _, _, _ in }
            }
            try withUnsafeTemporaryAllocation(byteCount: min(count, 256), alignment: 16) { scratch throws(Errno) in
                var done = 0
                while done < count {
                    let length = min(scratch.count, count - done)
                    let chunk = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<length])
                    try state.access(source + UInt64(done), count: length) { region, offset, inner, piece in
                        guard let d = chunk.baseAddress, let s = region.storage.baseAddress else { return }
                        (d + inner).copyMemory(from: s + offset, byteCount: piece)
                    }
                    try state.access(destination + UInt64(done), count: length, write: true) { region, offset, inner, piece in
                        guard let s = chunk.baseAddress, let d = region.storage.baseAddress else { return }
                        (d + offset).copyMemory(from: s + inner, byteCount: piece)
                    }
                    done += length
                }
            }
        }
    }

    /// Reads a little-endian `u32` at `address` (the dispatcher's `get_user(size)`).
    ///
    /// - Throws: `EFAULT` if any of the 4 bytes is unmapped.
    public func readU32(_ address: UInt64) throws(Errno) -> UInt32 {
        var value: UInt32 = 0
        try withUnsafeMutableBytes(of: &value) { buffer in Result { () throws(Errno) in try copyIn(from: address, into: buffer) } }.get()
        return UInt32(littleEndian: value)
    }

    /// The dispatcher's size read and copy-in (spec 2.2 steps 2-5) under **one** acquisition of
    /// the address space lock: reads the `u32` size word at `address`, passes it to `check`
    /// (steps 3-4, which throw `ENOTTY` / `EOPNOTSUPP` / `EINVAL` and must not touch user memory),
    /// then, when `size <= buffer.count`, copies `size` bytes into `buffer` (step 5). A larger size
    /// is left to the caller (`copy_struct_from_user`'s tail check), with nothing copied.
    ///
    /// - Returns: the size word.
    /// - Throws: `EFAULT` for the size word or the copy (nothing copied), or `check`'s errno.
    @inline(__always)
    func readSizeAndCopyIn(from address: UInt64, into buffer: UnsafeMutableRawBufferPointer,
                           check: (UInt32) throws(Errno) -> Void) throws(Errno) -> UInt32 {
        try state.withLock { state throws(Errno) -> UInt32 in
            // Fast path: the size word and the struct each inside one mapping.
            if let word = state.contiguous(address, count: 4) {
                let size = UInt32(littleEndian: word.loadUnaligned(as: UInt32.self))
                try check(size)
                let count = Int(size)
                if count > 0, count <= buffer.count {
                    if let source = state.contiguous(address, count: count), let destination = buffer.baseAddress {
                        destination.copyMemory(from: source, byteCount: count)
                    } else {
                        try state.access(address, count: count) { region, offset, done, length in
                            guard let destination = buffer.baseAddress, let source = region.storage.baseAddress else { return }
                            (destination + done).copyMemory(from: source + offset, byteCount: length)
                        }
                    }
                }
                return size
            }
            var size: UInt32 = 0
            try state.access(address, count: 4) { region, offset, done, length in
                guard let source = region.storage.baseAddress else { return }
                for index in 0..<length {   // little-endian, possibly across two mappings
                    let byte = UInt32(source.load(fromByteOffset: offset + index, as: UInt8.self))
                    size |= byte << UInt32(8 * (done + index))
                }
            }
            try check(size)
            let count = Int(size)
            if count > 0, count <= buffer.count {
                try state.access(address, count: count) { region, offset, done, length in
                    guard let destination = buffer.baseAddress, let source = region.storage.baseAddress else { return }
                    (destination + done).copyMemory(from: source + offset, byteCount: length)
                }
            }
            return size
        }
    }

    /// True when every byte of `[address, address + count)` is mapped.
    public func isMapped(_ address: UInt64, count: Int) -> Bool {
        guard count > 0 else { return true }
        return state.withLock { state in
            (try? state.access(address, count: count) { _, _, _, _ in }) != nil
        }
    }
}

extension UserAddressSpace {
    /// One mapping. The storage is owned by the address space and freed on unmap or deinit.
    fileprivate struct Region: @unchecked Sendable {
        // @unchecked: the storage is only touched with the address space mutex held.
        let base: UInt64
        let storage: UnsafeMutableRawBufferPointer
        var writable: Bool
        var end: UInt64 { base + UInt64(storage.count) }
    }

    fileprivate struct State: ~Copyable, Sendable {
        /// Mappings sorted by base address, never overlapping.
        var regions: [Region] = []
        var next: UInt64 = UserAddressSpace.firstMappingAddress
        /// The indices of the regions the last lookups found, most recent first: hints, each
        /// checked against its region's range before use, so a stale value after a map or unmap
        /// only costs the search. Four, because a guest request touches three mappings in turn
        /// (argument, request, response) and a single hint missed on most of them.
        var recent: (Int, Int, Int, Int) = (0, 0, 0, 0)

        mutating func insert(_ region: Region) {
            var index = regions.count
            while index > 0, regions[index - 1].base > region.base { index -= 1 }
            regions.insert(region, at: index)
        }

        /// The next free page-aligned address with a guard page before and after.
        mutating func nextAddress(size: UInt64) -> UInt64 {
            let page = UserAddressSpace.pageSize
            let pages = (size + page - 1) / page
            while true {
                let candidate = next
                let end = candidate + pages * page
                if !regions.contains(where: { $0.base < end + page && candidate < $0.end + page }) {
                    next = end + page
                    return candidate
                }
                next += page
            }
        }

        /// Index of the region containing `address`: a recent hit if one still contains it,
        /// else by binary search.
        @inline(__always)
        mutating func regionIndex(containing address: UInt64) -> Int? {
            if contains(recent.0, address) { return recent.0 }
            if contains(recent.1, address) {
                recent = (recent.1, recent.0, recent.2, recent.3)
                return recent.0
            }
            if contains(recent.2, address) {
                recent = (recent.2, recent.0, recent.1, recent.3)
                return recent.0
            }
            if contains(recent.3, address) {
                recent = (recent.3, recent.0, recent.1, recent.2)
                return recent.0
            }
            var low = 0
            var high = regions.count
            while low < high {
                let mid = (low + high) / 2
                if regions[mid].end <= address { low = mid + 1 } else { high = mid }
            }
            guard low < regions.count, regions[low].base <= address else { return nil }
            recent = (low, recent.0, recent.1, recent.2)
            return low
        }

        /// The storage address of `[address, address + count)` when the whole range lies inside
        /// one mapping (writable, for `write`), else nil — also for `count == 0`, an unmapped
        /// address or a read-only mapping: the caller then takes ``access(_:count:write:_:)``,
        /// which reports the fault (`EFAULT`) or walks several mappings.
        @inline(__always)
        mutating func contiguous(_ address: UInt64, count: Int, write: Bool = false) -> UnsafeMutableRawPointer? {
            guard count > 0, let index = regionIndex(containing: address) else { return nil }
            let region = regions[index]
            let offset = address &- region.base   // base <= address: no wrap
            guard UInt64(count) <= UInt64(region.storage.count) &- offset, !write || region.writable,
                  let base = region.storage.baseAddress else { return nil }
            return base + Int(offset)
        }

        /// True when `index` is a valid region index and that region contains `address`.
        @inline(__always)
        func contains(_ index: Int, _ address: UInt64) -> Bool {
            index < regions.count && regions[index].base <= address && address < regions[index].end
        }

        /// Checks that `[address, address + count)` is fully mapped (possibly across adjacent
        /// mappings), then calls `body(region, offsetInRegion, offsetInRange, length)` for each
        /// piece. Nothing is visited unless the whole range is mapped.
        mutating func access(
            _ address: UInt64, count: Int, write: Bool = false,
            _ body: (Region, Int, Int, Int) -> Void
        ) throws(Errno) {
            let (end, overflow) = address.addingReportingOverflow(UInt64(count))
            guard !overflow, let first = regionIndex(containing: address) else { throw .badAddress }
            // Pass 1: the whole range must be mapped.
            var index = first
            var cursor = address
            while cursor < end {
                guard index < regions.count, regions[index].base == cursor || (index == first),
                      !write || regions[index].writable else {
                    throw .badAddress
                }
                cursor = regions[index].end
                index += 1
            }
            // Pass 2: copy.
            index = first
            cursor = address
            while cursor < end {
                let region = regions[index]
                let offset = Int(cursor - region.base)
                let length = Int(min(end, region.end) - cursor)
                body(region, offset, Int(cursor - address), length)
                cursor += UInt64(length)
                index += 1
            }
        }
    }
}
