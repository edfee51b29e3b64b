import SystemPackage

/// A struct layout as the engine needs it to encode `fields` and decode outputs.
///
/// Built from the UAPI module's layout data for the platform's profile (spec 2.3, 4.1).
public struct ScriptStructLayout: Sendable, Equatable {
    /// One field: its uAPI name, byte offset and width (1, 2, 4 or 8 bytes, little-endian).
    public struct Field: Sendable, Equatable {
        /// The field's name in the uAPI header (`tsm_code`, `out_vdevice_id`), as scripts spell it.
        public var name: String
        /// Byte offset of the field from the start of the struct (kernel-uapi.md §2.3, §4.1 tables).
        public var offset: Int
        /// Width in bytes: 1, 2, 4 or 8, little-endian.
        public var size: Int
        /// Whether the kernel writes this field (`out_*` ids, `tsm_code`), so it is printed.
        public var isOutput: Bool
        /// A field `size` bytes wide at byte `offset`; `isOutput` marks a field the kernel writes. No
        /// validation: the UAPI module's layout tables are the source.
        public init(name: String, offset: Int, size: Int, isOutput: Bool) {
            self.name = name
            self.offset = offset
            self.size = size
            self.isOutput = isOutput
        }
    }

    /// The struct's name in the uAPI header (`iommu_vdevice_tsm_req`).
    public var name: String
    /// The struct size in bytes (the kernel's `ksize`).
    public var size: Int
    /// Its fields in offset order.
    public var fields: [Field]
    /// The name of the leading size word (`size` for iommufd, `argsz` for VFIO), if any; the
    /// engine fills it with the struct size unless the step says otherwise.
    public var sizeField: String?

    /// A layout `size` bytes long with `fields` (in offset order); `sizeField` names the leading size
    /// word (`size` for iommufd, `argsz` for VFIO, nil for none). No validation.
    public init(name: String, size: Int, fields: [Field], sizeField: String? = "size") {
        self.name = name
        self.size = size
        self.fields = fields
        self.sizeField = sizeField
    }

    /// The field called `name`, if the struct has one.
    public func field(_ name: String) -> Field? { fields.first { $0.name == name } }
}

/// A command of the platform's profile: its request code and struct layout.
public struct ScriptCommand: Sendable, Equatable {
    /// Kernel name (`IOMMU_VDEVICE_TSM_REQ`).
    public var name: String
    /// Full request code (`_IO(';', nr)`, e.g. 0x3B96).
    public var request: UInt32
    /// The argument's layout; nil for commands that exist in the table but are not modelled
    /// (IOAS_MAP …): those take `raw` or `arg` only.
    public var layout: ScriptStructLayout?

    /// A command `name` with full ioctl request code `request` (`_IO(';', nr)`) and argument `layout`
    /// (nil: not modelled, `raw`/`arg` only).
    public init(name: String, request: UInt32, layout: ScriptStructLayout?) {
        self.name = name
        self.request = request
        self.layout = layout
    }
}

/// A failure of a step that is not a kernel errno: the step could not be carried out as written
/// (undefined name, unknown command, unknown device, a buffer outside the address space …).
public struct ScriptRunError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public var reason: String
    /// An error with human-readable `reason` (printed in the step's `detail`).
    public init(_ reason: String) { self.reason = reason }
    /// The reason, as is.
    public var description: String { reason }
}

/// One fresh simulated kernel, seen through the operations a script can perform.
///
/// The engine (``ScriptEngine``) talks only to this protocol; ``SimulatedKernelTarget`` implements
/// it over `Kernel.SimulatedKernel`. Kernel results are `Result<_, Errno>` (the errno the
/// simulated kernel returns); ``ScriptRunError`` is for steps that cannot be performed at all.
public protocol ScriptTarget: AnyObject {
    /// The profile's name (`revised`, `v5`, `rev-k`).
    var profileName: String { get }
    /// The command called `name` in this profile, or nil.
    func command(named name: String) -> ScriptCommand?
    /// Names of every command of the profile (for error messages).
    var commandNames: [String] { get }

    /// Maps `size` zeroed bytes of user memory and returns their address. The mapping is
    /// followed by unmapped memory, so a read past its end faults.
    func map(size: Int) throws(ScriptRunError) -> UInt64
    /// Writes `bytes` at `address`; false if any byte is not mapped.
    func write(_ bytes: [UInt8], at address: UInt64) -> Bool
    /// Reads `count` bytes at `address`; nil if any byte is not mapped.
    func read(at address: UInt64, count: Int) -> [UInt8]?
    /// Makes the mapping that starts at `address` writable or read-only (`mprotect`); false if
    /// no mapping starts there. The kernel can still copy from a read-only mapping; a copy to it
    /// faults (EFAULT), which is how scripts reach the write-back faults of spec 3 step 5 and
    /// 4.3 step 14.
    func protect(_ address: UInt64, writable: Bool) -> Bool

    /// `open("/dev/iommu")`.
    func openIOMMUFD() -> Result<Int32, Errno>
    /// `close(fd)` of an iommufd or VFIO device file.
    func close(fd: Int32) -> Result<Void, Errno>
    /// `ioctl(fd, request, argument)`; success is the non-negative return value.
    func ioctl(fd: Int32, request: UInt32, argument: UInt64, signalPending: Bool) -> Result<Int, Errno>

    /// Creates a VM and returns its handle.
    func createVM() -> Result<UInt64, Errno>
    /// Opens the VFIO device file of the PCI function `device` (a BDF such as `10000:01:00.0`).
    func vfioOpen(device: String) -> Result<Int32, Errno>
    /// Adds a VFIO file to a VM's KVM VFIO device (`KVM_DEV_VFIO_FILE_ADD`).
    func vfioAssociate(vfio: Int32, vm: UInt64) -> Result<Void, Errno>
    /// `VFIO_DEVICE_BIND_IOMMUFD`; returns `out_devid`.
    func vfioBind(vfio: Int32, iommufd: Int32) -> Result<UInt32, Errno>

    /// Writes `input` to `tsm/connect` of `device`.
    func connect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno>
    /// Writes `input` to `tsm/disconnect` of `device`.
    func disconnect(device: String, input: String, signalPending: Bool) -> Result<Void, Errno>
    /// Reads `tsm/<attribute>` of `device` (without the trailing newline).
    func sysfsRead(device: String, attribute: String) -> Result<String, Errno>

    /// The devsec TSM `tsm` locks `device` (spec 7.3: `tsm/lock`), giving it a non-link context.
    func devsecLock(device: String, tsm: String) -> Result<Void, Errno>

    /// Holds a pci-tsm lock across steps (spec 6.4): `global` (pci_tsm_rwsem for writing, as a
    /// connect in progress) or `dsm` (the DSM mutex of `device`). Returns a handle for
    /// ``releaseLock(_:)``.
    func holdLock(_ lock: String, device: String?) -> Result<UInt64, Errno>
    /// Releases a held lock; false for an unknown handle.
    func releaseLock(_ handle: UInt64) -> Bool
    /// Which locks are held now.
    var heldLocks: (global: Bool, dsm: Bool) { get }

    /// Configures the sample link TSM's `guest_req` (spec 7.4).
    func configureSampleTSM(_ spec: SampleTSMSpec, residue: UInt64?, tsmCode: UInt64?) throws(ScriptRunError)
}

/// Builds targets and names errnos: the one place that knows the concrete kernel.
public protocol ScriptHost: Sendable {
    /// A fresh kernel for `platform`. `baseDirectory` resolves relative dump paths.
    func makeTarget(_ platform: PlatformSpec, baseDirectory: String?) throws(ScriptRunError) -> any ScriptTarget
    /// The Linux name of `errno` (`EINVAL`), or its number as text if it has none.
    func name(of errno: Errno) -> String
    /// The errno called `name`, or nil.
    func errno(named name: String) -> Errno?
}
