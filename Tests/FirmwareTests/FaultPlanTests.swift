import Device
import Firmware
import SystemPackage
import TDISP
import Testing

@Suite("Fault plans")
struct FaultPlanTests {
    @Test("nthFirmwareCall counts every call since the plan was installed; a rule fires once")
    func nthCall() throws {
        let h = try Harness(SEVPlatform())
        // SET_TDI_STATE(1) makes TDI_STATUS (1st), TDI_BIND (2nd), ASID_FENCE_CLEAR (3rd).
        h.platform.setFaultPlan(FaultPlan([.init(.nthFirmwareCall(2), .firmwareStatus(SEV.PSPStatus.inUse))]))
        let first = h.setState(1)
        #expect(first.errno == .ioError && first.tsmCode == SEV.PSPStatus.inUse)
        #expect(h.deviceState == .configLocked)
        // The rule has fired; the same request now goes through.
        #expect(h.setState(1).errno == nil)
        #expect(h.deviceState == .run)
    }

    @Test("firmwareCall occurrence picks the n-th call of that name")
    func occurrence() throws {
        let h = try Harness(CCAPlatform())
        let payload = { (gpa: UInt64, pa: UInt64) in CCA.ValidateMMIORequest(gpaBase: gpa, gpaTop: gpa + 0x1000, paBase: pa).encoded() }
        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(CCA.RMI.devMemMap, occurrence: 2), .firmwareStatus(CCA.RMIStatus.errorInput.rawValue))]))
        #expect(h.send(.validateMMIO, payload(0x4000_0000, 0x0800_0000)).errno == nil)
        #expect(h.send(.validateMMIO, payload(0x4000_1000, 0x0800_1000)).errno == .ioError)
        #expect(h.send(.validateMMIO, payload(0x4000_1000, 0x0800_1000)).errno == nil)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings.count == 2)
    }

    @Test("a TDISP error answer leaves the DSM untouched; the firmware sees the code")
    func tdispError() throws {
        let h = try Harness(TDXPlatform())
        #expect(h.guestStart() == 0)
        let device = h.deviceSnapshot
        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x86), .tdispError(code: TDISPErrorCode.busy.rawValue))]))
        #expect(h.send(.setTDIState, TDX.SetTDIStateRequest(state: 2).encoded()).errno == .ioError)
        #expect(h.deviceSnapshot == device)
    }

    @Test("a silent device stays silent until the plan is replaced")
    func silentPersists() throws {
        let h = try Harness(TDXPlatform())
        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x85), .deviceSilent)]))
        let tdcm = { h.platform.serviceTDCM(function: h.function, dsm: h.dsmFunction, vm: h.vm,
                                             request: TDX.TDCMBuffer(operation: TDX.TDCMOperation.getTDIState.rawValue).encoded()) }
        #expect(tdcm()?.error == TDX.TDCMError.tdispMessage.rawValue)
        #expect(tdcm()?.error == TDX.TDCMError.tdispMessage.rawValue)
        // Unbind cannot reach the device either: the firmware forgets the TDI, the DSM stays locked.
        h.platform.unbind(function: h.function)
        #expect(h.platform.tdispState(function: h.function) == nil)
        #expect(h.deviceState == .configLocked)
        h.platform.setFaultPlan(FaultPlan())
        #expect(throws: Errno.resourceBusy) { try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID) }
    }

    @Test("connect faults: SEV PSP → EIO, CCA RMI → ENXIO, silent DSM → EIO; nothing kept")
    func connectFaults() throws {
        let dsm = try DSM(functions: [dsmPF, tdiFunction], entropy: .seeded(1))
        let pf = FunctionID(bus: 0x3a, device: 0, function: 0)
        let sev = SEVPlatform()
        sev.setFaultPlan(FaultPlan([.init(.firmwareCall(SEV.PSPCommand.devConnect), .firmwareStatus(SEV.PSPStatus.errInDevConn))]))
        #expect(throws: Errno.ioError) { try sev.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence()) }
        #expect(!sev.isConnected(dsm: pf))
        let cca = CCAPlatform()
        cca.setFaultPlan(FaultPlan([.init(.firmwareCall(CCA.RMI.pdevCreate), .firmwareStatus(CCA.RMIStatus.errorInput.rawValue))]))
        #expect(throws: Errno.noSuchAddressOrDevice) { try cca.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence()) }
        #expect(cca.pdevState(dsm: pf) == nil)
        let tdx = TDXPlatform()
        tdx.setFaultPlan(FaultPlan([.init(.tdispRequest(0x81), .deviceSilent)]))
        #expect(throws: Errno.ioError) { try tdx.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence()) }
        #expect(!tdx.isConnected(dsm: pf))
        // A function the DSM does not host answers INVALID_INTERFACE: EIO.
        #expect(throws: Errno.ioError) { try SEVPlatform().connect(dsm: FunctionID(bus: 9, device: 0, function: 0), transport: dsm, evidence: DeviceEvidence()) }
    }

    @Test("disconnect unbinds the DSM's TDIs on SEV and TDX too", arguments: [TSMArch.sev, .tdx])
    func disconnect(arch: TSMArch) throws {
        let platform = TSMFirmware.platform(for: arch)
        let dsm = try DSM(functions: [dsmPF, tdiFunction], entropy: .seeded(2))
        let pf = FunctionID(bus: 0x3a, device: 0, function: 0)
        let function = FunctionID(bus: 0x3a, device: 0, function: 1)
        try platform.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence())
        try platform.bind(function: function, dsm: pf, vm: 1, guestID: 1)
        platform.disconnect(dsm: pf)
        #expect(platform.tdispState(function: function) == nil)
        #expect(dsm.tdi(InterfaceID(functionID: function))?.state == .configUnlocked)
        // Connecting again works: nothing of the old link is left.
        try platform.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence())
    }
}

@Suite("Fault rule text form")
struct FaultRuleTextTests {
    @Test("rules read and print back", arguments: [
        ("fw#3=0x6", FaultPlan.Rule(.nthFirmwareCall(3), .firmwareStatus(6))),
        ("fw:RMI_VDEV_START=0x6", .init(.firmwareCall("RMI_VDEV_START"), .firmwareStatus(6))),
        ("fw:TDI_BIND#2=0x3c", .init(.firmwareCall("TDI_BIND", occurrence: 2), .firmwareStatus(0x3C))),
        ("tdisp:0x86=error:0x102", .init(.tdispRequest(0x86), .tdispError(code: 0x102))),
        ("tdisp:0x84#2=error:0x7,0x84", .init(.tdispRequest(0x84, occurrence: 2), .tdispError(code: 7, data: 0x84))),
        ("tdisp:0x85=silent", .init(.tdispRequest(0x85), .deviceSilent)),
        ("fw:TDH.MMIO.MAP=0x8000020000000000", .init(.firmwareCall("TDH.MMIO.MAP"), .firmwareStatus(0x8000_0200_0000_0000))),
    ])
    func roundTrip(text: String, rule: FaultPlan.Rule) throws {
        #expect(try FaultPlan.Rule(parsing: text) == rule)
        #expect(try FaultPlan.Rule(parsing: rule.description) == rule)
    }

    @Test("malformed rules are refused, never trap", arguments: [
        "", "=", "fw#0=1", "fw#=1", "fw#x=1", "fw:=1", "fw:A#0=1", "tdisp:0x100=silent", "tdisp:zz=silent",
        "tdisp:0x86=error:", "tdisp:0x86=error:0x1,0x2,0x3", "tdisp:0x86=error:0x100000000", "nope=1",
        "fw:A=0x10000000000000000", "fw:A=-1", "fw:A", "fw#99999999999999999999=1",
    ])
    func refused(text: String) {
        #expect(throws: FaultRuleSyntaxError.self) { try FaultPlan.Rule(parsing: text) }
    }

    @Test("a parsed plan drives the platform like a built one")
    func parsedPlan() throws {
        let h = try Harness(CCAPlatform())
        h.platform.setFaultPlan(try FaultPlan(parsing: ["tdisp:0x86=error:0x102"]))
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).errno == .protocolError)
        #expect(h.platform.vdevInfo(function: h.function)?.state == .error)
    }
}

@Suite("Concurrent guest requests")
struct ConcurrencyTests {
    @Test("many tasks reading objects and validating disjoint MMIO on one CCA platform")
    func concurrentCCA() async throws {
        let platform = CCAPlatform()
        let dsm = try DSM(functions: [dsmPF, tdiFunction], entropy: .seeded(4))
        let pf = FunctionID(bus: 0x3a, device: 0, function: 0)
        let function = FunctionID(bus: 0x3a, device: 0, function: 1)
        try platform.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence(certificateChain: [1, 2, 3]))
        try platform.bind(function: function, dsm: pf, vm: 1, guestID: 1)
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<16 {
                group.addTask {
                    let memory = MappedUserMemory()
                    let payload = index < 8
                        ? CCA.ValidateMMIORequest(gpaBase: 0x4000_0000 + UInt64(index) * 0x1000, gpaTop: 0x4000_1000 + UInt64(index) * 0x1000,
                                                  paBase: 0x1000_0000 + UInt64(index) * 0x1000).encoded()
                        : CCA.ReadObjectRequest(objectType: 1).encoded()
                    memory.map(0x1000, payload)
                    memory.map(0x2000, zeroes: 64)
                    let op: GuestOp = index < 8 ? .validateMMIO : .readObject
                    let outcome = platform.guestRequest(function: function, GuestRequest(op: op.rawValue, tvmArch: 1, requestAddress: 0x1000,
                        requestLength: UInt32(payload.count), responseAddress: 0x2000, responseLength: 64), memory: memory)
                    return outcome.errno == nil
                }
            }
            var all: [Bool] = []
            for await result in group { all.append(result) }
            return all
        }
        #expect(results.count == 16 && results.allSatisfy { $0 })
        #expect(platform.vdevInfo(function: function)?.mappings.count == 8)
    }
}
