import SystemPackage
import UAPI
import Wire

/// The kernel's `struct iommufd_ucmd`: one ioctl in flight. `kernelCopy` is the kernel's copy of
/// the argument struct (`ksize` bytes, on the stack), filled by the size-extensible copy-in.
struct UCmd: ~Copyable {
    /// The user address of the argument.
    let argument: UInt64
    /// The `size` word the caller wrote.
    let userSize: UInt32
    /// `ksize` bytes: the kernel copy.
    let kernelCopy: UnsafeMutableRawBufferPointer
    /// The caller's address space.
    let memory: UserAddressSpace
    /// A signal is pending for the calling thread (see ``LockWait``).
    let signalPending: Bool

    /// The kernel copy as bytes (for the `UAPI` struct decoders; not on the guest-request path).
    func bytes() -> [UInt8] { Array(UnsafeRawBufferPointer(kernelCopy)) }

    /// Decodes the kernel copy as `T`. The copy has exactly `T.layout.size` bytes, so decoding
    /// cannot fail; a table bug reports `EINVAL` rather than trapping.
    func decode<T: UAPIStruct>(_ type: T.Type) throws(Errno) -> T {
        do { return try T(bytes: bytes()) } catch { throw .invalidArgument }
    }

    /// Replaces the kernel copy with `value`'s bytes (before ``respond()``).
    func store<T: UAPIStruct>(_ value: T) {
        let encoded = value.encode()
        let count = min(encoded.count, kernelCopy.count)
        for index in 0..<count { kernelCopy[index] = encoded[index] }
    }

    /// A little-endian u32 of the kernel copy at `offset` (0 past the end).
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        guard offset >= 0, offset + 4 <= kernelCopy.count else { return 0 }
        return UInt32(littleEndian: kernelCopy.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A little-endian u64 of the kernel copy at `offset` (0 past the end).
    @inline(__always) func u64(_ offset: Int) -> UInt64 {
        guard offset >= 0, offset + 8 <= kernelCopy.count else { return 0 }
        return UInt64(littleEndian: kernelCopy.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// Stores a little-endian u64 into the kernel copy at `offset` (ignored past the end).
    @inline(__always) func setU64(_ offset: Int, _ value: UInt64) {
        guard offset >= 0, offset + 8 <= kernelCopy.count else { return }
        kernelCopy.storeBytes(of: value.littleEndian, toByteOffset: offset, as: UInt64.self)
    }

    /// `iommufd_ucmd_respond`: copies `min(size, ksize)` bytes of the kernel copy back to the
    /// argument (spec 2.2). - Throws: `EFAULT`.
    @inline(__always) func respond() throws(Errno) {
        let count = min(Int(userSize), kernelCopy.count)
        try memory.copyOut(to: argument, from: UnsafeRawBufferPointer(rebasing: kernelCopy[0..<count]))
    }
}

/// A command handler: returns the ioctl's non-negative value or throws the errno.
typealias IOMMUFDHandler = @Sendable (SimulatedKernel, IOMMUFDContext, borrowing UCmd) throws(Errno) -> Int32

/// The dispatcher table as data (Linux drivers/iommu/iommufd/main.c `iommufd_ioctl_ops[]`):
/// for each nr from 0x80 to the profile's last command, the full request code, the kernel struct
/// size, the minimum size and the handler. Commands the simulation does not model have no
/// handler and answer `EOPNOTSUPP` after the size read and code match (EMU-KERNEL-4).
struct DispatchTable: Sendable {
    /// Plain fields only (no closure, no strings), so reading an entry on every ioctl costs no
    /// reference counting; the handler is chosen by ``IOMMUFDHandlers/run(_:_:_:_:)``.
    struct Entry: Sendable {
        let id: CommandID
        let request: UInt32
        let kernelSize: Int
        let minimumSize: Int
        /// The command has a layout and a handler (else `EOPNOTSUPP`, EMU-KERNEL-4).
        let isModelled: Bool
    }

    /// Index `nr - 0x80`; nil = empty slot.
    let entries: [Entry?]

    /// The handler of each modelled command: one per object kind's file.
    static let handlers: [CommandID: IOMMUFDHandler] = [
        .destroy: IOMMUFDHandlers.destroy,
        .ioasAlloc: IOMMUFDHandlers.ioasAlloc,
        .hwptAlloc: IOMMUFDHandlers.hwptAlloc,
        .viommuAlloc: IOMMUFDHandlers.viommuAlloc,
        .vdeviceAlloc: IOMMUFDHandlers.vdeviceAlloc,
        .vdeviceTSMOp: IOMMUFDHandlers.vdeviceTSMOp,
        .vdeviceTSMReq: IOMMUFDHandlers.vdeviceTSMReq,
    ]

    init(profile: UAPIProfile) {
        var entries = [Entry?](repeating: nil, count: Int(profile.lastCommandNr) - 0x80 + 1)
        for command in profile.commands where command.nr >= 0x80 && command.nr <= profile.lastCommandNr {
            entries[Int(command.nr) - 0x80] = Entry(
                id: command.id, request: command.request,
                kernelSize: command.kernelSize ?? 0, minimumSize: command.minimumSize ?? 0,
                isModelled: command.layout != nil && Self.handlers[command.id] != nil)
        }
        self.entries = entries
    }
}

/// The handlers, one extension per object kind (IOAS.swift, HWPT.swift, VIOMMU.swift,
/// VDevice.swift, TSM.swift); IOMMU_DESTROY here.
enum IOMMUFDHandlers {
    /// Runs the handler of `id` (a switch rather than a table of closures: no reference counting
    /// and a direct call on the per-request path). Only called for modelled commands.
    @inline(__always)
    static func run(_ id: CommandID, _ kernel: SimulatedKernel, _ context: IOMMUFDContext,
                    _ ucmd: borrowing UCmd) throws(Errno) -> Int32 {
        switch id {
        case .vdeviceTSMReq: return try vdeviceTSMReq(kernel, context, ucmd)
        case .vdeviceTSMOp: return try vdeviceTSMOp(kernel, context, ucmd)
        case .destroy: return try destroy(kernel, context, ucmd)
        case .ioasAlloc: return try ioasAlloc(kernel, context, ucmd)
        case .hwptAlloc: return try hwptAlloc(kernel, context, ucmd)
        case .viommuAlloc: return try viommuAlloc(kernel, context, ucmd)
        case .vdeviceAlloc: return try vdeviceAlloc(kernel, context, ucmd)
        default: throw .notSupported
        }
    }

    /// IOMMU_DESTROY (spec 1.3): ENOENT / EBUSY per ``IOMMUFDContext/destroy(_:kernel:)``.
    static let destroy: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        let cmd = try ucmd.decode(IOMMUDestroy.self)
        try context.destroy(cmd.id, kernel: kernel)
        return 0
    }
}

extension SimulatedKernel {
    /// `iommufd_fops_ioctl` (spec 2.2), step by step.
    @inline(__always)
    func iommufdIoctl(_ context: IOMMUFDContext, _ request: UInt32, _ argument: UInt64,
                      signalPending: Bool) throws(Errno) -> Int32 {
        // 1. nr outside the table: the VFIO-compat path; the argument is not touched.
        let nr = Int(request & 0xFF)
        guard nr >= 0x80, nr - 0x80 < dispatch.entries.count else {
            return try vfioCompatIoctl(request, argument)
        }
        // 2-5 under one acquisition of the address-space lock: the size word (EFAULT), the
        // slot's full request code (ENOTTY), a handler (EOPNOTSUPP), the minimum size (EINVAL),
        // then the copy-in into a kernel buffer of ksize bytes.
        let slot = dispatch.entries[nr - 0x80]
        let kernelSize = slot?.kernelSize ?? 0
        return try withUnsafeTemporaryAllocation(byteCount: kernelSize, alignment: 8) { buffer throws(Errno) -> Int32 in
            buffer.initializeMemory(as: UInt8.self, repeating: 0)
            let userSize = try memory.readSizeAndCopyIn(from: argument, into: buffer) { (userSize: UInt32) throws(Errno) in
                // 3. The slot's full request code must equal the request.
                guard let entry = slot, entry.request == request else { throw .inappropriateIOCTLForDevice }
                guard entry.isModelled else { throw .notSupported }
                // 4. Minimum size.
                guard Int(userSize) >= entry.minimumSize else { throw .invalidArgument }
            }
            guard let entry = slot else { throw .inappropriateIOCTLForDevice }
            // 5 (size > ksize): the tail must be zero (E2BIG) and readable (EFAULT).
            if Int(userSize) > buffer.count {
                try copyStructFromUser(into: buffer, from: argument, userSize: userSize)
            }
            // CONFIG_TSM off: both TSM ioctls answer EOPNOTSUPP after the copy-in (spec 2.2).
            if !configuration.configTSM, entry.id == .vdeviceTSMOp || entry.id == .vdeviceTSMReq {
                throw .notSupported
            }
            // 6-7. The handler; its value is the ioctl's.
            let ucmd = UCmd(argument: argument, userSize: userSize, kernelCopy: buffer, memory: memory,
                            signalPending: signalPending)
            return try IOMMUFDHandlers.run(entry.id, self, context, ucmd)
        }
    }

    /// `copy_struct_from_user` (spec 2.2 step 5). The common case (`size == ksize`) is one copy;
    /// a larger size checks the tail with `UAPI.UserCopy` first (E2BIG / EFAULT), a smaller one
    /// copies `size` bytes and leaves the rest zero.
    @inline(__always)
    private func copyStructFromUser(into buffer: UnsafeMutableRawBufferPointer, from argument: UInt64,
                                    userSize: UInt32) throws(Errno) {
        let size = Int(userSize)
        if size <= buffer.count {
            try memory.copyIn(from: argument, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<size]))
            return
        }
        let memory = self.memory
        let copy = try UserCopy.copyStructFromUser(
            at: argument, userSize: userSize, kernelSize: buffer.count,
            read: { (address: UInt64, count: Int) throws(Errno) -> [UInt8] in try memory.read(address, count: count) })
        for index in 0..<min(copy.count, buffer.count) { buffer[index] = copy[index] }
    }

    /// The VFIO container compatibility ioctls `/dev/iommu` answers for nr outside the table
    /// (spec 0.1; Linux drivers/iommu/iommufd/vfio_compat.c): VFIO_GET_API_VERSION (0x3B64) → 0;
    /// VFIO_CHECK_EXTENSION (0x3B65) → 1 for TYPE1 (1), TYPE1v2 (3) and UNMAP_ALL (9), else 0;
    /// everything else → `ENOTTY`. The argument is a value, never dereferenced.
    func vfioCompatIoctl(_ request: UInt32, _ argument: UInt64) throws(Errno) -> Int32 {
        switch request {
        case IoctlCode.io(type: IoctlCode.vfioType, nr: IoctlCode.vfioBase + 0):
            return 0
        case IoctlCode.io(type: IoctlCode.vfioType, nr: IoctlCode.vfioBase + 1):
            return [1, 3, 9].contains(argument) ? 1 : 0
        default:
            throw .inappropriateIOCTLForDevice
        }
    }
}
