import Device
import Firmware
import Kernel
import PCI
import SystemPackage
import TDISP
import Testing
import UAPI

/// The driver-wide rules of guest_req for the three drivers, through the kernel's ioctl
/// (arch-backends.md §0, §1.2, §4, §6; docs/firmware.md "guest_req envelope").
@Suite("Arch: guest_req rules")
struct ArchGuestRequestTests {
    /// A well-formed payload of `op` for `arch` (the shape only matters for length checks).
    static func payload(_ op: GuestOp, _ arch: TVMArch) -> [UInt8] {
        switch (arch, op) {
        case (.sev, .setTDIState): return [1]
        case (.sev, _): return SEV.GuestMessage(sequenceNumber: 1, messageType: 25, body: SEV.SDTEWriteRequest(tdiID: 1, sdte: []).encoded()).encoded()
        case (_, .readObject): return CCA.ReadObjectRequest(objectType: 3).encoded()
        case (_, .regenObject): return CCA.RegenObjectRequest(objectType: 3, nonceAddress: 0).encoded()
        case (_, .objectInfo): return CCA.ObjectInfoRequest(objectType: 3).encoded()
        case (_, .validateMMIO): return CCA.ValidateMMIORequest(gpaBase: 0x1000, gpaTop: 0x2000, paBase: 0x1000).encoded()
        case (_, .setTDIState), (_, .sevEnableDMA), (_, .sevDisableDMA): return CCA.SetTDIStateRequest(state: 2).encoded()
        }
    }

    struct Cross: CustomTestStringConvertible, Sendable {
        var platform: TVMArch
        var envelope: TVMArch
        var op: GuestOp
        var testDescription: String { "\(op) with tvm_arch \(envelope) on a \(platform) platform" }
    }

    static let cross: [Cross] = [TVMArch.cca, .sev, .tdx].flatMap { platform in
        [TVMArch.cca, .sev, .tdx].filter { $0 != platform }.flatMap { envelope in
            GuestOp.allCases.filter { envelope == .sev || !($0 == .sevEnableDMA || $0 == .sevDisableDMA) }
                .map { Cross(platform: platform, envelope: envelope, op: $0) }
        }
    }

    @Test("another architecture's envelope: EINVAL, tsm_code 0, no firmware call, no TDISP message", arguments: cross)
    func crossArchitecture(_ c: Cross) throws {
        let f = try ArchFixture(c.platform)
        let log = f.platform.driver.callLog
        let messages = f.deviceMessages
        let reply = f.request(c.op, arch: c.envelope, Self.payload(c.op, c.envelope), responseLength: 4096)
        #expect(reply.outcome == .errno(E.EINVAL))
        #expect(reply.tsmCode == 0)
        #expect(f.platform.driver.callLog == log)
        #expect(f.deviceMessages == messages)
        #expect(f.deviceState == .configLocked && f.firmwareState == .configLocked)
        #expect(reply.response.allSatisfy { $0 == 0 })
    }

    @Test("SEV_ENABLE_DMA / SEV_DISABLE_DMA with tvm_arch CCA or TDX: EINVAL at iommufd, before the lookup (tsm_code not written back)",
          arguments: [TVMArch.cca, .tdx])
    func sevOnlyOps(arch: TVMArch) throws {
        let f = try ArchFixture(arch)
        let log = f.platform.driver.callLog
        for op in [GuestOp.sevEnableDMA, .sevDisableDMA] {
            let reply = f.request(op, Self.payload(.setTDIState, arch))
            #expect(reply.outcome == .errno(E.EINVAL) && reply.tsmCode == 0xAAAA)
        }
        #expect(f.platform.driver.callLog == log)
    }

    struct Length: CustomTestStringConvertible, Sendable {
        var arch: TVMArch
        var op: GuestOp
        var length: Int
        var testDescription: String { "\(arch) \(op) req_len \(length)" }
    }

    /// Exact lengths (arch-backends.md §1.2 [P], §3.3 EMU-TDX-2; SEV: 1-byte SET_TDI_STATE,
    /// 96 + struct for the guest messages, EMU-SEV-2): one byte short and one byte long.
    static let lengths: [Length] = {
        var cases: [Length] = []
        for (op, size) in [(GuestOp.readObject, 16), (.regenObject, 24), (.objectInfo, 4), (.validateMMIO, 24), (.setTDIState, 4)] {
            for arch in [TVMArch.cca, .tdx] { cases += [Length(arch: arch, op: op, length: size - 1), Length(arch: arch, op: op, length: size + 1)] }
        }
        cases += [Length(arch: .sev, op: .setTDIState, length: 0), Length(arch: .sev, op: .setTDIState, length: 2),
                  Length(arch: .sev, op: .validateMMIO, length: 96 + 47), Length(arch: .sev, op: .validateMMIO, length: 95),
                  Length(arch: .sev, op: .sevEnableDMA, length: 96 + 81), Length(arch: .sev, op: .sevDisableDMA, length: 96 + 79)]
        return cases
    }()

    @Test("wrong req_len: EINVAL, no firmware call, no device message", arguments: lengths)
    func exactLength(_ c: Length) throws {
        let f = try ArchFixture(c.arch)
        let log = f.platform.driver.callLog
        let messages = f.deviceMessages
        var bytes: [UInt8]
        if c.arch == .sev && c.op != .setTDIState {
            let body = c.op == .validateMMIO
                ? SEV.MMIOValidateRequest(tdiID: 1, subrangeBase: 0, subrangePageCount: 1, rangeOffset: 0, validated: true, rangeID: 0).encoded()
                : SEV.SDTEWriteRequest(tdiID: 1, sdte: []).encoded()
            bytes = SEV.GuestMessage(sequenceNumber: 1, messageType: c.op == .validateMMIO ? 21 : 25, body: body).encoded()
        } else {
            bytes = Self.payload(c.op, c.arch)
        }
        bytes = Array((bytes + [UInt8](repeating: 0, count: 200)).prefix(c.length))
        let reply = f.request(c.op, bytes.isEmpty ? [0] : bytes, responseLength: c.arch == .sev && c.op != .setTDIState ? 144 : 0,
                              requestLength: c.length)
        #expect(reply.outcome == .errno(E.EINVAL) && reply.tsmCode == 0)
        #expect(f.platform.driver.callLog == log && f.deviceMessages == messages)
        #expect(f.deviceState == .configLocked)
    }

    @Test("request copy-in fault: EFAULT through the kernel's user memory; nothing changes", arguments: [TVMArch.cca, .sev, .tdx])
    func copyInFault(arch: TVMArch) throws {
        let f = try ArchFixture(arch)
        let log = f.platform.driver.callLog
        let unmapped: UInt64 = 0x1000  // below every mapping; never mapped
        let reply = f.request(.setTDIState, Self.payload(.setTDIState, arch), requestAddress: unmapped)
        #expect(reply.outcome == .errno(E.EFAULT) && reply.tsmCode == 0)
        #expect(f.platform.driver.callLog == log && f.deviceState == .configLocked)
    }

    @Test("CCA READ_OBJECT into a read-only response buffer: EIO (copy-out, §1.2); OBJECT_INFO too")
    func ccaCopyOut() throws {
        let f = try ArchFixture(.cca)
        let read = f.request(.readObject, CCA.ReadObjectRequest(objectType: 3).encoded(), responseLength: 4096, readOnlyResponse: true)
        #expect(read.outcome == .errno(Errno(rawValue: 5)) && read.tsmCode == 0)
        let info = f.request(.objectInfo, CCA.ObjectInfoRequest(objectType: 3).encoded(), responseLength: 4, readOnlyResponse: true)
        #expect(info.outcome == .errno(Errno(rawValue: 5)))
    }

    @Test("CCA OBJECT_INFO: the report size, residue resp_len − 4; E2BIG for a short READ_OBJECT buffer")
    func ccaObjectInfo() throws {
        let f = try ArchFixture(.cca)
        let info = f.request(.objectInfo, CCA.ObjectInfoRequest(objectType: 3).encoded(), responseLength: 8)
        #expect(info.outcome == .value(4))
        #expect(try CCA.ObjectInfoResponse(decoding: Array(info.response.prefix(4))).objectSize == UInt32(f.report.count))
        let short = f.request(.readObject, CCA.ReadObjectRequest(objectType: 3).encoded(), responseLength: f.report.count - 1)
        #expect(short.outcome == .errno(E.E2BIG))
        let unknown = f.request(.objectInfo, CCA.ObjectInfoRequest(objectType: 9).encoded(), responseLength: 8)
        #expect(unknown.outcome == .errno(E.EINVAL))
    }

    @Test("SEV: object ops are EINVAL (EMU-SEV-1), tsm_code 0, no PSP call", arguments: [GuestOp.readObject, .regenObject, .objectInfo])
    func sevObjectOps(op: GuestOp) throws {
        let f = try ArchFixture(.sev)
        let log = f.platform.driver.callLog
        let reply = f.request(op, CCA.ReadObjectRequest(objectType: 3).encoded().prefix(op == .objectInfo ? 4 : 16) + [], responseLength: 64)
        #expect(reply.outcome == .errno(E.EINVAL) && reply.tsmCode == 0 && f.platform.driver.callLog == log)
    }

    @Test("objectOpsTunnelled false on CCA: READ_OBJECT is EINVAL before the firmware (EMU-ARCH-2)")
    func objectOpsNotTunnelled() throws {
        let f = try ArchFixture(.cca, firmware: FirmwareProfile(objectOpsTunnelled: false))
        let reply = f.request(.readObject, CCA.ReadObjectRequest(objectType: 3).encoded(), responseLength: 4096)
        #expect(reply.outcome == .errno(E.EINVAL) && reply.response.allSatisfy { $0 == 0 })
    }

    @Test("state preconditions: CCA RUN twice → ENXIO; SEV RUN twice → 0 (idempotent); TDX RUN without TDG.TDI.START → EPERM")
    func preconditions() throws {
        let cca = try ArchFixture(.cca)
        #expect(cca.request(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).outcome == .value(0))
        let again = cca.request(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(again.outcome == .errno(E.ENXIO) && again.tsmCode == 0 && cca.deviceState == .run)
        let other = cca.request(.setTDIState, CCA.SetTDIStateRequest(state: 1).encoded())
        #expect(other.outcome == .errno(E.EINVAL))

        let sev = try ArchFixture(.sev)
        #expect(sev.request(.setTDIState, [1]).outcome == .value(0))
        let messages = sev.deviceMessages
        #expect(sev.request(.setTDIState, [1]).outcome == .value(0))
        #expect(sev.deviceState == .run)
        #expect(sev.deviceMessages == messages + 1)  // TDI_STATUS reads the state, no START
        #expect(sev.request(.setTDIState, [0]).outcome == .value(0))
        #expect(sev.deviceState == .configUnlocked)
        let run = sev.request(.setTDIState, [1])
        #expect(run.outcome == .errno(E.EFAULT))  // RUN needs CONFIG_LOCKED (§2.2)

        let tdx = try ArchFixture(.tdx)
        let denied = tdx.request(.setTDIState, TDX.SetTDIStateRequest(state: 2).encoded())
        #expect(denied.outcome == .errno(E.EPERM) && denied.tsmCode == TDX.Status.tdiInvalidState)
        #expect(tdx.deviceState == .configLocked)
    }

    @Test("injected faults: SEV TDI_BIND status → EIO with tsm_code 0x3c; TDX busy → EBUSY; CCA RMI failure → ENXIO, tsm_code 0")
    func faults() throws {
        let sev = try ArchFixture(.sev)
        sev.platform.setFaultPlan(try FaultPlan(parsing: ["fw:TDI_BIND=0x3c"]))
        let reply = sev.request(.setTDIState, [1])
        #expect(reply.outcome == .errno(Errno(rawValue: 5)) && reply.tsmCode == 0x3C)
        #expect(sev.deviceState == .configLocked)

        let tdx = try ArchFixture(.tdx)
        #expect(tdx.platform.tdx?.tdgTDIStart(tdx.function, vm: tdx.vm) == 0)
        tdx.platform.setFaultPlan(try FaultPlan(parsing: ["fw:TDH.TDI.START=0x8000020000000000"]))
        let busy = tdx.request(.setTDIState, TDX.SetTDIStateRequest(state: 2).encoded())
        #expect(busy.outcome == .errno(E.EBUSY) && busy.tsmCode == 0x8000_0200_0000_0000)

        let cca = try ArchFixture(.cca)
        cca.platform.setFaultPlan(try FaultPlan(parsing: ["fw:RMI_VDEV_START=6"]))
        let failed = cca.request(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(failed.outcome == .errno(E.ENXIO) && failed.tsmCode == 0)
        #expect(cca.deviceState == .configLocked)
    }

    @Test("a device that fails START: CCA EPROTO (VDEV ERROR), SEV EIO 0x33 (TDI ERROR)")
    func deviceFailure() throws {
        let cca = try ArchFixture(.cca)
        cca.platform.setFaultPlan(try FaultPlan(parsing: ["tdisp:0x86=error:0x1"]))
        #expect(cca.request(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).outcome == .errno(Errno(rawValue: 71)))
        #expect(cca.platform.cca?.vdevInfo(cca.function)?.state == .error)
        #expect(cca.deviceState == .configLocked)

        let sev = try ArchFixture(.sev)
        sev.platform.setFaultPlan(try FaultPlan(parsing: ["tdisp:0x86=silent"]))
        let reply = sev.request(.setTDIState, [1])
        #expect(reply.outcome == .errno(Errno(rawValue: 5)) && reply.tsmCode == 0x33)
        #expect(sev.firmwareState == .error)
    }

    @Test("rev-K numbering: op 2 is SET_TDI_STATE for CCA; op 1 VALIDATE_MMIO")
    func revKNumbering() throws {
        let f = try ArchFixture(.cca, uapi: .revK)
        let run = f.request(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded(), rawOp: 2)
        #expect(run.outcome == .value(0) && f.deviceState == .run)
    }

    @Test("v5 scope form: SEV STATE_CHANGE reaches RUN; CCA and TDX refuse scope requests (EMU-ARCH-3)")
    func v5Scope() throws {
        for arch in [TVMArch.cca, .sev, .tdx] {
            let f = try ArchFixture(arch, uapi: .v5)
            let req = try f.kernel.memory.map(bytes: [1])
            let value = IOMMUVDeviceTSMReqV5(vdeviceID: f.vdeviceID, scope: 1, reqLen: 1, respLen: 0, reqUptr: req, respUptr: 0)
            let (result, _) = f.call(.vdeviceTSMReq, value)
            if arch == .sev {
                #expect(result == .value(0) && f.deviceState == .run)
            } else {
                #expect(result == .errno(E.EINVAL) && f.deviceState == .configLocked)
            }
        }
    }

    @Test("a driver with no device model attached refuses the DSM: connect → ENXIO")
    func noDeviceModel() throws {
        let kernel = try SimulatedKernel(functions: KernelPCIFunction.devsecSampleTopology())
        let driver = ArchTSM.make(.cca)
        _ = try kernel.pciTSM.register(link: driver)
        // The sample topology's domain 0x10000 has no 8-bit TDISP segment either.
        #expect(throws: E.ENXIO) { try kernel.pciTSM.connect(PCIFunctionAddress("10000:01:00.0")!, "tsm0") }
        #expect(PCIFunctionAddress("10000:01:00.0")!.functionID == nil)
    }
}

@Suite("Arch: kernel-originated requests")
struct ArchKernelSockptrTests {
    @Test("a kernel sockptr (pci-tsm's tsm_request hook) is EINVAL for every architecture (§1.2)", arguments: [TVMArch.cca, .tdx])
    func kernelPointer(arch: TVMArch) throws {
        let f = try ArchFixture(arch)
        let log = f.platform.driver.callLog
        #expect(throws: E.EINVAL) {
            _ = try f.kernel.pciTSM.hookRequest(f.function, tsm: f.platform.tsmDevice, payload: CCA.SetTDIStateRequest(state: 2).encoded(),
                                                op: 5, tvmArch: arch.rawValue, memory: f.kernel.memory)
        }
        #expect(f.platform.driver.callLog == log && f.deviceState == .configLocked)
    }
}
