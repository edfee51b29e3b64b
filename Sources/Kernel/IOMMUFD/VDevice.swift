import SystemPackage
import UAPI

extension IOMMUFDHandlers {
    /// IOMMU_VDEVICE_ALLOC (spec 1.7; Linux drivers/iommu/iommufd/viommu.c). Order:
    /// 1. `virt_id > ULONG_MAX` → `EINVAL` (never on 64-bit);
    /// 2. vIOMMU lookup → `ENOENT`; device lookup → `ENOENT`;
    /// 3. the device's IOMMU instance differs from the vIOMMU's → `EINVAL`;
    /// 4. under the device's `igroup->lock`: device being destroyed → `ENOENT`; device already has
    ///    a vDEVICE → `EEXIST`;
    /// 5. allocate (the vDEVICE keeps the device reference, takes one on the vIOMMU) and set it
    ///    as the device's vDEVICE;
    /// 6. `virt_id` already in the vIOMMU's table → `EEXIST`, and the abort hook runs — which
    ///    calls `tsm_unbind` on the device (spec 1.7 [observation]);
    /// 7. write `out_vdevice_id` back (`EFAULT`, abort hook as in 6).
    static let vdeviceAlloc: IOMMUFDHandler = { kernel, context, ucmd throws(Errno) in
        var cmd = try ucmd.decode(IOMMUVDeviceAlloc.self)
        let viommuObject = try context.lookup(cmd.viommuID, .viommu)
        defer { context.release(viommuObject) }
        let deviceObject = try context.lookup(cmd.devID, .device)
        guard let viommu = viommuObject as? VIOMMUObject, let device = deviceObject as? DeviceObject else {
            context.release(deviceObject)
            throw .noSuchFileOrDirectory
        }
        guard device.iommu == viommu.iommu else {
            context.release(deviceObject)
            throw .invalidArgument
        }
        let virtID = cmd.virtID
        let vdevice: VDeviceObject
        do throws(Errno) {
            vdevice = try device.group.withLock(.uninterruptible) { group throws(Errno) -> VDeviceObject in
                guard !group.destroying else { throw .noSuchFileOrDirectory }
                guard group.vdevice == nil else { throw .fileExists }
                let id = try context.reserve()
                // The vDEVICE takes over the lookup's reference on the device.
                let vdevice = VDeviceObject(id: id, viommu: viommu, device: device, virtID: virtID)
                group.vdevice = vdevice
                let inserted = viommu.vdevices.withLock { table -> Bool in
                    guard table[virtID] == nil else { return false }
                    table[virtID] = id
                    return true
                }
                guard inserted else {
                    vdevice.teardown(kernel: kernel, group: &group)
                    context.abort(id)
                    throw .fileExists
                }
                return vdevice
            }
        } catch {
            // Drops the device reference (the aborted vDEVICE's, or the lookup's).
            context.release(deviceObject)
            throw error
        }
        cmd.outVDeviceID = vdevice.id
        ucmd.store(cmd)
        do throws(Errno) {
            try ucmd.respond()
        } catch {
            device.group.withLock { group in vdevice.teardown(kernel: kernel, group: &group) }
            vdevice.dropDevice()
            context.abort(vdevice.id)
            throw error
        }
        context.finalize(vdevice)
        return 0
    }
}
