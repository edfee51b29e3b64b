/// The uAPI profile a simulated kernel runs: which command numbers the TSM ioctls have, which
/// `iommu_vdevice_tsm_req` layout and which op set it accepts (spec 2.1, 4.1, 4.3, 8 items 1-3).
///
/// The kernel-side projection of the `UAPI` module's profiles: only what the dispatcher and the
/// handlers decide on.
public struct KernelProfile: Sendable, Hashable {
    /// The layout of `struct iommu_vdevice_tsm_req` (spec 4.1).
    public enum RequestLayout: Sendable, Hashable {
        /// (a) v5 as posted: 40 bytes, `scope` + `__reserved`, no `tsm_code`.
        case v5
        /// (c) revised: 48 bytes, `op` + `tvm_arch` + `tsm_code`.
        case revised
    }

    /// Profile name: `revised`, `v5` or `rev-k`.
    public var name: String
    /// `nr` of IOMMU_VDEVICE_TSM_OP.
    public var tsmOpNr: UInt8
    /// `nr` of IOMMU_VDEVICE_TSM_REQ.
    public var tsmReqNr: UInt8
    /// The request layout.
    public var requestLayout: RequestLayout
    /// Ops valid with any `tvm_arch` (revised layouts).
    public var anyArchOps: Set<UInt32>
    /// Ops valid only with `tvm_arch == SEV (2)`.
    public var sevOnlyOps: Set<UInt32>
    /// Other commands the profile's table carries but the simulation does not model, by nr
    /// (rev-K: 0x95 IOMMU_IOAS_NOIOMMU_GET_PA). They answer `ENOTTY` after the size read (EMU-KERNEL-4).
    public var unmodelledNrs: Set<UInt8>
    /// Whether the TSM handlers are built (CONFIG_TSM); without, both TSM ioctls answer
    /// `EOPNOTSUPP` after copy-in (spec 2.2).
    public var configTSM: Bool

    /// The default: the 2026-06-02 reply (TSM_OP 0x95, TSM_REQ 0x96, 48 bytes, ops 1..5 any arch,
    /// 6..7 SEV only).
    public static let revised = KernelProfile(
        name: "revised", tsmOpNr: 0x95, tsmReqNr: 0x96, requestLayout: .revised,
        anyArchOps: [1, 2, 3, 4, 5], sevOnlyOps: [6, 7], unmodelledNrs: [], configTSM: true)

    /// v5 as posted (scope form, 40 bytes, TSM_OP 0x95, TSM_REQ 0x96).
    public static let v5 = KernelProfile(
        name: "v5", tsmOpNr: 0x95, tsmReqNr: 0x96, requestLayout: .v5,
        anyArchOps: [], sevOnlyOps: [], unmodelledNrs: [], configTSM: true)

    /// rev-K (kamalca/linux @58252340): TSM_OP 0x96, TSM_REQ 0x97, ops 1..2 any arch, 3..4 SEV only,
    /// 0x95 = IOMMU_IOAS_NOIOMMU_GET_PA.
    public static let revK = KernelProfile(
        name: "rev-k", tsmOpNr: 0x96, tsmReqNr: 0x97, requestLayout: .revised,
        anyArchOps: [1, 2], sevOnlyOps: [3, 4], unmodelledNrs: [0x95], configTSM: true)

    /// All shipped profiles.
    public static let all: [KernelProfile] = [.revised, .v5, .revK]

    /// The profile named `name`, if shipped.
    public static func named(_ name: String) -> KernelProfile? { all.first { $0.name == name } }

    /// `tvm_arch` in {CCA 1, SEV 2, TDX 3} (spec 4.3 step 1).
    public func isValidArch(_ arch: UInt32) -> Bool { arch >= 1 && arch <= 3 }

    /// (op, arch) allowed (spec 4.3 step 2); `arch` is assumed valid.
    public func isValidOp(_ op: UInt32, arch: UInt32) -> Bool {
        anyArchOps.contains(op) || (arch == 2 && sevOnlyOps.contains(op))
    }

    /// Size of `struct iommu_vdevice_tsm_req` in this profile (also its minimum size).
    public var tsmRequestSize: Int { requestLayout == .v5 ? 40 : 48 }

    /// The last command number of the table (where VFIO-compat takes over, spec 0.1).
    public var lastNr: UInt8 { max(tsmOpNr, tsmReqNr, unmodelledNrs.max() ?? 0) }
}
