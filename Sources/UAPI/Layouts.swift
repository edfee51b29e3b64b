/// The layout descriptors of every uAPI struct TSMKit models (spec kernel-uapi.md 2.3, 4.1; Linux
/// include/uapi/linux/vfio.h for the VFIO bind). Offsets are computed, not typed: see
/// ``StructLayout/init(name:cName:fields:)``. The tests compare each with `CIOMMUFD`.
extension StructLayout {
    /// `struct iommu_destroy` (8 bytes, align 4).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | id |
    public static let iommuDestroy = StructLayout(name: "iommu_destroy", cName: "iommu_destroy", fields: [
        ("size", .u32, .in, .size),
        ("id", .u32, .in, .objectID),
    ])

    /// `struct iommu_ioas_alloc` (12 bytes, align 4).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | flags (must be 0, else EOPNOTSUPP) |
    /// | 8 | 4 | out_ioas_id (out) |
    public static let iommuIOASAlloc = StructLayout(name: "iommu_ioas_alloc", cName: "iommu_ioas_alloc", fields: [
        ("size", .u32, .in, .size),
        ("flags", .u32, .in, .value),
        ("out_ioas_id", .u32, .out, .objectID),
    ])

    /// `struct iommu_hwpt_alloc` (48 bytes, align 8).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | flags (``HWPTAllocFlags``) |
    /// | 8 | 4 | dev_id |
    /// | 12 | 4 | pt_id |
    /// | 16 | 4 | out_hwpt_id (out) |
    /// | 20 | 4 | __reserved (must be 0) |
    /// | 24 | 4 | data_type (``HWPTDataType``) |
    /// | 28 | 4 | data_len |
    /// | 32 | 8 | data_uptr |
    /// | 40 | 4 | fault_id |
    /// | 44 | 4 | __reserved2 (must be 0) |
    public static let iommuHWPTAlloc = StructLayout(name: "iommu_hwpt_alloc", cName: "iommu_hwpt_alloc", fields: [
        ("size", .u32, .in, .size),
        ("flags", .u32, .in, .value),
        ("dev_id", .u32, .in, .objectID),
        ("pt_id", .u32, .in, .objectID),
        ("out_hwpt_id", .u32, .out, .objectID),
        ("__reserved", .u32, .in, .reserved),
        ("data_type", .u32, .in, .value),
        ("data_len", .u32, .in, .value),
        ("data_uptr", .alignedU64, .in, .userPointer),
        ("fault_id", .u32, .in, .objectID),
        ("__reserved2", .u32, .in, .reserved),
    ])

    /// `struct iommu_viommu_alloc` (40 bytes, align 8).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | flags (must be 0) |
    /// | 8 | 4 | type (``VIOMMUType``) |
    /// | 12 | 4 | dev_id |
    /// | 16 | 4 | hwpt_id |
    /// | 20 | 4 | out_viommu_id (out) |
    /// | 24 | 4 | data_len |
    /// | 28 | 4 | __reserved |
    /// | 32 | 8 | data_uptr |
    public static let iommuVIOMMUAlloc = StructLayout(name: "iommu_viommu_alloc", cName: "iommu_viommu_alloc", fields: [
        ("size", .u32, .in, .size),
        ("flags", .u32, .in, .value),
        ("type", .u32, .in, .value),
        ("dev_id", .u32, .in, .objectID),
        ("hwpt_id", .u32, .in, .objectID),
        ("out_viommu_id", .u32, .out, .objectID),
        ("data_len", .u32, .in, .value),
        ("__reserved", .u32, .in, .reserved),
        ("data_uptr", .alignedU64, .in, .userPointer),
    ])

    /// `struct iommu_vdevice_alloc` (24 bytes, align 8).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | viommu_id |
    /// | 8 | 4 | dev_id |
    /// | 12 | 4 | out_vdevice_id (out) |
    /// | 16 | 8 | virt_id (guest-visible device ID; becomes the TDI id) |
    public static let iommuVDeviceAlloc = StructLayout(name: "iommu_vdevice_alloc", cName: "iommu_vdevice_alloc", fields: [
        ("size", .u32, .in, .size),
        ("viommu_id", .u32, .in, .objectID),
        ("dev_id", .u32, .in, .objectID),
        ("out_vdevice_id", .u32, .out, .objectID),
        ("virt_id", .alignedU64, .in, .value),
    ])

    /// `struct iommu_vdevice_tsm_op` (16 bytes, align 4).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | type (``VDeviceTSMOpType``) |
    /// | 8 | 4 | flags (must be 0, else EOPNOTSUPP) |
    /// | 12 | 4 | vdevice_id |
    public static let iommuVDeviceTSMOp = StructLayout(name: "iommu_vdevice_tsm_op", cName: "iommu_vdevice_tsm_op", fields: [
        ("size", .u32, .in, .size),
        ("type", .u32, .in, .value),
        ("flags", .u32, .in, .value),
        ("vdevice_id", .u32, .in, .objectID),
    ])

    /// `struct iommu_vdevice_tsm_req`, layout (a): v5 as posted (40 bytes, align 8; spec 4.1 (a)).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | vdevice_id |
    /// | 8 | 4 | scope (``TSMReqScope``) |
    /// | 12 | 4 | req_len |
    /// | 16 | 4 | resp_len |
    /// | 20 | 4 | __reserved (must be 0, else EOPNOTSUPP) |
    /// | 24 | 8 | req_uptr |
    /// | 32 | 8 | resp_uptr |
    public static let iommuVDeviceTSMReqV5 = StructLayout(name: "iommu_vdevice_tsm_req", cName: "iommu_vdevice_tsm_req_v5", fields: [
        ("size", .u32, .in, .size),
        ("vdevice_id", .u32, .in, .objectID),
        ("scope", .u32, .in, .value),
        ("req_len", .u32, .in, .value),
        ("resp_len", .u32, .in, .value),
        ("__reserved", .u32, .in, .reserved),
        ("req_uptr", .alignedU64, .in, .userPointer),
        ("resp_uptr", .alignedU64, .in, .userPointer),
    ])

    /// `struct iommu_vdevice_tsm_req`, layout (b): the reply's base, v5 plus `tsm_code`
    /// (48 bytes, align 8; spec 4.1 (b), inferred from the reply's diff context).
    ///
    /// As ``iommuVDeviceTSMReqV5`` plus `40 | 8 | tsm_code (out)`.
    public static let iommuVDeviceTSMReqV5TSMCode = StructLayout(name: "iommu_vdevice_tsm_req", cName: "iommu_vdevice_tsm_req_v5_tsm_code", fields: [
        ("size", .u32, .in, .size),
        ("vdevice_id", .u32, .in, .objectID),
        ("scope", .u32, .in, .value),
        ("req_len", .u32, .in, .value),
        ("resp_len", .u32, .in, .value),
        ("__reserved", .u32, .in, .reserved),
        ("req_uptr", .alignedU64, .in, .userPointer),
        ("resp_uptr", .alignedU64, .in, .userPointer),
        ("tsm_code", .alignedU64, .out, .value),
    ])

    /// `struct iommu_vdevice_tsm_req`, layout (c): revised, `op` + `tvm_arch` (48 bytes, align 8;
    /// spec 4.1 (c): the 2026-06-02 reply and rev-K).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | vdevice_id |
    /// | 8 | 4 | op (numbering per ``UAPIProfile``) |
    /// | 12 | 4 | tvm_arch (``TVMArch``) |
    /// | 16 | 4 | req_len |
    /// | 20 | 4 | resp_len |
    /// | 24 | 8 | req_uptr |
    /// | 32 | 8 | resp_uptr |
    /// | 40 | 8 | tsm_code (out: the kernel overwrites it; input ignored) |
    public static let iommuVDeviceTSMReqRevised = StructLayout(name: "iommu_vdevice_tsm_req", cName: "iommu_vdevice_tsm_req_revised", fields: [
        ("size", .u32, .in, .size),
        ("vdevice_id", .u32, .in, .objectID),
        ("op", .u32, .in, .value),
        ("tvm_arch", .u32, .in, .value),
        ("req_len", .u32, .in, .value),
        ("resp_len", .u32, .in, .value),
        ("req_uptr", .alignedU64, .in, .userPointer),
        ("resp_uptr", .alignedU64, .in, .userPointer),
        ("tsm_code", .alignedU64, .out, .value),
    ])

    /// `struct iommu_ioas_noiommu_get_pa` (40 bytes, align 8): Linux 7.3's command 0x95, also in
    /// rev-K (spec 2.1 "Mainline today").
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | size |
    /// | 4 | 4 | flags |
    /// | 8 | 4 | ioas_id |
    /// | 12 | 4 | __reserved |
    /// | 16 | 8 | iova |
    /// | 24 | 8 | length (inout: the maximum in, the contiguous length out [inferred]) |
    /// | 32 | 8 | out_phys (out) |
    ///
    /// TSMKit does not model the command; the layout lets a backend recognise 0x95 on Linux 7.3+.
    /// Its minimum size is taken as the end of `out_phys` [inferred: the dispatch table row was
    /// not read].
    public static let iommuIOASNoIOMMUGetPA = StructLayout(name: "iommu_ioas_noiommu_get_pa", cName: "iommu_ioas_noiommu_get_pa", fields: [
        ("size", .u32, .in, .size),
        ("flags", .u32, .in, .value),
        ("ioas_id", .u32, .in, .objectID),
        ("__reserved", .u32, .in, .reserved),
        ("iova", .alignedU64, .in, .value),
        ("length", .alignedU64, .inout, .value),
        ("out_phys", .alignedU64, .out, .value),
    ])

    /// `struct vfio_device_bind_iommufd` (24 bytes, align 8), the argument of
    /// `VFIO_DEVICE_BIND_IOMMUFD` on a VFIO cdev (Linux include/uapi/linux/vfio.h, with the
    /// `token_uuid_ptr` field added in 2025; minimum `argsz` is 16, the end of `out_devid`).
    ///
    /// | off | size | field |
    /// |-----|------|-------|
    /// | 0 | 4 | argsz |
    /// | 4 | 4 | flags (``vfioDeviceBindFlagToken`` or 0; other bits EINVAL) |
    /// | 8 | 4 | iommufd (s32: the iommufd file descriptor; negative → EINVAL) |
    /// | 12 | 4 | out_devid (out: the DEVICE object ID) |
    /// | 16 | 8 | token_uuid_ptr (16-byte VF token UUID, if the flag is set) |
    public static let vfioDeviceBindIOMMUFD = StructLayout(name: "vfio_device_bind_iommufd", cName: "vfio_device_bind_iommufd", fields: [
        ("argsz", .u32, .in, .size),
        ("flags", .u32, .in, .value),
        ("iommufd", .s32, .in, .value),
        ("out_devid", .u32, .out, .objectID),
        ("token_uuid_ptr", .alignedU64, .in, .userPointer),
    ])

    /// Every layout above, in a stable order (the three TSM_REQ layouts share a kernel ``name``;
    /// ``cName`` is unique).
    public static let all: [StructLayout] = [
        .iommuDestroy, .iommuIOASAlloc, .iommuHWPTAlloc, .iommuVIOMMUAlloc, .iommuVDeviceAlloc,
        .iommuVDeviceTSMOp, .iommuVDeviceTSMReqV5, .iommuVDeviceTSMReqV5TSMCode,
        .iommuVDeviceTSMReqRevised, .iommuIOASNoIOMMUGetPA, .vfioDeviceBindIOMMUFD,
    ]
}
