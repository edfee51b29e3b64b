import Kernel
import SystemPackage
import Testing
import UAPI

@Suite("IOMMU_VDEVICE_TSM_OP (spec 3, 5.2, 6.6)")
struct TSMOpTests {
    @Test("order: flags → EOPNOTSUPP beats an unknown vDEVICE; unknown vDEVICE → ENOENT beats a bad type")
    func orderOfChecks() throws {
        let f = try Fixture()
        try f.setUp()
        let before = f.snapshot()
        #expect(f.tsmOp(1, vdevice: 99, flags: 1) == .errno(E.EOPNOTSUPP))
        #expect(f.tsmOp(7, vdevice: 99) == .errno(E.ENOENT))
        #expect(f.tsmOp(1, vdevice: f.viommuID) == .errno(E.ENOENT))
        #expect(f.tsmOp(7) == .errno(E.EINVAL))
        #expect(f.tsmOp(0) == .errno(E.EINVAL))
        #expect(f.snapshot() == before)
    }

    @Test("size 12 → EINVAL (minimum 16)")
    func minimumSize() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.call(.vdeviceTSMOp, IOMMUVDeviceTSMOp(size: 12, type: 1, flags: 0, vdeviceID: f.vdeviceID)).0 == .errno(E.EINVAL))
    }

    @Test("no VM on the vIOMMU → ENODEV, for UNBIND too; an invalid type with no VM is ENODEV (step 3 first)")
    func noVM() throws {
        let f = try Fixture(associate: false)
        try f.setUp()
        #expect(f.bind() == .errno(E.ENODEV))
        #expect(f.unbind() == .errno(E.ENODEV))
        #expect(f.tsmOp(9) == .errno(E.ENODEV))
    }

    @Test("bind before connect: no PCI TSM context → EINVAL (not ENXIO, spec 8 item 13)")
    func bindWithoutContext() throws {
        let f = try Fixture()
        try f.setUp(connect: false)
        #expect(f.bind() == .errno(E.EINVAL))
        #expect(f.unbind() == .value(0))
        #expect(f.kernel.tdi(Fixture.function1) == nil)
    }

    @Test("bind is idempotent for the same VM; another VM → EBUSY; unbind twice → 0")
    func bindStates() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        #expect(f.bind() == .value(0))
        #expect(f.sample.statistics.liveTDIs == 1)
        // A second iommufd with another VM's vIOMMU on the same function: vDEVICE on the same device
        // is impossible (one VFIO binding), so bind fn0 under VM A, then try from VM B via fn0.
        let vfio0 = try f.kernel.openVFIODevice(Fixture.dsm)
        let vm2 = f.kernel.createVM()
        try f.kernel.kvmVFIOFileAdd(vm: vm2, vfio: vfio0)
        let dev0 = try f.kernel.vfioBindIOMMUFD(vfio0, iommufd: f.iommufd)
        let hwpt0 = f.call(.hwptAlloc, IOMMUHWPTAlloc(flags: 1, devID: dev0, ptID: f.ioasID)).1.outHWPTID
        let viommu2 = f.call(.viommuAlloc, IOMMUVIOMMUAlloc(type: 1, devID: dev0, hwptID: hwpt0)).1.outVIOMMUID
        let vdev0 = f.call(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommu2, devID: dev0, virtID: 0x100)).1.outVDeviceID
        #expect(f.tsmOp(1, vdevice: vdev0) == .value(0))
        #expect(f.kernel.tdi(Fixture.dsm)?.vm == (try f.kernel.vm(vm2)))
        #expect(f.unbind() == .value(0))
        #expect(f.unbind() == .value(0))
        // Re-bind fn1 from the first VM works; the TDI id is virt_id's low 32 bits.
        #expect(f.bind() == .value(0))
        #expect(f.kernel.tdi(Fixture.function1)?.tdiID == 0x0108)
    }

    @Test("TDI bound to another VM (the sample's tsm_bind hook) → TSM_OP BIND EBUSY; UNBIND takes it anyway")
    func otherVMBusy() throws {
        let f = try Fixture()
        try f.setUp()
        try f.kernel.pciTSM.hookBind(Fixture.function1, tsm: f.tsm)
        #expect(f.kernel.tdi(Fixture.function1) == PCITSMCore.TDIState(vm: PCITSMCore.sampleHookVM, tdiID: 0x0101))
        let before = f.snapshot()
        #expect(f.bind() == .errno(E.EBUSY))
        #expect(f.snapshot() == before)
        // No ownership check on unbind (spec 8 item 12).
        #expect(f.unbind() == .value(0))
        #expect(f.kernel.tdi(Fixture.function1) == nil)
    }

    @Test("virt_id above 32 bits: the TDI id is truncated silently (spec 8 item 9)")
    func truncation() throws {
        let f = try Fixture()
        try f.setUp(virtID: 0x1_0000_0108)
        #expect(f.bind() == .value(0))
        #expect(f.kernel.tdi(Fixture.function1)?.tdiID == 0x0108)
    }

    @Test("driver bind failure (ENOMEM) passes through and stores nothing")
    func driverFailure() throws {
        let f = try Fixture()
        try f.setUp()
        f.sample.configure { $0.bindError = E.ENOMEM }
        #expect(f.bind() == .errno(E.ENOMEM))
        #expect(f.kernel.tdi(Fixture.function1) == nil)
        #expect(f.sample.statistics.liveTDIs == 0)
    }

    @Test("non-PCI device: tsm_bind / tsm_unbind → EINVAL (spec 5.2)")
    func platformDevice() throws {
        let kernel = try SimulatedKernel()
        kernel.addPlatformDevice("mock0")
        let iommufd = kernel.openIOMMUFD()
        let vm = kernel.createVM()
        let vfio = try kernel.openVFIOPlatformDevice("mock0")
        try kernel.kvmVFIOFileAdd(vm: vm, vfio: vfio)
        let dev = try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)
        func run<T: UAPIStruct>(_ id: CommandID, _ value: T) throws -> (Int32, T) {
            let address = try kernel.memory.map(bytes: value.encode())
            let rc = try kernel.ioctl(iommufd, kernel.profile.command(id)!.request, address)
            return (rc, try T(bytes: kernel.memory.read(address, count: T.layout.size)))
        }
        let ioas = try run(.ioasAlloc, IOMMUIOASAlloc()).1.outIOASID
        let hwpt = try run(.hwptAlloc, IOMMUHWPTAlloc(flags: 1, devID: dev, ptID: ioas)).1.outHWPTID
        let viommu = try run(.viommuAlloc, IOMMUVIOMMUAlloc(type: 1, devID: dev, hwptID: hwpt)).1.outVIOMMUID
        let vdev = try run(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommu, devID: dev, virtID: 1)).1.outVDeviceID
        #expect(throws: E.EINVAL) { try run(.vdeviceTSMOp, IOMMUVDeviceTSMOp(type: 1, vdeviceID: vdev)) }
        #expect(throws: E.EINVAL) { try run(.vdeviceTSMOp, IOMMUVDeviceTSMOp(type: 2, vdeviceID: vdev)) }
        let req = IOMMUVDeviceTSMReq(vdeviceID: vdev, op: 1, tvmArch: 1, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0, tsmCode: 9)
        let address = try kernel.memory.map(bytes: req.encode())
        #expect(throws: E.EINVAL) { try kernel.ioctl(iommufd, kernel.profile.tsmReq.request, address) }
        // The write-back still happened (step 14): tsm_code is 0.
        #expect(try IOMMUVDeviceTSMReq(bytes: kernel.memory.read(address, count: 48)).tsmCode == 0)
    }

    @Test("EFAULT after a completed bind: the struct write-back faults, the TDI stays bound (spec 8 item 7)")
    func efaultAfterBind() throws {
        let f = try Fixture()
        try f.setUp()
        let address = try f.kernel.memory.map(bytes: IOMMUVDeviceTSMOp(type: 1, vdeviceID: f.vdeviceID).encode(), writable: false)
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(f.iommufd, f.request(.vdeviceTSMOp), address) } == .errno(E.EFAULT))
        #expect(f.kernel.tdi(Fixture.function1) != nil)
    }

    @Test("devsec-locked function: bind → ENXIO (not a link TSM)")
    func devsecContext() throws {
        let f = try Fixture()
        try f.setUp(connect: false)
        let devsec = TestDevsecTSM()
        let tsm1 = try f.kernel.pciTSM.register(devsec: devsec)
        #expect(tsm1.name == "tsm1")
        try f.kernel.pciTSM.devsecLock(Fixture.function1, "tsm1")
        #expect(f.bind() == .errno(E.ENXIO))
        let (result, _, _) = f.guestRequest()
        #expect(result == .errno(E.ENXIO))
        #expect(f.unbind() == .value(0))
    }
}

final class TestDevsecTSM: PCITSMDevsecOps {
    func lock(tsm: TSMDevice, function: KernelPCIFunction) -> PCITSMProbeResult { .context(nil) }
    func unlock(function: KernelPCIFunction) {}
}
