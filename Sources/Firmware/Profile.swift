// The profile switches of arch-backends.md §6.4: where public revisions disagree, the emulator
// lets a platform choose. Defaults are the spec's.

/// The firmware/uAPI profile of one platform (arch-backends.md §6.4).
///
/// | switch | default | effect |
/// |---|---|---|
/// | ``objectOpsTunnelled`` | true for CCA and TDX, false for SEV | ops 1-3 reach the back-end (§0) |
/// | ``ccaObjectNumbering`` | ``CCAObjectNumbering/linux`` | CCA object type numbers (EMU-CCA-1) |
/// | ``ccaReadObjectHonoursOffset`` | false | READ_OBJECT copies from `offset` (EMU-CCA-4) |
/// | ``sevTIOMessageNumbering`` | ``SEVMessageNumbering/v19`` | TIO msg_type values (EMU-SEV-2) |
/// | ``sevTDIAddressing`` | ``SEVTDIAddressing/tdiID64`` | TIO structs name the TDI by u64 tdi_id or u16 guest_device_id |
/// | ``sevMMIOStatusTable`` | ``SEVMMIOStatusTable/latest`` | MMIO_VALIDATE status numbering |
/// | ``sevSetStatePayload`` | ``SEVSetStatePayload/byte`` | SET_TDI_STATE payload size (EMU-SEV-3) |
public struct FirmwareProfile: Sendable, Equatable {
    /// CCA object type numbering (arch-backends.md §1.3, EMU-CCA-1).
    public enum CCAObjectNumbering: Sendable, Equatable { case linux, acs }
    /// SEV TIO msg_type numbering (arch-backends.md §2.3, EMU-SEV-2).
    public enum SEVMessageNumbering: Sendable, Equatable { case v19, v0x81 }
    /// How SEV TIO request structs address the TDI (arch-backends.md §2.3).
    public enum SEVTDIAddressing: Sendable, Equatable { case tdiID64, guestDeviceID16 }
    /// Which MMIO_VALIDATE status table is used (arch-backends.md §2.3).
    public enum SEVMMIOStatusTable: Sendable, Equatable { case latest, legacy }
    /// Size of the SEV SET_TDI_STATE payload (arch-backends.md §6.2, EMU-SEV-3).
    public enum SEVSetStatePayload: Sendable, Equatable { case byte, u32 }

    /// Whether ops 1-3 (READ_OBJECT, REGEN_OBJECT, OBJECT_INFO) reach the back-end. When false
    /// the iommufd layer rejects them with EINVAL (kernel's check); the drivers reject them too.
    public var objectOpsTunnelled: Bool
    /// CCA object numbering: `linux` (1 cert, 2 measurements, 3 report, 4 VCA) or `acs`
    /// (0 VCA, 1 cert, 2 measurements, 3 report, 4 extension evidence, unsupported).
    public var ccaObjectNumbering: CCAObjectNumbering
    /// EMU-CCA-4: READ_OBJECT copies from `offset` instead of 0 (offset > length → EINVAL).
    public var ccaReadObjectHonoursOffset: Bool
    /// `v19`: TDI_INFO 19/20, MMIO_VALIDATE 21/22, MMIO_CONFIG 23/24, SDTE_WRITE 25/26;
    /// `v0x81`: requests 0x81-0x84, responses 0x01-0x04 in the same order.
    public var sevTIOMessageNumbering: SEVMessageNumbering
    /// `tdiID64`: the first 8 bytes of a TIO struct are the u64 tdi_id; `guestDeviceID16`: a u16
    /// guest_device_id (the guest-visible RID) followed by 6 reserved bytes.
    public var sevTDIAddressing: SEVTDIAddressing
    /// `latest` (with NOT_IO and NOT_4K) or `legacy` MMIO_VALIDATE status numbers.
    public var sevMMIOStatusTable: SEVMMIOStatusTable
    /// `byte`: SET_TDI_STATE takes exactly 1 byte (scope API); `u32`: exactly 4 bytes.
    public var sevSetStatePayload: SEVSetStatePayload

    /// A profile with every switch given; the defaults are the spec's for `arch`.
    public init(objectOpsTunnelled: Bool, ccaObjectNumbering: CCAObjectNumbering = .linux,
                ccaReadObjectHonoursOffset: Bool = false, sevTIOMessageNumbering: SEVMessageNumbering = .v19,
                sevTDIAddressing: SEVTDIAddressing = .tdiID64, sevMMIOStatusTable: SEVMMIOStatusTable = .latest,
                sevSetStatePayload: SEVSetStatePayload = .byte) {
        self.objectOpsTunnelled = objectOpsTunnelled
        self.ccaObjectNumbering = ccaObjectNumbering
        self.ccaReadObjectHonoursOffset = ccaReadObjectHonoursOffset
        self.sevTIOMessageNumbering = sevTIOMessageNumbering
        self.sevTDIAddressing = sevTDIAddressing
        self.sevMMIOStatusTable = sevMMIOStatusTable
        self.sevSetStatePayload = sevSetStatePayload
    }

    /// The spec's defaults for `arch` (§6.4): object ops tunnelled for CCA and TDX, not for SEV.
    public static func defaults(for arch: TSMArch) -> FirmwareProfile {
        FirmwareProfile(objectOpsTunnelled: arch != .sev)
    }
}
