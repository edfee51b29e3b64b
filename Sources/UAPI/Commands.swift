/// The iommufd (and VFIO bind) commands by name. Raw values are the kernel's ioctl macro names.
///
/// Command *numbers* are not fixed by the name: TSM_OP/TSM_REQ are 0x95/0x96 in v5 and the reply
/// but 0x96/0x97 in rev-K, where 0x95 is IOAS_NOIOMMU_GET_PA (spec 2.1). Ask a ``UAPIProfile``.
public enum CommandID: String, Sendable, CaseIterable, Codable {
    /// `IOMMU_DESTROY`, nr 0x80 in every profile.
    case destroy = "IOMMU_DESTROY"
    /// `IOMMU_IOAS_ALLOC`, nr 0x81 in every profile.
    case ioasAlloc = "IOMMU_IOAS_ALLOC"
    /// `IOMMU_IOAS_ALLOW_IOVAS`, nr 0x82 in every profile (layout not modelled).
    case ioasAllowIOVAs = "IOMMU_IOAS_ALLOW_IOVAS"
    /// `IOMMU_IOAS_COPY`, nr 0x83 in every profile (layout not modelled).
    case ioasCopy = "IOMMU_IOAS_COPY"
    /// `IOMMU_IOAS_IOVA_RANGES`, nr 0x84 in every profile (layout not modelled).
    case ioasIOVARanges = "IOMMU_IOAS_IOVA_RANGES"
    /// `IOMMU_IOAS_MAP`, nr 0x85 in every profile (layout not modelled).
    case ioasMap = "IOMMU_IOAS_MAP"
    /// `IOMMU_IOAS_UNMAP`, nr 0x86 in every profile (layout not modelled).
    case ioasUnmap = "IOMMU_IOAS_UNMAP"
    /// `IOMMU_OPTION`, nr 0x87 in every profile (layout not modelled).
    case option = "IOMMU_OPTION"
    /// `IOMMU_VFIO_IOAS`, nr 0x88 in every profile (layout not modelled).
    case vfioIOAS = "IOMMU_VFIO_IOAS"
    /// `IOMMU_HWPT_ALLOC`, nr 0x89 in every profile.
    case hwptAlloc = "IOMMU_HWPT_ALLOC"
    /// `IOMMU_GET_HW_INFO`, nr 0x8A in every profile (layout not modelled).
    case getHWInfo = "IOMMU_GET_HW_INFO"
    /// `IOMMU_HWPT_SET_DIRTY_TRACKING`, nr 0x8B in every profile (layout not modelled).
    case hwptSetDirtyTracking = "IOMMU_HWPT_SET_DIRTY_TRACKING"
    /// `IOMMU_HWPT_GET_DIRTY_BITMAP`, nr 0x8C in every profile (layout not modelled).
    case hwptGetDirtyBitmap = "IOMMU_HWPT_GET_DIRTY_BITMAP"
    /// `IOMMU_HWPT_INVALIDATE`, nr 0x8D in every profile (layout not modelled).
    case hwptInvalidate = "IOMMU_HWPT_INVALIDATE"
    /// `IOMMU_FAULT_QUEUE_ALLOC`, nr 0x8E in every profile (layout not modelled).
    case faultQueueAlloc = "IOMMU_FAULT_QUEUE_ALLOC"
    /// `IOMMU_IOAS_MAP_FILE`, nr 0x8F in every profile (layout not modelled).
    case ioasMapFile = "IOMMU_IOAS_MAP_FILE"
    /// `IOMMU_VIOMMU_ALLOC`, nr 0x90 in every profile.
    case viommuAlloc = "IOMMU_VIOMMU_ALLOC"
    /// `IOMMU_VDEVICE_ALLOC`, nr 0x91 in every profile.
    case vdeviceAlloc = "IOMMU_VDEVICE_ALLOC"
    /// `IOMMU_IOAS_CHANGE_PROCESS`, nr 0x92 in every profile (layout not modelled).
    case ioasChangeProcess = "IOMMU_IOAS_CHANGE_PROCESS"
    /// `IOMMU_VEVENTQ_ALLOC`, nr 0x93 in every profile (layout not modelled).
    case veventqAlloc = "IOMMU_VEVENTQ_ALLOC"
    /// `IOMMU_HW_QUEUE_ALLOC`, nr 0x94 in every profile (layout not modelled).
    case hwQueueAlloc = "IOMMU_HW_QUEUE_ALLOC"
    /// Linux 7.3 and rev-K: nr 0x95.
    case ioasNoIOMMUGetPA = "IOMMU_IOAS_NOIOMMU_GET_PA"
    /// `IOMMU_VDEVICE_TSM_OP`: nr 0x95 (v5, revised) or 0x96 (rev-k).
    case vdeviceTSMOp = "IOMMU_VDEVICE_TSM_OP"
    /// `IOMMU_VDEVICE_TSM_REQ`: nr 0x96 (v5, revised) or 0x97 (rev-k).
    case vdeviceTSMReq = "IOMMU_VDEVICE_TSM_REQ"
    /// `VFIO_DEVICE_BIND_IOMMUFD`, issued on a VFIO cdev, not on `/dev/iommu`.
    case vfioDeviceBindIOMMUFD = "VFIO_DEVICE_BIND_IOMMUFD"

    /// The kernel macro name, e.g. `"IOMMU_VDEVICE_TSM_REQ"`.
    public var kernelName: String { rawValue }
}

/// One row of a dispatch table: what the kernel's `iommufd_ioctl_ops[]` (or VFIO's switch)
/// knows about a command.
///
/// `layout` and `minimumSize` are nil for commands that exist in the real table but that TSMKit
/// does not model (IOAS_MAP etc.): a dispatcher treats them as present slots (so the request-code
/// and size-word rules of spec 2.2 still apply) with a handler of its choosing.
public struct CommandSpec: Sendable, Hashable {
    /// Which command.
    public let id: CommandID
    /// The command number (`_IOC_NR`).
    public let nr: UInt8
    /// The full request code, `_IO(type, nr)` (spec 2.1): `0x3B00 | nr`.
    public let request: UInt32
    /// The argument struct, if modelled.
    public let layout: StructLayout?
    /// The minimum `size` the dispatcher accepts (`offsetofend` of the field the kernel names);
    /// smaller → EINVAL (spec 2.2 step 4). Nil when not modelled.
    public let minimumSize: Int?

    /// The kernel macro name, e.g. `"IOMMU_VDEVICE_TSM_REQ"`.
    public var name: String { id.rawValue }

    /// The kernel's struct size `ksize` used by the copy-in (spec 2.2 step 5), or nil.
    public var kernelSize: Int? { layout?.size }

    /// Builds a row for an iommufd command (`type` ';'). `minimumField` names the field whose end
    /// is the minimum size; it must be a field of `layout`, else the row gets no minimum (and the
    /// layout tests fail).
    public init(_ id: CommandID, nr: UInt8, layout: StructLayout?, minimumField: String?,
                type: UInt8 = IoctlCode.iommufdType) {
        self.id = id
        self.nr = nr
        self.request = IoctlCode.io(type: type, nr: nr)
        self.layout = layout
        if let layout, let minimumField, let field = layout.field(named: minimumField) {
            self.minimumSize = field.end
        } else {
            self.minimumSize = nil
        }
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD` = `_IO(';', VFIO_BASE + 18)` = 0x3B76, struct
    /// ``StructLayout/vfioDeviceBindIOMMUFD``, minimum `argsz` 16 (end of `out_devid`).
    /// Linux include/uapi/linux/vfio.h, drivers/vfio/device_cdev.c.
    public static let vfioDeviceBindIOMMUFD = CommandSpec(
        .vfioDeviceBindIOMMUFD, nr: IoctlCode.vfioBase + 18, layout: .vfioDeviceBindIOMMUFD,
        minimumField: "out_devid", type: IoctlCode.vfioType)
}

/// What a dispatcher finds for a request code in a profile's table (spec 2.2 steps 1 and 3).
public enum DispatchSlot: Sendable, Hashable {
    /// `nr < 0x80` or past the table's end: the VFIO-compat path, ENOTTY for everything except the
    /// legacy container ioctls; the argument is not touched (spec 2.2 step 1, 0.1).
    case outsideTable
    /// A slot inside the table holds this command. The dispatcher still reads the size word
    /// (EFAULT) and then compares `command.request` with the request (ENOTTY on mismatch).
    case command(CommandSpec)
    /// A slot inside the table with no command (e.g. a selftest-extended table): size word read
    /// (EFAULT), then ENOTTY.
    case emptySlot
}
