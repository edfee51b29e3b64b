import SystemPackage
import UAPI

extension IOMMUFDHandlers {
    /// IOMMU_HWPT_ALLOC (spec 1.4; Linux drivers/iommu/iommufd/hw_pagetable.c), paging HWPTs on
    /// an IOAS only. Order:
    /// 1. unknown `flags` bits, `__reserved` or `__reserved2` non-zero → `EOPNOTSUPP`;
    /// 2. `data_type == NONE` with `data_len != 0`, or a data type with `data_len == 0` → `EINVAL`;
    /// 3. `dev_id` lookup (DEVICE) → `ENOENT`;
    /// 4. `pt_id` lookup (any type) → `ENOENT`;
    /// 5. `pt_id` is an IOAS: driver data (`data_type != NONE`) or FAULT_ID_VALID → `EOPNOTSUPP`
    ///    (the simulated IOMMU has no paging data formats and no fault queues, EMU-KERNEL-6);
    ///    `pt_id` is a HWPT or vIOMMU (nesting) → `EOPNOTSUPP` (not modelled); any other type →
    ///    `EINVAL`;
    /// 6. allocate; write `out_hwpt_id` back (`EFAULT`, everything undone).
    static let hwptAlloc: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        var cmd = try ucmd.decode(IOMMUHWPTAlloc.self)
        let known: HWPTAllocFlags = [.nestParent, .dirtyTracking, .faultIDValid, .pasid]
        guard cmd.flags & ~known.rawValue == 0, cmd.reserved == 0, cmd.reserved2 == 0 else { throw .notSupported }
        if cmd.dataType == HWPTDataType.none.rawValue ? cmd.dataLen != 0 : cmd.dataLen == 0 {
            throw .invalidArgument
        }
        let deviceObject = try context.lookup(cmd.devID, .device)
        defer { context.release(deviceObject) }
        let pt = try context.lookup(cmd.ptID, nil)
        defer { context.release(pt) }
        guard let device = deviceObject as? DeviceObject else { throw .noSuchFileOrDirectory }
        switch pt.type {
        case .ioas:
            guard cmd.dataType == HWPTDataType.none.rawValue,
                  cmd.flags & HWPTAllocFlags.faultIDValid.rawValue == 0 else { throw .notSupported }
        case .hwptPaging, .viommu:
            throw .notSupported
        default:
            throw .invalidArgument
        }
        guard let ioas = pt as? IOASObject else { throw .invalidArgument }
        let id = try context.reserve()
        let hwpt = HWPTPagingObject(
            id: id, ioas: ioas, nestParent: cmd.flags & HWPTAllocFlags.nestParent.rawValue != 0,
            iommu: device.iommu, automatic: false)
        cmd.outHWPTID = id
        ucmd.store(cmd)
        do throws(Errno) {
            try ucmd.respond()
        } catch {
            hwpt.destroy(kernel: kernel)
            context.abort(id)
            throw error
        }
        context.finalize(hwpt)
        return 0
    }
}
