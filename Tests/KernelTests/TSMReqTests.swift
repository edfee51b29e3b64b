import Kernel
import SystemPackage
import Testing
import UAPI

@Suite("IOMMU_VDEVICE_TSM_REQ, revised (spec 4.3, 4.4, 8)")
struct TSMReqRevisedTests {
    func bound(_ profile: UAPIProfile = .revised) throws -> Fixture {
        let f = try Fixture(profile: profile)
        try f.setUp()
        #expect(f.bind() == .value(0))
        return f
    }

    @Test("tvm_arch outside {1,2,3} → EINVAL before the lookup; tsm_code not written",
          arguments: [UInt32(0), 4, 0xFFFF_FFFF])
    func badArch(arch: UInt32) throws {
        let f = try bound()
        let (result, out, _) = f.guestRequest(arch: arch, vdevice: 99)
        #expect(result == .errno(E.EINVAL))
        #expect(out.tsmCode == 0xAAAA)
    }

    @Test("(op, arch) not allowed → EINVAL before the lookup",
          arguments: [(UInt32(0), UInt32(1)), (8, 1), (6, 1), (7, 3), (6, 3)] as [(UInt32, UInt32)])
    func badOp(op: UInt32, arch: UInt32) throws {
        let f = try bound()
        let (result, out, _) = f.guestRequest(op: op, arch: arch, vdevice: 99)
        #expect(result == .errno(E.EINVAL))
        #expect(out.tsmCode == 0xAAAA)
    }

    @Test("every allowed (op, arch) of the reply numbering reaches the driver",
          arguments: [(UInt32(1), UInt32(1)), (2, 2), (3, 3), (4, 1), (5, 2), (6, 2), (7, 2)] as [(UInt32, UInt32)])
    func allowed(op: UInt32, arch: UInt32) throws {
        let f = try bound()
        let (result, _, _) = f.guestRequest(op: op, arch: arch)
        #expect(result == .value(0))
        #expect(f.sample.statistics.guestRequests == 1)
    }

    @Test("unknown vDEVICE → ENOENT, tsm_code untouched (no write-back before step 4)")
    func unknownVDevice() throws {
        let f = try bound()
        let (result, out, _) = f.guestRequest(vdevice: f.viommuID)
        #expect(result == .errno(E.ENOENT))
        #expect(out.tsmCode == 0xAAAA)
    }

    @Test("no TDI bound → ENXIO, and tsm_code is written back as 0")
    func notBound() throws {
        let f = try Fixture()
        try f.setUp()
        let (result, out, _) = f.guestRequest()
        #expect(result == .errno(E.ENXIO))
        #expect(out.tsmCode == 0)
        #expect(f.sample.statistics.guestRequests == 0)
    }

    @Test("no PCI TSM context (never connected) → ENXIO")
    func noContext() throws {
        let f = try Fixture()
        try f.setUp(connect: false)
        #expect(f.guestRequest().0 == .errno(E.ENXIO))
    }

    @Test("residue: 64-byte request, 100-byte response buffer, echo → 36; scripted bytes and residue")
    func residue() throws {
        let f = try bound()
        let (result, _, response) = f.guestRequest(responseLength: 100)
        #expect(result == .value(36))
        #expect(Array(response.prefix(64)) == Array(0..<64))
        f.sample.configure { $0.response = .bytes([9, 8, 7]); $0.residue = 5 }
        let (scripted, _, bytes) = f.guestRequest(responseLength: 8)
        #expect(scripted == .value(5))
        #expect(bytes == [9, 8, 7, 0, 0, 0, 0, 0])
    }

    @Test("no response buffer (resp_len 0): residue counts the request, the sample consumes all → 0")
    func noResponseBuffer() throws {
        let f = try bound()
        let (result, _, _) = f.guestRequest(responseLength: 0)
        #expect(result == .value(0))
    }

    @Test("driver errno with tsm_code: both reported (tsm_code written on failure)")
    func driverErrorWithCode() throws {
        let f = try bound()
        f.sample.configure { $0.error = E.EPERM; $0.tsmCode = 0xDEAD }
        let (result, out, _) = f.guestRequest()
        #expect(result == .errno(E.EPERM))
        #expect(out.tsmCode == 0xDEAD)
    }

    @Test("own-arch check in the driver: another tvm_arch → EINVAL after the lookup (tsm_code written 0)")
    func ownArch() throws {
        let f = try bound()
        f.sample.configure { $0.ownArch = 2 }
        let (result, out, _) = f.guestRequest(arch: 1)
        #expect(result == .errno(E.EINVAL))
        #expect(out.tsmCode == 0)
        #expect(f.guestRequest(arch: 2).0 == .value(0))
    }

    @Test("kernel-sample mode: every request through iommufd → ENXIO (spec 7.2)")
    func kernelSampleMode() throws {
        let f = try Fixture(sample: SampleLinkTSM(mode: .testing))
        try f.setUp()
        #expect(f.bind() == .value(0))
        f.sample.configure { $0.mode = .kernelSample }
        #expect(f.guestRequest().0 == .errno(E.ENXIO))
        // A kernel-originated request (the tsm_request hook) → 0, nothing written.
        let (residue, response) = try f.kernel.pciTSM.hookRequest(Fixture.function1, tsm: f.tsm, payload: Array("hello".utf8), memory: f.kernel.memory)
        #expect(residue == 0)
        #expect(response == [UInt8](repeating: 0, count: 16))
    }

    @Test("EFAULT after the driver ran: read-only struct → EFAULT overrides the residue (spec 8 item 7)")
    func writeBackFault() throws {
        let f = try bound()
        let req = try f.kernel.memory.map(bytes: Array(0..<64))
        let resp = try f.kernel.memory.map(size: 64)
        let value = IOMMUVDeviceTSMReq(vdeviceID: f.vdeviceID, op: 4, tvmArch: 1, reqLen: 64, respLen: 100,
                                       reqUptr: req, respUptr: resp)
        let address = try f.kernel.memory.map(bytes: value.encode(), writable: false)
        // resp_len 100 but only 64 mapped: the echo of 64 bytes succeeds, residue would be 36.
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(f.iommufd, f.request(.vdeviceTSMReq), address) } == .errno(E.EFAULT))
        #expect(try f.kernel.memory.read(resp, count: 64) == Array(0..<64))
        #expect(f.sample.statistics.guestRequests == 1)
    }

    @Test("EFAULT also overrides a driver errno; bad req_uptr → EFAULT from the driver's copy")
    func faults() throws {
        let f = try bound()
        f.sample.configure { $0.error = E.EPERM }
        let value = IOMMUVDeviceTSMReq(vdeviceID: f.vdeviceID, op: 4, tvmArch: 1, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0)
        let address = try f.kernel.memory.map(bytes: value.encode(), writable: false)
        #expect(Outcome { () throws(Errno) in try f.kernel.ioctl(f.iommufd, f.request(.vdeviceTSMReq), address) } == .errno(E.EFAULT))
        f.sample.configure { $0.error = nil }
        let resp = try f.kernel.memory.map(size: 64)
        let bad = IOMMUVDeviceTSMReq(vdeviceID: f.vdeviceID, op: 4, tvmArch: 1, reqLen: 64, respLen: 64, reqUptr: 0x10, respUptr: resp)
        let (result, out) = f.call(.vdeviceTSMReq, bad)
        #expect(result == .errno(E.EFAULT))
        #expect(out.tsmCode == 0)
    }

    @Test("size 40 (a v5 caller) → EINVAL in the revised profile (minimum 48, spec 8 item 1)")
    func v5CallerRejected() throws {
        let f = try bound()
        let v5 = IOMMUVDeviceTSMReqV5(vdeviceID: f.vdeviceID, scope: 0, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0)
        #expect(f.raw(f.request(.vdeviceTSMReq), v5.encode()).0 == .errno(E.EINVAL))
    }

    @Test("residue above Int32.max → EOVERFLOW (EMU-KERNEL-9)")
    func overflow() throws {
        let f = try bound()
        f.sample.configure { $0.residue = Int(Int32.max) + 1 }
        #expect(f.guestRequest().0 == .errno(E.EOVERFLOW))
    }

    @Test("interrupted waits: DSM mutex held → EINTR with a signal pending; pci-tsm write lock held → EINTR")
    func interrupted() throws {
        let f = try bound()
        let dsmHold = try f.kernel.pciTSM.holdDSMLock(Fixture.dsm)
        let (result, out, _) = f.guestRequest(signalPending: true)
        #expect(result == .errno(E.EINTR))
        #expect(out.tsmCode == 0)
        dsmHold.release()
        let writeHold = f.kernel.pciTSM.holdGlobalLock()
        #expect(f.guestRequest(signalPending: true).0 == .errno(E.EINTR))
        writeHold.release()
        // Uncontended: a pending signal does not interrupt (fast path).
        #expect(f.guestRequest(signalPending: true).0 == .value(0))
    }
}

@Suite("IOMMU_VDEVICE_TSM_REQ in the v5 and rev-k profiles (spec 4.1, 4.2)")
struct TSMReqProfileTests {
    func v5Request(_ f: Fixture, scope: UInt32, reserved: UInt32 = 0, vdevice: UInt32? = nil) -> (Outcome, [UInt8]) {
        let value = IOMMUVDeviceTSMReqV5(vdeviceID: vdevice ?? f.vdeviceID, scope: scope, reqLen: 0, respLen: 0,
                                         reserved: reserved, reqUptr: 0, respUptr: 0)
        return f.raw(f.request(.vdeviceTSMReq), value.encode())
    }

    @Test("v5 order: __reserved → EOPNOTSUPP; scope > 3 → EINVAL; lookup → ENOENT; scope 2/3 → EINVAL after it")
    func v5Order() throws {
        let f = try Fixture(profile: .v5)
        try f.setUp()
        #expect(f.bind() == .value(0))
        #expect(v5Request(f, scope: 9, reserved: 1, vdevice: 99).0 == .errno(E.EOPNOTSUPP))
        #expect(v5Request(f, scope: 4, vdevice: 99).0 == .errno(E.EINVAL))
        #expect(v5Request(f, scope: 2, vdevice: 99).0 == .errno(E.ENOENT))
        #expect(v5Request(f, scope: 2).0 == .errno(E.EINVAL))
        #expect(v5Request(f, scope: 3).0 == .errno(E.EINVAL))
        let (ok, after) = v5Request(f, scope: 1)
        #expect(ok == .value(0))
        // No write-back in v5: the struct is as the caller left it.
        #expect(after == IOMMUVDeviceTSMReqV5(vdeviceID: f.vdeviceID, scope: 1, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0).encode())
    }

    @Test("v5 commands are 0x95/0x96 with a 40-byte minimum")
    func v5Numbers() throws {
        let f = try Fixture(profile: .v5)
        #expect(f.request(.vdeviceTSMOp) == 0x3B95)
        #expect(f.request(.vdeviceTSMReq) == 0x3B96)
        let short = IOMMUVDeviceTSMReqV5(size: 36, vdeviceID: 1, scope: 0, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0)
        #expect(f.raw(0x3B96, short.encode()).0 == .errno(E.EINVAL))
    }

    @Test("rev-k: TSM_OP 0x96, TSM_REQ 0x97, ops 1..4 (3, 4 SEV only), 0x95 not modelled")
    func revK() throws {
        let f = try Fixture(profile: .revK)
        try f.setUp()
        #expect(f.request(.vdeviceTSMOp) == 0x3B96)
        #expect(f.request(.vdeviceTSMReq) == 0x3B97)
        #expect(f.bind() == .value(0))
        #expect(f.guestRequest(op: 1, arch: 1).0 == .value(0))
        #expect(f.guestRequest(op: 3, arch: 2).0 == .value(0))
        #expect(f.guestRequest(op: 3, arch: 1).0 == .errno(E.EINVAL))
        #expect(f.guestRequest(op: 5, arch: 1).0 == .errno(E.EINVAL))
        // 0x3B95 is IOAS_NOIOMMU_GET_PA here: not a TSM command.
        let op = IOMMUVDeviceTSMOp(type: 1, vdeviceID: f.vdeviceID).encode()
        #expect(f.raw(0x3B95, op).0 == .errno(E.EOPNOTSUPP))
    }
}

@Suite("The kernel's (op, tvm_arch) checks agree with UAPI's matrix in every revised profile")
struct OpArchMatrixTests {
    @Test(arguments: ["revised", "rev-k"])
    func matrix(profileName: String) throws {
        let f = try Fixture(profile: UAPIProfile.named(profileName))
        for arch in [UInt32(0), 1, 2, 3, 4, 0xFFFF_FFFF] {
            for op in Array(UInt32(0)...9) + [63, 64, 0xFFFF_FFFF] {
                // vDEVICE 99 does not exist: an allowed pair reaches the lookup (ENOENT).
                let expected: Outcome = f.profile.guestRequestVerdict(op: op, tvmArch: arch).isAllowed
                    ? .errno(E.ENOENT) : .errno(E.EINVAL)
                #expect(f.guestRequest(op: op, arch: arch, vdevice: 99).0 == expected, "op \(op) arch \(arch)")
            }
        }
    }
}

@Suite("v5 TSM_REQ after the lookup (spec 4.2 steps 4-13)")
struct TSMReqV5PathTests {
    func request(_ f: Fixture, scope: UInt32 = 0) -> Outcome {
        let value = IOMMUVDeviceTSMReqV5(vdeviceID: f.vdeviceID, scope: scope, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0)
        return f.raw(f.request(.vdeviceTSMReq), value.encode()).0
    }

    @Test("v5: no context → ENXIO; bound → the driver (no tsm_code pointer); DSM mutex held + signal → EINTR")
    func v5Path() throws {
        let f = try Fixture(profile: .v5)
        try f.setUp(connect: false)
        #expect(request(f) == .errno(E.ENXIO))
        try f.connect()
        #expect(request(f) == .errno(E.ENXIO))
        #expect(f.bind() == .value(0))
        f.sample.configure { $0.tsmCode = 77; $0.residue = 3 }
        #expect(request(f) == .value(3))
        let hold = try f.kernel.pciTSM.holdDSMLock(Fixture.dsm)
        let value = IOMMUVDeviceTSMReqV5(vdeviceID: f.vdeviceID, scope: 1, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0)
        #expect(f.raw(f.request(.vdeviceTSMReq), value.encode(), signalPending: true).0 == .errno(E.EINTR))
        hold.release()
    }

    @Test("v5: a non-PCI device → EINVAL after the lookup")
    func v5Platform() throws {
        let kernel = try SimulatedKernel(profile: .v5)
        kernel.addPlatformDevice("mock0")
        let iommufd = kernel.openIOMMUFD()
        let vfio = try kernel.openVFIOPlatformDevice("mock0")
        let dev = try kernel.vfioBindIOMMUFD(vfio, iommufd: iommufd)
        func run<T: UAPIStruct>(_ id: CommandID, _ value: T) throws -> T {
            let address = try kernel.memory.map(bytes: value.encode())
            _ = try kernel.ioctl(iommufd, kernel.profile.command(id)!.request, address)
            return try T(bytes: kernel.memory.read(address, count: T.layout.size))
        }
        let ioas = try run(.ioasAlloc, IOMMUIOASAlloc()).outIOASID
        let hwpt = try run(.hwptAlloc, IOMMUHWPTAlloc(flags: 1, devID: dev, ptID: ioas)).outHWPTID
        let viommu = try run(.viommuAlloc, IOMMUVIOMMUAlloc(type: 1, devID: dev, hwptID: hwpt)).outVIOMMUID
        let vdev = try run(.vdeviceAlloc, IOMMUVDeviceAlloc(viommuID: viommu, devID: dev, virtID: 1)).outVDeviceID
        let address = try kernel.memory.map(bytes: IOMMUVDeviceTSMReqV5(vdeviceID: vdev, scope: 0, reqLen: 0, respLen: 0, reqUptr: 0, respUptr: 0).encode())
        #expect(throws: E.EINVAL) { try kernel.ioctl(iommufd, 0x3B96, address) }
    }
}
