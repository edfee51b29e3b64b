/// `enum iommu_vdevice_tsm_guest_tvm_arch`: the TVM architecture named in a revised
/// `IOMMU_VDEVICE_TSM_REQ` (field `tvm_arch`, u32 at offset 12).
///
/// Values are the same in the 2026-06-02 reply and rev-K (spec kernel-uapi.md 4.1 (c)):
/// CCA = 1, SEV = 2, TDX = 3; 0 and anything above 3 are invalid (EINVAL, spec 4.3 step 1).
/// Whether an (op, tvm_arch) pair is allowed is answered only by
/// ``UAPIProfile/guestRequestVerdict(op:tvmArch:)``.
public enum TVMArch: UInt32, Sendable, CaseIterable, Codable {
    /// Arm Confidential Compute Architecture (Realms), `..._TVM_ARCH_CCA` = 1.
    case cca = 1
    /// AMD SEV-SNP with TIO, `..._TVM_ARCH_SEV` = 2.
    case sev = 2
    /// Intel TDX Connect, `..._TVM_ARCH_TDX` = 3.
    case tdx = 3

    /// The lower-case short name used by the CLI and JSON: `"cca"`, `"sev"`, `"tdx"`.
    public var name: String {
        switch self {
        case .cca: "cca"
        case .sev: "sev"
        case .tdx: "tdx"
        }
    }

    /// The kernel enumerator: `IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_CCA` etc.
    public var kernelName: String { "IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_\(name.uppercased())" }

    /// Parses ``name`` (case-insensitive); nil for anything else.
    public init?(name: String) {
        guard let arch = TVMArch.allCases.first(where: { $0.name == name.lowercased() }) else { return nil }
        self = arch
    }
}

/// A guest request operation of the revised `IOMMU_VDEVICE_TSM_REQ` (field `op`), by meaning.
///
/// The *number* an operation has on the wire depends on the tree (spec 4.1 (c), section 8
/// item 2): the 2026-06-02 reply numbers seven ops 1..7, rev-K numbers four ops 1..4. Map with
/// ``UAPIProfile/op(rawValue:)`` and ``UAPIProfile/rawValue(of:)``; never hard-code a number.
public enum GuestRequestOp: String, Sendable, CaseIterable, Codable {
    /// `TSM_REQ_READ_OBJECT`: read a TDISP/SPDM object (certificates, measurements, interface
    /// report). Reply only.
    case readObject = "TSM_REQ_READ_OBJECT"
    /// `TSM_REQ_REGEN_OBJECT`: have the TSM regenerate a cached object. Reply only.
    case regenObject = "TSM_REQ_REGEN_OBJECT"
    /// `TSM_REQ_OBJECT_INFO`: query an object's size (CCA's `RHI_DA_OBJECT_SIZE`). Reply only.
    case objectInfo = "TSM_REQ_OBJECT_INFO"
    /// `TSM_REQ_VALIDATE_MMIO`: validate/accept an MMIO range of the TDI.
    case validateMMIO = "TSM_REQ_VALIDATE_MMIO"
    /// `TSM_REQ_SET_TDI_STATE`: move the TDI between TDISP states (e.g. LOCKED → RUN).
    case setTDIState = "TSM_REQ_SET_TDI_STATE"
    /// `TSM_REQ_SEV_ENABLE_DMA`: SEV-TIO only (tvm_arch must be SEV).
    case sevEnableDMA = "TSM_REQ_SEV_ENABLE_DMA"
    /// `TSM_REQ_SEV_DISABLE_DMA`: SEV-TIO only (tvm_arch must be SEV).
    case sevDisableDMA = "TSM_REQ_SEV_DISABLE_DMA"

    /// The kernel enumerator name, e.g. `"TSM_REQ_VALIDATE_MMIO"`.
    public var kernelName: String { rawValue }

    /// Parses the kernel enumerator name, with or without the `TSM_REQ_` prefix, any case
    /// (`"validate_mmio"`, `"TSM_REQ_VALIDATE_MMIO"`); nil for anything else.
    public init?(kernelName: String) {
        let upper = kernelName.uppercased()
        let full = upper.hasPrefix("TSM_REQ_") ? upper : "TSM_REQ_" + upper
        guard let op = GuestRequestOp(rawValue: full) else { return nil }
        self = op
    }
}

/// `enum iommu_vdevice_tsm_op_type`: the `type` field (u32 at offset 4) of
/// `struct iommu_vdevice_tsm_op` (spec kernel-uapi.md 2.3, 3). Same in every profile.
///
/// Any other value gets EINVAL, but only after the vDEVICE lookup (ENOENT) and the VM check
/// (ENODEV) (spec 3, step 4'').
public enum VDeviceTSMOpType: UInt32, Sendable, CaseIterable, Codable {
    /// `IOMMU_VDEVICE_TSM_BIND` = 1: bind the device's TDI to the vIOMMU's VM, tdi_id = virt_id.
    case bind = 1
    /// `IOMMU_VDEVICE_TSM_UNBIND` = 2: unbind the device's TDI (device-global).
    case unbind = 2

    /// The kernel enumerator name.
    public var kernelName: String {
        switch self {
        case .bind: "IOMMU_VDEVICE_TSM_BIND"
        case .unbind: "IOMMU_VDEVICE_TSM_UNBIND"
        }
    }
}

/// `enum iommu_vdevice_tsm_req_scope`: the v5 `scope` field (u32 at offset 8 of the 40-byte
/// layout, spec kernel-uapi.md 4.1 (a)).
///
/// iommufd accepts 0...3 (`scope > 3` → EINVAL, spec 4.2 step 2); pci-tsm then rejects the two
/// DEBUG scopes (EINVAL, step 6).
public enum TSMReqScope: UInt32, Sendable, CaseIterable, Codable {
    /// `IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_INFO` = 0 (= `..._PCI_BASE`): read-only TDISP collateral.
    case pciInfo = 0
    /// `..._PCI_STATE_CHANGE` = 1: UNLOCKED→LOCKED, LOCKED→RUN and architecture helpers.
    case pciStateChange = 1
    /// `..._PCI_DEBUG_READ` = 2.
    case pciDebugRead = 2
    /// `..._PCI_DEBUG_WRITE` = 3 (= `..._PCI_LAST`).
    case pciDebugWrite = 3

    /// `IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_LAST`: the highest scope iommufd accepts.
    public static let pciLast: TSMReqScope = .pciDebugWrite
    /// `PCI_TSM_REQ_STATE_CHANGE`: the highest scope pci-tsm accepts (spec 4.2 step 6).
    public static let pciTSMLast: TSMReqScope = .pciStateChange

    /// The kernel enumerator name.
    public var kernelName: String {
        switch self {
        case .pciInfo: "IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_INFO"
        case .pciStateChange: "IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_STATE_CHANGE"
        case .pciDebugRead: "IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_DEBUG_READ"
        case .pciDebugWrite: "IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_DEBUG_WRITE"
        }
    }
}

/// `enum iommufd_hwpt_alloc_flags`: bits of `iommu_hwpt_alloc.flags` (spec 1.4).
public struct HWPTAllocFlags: OptionSet, Sendable, Hashable {
    /// The flag bits.
    public let rawValue: UInt32
    /// Flags from bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// `IOMMU_HWPT_ALLOC_NEST_PARENT` (bit 0): required of a vIOMMU's parent HWPT.
    public static let nestParent = HWPTAllocFlags(rawValue: 1 << 0)
    /// `IOMMU_HWPT_ALLOC_DIRTY_TRACKING` (bit 1).
    public static let dirtyTracking = HWPTAllocFlags(rawValue: 1 << 1)
    /// `IOMMU_HWPT_FAULT_ID_VALID` (bit 2).
    public static let faultIDValid = HWPTAllocFlags(rawValue: 1 << 2)
    /// `IOMMU_HWPT_ALLOC_PASID` (bit 3).
    public static let pasid = HWPTAllocFlags(rawValue: 1 << 3)
}

/// `enum iommu_hwpt_data_type`: `iommu_hwpt_alloc.data_type` (0 for a paging HWPT).
public enum HWPTDataType: UInt32, Sendable, CaseIterable {
    /// `IOMMU_HWPT_DATA_NONE` = 0.
    case none = 0
    /// `IOMMU_HWPT_DATA_VTD_S1` = 1.
    case vtdS1 = 1
    /// `IOMMU_HWPT_DATA_ARM_SMMUV3` = 2.
    case armSMMUv3 = 2
}

/// `enum iommu_viommu_type`: `iommu_viommu_alloc.type` (spec 1.6). `default` (0) is rejected
/// with EOPNOTSUPP.
public enum VIOMMUType: UInt32, Sendable, CaseIterable {
    /// `IOMMU_VIOMMU_TYPE_DEFAULT` = 0 (rejected by VIOMMU_ALLOC).
    case `default` = 0
    /// `IOMMU_VIOMMU_TYPE_ARM_SMMUV3` = 1.
    case armSMMUv3 = 1
    /// `IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV` = 2.
    case tegra241CMDQV = 2
}

/// `VFIO_DEVICE_BIND_FLAG_TOKEN` (bit 0 of `vfio_device_bind_iommufd.flags`): `token_uuid_ptr`
/// points to a 16-byte VF token UUID (Linux include/uapi/linux/vfio.h).
public let vfioDeviceBindFlagToken: UInt32 = 1 << 0
