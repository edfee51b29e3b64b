import UAPI

/// The objects Appendix B steps 4-6 create for one bound device, in creation order.
///
/// | object | made by | holds |
/// |--------|---------|-------|
/// | ``device`` | `VFIO_DEVICE_BIND_IOMMUFD` (step 3, given) | the VM captured at bind |
/// | ``ioas`` | `IOMMU_IOAS_ALLOC` | |
/// | ``hwpt`` | `IOMMU_HWPT_ALLOC(flags = NEST_PARENT, pt_id = ioas, dev_id = device)` | ``ioas`` |
/// | ``viommu`` | `IOMMU_VIOMMU_ALLOC(type, dev_id = device, hwpt_id = hwpt)` | ``hwpt``, the VM |
/// | ``vdevice`` | `IOMMU_VDEVICE_ALLOC(viommu_id, dev_id, virt_id)` | ``viommu`` |
public struct VDeviceSetup: Hashable, Sendable {
    /// The DEVICE (from the VFIO bind).
    public let device: DevID
    /// The IOAS.
    public let ioas: IOASID
    /// The NEST_PARENT HWPT on ``ioas``.
    public let hwpt: HWPTID
    /// The vIOMMU on ``hwpt``.
    public let viommu: VIOMMUID
    /// The vDEVICE on ``viommu``.
    public let vdevice: VDeviceID

    /// The set of objects.
    public init(device: DevID, ioas: IOASID, hwpt: HWPTID, viommu: VIOMMUID, vdevice: VDeviceID) {
        self.device = device
        self.ioas = ioas
        self.hwpt = hwpt
        self.viommu = viommu
        self.vdevice = vdevice
    }
}

extension IOMMUFD {
    /// Appendix B steps 4-6 for `device`: IOAS, NEST_PARENT HWPT, vIOMMU of `viommuType`, vDEVICE
    /// with `virtID`.
    ///
    /// All or nothing: if a step fails, the objects made so far are destroyed in reverse order
    /// (their own errors ignored) and the step's error is thrown (e.g. EEXIST at
    /// `IOMMU_VDEVICE_ALLOC` for a second vDEVICE of the device, EOPNOTSUPP at
    /// `IOMMU_VIOMMU_ALLOC` for type 0).
    public func setUpVDevice(device: DevID, virtID: UInt64,
                             viommuType: UInt32 = VIOMMUType.armSMMUv3.rawValue) throws(VMMError) -> VDeviceSetup {
        let ioas = try allocIOAS()
        let hwpt: HWPTID
        do throws(VMMError) {
            hwpt = try allocHWPT(device: device, parent: ioas)
        } catch {
            try? destroy(ioas)
            throw error
        }
        let viommu: VIOMMUID
        do throws(VMMError) {
            viommu = try allocVIOMMU(device: device, hwpt: hwpt, type: viommuType)
        } catch {
            try? destroy(hwpt)
            try? destroy(ioas)
            throw error
        }
        do throws(VMMError) {
            let vdevice = try allocVDevice(viommu: viommu, device: device, virtID: virtID)
            return VDeviceSetup(device: device, ioas: ioas, hwpt: hwpt, viommu: viommu, vdevice: vdevice)
        } catch {
            try? destroy(viommu)
            try? destroy(hwpt)
            try? destroy(ioas)
            throw error
        }
    }

    /// Appendix B step 11 in the order the kernel accepts (spec 0.1: an attached device holds the
    /// IOAS): destroy the vDEVICE (which unbinds its TDI), the vIOMMU and the HWPT; close the VFIO
    /// device (its DEVICE object goes with it); destroy the IOAS.
    ///
    /// Errors: the first failing step's error; the VFIO device is closed in every case (it is
    /// consumed), so a failure before the close leaves the remaining objects to the iommufd's close.
    public func tearDown(_ setup: VDeviceSetup, closing vfio: consuming VFIODevice) throws(VMMError) {
        do throws(VMMError) {
            try destroy(setup.vdevice)
            try destroy(setup.viommu)
            try destroy(setup.hwpt)
        } catch {
            try? vfio.close()
            throw error
        }
        try vfio.close()
        try destroy(setup.ioas)
    }
}
