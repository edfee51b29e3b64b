import SystemPackage
import UAPI

extension IOMMUFDHandlers {
    /// vIOMMU types the simulated IOMMU driver implements: ARM_SMMUV3 (1), TEGRA241_CMDQV (2) and
    /// the selftest type 0xDEADBEEF as the "generic/emulated" type of spec 1.6 (EMU-KERNEL-7).
    static let supportedVIOMMUTypes: Set<UInt32> = [1, 2, 0xDEAD_BEEF]

    /// IOMMU_VIOMMU_ALLOC (spec 1.6; Linux drivers/iommu/iommufd/viommu.c). Order:
    /// 1. `flags != 0` or `type == 0` → `EOPNOTSUPP`;
    /// 2. `dev_id` lookup (DEVICE) → `ENOENT`;
    /// 3. the driver does not support `type` → `EOPNOTSUPP`;
    /// 4. `hwpt_id` lookup (HWPT_PAGING) → `ENOENT`; not a nest parent → `EINVAL`;
    /// 5. allocate, capturing the device's VM (v5 3/5);
    /// 6. write `out_viommu_id` back (`EFAULT`, everything undone).
    static let viommuAlloc: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        var cmd = try ucmd.decode(IOMMUVIOMMUAlloc.self)
        guard cmd.flags == 0, cmd.type != VIOMMUType.default.rawValue else { throw .notSupported }
        let deviceObject = try context.lookup(cmd.devID, .device)
        defer { context.release(deviceObject) }
        guard let device = deviceObject as? DeviceObject else { throw .noSuchFileOrDirectory }
        guard supportedVIOMMUTypes.contains(cmd.type) else { throw .notSupported }
        let hwptObject = try context.lookup(cmd.hwptID, .hwptPaging)
        defer { context.release(hwptObject) }
        guard let hwpt = hwptObject as? HWPTPagingObject else { throw .noSuchFileOrDirectory }
        guard hwpt.nestParent else { throw .invalidArgument }
        let id = try context.reserve()
        let viommu = VIOMMUObject(id: id, hwpt: hwpt, vm: device.vm, iommu: device.iommu, viommuType: cmd.type)
        cmd.outVIOMMUID = id
        ucmd.store(cmd)
        do throws(Errno) {
            try ucmd.respond()
        } catch {
            viommu.destroy(kernel: kernel)
            context.abort(id)
            throw error
        }
        context.finalize(viommu)
        return 0
    }
}
