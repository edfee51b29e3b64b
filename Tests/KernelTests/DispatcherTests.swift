import Kernel
import SystemPackage
import Testing
import UAPI

@Suite("Dispatcher and size-extensible copy-in (spec 2.2, 0.1)")
struct DispatcherTests {
    @Test("nr below 0x80 or past the table: VFIO-compat, ENOTTY without touching a bad pointer",
          arguments: [UInt32(0x3B00), UInt32(0x3B7F), UInt32(0x3B97), UInt32(0x3BFF), UInt32(0x3B66)])
    func outsideTable(request: UInt32) throws {
        let f = try Fixture()
        // Argument 0 (unmapped): still ENOTTY, the argument is never read.
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(f.iommufd, request, 0) } == .errno(E.ENOTTY))
    }

    @Test("rev-k's table ends at 0x97, so 0x97 is a command there and outside the table in revised")
    func tableEndPerProfile() throws {
        let revised = try Fixture(profile: .revised)
        #expect(Outcome { () throws(Errno) in try revised.kernel.ioctl(revised.iommufd, 0x3B97, 0) } == .errno(E.ENOTTY))
        let revK = try Fixture(profile: .revK)
        // Inside the table: the size word is read first → EFAULT on a bad pointer.
        #expect(Outcome { () throws(Errno) in try revK.kernel.ioctl(revK.iommufd, 0x3B97, 0) } == .errno(E.EFAULT))
    }

    @Test("VFIO container compat: GET_API_VERSION → 0, CHECK_EXTENSION TYPE1v2 → 1, unknown → 0")
    func vfioCompat() throws {
        let f = try Fixture()
        #expect(try f.kernel.ioctl(f.iommufd, 0x3B64, 0) == 0)
        #expect(try f.kernel.ioctl(f.iommufd, 0x3B65, 3) == 1)
        #expect(try f.kernel.ioctl(f.iommufd, 0x3B65, 1) == 1)
        #expect(try f.kernel.ioctl(f.iommufd, 0x3B65, 2) == 0)
    }

    @Test("inside the table: unreadable size word → EFAULT, before the request-code check")
    func sizeWordFault() throws {
        let f = try Fixture()
        // Same nr as IOMMU_DESTROY, wrong direction bits: a bad pointer still wins (EFAULT).
        let wrongCode = UInt32(0x4000_3B80)
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(f.iommufd, wrongCode, 0) } == .errno(E.EFAULT))
        // With a good pointer the code mismatch is ENOTTY.
        #expect(f.raw(wrongCode, IOMMUDestroy(id: 1).encode()).0 == .errno(E.ENOTTY))
    }

    @Test("request code mismatch in type byte → ENOTTY")
    func typeMismatch() throws {
        let f = try Fixture()
        // nr 0x81 with type 'A' instead of ';': nr is inside the table, size read, code differs.
        #expect(f.raw(0x4181, IOMMUIOASAlloc().encode()).0 == .errno(E.ENOTTY))
    }

    @Test("size below the minimum → EINVAL; equal, larger with zero tail → ok; non-zero tail → E2BIG",
          arguments: [(UInt32(8), Optional(E.EINVAL)), (UInt32(11), Optional(E.EINVAL)), (UInt32(12), nil), (UInt32(16), nil), (UInt32(8192), nil)] as [(UInt32, Errno?)])
    func ioasAllocSizes(size: UInt32, expected: Errno?) throws {
        let f = try Fixture()
        var bytes = IOMMUIOASAlloc().encode()
        bytes[0...3] = ArraySlice(withUnsafeBytes(of: size.littleEndian, Array.init))
        bytes += [UInt8](repeating: 0, count: max(0, Int(size) - bytes.count))
        let (result, after) = f.raw(f.request(.ioasAlloc), bytes)
        if let expected {
            #expect(result == .errno(expected))
            #expect(try f.kernel.objects(f.iommufd).isEmpty)
        } else {
            #expect(result == .value(0))
            // Write-back: min(size, 12) bytes; out_ioas_id = 1; the tail untouched.
            #expect(after[8] == 1)
            #expect(after[12...].allSatisfy { $0 == 0 })
        }
    }

    @Test("a non-zero byte past ksize → E2BIG and nothing allocated")
    func nonZeroTail() throws {
        let f = try Fixture()
        var bytes = IOMMUIOASAlloc(size: 16).encode() + [0, 0, 0, 0]
        bytes[15] = 1
        let before = f.snapshot()
        #expect(f.raw(f.request(.ioasAlloc), bytes).0 == .errno(E.E2BIG))
        #expect(f.snapshot() == before)
    }

    @Test("size larger than the mapping: the tail is unreadable → EFAULT")
    func unreadableTail() throws {
        let f = try Fixture()
        let bytes = IOMMUIOASAlloc(size: 8192).encode()
        #expect(f.raw(f.request(.ioasAlloc), bytes).0 == .errno(E.EFAULT))
    }

    @Test("two faults meet: size below minimum and a non-zero field → EINVAL wins (step 4 before handler)")
    func minimumBeforeHandler() throws {
        let f = try Fixture()
        // IOAS_ALLOC with flags 1 (EOPNOTSUPP in the handler) but size 8 → EINVAL first.
        let bytes = IOMMUIOASAlloc(size: 8, flags: 1).encode()
        #expect(f.raw(f.request(.ioasAlloc), bytes).0 == .errno(E.EINVAL))
    }

    @Test("a command the table has but the simulation does not model → EOPNOTSUPP (EMU-KERNEL-4)")
    func unmodelled() throws {
        let f = try Fixture()
        #expect(f.raw(0x3B85, [16, 0, 0, 0] + [UInt8](repeating: 0, count: 12)).0 == .errno(E.EOPNOTSUPP))
    }

    @Test("an fd that is not open → EBADF; a VM fd → ENOTTY")
    func badDescriptors() throws {
        let f = try Fixture()
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(99, 0x3B80, 0) } == .errno(E.EBADF))
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(f.vmFD, 0x3B80, 0) } == .errno(E.ENOTTY))
    }

    @Test("CONFIG_TSM off: both TSM ioctls → EOPNOTSUPP after the copy-in")
    func configTSMOff() throws {
        var configuration = SimulatedKernel.Configuration()
        configuration.configTSM = false
        let kernel = try SimulatedKernel(configuration: configuration)
        let fd = kernel.openIOMMUFD()
        let op = try kernel.memory.map(bytes: IOMMUVDeviceTSMOp(type: 1, vdeviceID: 1).encode())
        #expect(Outcome { () throws(Errno) in try kernel.ioctl(fd, 0x3B95, op) } == .errno(E.EOPNOTSUPP))
        // The copy-in still runs first: size 4 → EINVAL.
        let short = try kernel.memory.map(bytes: IOMMUVDeviceTSMOp(size: 4, type: 1, vdeviceID: 1).encode())
        #expect(Outcome { () throws(Errno) in try kernel.ioctl(fd, 0x3B95, short) } == .errno(E.EINVAL))
    }
}

@Suite("User memory (deliverable 2)")
struct UserMemoryTests {
    @Test("reads and writes inside a mapping; one byte past the end → EFAULT and nothing written")
    func bounds() throws {
        let memory = UserAddressSpace()
        let base = try memory.map(size: 16)
        try memory.write(base, [1, 2, 3])
        #expect(try memory.read(base, count: 3) == [1, 2, 3])
        #expect(throws: E.EFAULT) { try memory.write(base + 10, [UInt8](repeating: 9, count: 7)) }
        #expect(try memory.read(base + 10, count: 6) == [0, 0, 0, 0, 0, 0])
        #expect(throws: E.EFAULT) { try memory.read(0, count: 1) }
        #expect(throws: E.EFAULT) { try memory.read(UInt64.max, count: 2) }
        #expect(try memory.read(base, count: 0) == [])
    }

    @Test("mappings never touch: a guard page separates them; unmap makes access fault")
    func guardsAndUnmap() throws {
        let memory = UserAddressSpace()
        let a = try memory.map(size: 4096)
        let b = try memory.map(size: 4096)
        #expect(b >= a + 8192)
        #expect(!memory.isMapped(a, count: 4097))
        try memory.unmap(a)
        #expect(throws: E.EFAULT) { try memory.read(a, count: 1) }
        #expect(throws: E.EINVAL) { try memory.unmap(a) }
    }

    @Test("fixed mappings: adjacent ones form one readable range; overlap → EEXIST; bad sizes → EINVAL")
    func fixed() throws {
        let memory = UserAddressSpace()
        try memory.map(size: 8, at: 0x1000)
        try memory.map(size: 8, at: 0x1008)
        #expect(memory.isMapped(0x1000, count: 16))
        #expect(throws: E.EEXIST) { try memory.map(size: 8, at: 0x1004) }
        #expect(throws: E.EINVAL) { try memory.map(size: 0) }
        #expect(throws: E.EINVAL) { try memory.map(size: 8, at: 0) }
        #expect(throws: E.EINVAL) { try memory.map(size: 8, at: UInt64.max - 3) }
    }
}
