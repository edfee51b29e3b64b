import Device
import Firmware
import SystemPackage
import TDISP
import Testing
import Wire

private struct TDXSnapshot: Equatable {
    var tdi: TDXPlatform.TDIInfo?
    var device: TDISnapshot?
    var deviceRequests: Int
    init(_ h: Harness<TDXPlatform>) {
        tdi = h.platform.tdiInfo(function: h.function)
        device = h.deviceSnapshot
        deviceRequests = h.tdispRequests
    }
}

/// Range 2 of the test TDI (BAR 2): PA 0x1000_0000, 8 pages.
private let rangeThreePA: UInt64 = 0x10000 << 12

private func validate(_ gpaBase: UInt64, _ gpaTop: UInt64, _ paBase: UInt64) -> [UInt8] {
    TDX.ValidateMMIORequest(gpaBase: gpaBase, gpaTop: gpaTop, paBase: paBase).encoded()
}

private let run = TDX.SetTDIStateRequest(state: 2).encoded()

extension Harness where Platform == TDXPlatform {
    var session: UInt64 { platform.tdgTDIRead(function: function, vm: vm, field: TDX.TDIField.bindSessionID.rawValue).value }
    func guestStart() -> UInt64 { platform.tdgTDIStart(function: function, vm: vm, bindSessionID: session) }
}

@Suite("TDX Connect module and host driver (EMU-TDX-*)")
struct TDXTests {
    @Test("bind: TDI create/bind/report over TDISP; a new bind session each time")
    func bind() throws {
        let h = try Harness(TDXPlatform())
        let info = try #require(h.platform.tdiInfo(function: h.function))
        #expect(info.state == .configLocked)
        #expect(h.deviceState == .configLocked)
        let read = h.platform.tdgTDIRead(function: h.function, vm: h.vm, field: TDX.TDIField.tdispState.rawValue)
        #expect(read.status == 0 && read.value == 1)
        let first = info.bindSessionID
        h.platform.unbind(function: h.function)
        #expect(h.deviceState == .configUnlocked)
        try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID)
        #expect(h.platform.tdiInfo(function: h.function)?.bindSessionID != first)
        #expect(h.platform.callLog.contains(TDX.SEAMCALL.tdiBind))
    }

    @Test("walk: report, MMIO map + accept, guest start, RUN, DMAR accept, unbind")
    func walk() throws {
        let h = try Harness(TDXPlatform())
        let info = h.send(.objectInfo, TDX.ObjectInfoRequest(objectType: 1).encoded(), responseLength: 8)
        #expect(info.errno == nil && info.residue == 4 && info.tsmCode == 0)
        #expect(try TDX.ObjectInfoResponse(decoding: info.response).objectSize == UInt32(h.report.count))
        let report = h.send(.readObject, TDX.ReadObjectRequest(objectType: 1).encoded(), responseLength: 128)
        #expect(report.response == h.report && report.residue == 128 - h.report.count)
        let devInfo = h.send(.readObject, TDX.ReadObjectRequest(objectType: 2).encoded(), responseLength: 64)
        #expect(devInfo.response.count == 28 && devInfo.residue == 36)

        let map = h.send(.validateMMIO, validate(0x9000_0000, 0x9000_8000, rangeThreePA))
        #expect(map.errno == nil && map.tsmCode == 0)
        for page in 0..<8 {
            #expect(h.platform.tdgMMIOAccept(function: h.function, vm: h.vm, gpa: 0x9000_0000 + UInt64(page) * 0x1000) == 0)
        }
        #expect(h.platform.tdgMMIOAccept(function: h.function, vm: h.vm, gpa: 0x9000_0000) == TDX.Status.invalidOperand)
        #expect(h.platform.tdgMMIOAccept(function: h.function, vm: h.vm, gpa: 0x9000_8000) == TDX.Status.invalidOperand)
        #expect(h.platform.tdgDMARAccept(function: h.function, vm: h.vm) == TDX.Status.tdiInvalidState)

        #expect(h.guestStart() == 0)
        let started = h.send(.setTDIState, run)
        #expect(started.errno == nil && started.tsmCode == 0)
        #expect(h.deviceState == .run)
        #expect(h.platform.tdispState(function: h.function) == .run)
        #expect(h.platform.tdgDMARAccept(function: h.function, vm: h.vm) == 0)
        #expect(h.platform.tdiInfo(function: h.function)?.dmarAccepted == true)
        #expect(h.platform.tdiInfo(function: h.function)?.acceptedPages.count == 8)

        h.platform.unbind(function: h.function)
        #expect(h.deviceState == .configUnlocked)
        #expect(h.platform.tdiInfo(function: h.function) == nil)
    }

    @Test("envelope: foreign tvm_arch, kernel pointer, unknown and SEV ops → EINVAL",
          arguments: [(UInt32(5), TSMArch.cca, true), (5, .sev, true), (5, .tdx, false),
                      (0, .tdx, true), (6, .tdx, true), (7, .tdx, true), (9, .tdx, true)])
    func envelope(op: UInt32, arch: TSMArch, user: Bool) throws {
        let h = try Harness(TDXPlatform())
        _ = h.guestStart()
        let before = TDXSnapshot(h)
        let outcome = h.send(rawOp: op, run, arch: arch, user: user)
        #expect(outcome.errno == .invalidArgument && outcome.tsmCode == 0)
        #expect(TDXSnapshot(h) == before)
    }

    @Test("exact request lengths → EINVAL; copy-in fault → EFAULT; no TDI → ENXIO",
          arguments: [(GuestOp.readObject, 16), (.regenObject, 24), (.objectInfo, 4), (.validateMMIO, 24), (.setTDIState, 4)])
    func lengths(op: GuestOp, size: Int) throws {
        let h = try Harness(TDXPlatform())
        let before = TDXSnapshot(h)
        for length in [0, size - 1, size + 1] {
            #expect(h.send(op, [UInt8](repeating: 0, count: length), responseLength: 4096).errno == .invalidArgument)
        }
        #expect(h.send(op, [UInt8](repeating: 0, count: size), responseLength: 4096, requestAddress: Address.unmapped).errno == .badAddress)
        #expect(TDXSnapshot(h) == before)
        let unbound = try Harness(TDXPlatform(), bind: false)
        #expect(unbound.send(op, [UInt8](repeating: 0, count: size), responseLength: 4096).errno == .noSuchAddressOrDevice)
    }

    @Test("object ops: unknown types → EINVAL, short buffer → E2BIG, OBJECT_INFO resp_len < 4 → EINVAL, not tunnelled → EINVAL")
    func objectErrors() throws {
        let h = try Harness(TDXPlatform())
        for type: UInt32 in [0, 3, 0xFFFF_FFFF] {
            #expect(h.send(.readObject, TDX.ReadObjectRequest(objectType: type).encoded(), responseLength: 4096).errno == .invalidArgument)
            #expect(h.send(.objectInfo, TDX.ObjectInfoRequest(objectType: type).encoded(), responseLength: 4).errno == .invalidArgument)
        }
        #expect(h.send(.readObject, TDX.ReadObjectRequest(objectType: 1).encoded(), responseLength: h.report.count - 1).errno == .argListTooLong)
        #expect(h.send(.objectInfo, TDX.ObjectInfoRequest(objectType: 1).encoded(), responseLength: 3).errno == .invalidArgument)
        #expect(h.send(.readObject, TDX.ReadObjectRequest(objectType: 1).encoded(), responseLength: h.report.count,
                       responseAddress: Address.unmapped).errno == .badAddress)
        var profile = FirmwareProfile.defaults(for: .tdx)
        profile.objectOpsTunnelled = false
        let closed = try Harness(TDXPlatform(profile: profile))
        #expect(closed.send(.readObject, TDX.ReadObjectRequest(objectType: 1).encoded(), responseLength: 4096).errno == .invalidArgument)
    }

    @Test("REGEN_OBJECT: fresh nonce re-fetches; stale nonce, other types → EINVAL; bad pointer → EFAULT")
    func regen() throws {
        let h = try Harness(TDXPlatform())
        h.mapNonce(3)
        let payload = TDX.RegenObjectRequest(objectType: 1, nonceAddress: Address.nonce).encoded()
        let reports = h.tdispRequests(0x84)
        #expect(h.send(.regenObject, payload).errno == nil)
        #expect(h.tdispRequests(0x84) > reports)
        let before = TDXSnapshot(h)
        #expect(h.send(.regenObject, payload).errno == .invalidArgument)
        #expect(h.send(.regenObject, TDX.RegenObjectRequest(objectType: 2, nonceAddress: Address.nonce).encoded()).errno == .invalidArgument)
        #expect(h.send(.regenObject, TDX.RegenObjectRequest(objectType: 1, nonceAddress: Address.unmapped).encoded()).errno == .badAddress)
        #expect(TDXSnapshot(h) == before)
    }

    @Test("REGEN_OBJECT faults: SEAMCALL status → EIO/EBUSY with tsm_code; silent device → EIO, DEVICE_ERROR, TDI ERROR")
    func regenFaults() throws {
        let h = try Harness(TDXPlatform())
        h.mapNonce(4)
        let payload = TDX.RegenObjectRequest(objectType: 1, nonceAddress: Address.nonce).encoded()
        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(TDX.SEAMCALL.tdiGetReport), .firmwareStatus(TDX.Status.operandBusy))]))
        let busy = h.send(.regenObject, payload)
        #expect(busy.errno == .resourceBusy && busy.tsmCode == 0x8000_0200_0000_0000)
        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x84), .deviceSilent)]))
        let silent = h.send(.regenObject, payload)
        #expect(silent.errno == .ioError && silent.tsmCode == TDX.Status.tdiDeviceError)
        #expect(h.platform.tdiInfo(function: h.function)?.state == .error)
    }

    @Test("VALIDATE_MMIO: unaligned, empty, outside-report, overlapping → EINVAL with INVALID_OPERAND",
          arguments: [
            (UInt64(0x9000_0800), UInt64(0x9000_8000), rangeThreePA),
            (0x9000_0000, 0x9000_0000, rangeThreePA),
            (0x9000_0000, 0x9000_1000, rangeThreePA + 0x10),
            (0x9000_0000, 0x9000_9000, rangeThreePA),
            (0x9000_0000, 0x9000_1000, 0x1_0000_0000),
            (0x9100_0000, 0x9100_1000, rangeThreePA + 0x1000),  // PA overlaps the first mapping
            (0x8FFF_F000, 0x9000_1000, rangeThreePA + 0x4000),  // GPA overlaps the first mapping
          ])
    func validateRejects(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) throws {
        let h = try Harness(TDXPlatform())
        #expect(h.send(.validateMMIO, validate(0x9000_0000, 0x9000_2000, rangeThreePA)).errno == nil)
        let before = TDXSnapshot(h)
        let outcome = h.send(.validateMMIO, validate(gpaBase, gpaTop, paBase))
        #expect(outcome.errno == .invalidArgument)
        #expect(outcome.tsmCode == TDX.Status.invalidOperand)
        #expect(TDXSnapshot(h) == before)
    }

    @Test("VALIDATE_MMIO in a wrong TDI state → EINVAL, TDI_INVALID_STATE; injected map failure → EIO with status")
    func validateStateAndFaults() throws {
        let h = try Harness(TDXPlatform())
        h.platform.setFaultPlan(FaultPlan([.init(.nthFirmwareCall(1), .firmwareStatus(TDX.Status.tdiInvalidMetadata))]))
        let injected = h.send(.validateMMIO, validate(0x9000_0000, 0x9000_1000, rangeThreePA))
        #expect(injected.errno == .ioError && injected.tsmCode == 0xC000_0F41_0000_0000)
        #expect(h.platform.tdiInfo(function: h.function)?.mappings == [])
        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x86), .tdispError(code: 0x0004))]))
        _ = h.guestStart()
        #expect(h.send(.setTDIState, run).errno == .ioError)
        let wrong = h.send(.validateMMIO, validate(0x9000_0000, 0x9000_1000, rangeThreePA))
        #expect(wrong.errno == .invalidArgument && wrong.tsmCode == TDX.Status.tdiInvalidState)
    }

    @Test("SET_TDI_STATE: only RUN (EINVAL), only after the guest's TDG.TDI.START with the current session (EPERM)")
    func startGate() throws {
        let h = try Harness(TDXPlatform())
        for value: UInt32 in [0, 1, 3] {
            let outcome = h.send(.setTDIState, TDX.SetTDIStateRequest(state: value).encoded())
            #expect(outcome.errno == .invalidArgument && outcome.tsmCode == 0)
        }
        let before = TDXSnapshot(h)
        let ungated = h.send(.setTDIState, run)
        #expect(ungated.errno == .notPermitted && ungated.tsmCode == TDX.Status.tdiInvalidState)
        #expect(TDXSnapshot(h) == before)
        // A stale session is refused by the module and authorises nothing.
        #expect(h.platform.tdgTDIStart(function: h.function, vm: h.vm, bindSessionID: h.session &- 1) == TDX.Status.invalidOperand)
        #expect(h.platform.tdgTDIStart(function: h.function, vm: 0xBAD, bindSessionID: h.session) == TDX.Status.tdiNotPresent)
        #expect(h.send(.setTDIState, run).errno == .notPermitted)
        #expect(h.guestStart() == 0)
        #expect(h.send(.setTDIState, run).errno == nil)
        // RUN only from CONFIG_LOCKED.
        let again = h.send(.setTDIState, run)
        #expect(again.errno == .invalidArgument && again.tsmCode == TDX.Status.tdiInvalidState)
        #expect(h.guestStart() == TDX.Status.tdiInvalidState)
    }

    @Test("a start authorised for an old bind session does not carry over to a new bind")
    func staleSessionAfterRebind() throws {
        let h = try Harness(TDXPlatform())
        #expect(h.guestStart() == 0)
        h.platform.unbind(function: h.function)
        try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID)
        #expect(h.send(.setTDIState, run).errno == .notPermitted)
        #expect(h.deviceState == .configLocked)
    }

    @Test("SET_TDI_STATE faults: SEAMCALL status → EIO with it; TDISP error → EIO, DEVICE_ERROR, TDI ERROR")
    func startFaults() throws {
        let h = try Harness(TDXPlatform())
        _ = h.guestStart()
        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(TDX.SEAMCALL.tdiStart), .firmwareStatus(TDX.Status.tdiNotPresent))]))
        let before = TDXSnapshot(h)
        let module = h.send(.setTDIState, run)
        #expect(module.errno == .ioError && module.tsmCode == TDX.Status.tdiNotPresent)
        #expect(TDXSnapshot(h) == before)
        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x86), .tdispError(code: 0x0102))]))
        let device = h.send(.setTDIState, run)
        #expect(device.errno == .ioError && device.tsmCode == TDX.Status.tdiDeviceError)
        #expect(h.platform.tdispState(function: h.function) == .error)
        #expect(h.deviceState == .configLocked)
    }

    @Test("connect and bind faults",
          arguments: [
            (FaultPlan.Rule(.firmwareCall(TDX.SEAMCALL.tdiCreate), .firmwareStatus(TDX.Status.operandBusy)), Errno.resourceBusy),
            (FaultPlan.Rule(.firmwareCall(TDX.SEAMCALL.tdiBind), .firmwareStatus(TDX.Status.invalidOperand)), .ioError),
            (FaultPlan.Rule(.tdispRequest(0x83), .tdispError(code: 0x0001)), .ioError),
          ])
    func bindFaults(rule: FaultPlan.Rule, errno: Errno) throws {
        let h = try Harness(TDXPlatform(), bind: false)
        h.platform.setFaultPlan(FaultPlan([rule]))
        #expect(throws: errno) { try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID) }
        #expect(h.platform.tdiInfo(function: h.function) == nil)
        #expect(h.deviceState == .configUnlocked)
        let platform = TDXPlatform()
        platform.setFaultPlan(FaultPlan([.init(.firmwareCall(TDX.SEAMCALL.spdmConnect), .firmwareStatus(TDX.Status.operandBusy))]))
        #expect(throws: Errno.resourceBusy) { try platform.connect(dsm: h.dsmFunction, transport: h.dsm, evidence: DeviceEvidence()) }
        #expect(!platform.isConnected(dsm: h.dsmFunction))
    }
}

@Suite("TDX TDCM service (EMU-TDX-1, EMU-TDX-3)")
struct TDCMTests {
    private func call(_ h: Harness<TDXPlatform>, _ operation: TDX.TDCMOperation, vm: UInt64? = nil) -> TDX.TDCMBuffer? {
        h.platform.serviceTDCM(function: h.function, dsm: h.dsmFunction, vm: vm ?? h.vm,
                               request: TDX.TDCMBuffer(operation: operation.rawValue).encoded())
    }

    @Test("read-only operations complete with their data")
    func readOnly() throws {
        let h = try Harness(TDXPlatform())
        #expect(call(h, .checkTEEIOSupport)?.data == [1])
        #expect(call(h, .checkTEEIOSupport)?.status == TDX.TDCMStatus.completed)
        #expect(call(h, .getDeviceInfo)?.data.count == 28)
        #expect(call(h, .getTDIReport)?.data == h.report)
        #expect(call(h, .getTDIState)?.data == [1])
        #expect(call(h, .bind) == nil && call(h, .startTDI) == nil && call(h, .unbind) == nil)
        #expect(h.platform.serviceTDCM(function: h.function, dsm: h.dsmFunction, vm: h.vm, request: [1, 0, 1]) == nil)
        #expect(h.platform.serviceTDCM(function: h.function, dsm: h.dsmFunction, vm: h.vm,
                                       request: TDX.TDCMBuffer(operation: 99).encoded()) == nil)
    }

    @Test("errors: no TDI for this TD → INVALID_STATE; a silent device → TDISP_MESSAGE, tsm path untouched")
    func errors() throws {
        let h = try Harness(TDXPlatform())
        let foreign = try #require(call(h, .getTDIReport, vm: 0xBAD))
        #expect(foreign.status == TDX.TDCMStatus.error && foreign.error == TDX.TDCMError.invalidState.rawValue)
        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x85), .deviceSilent)]))
        let silent = try #require(call(h, .getTDIState))
        #expect(silent.status == TDX.TDCMStatus.error && silent.error == TDX.TDCMError.tdispMessage.rawValue)
        #expect(h.platform.tdispState(function: h.function) == .configLocked)
        let unconnected = TDXPlatform()
        let result = unconnected.serviceTDCM(function: h.function, dsm: h.dsmFunction, vm: h.vm,
                                             request: TDX.TDCMBuffer(operation: 1).encoded())
        #expect(result?.data == [0])
    }
}
