import Synchronization
import Sync
import SystemPackage
import UAPI

/// The simulated Linux host kernel: iommufd, VFIO cdevs, the KVM VFIO device, tsm-core and
/// pci-tsm, reached exactly as a real kernel is — through file descriptors and
/// `ioctl(fd, request, argument)` with the argument in a simulated user address space
/// (``memory``) — plus the host administrator's sysfs actions (``pciTSM``).
///
/// One instance is one host running one VMM process: ``memory`` is that process's address space,
/// file descriptors are that process's (lowest free from 3, as POSIX does).
///
/// The uAPI ``profile`` decides the TSM command numbers, the `iommu_vdevice_tsm_req` layout, the
/// valid ops and where the command table ends (spec 0.1, 2.1, 4.1).
///
/// Thread safety: every method may be called from any thread or task concurrently; locks mirror
/// the kernel's (spec 6.4). Interruptible waits give `EINTR` when the calling task is cancelled
/// or `signalPending` is passed.
///
/// Typical use (spec Appendix B):
/// ```swift
/// let kernel = SimulatedKernel()                                   // profile "revised"
/// try kernel.pciTSM.addFunctions(KernelPCIFunction.devsecSampleTopology())
/// let sample = SampleLinkTSM()
/// let tsm = try kernel.pciTSM.register(link: sample)                // tsm0
/// let iommufd = kernel.openIOMMUFD()
/// let vm = kernel.createVM()
/// let vfio = try kernel.openVFIODevice(PCIFunctionAddress("10000:01:00.1")!)
/// try kernel.kvmVFIOFileAdd(vm: vm, vfio: vfio)
/// let devID = try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)
/// // IOAS, HWPT, vIOMMU, vDEVICE, TSM_OP, TSM_REQ: kernel.ioctl(iommufd, request, address)
/// ```
public final class SimulatedKernel: Sendable {
    /// Build-time options of the simulated kernel.
    public struct Configuration: Sendable, Hashable {
        /// CONFIG_TSM: when false both TSM ioctls answer `EOPNOTSUPP` after copy-in (spec 2.2).
        public var configTSM: Bool = true
        /// The default configuration.
        public init() {}
    }

    /// The uAPI profile.
    public let profile: UAPIProfile
    /// Build options.
    public let configuration: Configuration
    /// The VMM process's user address space.
    public let memory: UserAddressSpace
    /// tsm-core and pci-tsm: devices, TSM registration, sysfs actions.
    public let pciTSM: PCITSMCore

    let dispatch: DispatchTable
    private let files = RWProtected(FileTable())
    private let platformDevices = Locked<Set<String>>([])
    private let nextVM = Atomic<Int>(1)

    enum OpenFile {
        case iommufd(IOMMUFDContext)
        case vfio(VFIODeviceFile)
        case vm(VMFile)

        /// The context of an iommufd, nil for other files.
        @inline(__always)
        var iommufd: IOMMUFDContext? {
            if case .iommufd(let context) = self { return context }
            return nil
        }
    }

    struct FileTable {
        static let first: Int32 = 3
        var files: [OpenFile?] = []
        /// Closed slots below the end of `files`: with none, `install` appends without a scan.
        var holes = 0
        /// The identities of the open VFIO files: the EBUSY check without a scan of `files`
        /// (thousands of open cdevs in `tsmctl bench assign`).
        var vfioIdentities: Set<KernelDeviceIdentity> = []
    }

    /// Creates a kernel running `profile`, with the given PCI functions present.
    ///
    /// - Throws: `EEXIST` when two functions share an address.
    public init(profile: UAPIProfile = .default, configuration: Configuration = Configuration(),
                functions: [KernelPCIFunction] = []) throws(Errno) {
        self.profile = profile
        self.configuration = configuration
        self.memory = UserAddressSpace()
        self.pciTSM = PCITSMCore(profile: profile)
        self.dispatch = DispatchTable(profile: profile)
        try pciTSM.addFunctions(functions)
    }

    // MARK: ioctl

    /// `ioctl(fd, request, argument)`.
    ///
    /// - On an iommufd: the dispatcher of spec 2.2 (`nr` outside the table → VFIO-compat:
    ///   VFIO_GET_API_VERSION → 0, VFIO_CHECK_EXTENSION → 0/1, else `ENOTTY` without touching the
    ///   argument; size word → `EFAULT`; request code → `ENOTTY`; minimum size → `EINVAL`; copy-in
    ///   → `E2BIG`/`EFAULT`; the handler), `argument` being the user address of the struct.
    /// - On a VFIO device file: `VFIO_DEVICE_BIND_IOMMUFD` (0x3B76); anything else → `ENOTTY`.
    /// - On a VM file: `ENOTTY` (KVM ioctls are API calls here: ``kvmVFIOFileAdd(vm:vfio:)``).
    ///
    /// - Parameters:
    ///   - fd: a descriptor from ``openIOMMUFD()``, ``openVFIODevice(_:)`` or ``createVM()``.
    ///   - request: the full request code (e.g. `0x3B96`).
    ///   - argument: the user address of the argument (or the value, for VFIO_CHECK_EXTENSION).
    ///   - signalPending: a signal is pending for the caller: interruptible lock waits give `EINTR`
    ///     (an uncontended lock is still taken, as in the kernel).
    /// - Returns: 0, or a positive value (TSM_REQ's residue, VFIO_CHECK_EXTENSION's answer).
    /// - Throws: the errno; `EBADF` for a descriptor that is not open.
    @inline(__always)
    public func ioctl(_ fd: Int32, _ request: UInt32, _ argument: UInt64, signalPending: Bool = false) throws(Errno) -> Int32 {
        // An iommufd (every guest request) is looked up for its context alone: one reference
        // taken, where copying the `OpenFile` enum out and matching it took three.
        if let context = iommufdContext(fd) {
            return try iommufdIoctl(context, request, argument, signalPending: signalPending)
        }
        // Anything else: a fresh look (the descriptor may have changed in between, as after
        // any lookup; this one decides).
        guard let open = file(fd) else { throw .badFileDescriptor }
        switch open {
        case .iommufd(let context):
            return try iommufdIoctl(context, request, argument, signalPending: signalPending)
        case .vfio(let device):
            guard request == CommandSpec.vfioDeviceBindIOMMUFD.request else { throw .inappropriateIOCTLForDevice }
            return try vfioBindIOMMUFDIoctl(device, argument: argument)
        case .vm:
            throw .inappropriateIOCTLForDevice
        }
    }

    // MARK: Files

    /// Opens `/dev/iommu`: a new iommufd context (IDs start again at 1).
    public func openIOMMUFD() -> Int32 {
        install(.iommufd(IOMMUFDContext()))
    }

    /// `KVM_CREATE_VM`: a new VM; returns its file descriptor.
    public func createVM() -> Int32 {
        let vm = VMHandle(id: nextVM.wrappingAdd(1, ordering: .relaxed).oldValue)
        return install(.vm(VMFile(vm: vm)))
    }

    /// The VM handle of a VM file descriptor. - Throws: `EBADF` (not open), `EINVAL` (not a VM).
    public func vm(_ fd: Int32) throws(Errno) -> VMHandle {
        guard let open = file(fd) else { throw .badFileDescriptor }
        guard case .vm(let file) = open else { throw .invalidArgument }
        return file.vm
    }

    /// Opens the VFIO device cdev of a PCI function.
    ///
    /// - Throws: `ENODEV` when the function does not exist; `EBUSY` when its cdev is already open.
    public func openVFIODevice(_ address: PCIFunctionAddress) throws(Errno) -> Int32 {
        guard let node = pciTSM.node(address) else { throw .operationNotSupportedByDevice }
        return try openVFIO(VFIODeviceFile(identity: .pci(address), node: node))
    }

    /// Adds a platform (non-PCI) device that VFIO can open (for the tsm-core "not PCI" paths).
    public func addPlatformDevice(_ name: String) {
        _ = platformDevices.withLock { $0.insert(name) }
    }

    /// Opens the VFIO device cdev of a platform device added with ``addPlatformDevice(_:)``.
    ///
    /// - Throws: `ENODEV` when unknown; `EBUSY` when already open.
    public func openVFIOPlatformDevice(_ name: String) throws(Errno) -> Int32 {
        guard platformDevices.withLock({ $0.contains(name) }) else { throw .operationNotSupportedByDevice }
        return try openVFIO(VFIODeviceFile(identity: .platform(name), node: nil))
    }

    private func openVFIO(_ device: VFIODeviceFile) throws(Errno) -> Int32 {
        try files.write { table throws(Errno) -> Int32 in
            guard table.vfioIdentities.insert(device.identity).inserted else { throw .resourceBusy }
            return Self.install(.vfio(device), in: &table)
        }
    }

    /// `KVM_DEV_VFIO_FILE_ADD` on the VM's KVM VFIO device: associates the VFIO file with the VM
    /// (Linux virt/kvm/vfio.c). A binding made *before* this keeps no VM (spec 1.5).
    ///
    /// - Throws: `EBADF` when either descriptor is not open or `vm` is not a VM file; `EINVAL`
    ///   when `vfio` is not a VFIO file; `EEXIST` when already added.
    public func kvmVFIOFileAdd(vm: Int32, vfio: Int32) throws(Errno) {
        guard let vmOpen = file(vm), case .vm(let vmFile) = vmOpen else { throw .badFileDescriptor }
        guard let vfioOpen = file(vfio) else { throw .badFileDescriptor }
        guard case .vfio(let device) = vfioOpen else { throw .invalidArgument }
        try vmFile.vfioFiles.withLock { list throws(Errno) in
            guard !list.contains(where: { $0 === device }) else { throw .fileExists }
            list.append(device)
        }
        device.state.withLock { $0.vm = vmFile.vm }
    }

    /// `KVM_DEV_VFIO_FILE_DEL`. - Throws: `EBADF` as for add; `ENOENT` when not added.
    public func kvmVFIOFileDelete(vm: Int32, vfio: Int32) throws(Errno) {
        guard let vmOpen = file(vm), case .vm(let vmFile) = vmOpen else { throw .badFileDescriptor }
        guard let vfioOpen = file(vfio) else { throw .badFileDescriptor }
        guard case .vfio(let device) = vfioOpen else { throw .invalidArgument }
        try vmFile.vfioFiles.withLock { list throws(Errno) in
            guard let index = list.firstIndex(where: { $0 === device }) else { throw .noSuchFileOrDirectory }
            list.remove(at: index)
        }
        device.state.withLock { if $0.vm == vmFile.vm { $0.vm = nil } }
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD` as a typed call (the same steps as the ioctl, without the
    /// struct): binds the VFIO file to the iommufd, creating the DEVICE object.
    ///
    /// - Returns: the DEVICE object ID (`out_devid`).
    /// - Throws: `EBADF` (`vfio` not open, or `iommufd` not open), `EINVAL` (`vfio` not a VFIO
    ///   file, or already bound, or `iommufd < 0`), `EBADFD` (`iommufd` not an iommufd).
    public func vfioBindIOMMUFD(_ vfio: Int32, iommufd: Int32) throws(Errno) -> UInt32 {
        guard let open = file(vfio) else { throw .badFileDescriptor }
        guard case .vfio(let device) = open, iommufd >= 0 else { throw .invalidArgument }
        return try bindVFIO(device, iommufd: iommufd)
    }

    /// Closes a file descriptor.
    ///
    /// - iommufd: every object is destroyed, leaves first (spec 1.1) — once no VFIO device is bound
    ///   to it any more (VFIO holds the context, as its file reference does in the kernel).
    /// - VFIO file: unbinds it (forced vDEVICE destroy with tombstone, `tsm_unbind`, DEVICE gone).
    /// - VM file: the VM stays alive while VFIO files or vIOMMUs use it (nothing to do).
    ///
    /// - Throws: `EBADF` when not open.
    public func close(_ fd: Int32) throws(Errno) {
        let open = try files.write { table throws(Errno) -> OpenFile in
            let index = Int(fd) - Int(FileTable.first)
            guard index >= 0, index < table.files.count, let open = table.files[index] else { throw .badFileDescriptor }
            table.files[index] = nil
            table.holes += 1
            while let last = table.files.last, last == nil {
                table.files.removeLast()
                table.holes -= 1
            }
            if case .vfio(let device) = open { table.vfioIdentities.remove(device.identity) }
            return open
        }
        switch open {
        case .iommufd(let context):
            context.fileClosed.store(true, ordering: .releasing)
            if context.boundDevices.load(ordering: .acquiring) == 0 { context.destroyAll(kernel: self) }
        case .vfio(let device):
            unbindVFIO(device)
        case .vm:
            break
        }
    }

    /// The iommufd context open at `fd`, nil when `fd` is not open or not an iommufd.
    @inline(__always)
    func iommufdContext(_ fd: Int32) -> IOMMUFDContext? {
        files.read { table in
            let index = Int(fd) - Int(FileTable.first)
            guard index >= 0, index < table.files.count else { return nil }
            return table.files[index]?.iommufd
        }
    }

    @inline(__always)
    func file(_ fd: Int32) -> OpenFile? {
        files.read { table in
            let index = Int(fd) - Int(FileTable.first)
            guard index >= 0, index < table.files.count else { return nil }
            return table.files[index]
        }
    }

    private func install(_ file: OpenFile) -> Int32 {
        files.write { table in Self.install(file, in: &table) }
    }

    private static func install(_ file: OpenFile, in table: inout FileTable) -> Int32 {
        if table.holes > 0, let index = table.files.firstIndex(where: { $0 == nil }) {
            table.files[index] = file
            table.holes -= 1
            return Int32(index) + FileTable.first
        }
        table.files.append(file)
        return Int32(table.files.count - 1) + FileTable.first
    }

    // MARK: Introspection (tests and tools)

    /// The object table of an iommufd (reserved, tombstoned and live slots, by ID).
    ///
    /// - Throws: `EBADF` when `fd` is not open; `EINVAL` when it is not an iommufd.
    public func objects(_ fd: Int32) throws(Errno) -> [IOMMUFDObjectSnapshot] {
        guard let open = file(fd) else { throw .badFileDescriptor }
        guard case .iommufd(let context) = open else { throw .invalidArgument }
        return context.snapshot()
    }

    /// The bound TDI of a PCI function, if any.
    public func tdi(_ address: PCIFunctionAddress) -> PCITSMCore.TDIState? {
        pciTSM.state(address)?.tdi
    }

    /// What an open descriptor is: `"iommufd"`, `"vfio:<device>"` or `"vm:<n>"`; nil if not open.
    public func describe(_ fd: Int32) -> String? {
        guard let open = file(fd) else { return nil }
        switch open {
        case .iommufd: return "iommufd"
        case .vfio(let device): return "vfio:\(device.identity)"
        case .vm(let file): return "vm:\(file.vm.id)"
        }
    }

    /// The open descriptors, ascending.
    public var openDescriptors: [Int32] {
        files.read { table in
            table.files.enumerated().compactMap { $0.element == nil ? nil : Int32($0.offset) + FileTable.first }
        }
    }

    /// The DEVICE id and VM of a VFIO file's binding (nil when unbound).
    ///
    /// - Throws: `EBADF` when not open; `EINVAL` when not a VFIO file.
    public func vfioBinding(_ fd: Int32) throws(Errno) -> (deviceID: UInt32, vm: VMHandle?)? {
        guard let open = file(fd) else { throw .badFileDescriptor }
        guard case .vfio(let device) = open else { throw .invalidArgument }
        return device.state.withLock { state in state.binding.map { ($0.device.id, $0.device.vm) } }
    }
}
