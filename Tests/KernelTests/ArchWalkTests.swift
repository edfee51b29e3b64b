import Device
import Firmware
import Kernel
import PCI
import SystemPackage
import TDISP
import Testing
import UAPI

/// Issue #5 "done when", through the simulated kernel: on the device built from
/// tee-io-endpoint-sriov.lspci, each architecture binds a VF's TDI with IOMMU_VDEVICE_TSM_OP,
/// walks it to RUN with IOMMU_VDEVICE_TSM_REQ (and the guest's direct firmware calls), the DSM
/// reports RUN, DMA is enabled where the architecture tunnels it (SEV), and unbind brings the DSM
/// back to CONFIG_UNLOCKED.
@Suite("Arch: walks to RUN through the kernel")
struct ArchWalkTests {
    @Test("the dump becomes kernel functions: DSM e1:00.0 with a CMA mailbox, VFs e1:04.0-3 (EMU-KERNEL-11)")
    func topology() throws {
        let platform = try ArchPlatform(arch: .cca, lspci: ArchFixture.dumpText, evidence: false)
        let dsm = try #require(platform.kernel.pciTSM.function(ArchFixture.dsm))
        #expect(dsm.canBeDSM && dsm.hasCMAMailbox && dsm.hasIDE && dsm.teeIO && dsm.expressType == .endpoint)
        for index in 0..<4 {
            let vf = try #require(platform.kernel.pciTSM.function(PCIFunctionAddress(bus: 0xE1, device: 4, function: UInt8(index))))
            #expect(vf.physicalFunction == ArchFixture.dsm && !vf.canBeDSM)
        }
        #expect(platform.dsms.keys.sorted() == [ArchFixture.dsm])
        #expect(ArchFixture.vf.functionID == FunctionID(requesterID: 0xE120))
        #expect(platform.tsmDevice.name == "tsm0")
    }

    @Test("Arm CCA: bind, READ_OBJECT report, VALIDATE_MMIO + RSI validate, SET_TDI_STATE(RUN), RSI DMA enable, unbind")
    func cca() throws {
        let f = try ArchFixture(.cca)
        #expect(f.deviceState == .configLocked && f.firmwareState == .configLocked)
        let cca = try #require(f.platform.cca)
        let read = f.request(.readObject, CCA.ReadObjectRequest(objectType: 3).encoded(), responseLength: 4096)
        #expect(read.outcome == .value(Int32(4096 - f.report.count)))
        #expect(Array(read.response.prefix(f.report.count)) == f.report && read.tsmCode == 0)
        var gpa = ArchFixture.guestMMIO
        for range in f.ranges {
            let size = UInt64(range.numberOfPages) * 4096
            let validate = f.request(.validateMMIO, CCA.ValidateMMIORequest(gpaBase: gpa, gpaTop: gpa + size, paBase: range.firstPage << 12).encoded())
            #expect(validate.outcome == .value(0) && validate.tsmCode == 0)
            #expect(cca.rsiVDEVValidateMapping(f.function, vm: f.vm, gpaBase: gpa, gpaTop: gpa + size, paBase: range.firstPage << 12) == 0)
            gpa += size
        }
        let run = f.request(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(run.outcome == .value(0) && run.tsmCode == 0)
        #expect(f.deviceState == .run && f.firmwareState == .run)
        #expect(cca.vdevInfo(f.function)?.state == .started)
        #expect(cca.rsiVDEVDMAEnable(f.function, vm: f.vm) == 0)
        #expect(cca.vdevInfo(f.function)?.dmaEnabled == true)
        #expect(f.tsmOp(2) == .value(0))
        #expect(f.deviceState == .configUnlocked && f.firmwareState == nil)
    }

    @Test("AMD SEV-TIO: bind, SET_TDI_STATE(RUN), MMIO_VALIDATE every range, SDTE enable/disable, unbind")
    func sev() throws {
        let f = try ArchFixture(.sev)
        let sev = try #require(f.platform.sev)
        let run = f.request(.setTDIState, [1])
        #expect(run.outcome == .value(0) && run.tsmCode == 0)
        #expect(f.deviceState == .run && f.firmwareState == .run)
        let tdiID = try #require(sev.tdiID(f.function))
        var gpa = ArchFixture.guestMMIO
        for range in f.ranges {
            let body = SEV.MMIOValidateRequest(tdiID: tdiID, subrangeBase: gpa, subrangePageCount: range.numberOfPages,
                                               rangeOffset: 0, validated: true, rangeID: range.rangeID).encoded()
            let message = SEV.GuestMessage(sequenceNumber: sev.nextSequenceNumber(vm: f.vm), messageType: 21, body: body)
            let reply = f.request(.validateMMIO, message.encoded(), responseLength: 144)
            #expect(reply.outcome == .value(0) && reply.tsmCode == 0)
            let response = try SEV.MMIOValidateResponse(decoding: SEV.GuestMessage(decoding: reply.response).body)
            #expect(response.status == 0 && response.changed)
            gpa += UInt64(range.numberOfPages) * 4096
        }
        let enable = SEV.GuestMessage(sequenceNumber: sev.nextSequenceNumber(vm: f.vm), messageType: 25,
                                      body: SEV.SDTEWriteRequest(tdiID: tdiID, sdte: SEV.SDTEWriteRequest.validSDTE(vtom: 1 << 46)).encoded())
        let enabled = f.request(.sevEnableDMA, enable.encoded(), responseLength: 112)
        #expect(enabled.outcome == .value(0) && enabled.tsmCode == 0)
        #expect(try SEV.SDTEWriteResponse(decoding: SEV.GuestMessage(decoding: enabled.response).body).status == 0)
        #expect(sev.tdiInfo(f.function)?.tsmEnabled == true)
        let disable = SEV.GuestMessage(sequenceNumber: sev.nextSequenceNumber(vm: f.vm), messageType: 25,
                                       body: SEV.SDTEWriteRequest(tdiID: tdiID, sdte: []).encoded())
        #expect(f.request(.sevDisableDMA, disable.encoded(), responseLength: 112).outcome == .value(0))
        #expect(sev.tdiInfo(f.function)?.tsmEnabled == false)
        #expect(f.deviceState == .run)
        #expect(f.tsmOp(2) == .value(0))
        #expect(f.deviceState == .configUnlocked && f.firmwareState == nil)
    }

    @Test("Intel TDX Connect: VALIDATE_MMIO + TDG.MMIO.ACCEPT, TDG.TDI.START, SET_TDI_STATE(RUN), TDG.DMAR.ACCEPT, unbind")
    func tdx() throws {
        let f = try ArchFixture(.tdx)
        let tdx = try #require(f.platform.tdx)
        var gpa = ArchFixture.guestMMIO
        for range in f.ranges {
            let size = UInt64(range.numberOfPages) * 4096
            let reply = f.request(.validateMMIO, TDX.ValidateMMIORequest(gpaBase: gpa, gpaTop: gpa + size, paBase: range.firstPage << 12).encoded())
            #expect(reply.outcome == .value(0) && reply.tsmCode == 0)
            #expect(tdx.tdgMMIOAccept(f.function, vm: f.vm, gpa: gpa) == 0)
            gpa += size
        }
        #expect(tdx.tdgTDIStart(f.function, vm: f.vm) == 0)
        let run = f.request(.setTDIState, TDX.SetTDIStateRequest(state: 2).encoded())
        #expect(run.outcome == .value(0) && run.tsmCode == 0)
        #expect(f.deviceState == .run && f.firmwareState == .run)
        #expect(tdx.tdgDMARAccept(f.function, vm: f.vm) == 0)
        #expect(tdx.tdgTDIRead(f.function, vm: f.vm, field: 2).value == 2)
        #expect(f.tsmOp(2) == .value(0))
        #expect(f.deviceState == .configUnlocked && f.firmwareState == nil)
    }

    @Test("disconnect unbinds a TDI in RUN: the DSM goes back to CONFIG_UNLOCKED", arguments: [TVMArch.cca, .sev, .tdx])
    func disconnect(arch: TVMArch) throws {
        let f = try ArchFixture(arch)
        #expect(f.deviceState == .configLocked)
        try f.kernel.pciTSM.disconnect(ArchFixture.dsm, "tsm0")
        #expect(f.deviceState == .configUnlocked && f.firmwareState == nil)
        #expect(throws: E.ENXIO) { try f.kernel.pciTSM.disconnect(ArchFixture.dsm, "tsm0") }
        // A request now finds no context: ENXIO from pci-tsm, tsm_code written back as 0.
        let reply = f.request(.setTDIState, arch == .sev ? [1] : CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(reply.outcome == .errno(E.ENXIO) && reply.tsmCode == 0)
    }

    @Test("bind is CONFIG_LOCKED on both sides; a second connect is EBUSY", arguments: [TVMArch.cca, .sev, .tdx])
    func bindState(arch: TVMArch) throws {
        let f = try ArchFixture(arch, bind: false)
        #expect(f.deviceState == .configUnlocked && f.firmwareState == nil)
        #expect(f.tsmOp(1) == .value(0))
        #expect(f.deviceState == .configLocked && f.firmwareState == .configLocked)
        #expect(try f.kernel.pciTSM.boundShow(f.function) == "tsm0\n")
        #expect(throws: E.EBUSY) { try f.kernel.pciTSM.connect(ArchFixture.dsm, "tsm0") }
        #expect(f.tsmOp(2) == .value(0))
        #expect(f.tsmOp(1) == .value(0))
        #expect(f.deviceState == .configLocked)
    }
}

@Suite("Arch: two VFs of one DSM in two VMs")
struct ArchTwoVMTests {
    @Test("requests for two VFs run concurrently; each VF reaches RUN; each VM keeps its own state", arguments: [TVMArch.cca, .sev, .tdx])
    func concurrent(arch: TVMArch) async throws {
        let first = try ArchFixture(arch)
        let second = try ArchFixture(arch, function: PCIFunctionAddress("e1:04.1")!, connect: false, bind: false, on: first.platform)
        #expect(second.tsmOp(1) == .value(0))
        #expect(first.vm != second.vm)
        if arch == .tdx {
            #expect(first.platform.tdx?.tdgTDIStart(first.function, vm: first.vm) == 0)
            #expect(second.platform.tdx?.tdgTDIStart(second.function, vm: second.vm) == 0)
            // A TD cannot start another TD's TDI: TDI_NOT_PRESENT.
            #expect(first.platform.tdx?.tdgTDIStart(second.function, vm: first.vm) == TDX.Status.tdiNotPresent)
        }
        let payload = arch == .sev ? [1] : CCA.SetTDIStateRequest(state: 2).encoded()
        let outcomes = await withTaskGroup(of: Outcome.self) { group in
            for fixture in [first, second] { group.addTask { fixture.request(.setTDIState, payload).outcome } }
            var all: [Outcome] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        #expect(outcomes == [.value(0), .value(0)])
        #expect(first.deviceState == .run && second.deviceState == .run)
        #expect(first.firmwareState == .run && second.firmwareState == .run)
        #expect(first.tsmOp(2) == .value(0))
        #expect(first.deviceState == .configUnlocked && second.deviceState == .run)
    }
}
