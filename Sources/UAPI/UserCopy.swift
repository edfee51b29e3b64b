import SystemPackage
import Wire

/// The size-extensible copy-in and the copy-out ("respond") of the iommufd dispatcher, as pure
/// functions over user memory (spec kernel-uapi.md 2.2; Linux drivers/iommu/iommufd/main.c
/// `iommufd_fops_ioctl`, include/linux/uaccess.h `copy_struct_from_user`).
///
/// User memory is a parameter: a ``Read`` closure returning exactly `count` bytes at `address` or
/// throwing (normally `EFAULT`), and a ``Write`` closure. A simulated kernel passes its process
/// model's address space; tests pass a ``FlatUserMemory``.
///
/// A dispatcher calls the steps in this order, each one a line, so the order of checks stays
/// visible (or calls ``copyIn(request:argument:profile:read:)`` for steps 1-5 at once):
///
/// | step | function | failure |
/// |------|----------|---------|
/// | 1 | ``UAPIProfile/dispatchSlot(forRequest:)`` | `.outsideTable` → ENOTTY (argument untouched) |
/// | 2 | ``readSizeWord(at:read:)`` | EFAULT |
/// | 3 | ``checkRequest(_:slot:)`` | ENOTTY (empty slot, or code differs) |
/// | 4 | ``checkMinimumSize(_:minimum:)`` | EINVAL |
/// | 5 | ``copyStructFromUser(at:userSize:kernelSize:read:)`` | E2BIG (non-zero tail), EFAULT |
/// | 7 | ``respond(_:userSize:to:write:)`` | EFAULT |
///
/// Readability is modelled per 4 KiB page (``pageSize``): the zero-tail check reads the tail in
/// page-bounded chunks, so an oversized `size` (up to 4 GiB) never allocates more than a page and
/// a non-zero byte before the first unreadable page gives E2BIG, as in the kernel.
public enum UserCopy {
    /// Reads `count` bytes at `address` of user memory, or throws (EFAULT for unmapped memory).
    public typealias Read = (_ address: UInt64, _ count: Int) throws(Errno) -> [UInt8]
    /// Writes `bytes` at `address` of user memory, or throws (EFAULT).
    public typealias Write = (_ address: UInt64, _ bytes: [UInt8]) throws(Errno) -> Void

    /// The page size of the user-memory model, in bytes.
    public static let pageSize: UInt64 = 4096

    /// Step 2: `get_user` of the u32 `size` word at `address` (little-endian).
    ///
    /// Errors: EFAULT if the 4 bytes are unreadable (or the read returns the wrong count).
    public static func readSizeWord(at address: UInt64, read: Read) throws(Errno) -> UInt32 {
        guard address <= UInt64.max - 3 else { throw .badAddress }
        let bytes = try read(address, 4)
        var reader = ByteReader(bytes)
        guard bytes.count == 4, let size = try? reader.u32() else { throw .badAddress }
        return size
    }

    /// Step 3: the slot must hold a command whose full request code equals `request`.
    ///
    /// Returns the command. Errors: ENOTTY for an empty slot, a slot outside the table, or a code
    /// that differs in type, direction or size bits.
    public static func checkRequest(_ request: UInt32, slot: DispatchSlot) throws(Errno) -> CommandSpec {
        guard case let .command(command) = slot, command.request == request else {
            throw .inappropriateIOCTLForDevice
        }
        return command
    }

    /// Step 4: `size < minimum` → EINVAL.
    public static func checkMinimumSize(_ userSize: UInt32, minimum: Int) throws(Errno) {
        guard Int(userSize) >= minimum else { throw .invalidArgument }
    }

    /// Step 5: `copy_struct_from_user(kernel, kernelSize, user, userSize)`.
    ///
    /// * `userSize < kernelSize`: copies `userSize` bytes and zero-fills the rest;
    /// * `userSize > kernelSize`: every byte of `[kernelSize, userSize)` must be zero, checked
    ///   first: non-zero → E2BIG, unreadable → EFAULT; then copies `kernelSize` bytes;
    /// * the copy itself faults → EFAULT.
    ///
    /// Returns exactly `kernelSize` bytes. A negative `kernelSize` is EINVAL (a table bug, never a
    /// trap).
    public static func copyStructFromUser(at address: UInt64, userSize: UInt32, kernelSize: Int,
                                          read: Read) throws(Errno) -> [UInt8] {
        guard kernelSize >= 0 else { throw .invalidArgument }
        let user = UInt64(userSize)
        let kernel = UInt64(kernelSize)
        guard address <= UInt64.max - user else { throw .badAddress }
        if user > kernel {
            try checkZeroed(from: address + kernel, count: user - kernel, read: read)
        }
        let copyCount = Int(min(user, kernel))
        var copy = copyCount == 0 ? [] : try read(address, copyCount)
        guard copy.count == copyCount else { throw .badAddress }
        if copyCount < kernelSize {
            copy.append(contentsOf: repeatElement(0, count: kernelSize - copyCount))
        }
        return copy
    }

    /// Steps 1-5 for one ioctl on a profile's iommufd table.
    ///
    /// Errors, in this order: ENOTTY (nr outside the table; argument not read), EFAULT (size word
    /// unreadable), ENOTTY (empty slot or code mismatch), EINVAL (size below minimum), E2BIG /
    /// EFAULT (tail, copy). For a command without a modelled layout, steps 4-5 are skipped and
    /// ``CopiedArgument/kernelCopy`` is nil.
    public static func copyIn(request: UInt32, argument: UInt64, profile: UAPIProfile,
                              read: Read) throws(Errno) -> CopiedArgument {
        let slot = profile.dispatchSlot(forRequest: request)
        if case .outsideTable = slot { throw .inappropriateIOCTLForDevice }
        let userSize = try readSizeWord(at: argument, read: read)
        let command = try checkRequest(request, slot: slot)
        guard let layout = command.layout, let minimum = command.minimumSize else {
            return CopiedArgument(command: command, userSize: userSize, kernelCopy: nil)
        }
        try checkMinimumSize(userSize, minimum: minimum)
        let copy = try copyStructFromUser(at: argument, userSize: userSize, kernelSize: layout.size, read: read)
        return CopiedArgument(command: command, userSize: userSize, kernelCopy: copy)
    }

    /// The bytes "respond" writes back: the first `min(userSize, kernelCopy.count)` bytes of the
    /// kernel copy (so `size` is echoed as given and trailing user bytes are untouched).
    public static func respondBytes(_ kernelCopy: [UInt8], userSize: UInt32) -> [UInt8] {
        Array(kernelCopy.prefix(Int(min(UInt64(userSize), UInt64(kernelCopy.count)))))
    }

    /// Step 7 ("respond", `iommufd_ucmd_respond`): writes ``respondBytes(_:userSize:)`` at
    /// `address`. Errors: EFAULT if the write fails.
    public static func respond(_ kernelCopy: [UInt8], userSize: UInt32, to address: UInt64,
                               write: Write) throws(Errno) {
        let bytes = respondBytes(kernelCopy, userSize: userSize)
        guard !bytes.isEmpty else { return }
        guard address <= UInt64.max - UInt64(bytes.count) else { throw .badAddress }
        try write(address, bytes)
    }

    /// `check_zeroed_user`: reads `[start, start + count)` page by page; the first non-zero byte
    /// gives E2BIG, the first unreadable page EFAULT.
    static func checkZeroed(from start: UInt64, count: UInt64, read: Read) throws(Errno) {
        var cursor = start
        var left = count
        while left > 0 {
            let pageEnd = (cursor / pageSize + 1) &* pageSize
            let chunk = pageEnd > cursor ? min(left, pageEnd - cursor) : left
            let bytes = try read(cursor, Int(chunk))
            guard bytes.count == Int(chunk) else { throw .badAddress }
            if bytes.contains(where: { $0 != 0 }) { throw .argListTooLong }
            cursor += chunk
            left -= chunk
        }
    }
}

/// The result of ``UserCopy/copyIn(request:argument:profile:read:)``.
public struct CopiedArgument: Sendable, Hashable {
    /// The command the request selected.
    public let command: CommandSpec
    /// The user's `size` word.
    public let userSize: UInt32
    /// The kernel copy, exactly `command.layout.size` bytes; nil for a command without a layout.
    public let kernelCopy: [UInt8]?
}

/// A flat user address space: `bytes` mapped at `base`, everything else unmapped (EFAULT).
///
/// For tests and simple callers of ``UserCopy``; the simulated kernel has its own model.
public struct FlatUserMemory: Sendable, Hashable {
    /// The first mapped address.
    public let base: UInt64
    /// The mapped bytes.
    public private(set) var bytes: [UInt8]

    /// Maps `bytes` at `base` (default 0x10000, so address 0 is unmapped).
    public init(base: UInt64 = 0x10000, bytes: [UInt8]) {
        self.base = base
        self.bytes = bytes
    }

    /// Reads `count` bytes at `address`; EFAULT unless the whole range is mapped; EINVAL for a
    /// negative count.
    public func read(_ address: UInt64, _ count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .invalidArgument }
        let range = try indices(address, count)
        return Array(bytes[range])
    }

    /// Writes `data` at `address`; EFAULT (and no change) unless the whole range is mapped.
    public mutating func write(_ address: UInt64, _ data: [UInt8]) throws(Errno) {
        let range = try indices(address, data.count)
        bytes.replaceSubrange(range, with: data)
    }

    private func indices(_ address: UInt64, _ count: Int) throws(Errno) -> Range<Int> {
        guard address >= base else { throw .badAddress }
        let start = address - base
        guard start <= UInt64(bytes.count), UInt64(count) <= UInt64(bytes.count) - start else {
            throw .badAddress
        }
        return Int(start)..<Int(start) + count
    }
}
