import Kernel
import SystemPackage
import Testing
import UAPI

@Suite("Appendix B: the minimal VMM call sequence")
struct AppendixBTests {
    @Test("the whole sequence, then teardown in the right order leaves nothing")
    func endToEnd() throws {
        let f = try Fixture()
        try f.setUp()
        // IDs: lowest free from 1 per context (spec 1.2): DEVICE 1, IOAS 2, HWPT 3, VIOMMU 4, VDEVICE 5.
        #expect([f.devID, f.ioasID, f.hwptID, f.viommuID, f.vdeviceID] == [1, 2, 3, 4, 5])
        #expect(try f.kernel.pciTSM.connectShow(Fixture.dsm) == "tsm0\n")
        #expect(try f.kernel.pciTSM.dsmShow(Fixture.function1) == "10000:01:00.0\n")
        #expect(f.bind() == .value(0))
        #expect(f.kernel.tdi(Fixture.function1) == PCITSMCore.TDIState(vm: f.vm, tdiID: 0x0108))
        #expect(try f.kernel.pciTSM.boundShow(Fixture.function1) == "tsm0\n")

        // Guest request: echo of a 64-byte request into a 64-byte response; residue 0.
        f.sample.configure { $0.tsmCode = 0x1234 }
        let request = (0..<64).map { UInt8($0 ^ 0x5A) }
        let (result, out, response) = f.guestRequest(request: request)
        #expect(result == .value(0))
        #expect(response == request)
        #expect(out.tsmCode == 0x1234)

        #expect(f.unbind() == .value(0))
        #expect(f.kernel.tdi(Fixture.function1) == nil)
        // Teardown: VDEVICE, VIOMMU, HWPT; the IOAS goes once nothing uses it; the device with VFIO.
        #expect(f.destroy(f.vdeviceID) == .value(0))
        #expect(f.destroy(f.viommuID) == .value(0))
        #expect(f.destroy(f.hwptID) == .value(0))
        #expect(f.destroy(f.ioasID) == .value(0))
        #expect(f.destroy(f.devID) == .errno(E.EBUSY))
        try f.kernel.close(f.vfio)
        #expect(try f.kernel.objects(f.iommufd).isEmpty)
        try f.kernel.pciTSM.disconnect(Fixture.dsm, "tsm0\n")
        #expect(f.sample.statistics.shape == [0, 0, 0])
        try f.kernel.close(f.iommufd)
    }

    @Test("teardown in the wrong order: each destroy is EBUSY while a dependant exists")
    func wrongOrder() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        let before = f.snapshot()
        #expect(f.destroy(f.ioasID) == .errno(E.EBUSY))
        #expect(f.destroy(f.hwptID) == .errno(E.EBUSY))
        #expect(f.destroy(f.viommuID) == .errno(E.EBUSY))
        #expect(f.destroy(f.devID) == .errno(E.EBUSY))
        #expect(f.snapshot() == before)
        // Destroying the vDEVICE unbinds the TDI first (spec 1.7, v5 4/5).
        #expect(f.destroy(f.vdeviceID) == .value(0))
        #expect(f.kernel.tdi(Fixture.function1) == nil)
        #expect(f.destroy(f.vdeviceID) == .errno(E.ENOENT))
    }

    @Test("closing the VFIO file while bound tombstones the vDEVICE and unbinds the TDI")
    func tombstone() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        try f.kernel.close(f.vfio)
        #expect(f.kernel.tdi(Fixture.function1) == nil)
        let objects = try f.kernel.objects(f.iommufd)
        #expect(objects.first { $0.id == f.vdeviceID }?.state == .tombstone)
        #expect(objects.first { $0.id == f.devID } == nil)
        // The tombstoned ID is ENOENT and never reused; the device ID is gone (ENOENT) and reused.
        #expect(f.destroy(f.vdeviceID) == .errno(E.ENOENT))
        #expect(f.destroy(f.devID) == .errno(E.ENOENT))
        #expect(f.tsmOp(1) == .errno(E.ENOENT))
        let (result, out) = f.call(.ioasAlloc, IOMMUIOASAlloc())
        #expect(result == .value(0))
        #expect(out.outIOASID == 1)
        let (again, next) = f.call(.ioasAlloc, IOMMUIOASAlloc())
        #expect(again == .value(0))
        #expect(next.outIOASID == 6)
        // vIOMMU, HWPT, IOAS destroy in order now.
        #expect(f.destroy(f.viommuID) == .value(0))
        #expect(f.destroy(f.hwptID) == .value(0))
        #expect(f.destroy(f.ioasID) == .value(0))
    }

    @Test("closing the iommufd destroys everything leaves first; a new fd starts at ID 1")
    func closeDestroysAll() throws {
        let f = try Fixture()
        try f.setUp()
        #expect(f.bind() == .value(0))
        try f.kernel.close(f.vfio)
        try f.kernel.close(f.iommufd)
        #expect(f.kernel.pciTSM.boundTDIs.isEmpty)
        #expect(f.sample.statistics.liveTDIs == 0)
        let fd = f.kernel.openIOMMUFD()
        #expect(try f.kernel.objects(fd).isEmpty)
        let address = try f.kernel.memory.map(bytes: IOMMUIOASAlloc().encode())
        #expect(try f.kernel.ioctl(fd, f.request(.ioasAlloc), address) == 0)
        #expect(try IOMMUIOASAlloc(bytes: f.kernel.memory.read(address, count: 12)).outIOASID == 1)
    }
}
