import Kernel
import SystemPackage
import Testing
import UAPI

/// The kernel's descriptor table (POSIX: a new descriptor is the lowest one not open) and the
/// VFIO cdev's exclusive open (EBUSY), which the table tracks without scanning the open files.
@Suite("descriptor table")
struct FileTableTests {
    @Test("a new descriptor is the lowest free one, after closes in the middle and at the end")
    func lowestFree() throws {
        let f = try Fixture()
        // The fixture holds 3 (iommufd), 4 (VM), 5 (VFIO).
        #expect(f.kernel.openDescriptors == [3, 4, 5])
        let a = f.kernel.openIOMMUFD(), b = f.kernel.openIOMMUFD(), c = f.kernel.openIOMMUFD()
        #expect([a, b, c] == [6, 7, 8])
        try f.kernel.close(a)
        try f.kernel.close(b)
        #expect(f.kernel.openIOMMUFD() == 6)
        #expect(f.kernel.openIOMMUFD() == 7)
        #expect(f.kernel.openIOMMUFD() == 9)
        try f.kernel.close(9)
        try f.kernel.close(c)
        try f.kernel.close(7)
        #expect(f.kernel.openDescriptors == [3, 4, 5, 6])
        #expect(f.kernel.createVM() == 7)
        try f.kernel.close(4)
        #expect(f.kernel.openIOMMUFD() == 4)
        #expect(f.kernel.openDescriptors == [3, 4, 5, 6, 7])
    }

    @Test("a VFIO cdev is EBUSY while open and opens again once closed; another function is not busy")
    func vfioExclusive() throws {
        let f = try Fixture()
        #expect(outcome { () throws(Errno) in _ = try f.kernel.openVFIODevice(Fixture.function1) } == .errno(E.EBUSY))
        let dsm = try f.kernel.openVFIODevice(Fixture.dsm)
        #expect(outcome { () throws(Errno) in _ = try f.kernel.openVFIODevice(Fixture.dsm) } == .errno(E.EBUSY))
        try f.kernel.close(f.vfio)
        let again = try f.kernel.openVFIODevice(Fixture.function1)
        #expect(again == f.vfio)  // the lowest free descriptor: the one just closed
        #expect(outcome { () throws(Errno) in _ = try f.kernel.openVFIODevice(Fixture.function1) } == .errno(E.EBUSY))
        try f.kernel.close(dsm)
        try f.kernel.close(again)
        #expect(outcome { () throws(Errno) in try f.kernel.close(again) } == .errno(E.EBADF))
        _ = try f.kernel.openVFIODevice(Fixture.dsm)
        _ = try f.kernel.openVFIODevice(Fixture.function1)
    }
}
