import Device
import Firmware
import SystemPackage
import TDISP
import Testing
import Wire

/// A snapshot of everything a rejected CCA request must leave alone.
private struct CCASnapshot: Equatable {
    var vdev: CCAPlatform.VDEVInfo?
    var report: [UInt8]?
    var device: TDISnapshot?
    var deviceRequests: Int

    init(_ h: Harness<CCAPlatform>) {
        vdev = h.platform.vdevInfo(function: h.function)
        report = h.platform.cachedObject(function: h.function, .interfaceReport)
        device = h.deviceSnapshot
        deviceRequests = h.tdispRequests
    }
}

private func readObject(_ type: UInt32, offset: UInt64 = 0) -> [UInt8] {
    CCA.ReadObjectRequest(objectType: type, offset: offset).encoded()
}

private func validate(_ gpaBase: UInt64, _ gpaTop: UInt64, _ paBase: UInt64) -> [UInt8] {
    CCA.ValidateMMIORequest(gpaBase: gpaBase, gpaTop: gpaTop, paBase: paBase).encoded()
}

/// Range 0 of the test TDI (BAR 0): PA 0x0800_0000..0x0800_4000, 4 pages.
private let rangeTwoPA: UInt64 = 0x0800_0000

@Suite("CCA RMM and host driver")
struct CCATests {
    @Test("bind: VDEV create, communicate, lock over TDISP; cache filled; states agree")
    func bindFillsCache() throws {
        let h = try Harness(CCAPlatform())
        #expect(h.platform.pdevState(dsm: h.dsmFunction) == .ready)
        let info = try #require(h.platform.vdevInfo(function: h.function))
        #expect(info.state == .locked)
        #expect(info.vdevID == h.guestID)
        #expect(info.reportGeneration == 1)
        #expect(h.deviceState == .configLocked)
        #expect(h.platform.tdispState(function: h.function) == h.deviceState)
        #expect(h.platform.cachedObject(function: h.function, .interfaceReport) == h.report)
        #expect(h.report.count == 20 + 3 * 16 + 20)
        #expect(h.platform.cachedObject(function: h.function, .certificateChain) == Harness<CCAPlatform>.evidence.certificateChain)
        #expect(h.platform.cachedObject(function: h.function, .measurements) == Harness<CCAPlatform>.evidence.measurements)
        #expect(h.platform.cachedObject(function: h.function, .vca) == Harness<CCAPlatform>.evidence.vca)
        let log = h.platform.callLog
        let create = try #require(log.firstIndex(of: CCA.RMI.vdevCreate))
        let lock = try #require(log.firstIndex(of: CCA.RMI.vdevLock))
        let tdispLock = try #require(log.firstIndex(of: "TDISP 0x83"))
        #expect(create < lock && lock < tdispLock)
        #expect(log.contains("TDISP 0x84"))
    }

    @Test("walk to RUN through guest requests and back with unbind")
    func walkToRun() throws {
        let h = try Harness(CCAPlatform())
        let info = h.send(.objectInfo, CCA.ObjectInfoRequest(objectType: 3).encoded(), responseLength: 16)
        #expect(info.errno == nil)
        #expect(info.residue == 12)
        #expect(info.tsmCode == 0)
        #expect(try CCA.ObjectInfoResponse(decoding: info.response).objectSize == UInt32(h.report.count))

        let read = h.send(.readObject, readObject(3), responseLength: 256)
        #expect(read.errno == nil)
        #expect(read.residue == 256 - h.report.count)
        #expect(read.response == h.report)
        #expect(h.memory.region(Address.response).map { Array($0.prefix(h.report.count)) } == h.report)

        let map = h.send(.validateMMIO, validate(0x4000_0000, 0x4000_4000, rangeTwoPA))
        #expect(map.errno == nil && map.residue == 0 && map.tsmCode == 0)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings ==
                [CCAPlatform.Mapping(gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: rangeTwoPA)])

        let run = h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(run.errno == nil && run.tsmCode == 0)
        #expect(h.platform.vdevInfo(function: h.function)?.state == .started)
        #expect(h.deviceState == .run)
        #expect(h.platform.tdispState(function: h.function) == .run)

        h.platform.unbind(function: h.function)
        #expect(h.platform.vdevInfo(function: h.function) == nil)
        #expect(h.deviceState == .configUnlocked)
        #expect(h.platform.callLog.suffix(5).contains(CCA.RMI.vdevDestroy))
    }

    @Test("READ_OBJECT makes no RMM call and no device request")
    func readObjectUsesCache() throws {
        let h = try Harness(CCAPlatform())
        let log = h.platform.callLog
        let before = h.tdispRequests
        #expect(h.send(.readObject, readObject(1), responseLength: 4096).response == Harness<CCAPlatform>.evidence.certificateChain)
        #expect(h.send(.readObject, readObject(2), responseLength: 4096).response == Harness<CCAPlatform>.evidence.measurements)
        #expect(h.send(.readObject, readObject(4), responseLength: 4096).response == Harness<CCAPlatform>.evidence.vca)
        #expect(h.platform.callLog == log)
        #expect(h.tdispRequests == before)
    }

    @Test("envelope: foreign tvm_arch, kernel pointer, unknown and SEV ops → EINVAL, nothing reaches the device",
          arguments: [
            (UInt32(5), TSMArch.sev, true), (5, .tdx, true), (5, .cca, false),
            (0, .cca, true), (8, .cca, true), (6, .cca, true), (7, .cca, true),
          ])
    func envelope(op: UInt32, arch: TSMArch, user: Bool) throws {
        let h = try Harness(CCAPlatform())
        let before = CCASnapshot(h)
        let outcome = h.send(rawOp: op, CCA.SetTDIStateRequest(state: 2).encoded(), arch: arch, user: user)
        #expect(outcome.errno == .invalidArgument)
        #expect(outcome.tsmCode == 0)
        #expect(outcome.returnValue == -22)
        #expect(CCASnapshot(h) == before)
    }

    @Test("objectOpsTunnelled = false rejects ops 1-3 with EINVAL", arguments: [GuestOp.readObject, .regenObject, .objectInfo])
    func objectOpsNotTunnelled(op: GuestOp) throws {
        var profile = FirmwareProfile.defaults(for: .cca)
        profile.objectOpsTunnelled = false
        let h = try Harness(CCAPlatform(profile: profile))
        h.mapNonce(1)
        let payloads: [GuestOp: [UInt8]] = [
            .readObject: readObject(3), .objectInfo: CCA.ObjectInfoRequest(objectType: 3).encoded(),
            .regenObject: CCA.RegenObjectRequest(objectType: 3, nonceAddress: Address.nonce).encoded(),
        ]
        #expect(h.send(op, payloads[op] ?? [], responseLength: 4096).errno == .invalidArgument)
    }

    @Test("exact request lengths: one byte short or long → EINVAL",
          arguments: [(GuestOp.readObject, 16), (.regenObject, 24), (.objectInfo, 4), (.validateMMIO, 24), (.setTDIState, 4)],
          [-1, 1])
    func exactLengths(opAndSize: (GuestOp, Int), delta: Int) throws {
        let (op, size) = opAndSize
        let h = try Harness(CCAPlatform())
        let before = CCASnapshot(h)
        let outcome = h.send(op, [UInt8](repeating: 0, count: size + delta), responseLength: 4096)
        #expect(outcome.errno == .invalidArgument)
        #expect(outcome.tsmCode == 0)
        #expect(CCASnapshot(h) == before)
    }

    @Test("copy-in fault → EFAULT; no VDEV → ENXIO")
    func copyFaultAndUnbound() throws {
        let h = try Harness(CCAPlatform())
        let fault = h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded(), requestAddress: Address.unmapped)
        #expect(fault.errno == .badAddress)
        #expect(h.deviceState == .configLocked)
        let unbound = try Harness(CCAPlatform(), bind: false)
        #expect(unbound.send(.readObject, readObject(3), responseLength: 4096).errno == .noSuchAddressOrDevice)
    }

    @Test("READ_OBJECT: unknown types → EINVAL", arguments: [UInt32(0), 5, 0x100, 0xFFFF_FFFF])
    func readUnknownType(type: UInt32) throws {
        let h = try Harness(CCAPlatform())
        #expect(h.send(.readObject, readObject(type), responseLength: 4096).errno == .invalidArgument)
    }

    @Test("READ_OBJECT: short buffer → E2BIG, copy-out fault → EIO")
    func readBufferErrors() throws {
        let h = try Harness(CCAPlatform())
        let size = h.report.count
        #expect(h.send(.readObject, readObject(3), responseLength: size - 1).errno == .argListTooLong)
        let exact = h.send(.readObject, readObject(3), responseLength: size)
        #expect(exact.errno == nil && exact.residue == 0)
        let fault = h.send(.readObject, readObject(3), responseLength: size, responseAddress: Address.unmapped)
        #expect(fault.errno == .ioError)
        #expect(fault.tsmCode == 0)
    }

    @Test("ACS numbering (EMU-CCA-1 switch): 0 = VCA, 4 = extension evidence → EINVAL")
    func acsNumbering() throws {
        var profile = FirmwareProfile.defaults(for: .cca)
        profile.ccaObjectNumbering = .acs
        let h = try Harness(CCAPlatform(profile: profile))
        #expect(h.send(.readObject, readObject(0), responseLength: 4096).response == Harness<CCAPlatform>.evidence.vca)
        #expect(h.send(.readObject, readObject(4), responseLength: 4096).errno == .invalidArgument)
        let linux = try Harness(CCAPlatform())
        #expect(linux.send(.readObject, readObject(0), responseLength: 4096).errno == .invalidArgument)
        #expect(linux.send(.readObject, readObject(4), responseLength: 4096).response == Harness<CCAPlatform>.evidence.vca)
    }

    @Test("READ_OBJECT offset: ignored by default, honoured with EMU-CCA-4")
    func readOffset() throws {
        let h = try Harness(CCAPlatform())
        #expect(h.send(.readObject, readObject(3, offset: 16), responseLength: 4096).response == h.report)
        var profile = FirmwareProfile.defaults(for: .cca)
        profile.ccaReadObjectHonoursOffset = true
        let honoured = try Harness(CCAPlatform(profile: profile))
        let tail = honoured.send(.readObject, readObject(3, offset: 16), responseLength: 4096)
        #expect(tail.response == Array(honoured.report[16...]))
        #expect(tail.residue == 4096 - (honoured.report.count - 16))
        let past = UInt64(honoured.report.count + 1)
        #expect(honoured.send(.readObject, readObject(3, offset: past), responseLength: 4096).errno == .invalidArgument)
    }

    @Test("OBJECT_INFO: resp_len < 4 and unknown type → EINVAL")
    func objectInfoErrors() throws {
        let h = try Harness(CCAPlatform())
        #expect(h.send(.objectInfo, CCA.ObjectInfoRequest(objectType: 3).encoded(), responseLength: 3).errno == .invalidArgument)
        #expect(h.send(.objectInfo, CCA.ObjectInfoRequest(objectType: 9).encoded(), responseLength: 4).errno == .invalidArgument)
        let exact = h.send(.objectInfo, CCA.ObjectInfoRequest(objectType: 1).encoded(), responseLength: 4)
        #expect(exact.residue == 0)
        #expect(try CCA.ObjectInfoResponse(decoding: exact.response).objectSize == 700)
    }

    @Test("REGEN_OBJECT re-fetches the report with a fresh nonce; a stale nonce → EINVAL")
    func regen() throws {
        let h = try Harness(CCAPlatform())
        h.mapNonce(0xA5)
        let payload = CCA.RegenObjectRequest(objectType: 3, nonceAddress: Address.nonce).encoded()
        let reportRequests = h.tdispRequests(0x84)
        let first = h.send(.regenObject, payload)
        #expect(first.errno == nil && first.tsmCode == 0)
        let info = try #require(h.platform.vdevInfo(function: h.function))
        #expect(info.reportGeneration == 2)
        #expect(info.reportNonce == [UInt8](repeating: 0xA5, count: 32))
        #expect(h.tdispRequests(0x84) > reportRequests)
        #expect(h.platform.callLog.contains(CCA.RMI.vdevGetInterfaceReport))

        let before = CCASnapshot(h)
        #expect(h.send(.regenObject, payload).errno == .invalidArgument)
        #expect(CCASnapshot(h) == before)
        h.mapNonce(0x5A)
        #expect(h.send(.regenObject, payload).errno == nil)
        #expect(h.platform.vdevInfo(function: h.function)?.reportGeneration == 3)
    }

    @Test("REGEN_OBJECT: other types → EINVAL, bad nonce pointer → EFAULT", arguments: [UInt32(1), 2, 4, 7])
    func regenErrors(type: UInt32) throws {
        let h = try Harness(CCAPlatform())
        h.mapNonce(1)
        let before = CCASnapshot(h)
        #expect(h.send(.regenObject, CCA.RegenObjectRequest(objectType: type, nonceAddress: Address.nonce).encoded()).errno == .invalidArgument)
        #expect(h.send(.regenObject, CCA.RegenObjectRequest(objectType: 3, nonceAddress: Address.unmapped).encoded()).errno == .badAddress)
        #expect(CCASnapshot(h) == before)
    }

    @Test("REGEN_OBJECT: RMI failure → ENXIO (nothing changes); silent device → ENXIO and VDEV ERROR")
    func regenFaults() throws {
        let h = try Harness(CCAPlatform())
        h.mapNonce(7)
        let payload = CCA.RegenObjectRequest(objectType: 3, nonceAddress: Address.nonce).encoded()
        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(CCA.RMI.vdevGetInterfaceReport), .firmwareStatus(CCA.RMIStatus.errorDevice.rawValue))]))
        let before = CCASnapshot(h)
        let failed = h.send(.regenObject, payload)
        #expect(failed.errno == .noSuchAddressOrDevice)
        #expect(failed.tsmCode == 0)  // EMU-CCA-3: RMI status not exported
        #expect(CCASnapshot(h) == before)

        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x84), .deviceSilent)]))
        #expect(h.send(.regenObject, payload).errno == .noSuchAddressOrDevice)
        #expect(h.platform.vdevInfo(function: h.function)?.state == .error)
        #expect(h.platform.cachedObject(function: h.function, .interfaceReport) == h.report)
    }

    @Test("VALIDATE_MMIO rejects unaligned, empty, shared, outside-report and overlapping ranges with EINVAL",
          arguments: [
            (UInt64(0x4000_0001), UInt64(0x4000_4000), rangeTwoPA),
            (0x4000_0000, 0x4000_3FFF, rangeTwoPA),
            (0x4000_0000, 0x4000_4000, rangeTwoPA + 0x800),
            (0x4000_4000, 0x4000_4000, rangeTwoPA),
            (0x4000_4000, 0x4000_0000, rangeTwoPA),
            (UInt64(1) << 47, (UInt64(1) << 47) + 0x4000, rangeTwoPA),
            (0x4000_0000, 0x4000_5000, rangeTwoPA),
            (0x4000_0000, 0x4000_1000, 0x7000_0000),
            (0x4000_0000, 0x4000_1000, rangeTwoPA - 0x1000),
          ])
    func validateRejects(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) throws {
        let h = try Harness(CCAPlatform())
        let log = h.platform.callLog
        let before = CCASnapshot(h)
        let outcome = h.send(.validateMMIO, validate(gpaBase, gpaTop, paBase))
        #expect(outcome.errno == .invalidArgument)
        #expect(outcome.tsmCode == 0)
        #expect(CCASnapshot(h) == before)
        #expect(h.platform.callLog == log)
    }

    @Test("VALIDATE_MMIO: overlap with an existing mapping → EINVAL (EMU-CCA-2)")
    func validateOverlap() throws {
        let h = try Harness(CCAPlatform())
        #expect(h.send(.validateMMIO, validate(0x4000_0000, 0x4000_2000, rangeTwoPA)).errno == nil)
        let before = CCASnapshot(h)
        #expect(h.send(.validateMMIO, validate(0x4000_1000, 0x4000_3000, rangeTwoPA + 0x2000)).errno == .invalidArgument)
        #expect(h.send(.validateMMIO, validate(0x5000_0000, 0x5000_1000, rangeTwoPA + 0x1000)).errno == .invalidArgument)
        #expect(CCASnapshot(h) == before)
        #expect(h.send(.validateMMIO, validate(0x4000_2000, 0x4000_4000, rangeTwoPA + 0x2000)).errno == nil)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings.count == 2)
    }

    @Test("VALIDATE_MMIO faults: RTT creation → ENOMEM, RMI error → EIO, both rolled back; one RTT miss is retried")
    func validateFaults() throws {
        let h = try Harness(CCAPlatform())
        let payload = validate(0x4000_0000, 0x4000_4000, rangeTwoPA)
        let rtt = CCA.RMIStatus.errorRTT.rawValue | 2 << 8  // status 4, RTT level 2 in bits 15:8
        h.platform.setFaultPlan(FaultPlan([
            .init(.firmwareCall(CCA.RMI.devMemMap), .firmwareStatus(rtt)),
            .init(.firmwareCall(CCA.RMI.rttCreate), .firmwareStatus(CCA.RMIStatus.errorInput.rawValue)),
        ]))
        #expect(h.send(.validateMMIO, payload).errno == .noMemory)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings == [])
        #expect(h.platform.callLog.last == CCA.RMI.granuleUndelegate)

        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(CCA.RMI.devMemMap), .firmwareStatus(CCA.RMIStatus.errorInput.rawValue))]))
        let io = h.send(.validateMMIO, payload)
        #expect(io.errno == .ioError && io.tsmCode == 0)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings == [])

        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(CCA.RMI.devMemMap), .firmwareStatus(rtt))]))
        #expect(h.send(.validateMMIO, payload).errno == nil)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings.count == 1)
        #expect(h.platform.callLog.suffix(3) == [CCA.RMI.devMemMap, CCA.RMI.rttCreate, CCA.RMI.devMemMap])
    }

    @Test("SET_TDI_STATE: any state but RUN → EINVAL", arguments: [UInt32(0), 1, 3, 0xFFFF_FFFF])
    func setStateValues(value: UInt32) throws {
        let h = try Harness(CCAPlatform())
        let before = CCASnapshot(h)
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: value).encoded()).errno == .invalidArgument)
        #expect(CCASnapshot(h) == before)
    }

    @Test("SET_TDI_STATE(RUN) only from LOCKED: a second RUN → ENXIO, device untouched")
    func runOnlyFromLocked() throws {
        let h = try Harness(CCAPlatform())
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).errno == nil)
        let before = CCASnapshot(h)
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).errno == .noSuchAddressOrDevice)
        #expect(CCASnapshot(h) == before)
    }

    @Test("SET_TDI_STATE faults: RMI_VDEV_START → ENXIO (LOCKED stays); TDISP error or silence → EPROTO, VDEV ERROR",
          arguments: [
            FaultPlan.Rule(.firmwareCall(CCA.RMI.vdevStart), .firmwareStatus(CCA.RMIStatus.errorDevice.rawValue)),
            FaultPlan.Rule(.nthFirmwareCall(1), .firmwareStatus(CCA.RMIStatus.busy.rawValue)),
            FaultPlan.Rule(.tdispRequest(0x86), .tdispError(code: 0x0102)),
            FaultPlan.Rule(.tdispRequest(0x86), .deviceSilent),
          ])
    func setStateFaults(rule: FaultPlan.Rule) throws {
        let h = try Harness(CCAPlatform())
        h.platform.setFaultPlan(FaultPlan([rule]))
        let outcome = h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded())
        #expect(outcome.tsmCode == 0)
        #expect(h.deviceState == .configLocked)
        if case .firmwareStatus = rule.effect {
            #expect(outcome.errno == .noSuchAddressOrDevice)
            #expect(h.platform.vdevInfo(function: h.function)?.state == .locked)
        } else {
            #expect(outcome.errno == .protocolError)
            #expect(h.platform.vdevInfo(function: h.function)?.state == .error)
            #expect(h.platform.tdispState(function: h.function) == .error)
        }
    }

    @Test("a device that leaves the locked configuration is seen at RUN: START fails, EPROTO")
    func deviceError() throws {
        let h = try Harness(CCAPlatform())
        h.corrupt()
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).errno == .protocolError)
        #expect(h.platform.vdevInfo(function: h.function)?.state == .error)
        h.platform.unbind(function: h.function)
        #expect(h.deviceState == .configUnlocked)
    }

    @Test("bind faults leave no VDEV and an unlocked device",
          arguments: [
            (FaultPlan.Rule(.firmwareCall(CCA.RMI.vdevCreate), .firmwareStatus(CCA.RMIStatus.errorInput.rawValue)), Errno.noSuchAddressOrDevice),
            (FaultPlan.Rule(.firmwareCall(CCA.RMI.vdevLock), .firmwareStatus(CCA.RMIStatus.errorDevice.rawValue)), .noSuchAddressOrDevice),
            (FaultPlan.Rule(.tdispRequest(0x83), .tdispError(code: 0x0001)), .ioError),
            (FaultPlan.Rule(.tdispRequest(0x84), .tdispError(code: 0x0005)), .ioError),
            (FaultPlan.Rule(.tdispRequest(0x85), .deviceSilent), .ioError),
          ])
    func bindFaults(rule: FaultPlan.Rule, errno: Errno) throws {
        let h = try Harness(CCAPlatform(), bind: false)
        h.platform.setFaultPlan(FaultPlan([rule]))
        #expect(throws: errno) { try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID) }
        #expect(h.platform.vdevInfo(function: h.function) == nil)
        #expect(h.deviceState == .configUnlocked)
    }

    @Test("bind: no PDEV → ENXIO; device already locked → EBUSY; connect twice → EBUSY")
    func bindPreconditions() throws {
        let h = try Harness(CCAPlatform(), bind: false)
        let other = FunctionID(bus: 0x40, device: 0, function: 0)
        #expect(throws: Errno.noSuchAddressOrDevice) { try h.platform.bind(function: h.function, dsm: other, vm: 1, guestID: 1) }
        #expect(throws: Errno.resourceBusy) { try h.platform.connect(dsm: h.dsmFunction, transport: h.dsm, evidence: DeviceEvidence()) }
        _ = try h.dsm.exchange(LockInterfaceRequest(interfaceID: InterfaceID(functionID: h.function), flags: []))
        #expect(throws: Errno.resourceBusy) { try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: 1) }
        #expect(h.platform.vdevInfo(function: h.function) == nil)
    }

    @Test("disconnect unbinds every VDEV and destroys the PDEV")
    func disconnect() throws {
        let h = try Harness(CCAPlatform())
        h.platform.disconnect(dsm: h.dsmFunction)
        #expect(h.platform.pdevState(dsm: h.dsmFunction) == nil)
        #expect(h.platform.vdevInfo(function: h.function) == nil)
        #expect(h.deviceState == .configUnlocked)
    }
}

@Suite("CCA Realm RSI calls")
struct CCARSITests {
    @Test("GET_INFO digests the cached objects; DMA enable needs STARTED and unchanged nonces")
    func dmaEnable() throws {
        let h = try Harness(CCAPlatform())
        let (status, info) = h.platform.rsiVDEVGetInfo(function: h.function, vm: h.vm)
        #expect(status == 0)
        let locked = try #require(info)
        #expect(locked.state == .locked && locked.reportNonce == 1 && locked.lockNonce == 1)
        #expect(locked.reportDigest.count == 64 && locked.reportDigest != locked.vcaDigest)
        #expect(h.platform.rsiVDEVGetInfo(function: h.function, vm: 0xBAD).status == CCA.RSIStatus.errorInput.rawValue)
        // Not STARTED yet.
        #expect(h.platform.rsiVDEVDMAEnable(function: h.function, vm: h.vm, lockNonce: 1, measurementsNonce: 1, reportNonce: 1)
                == CCA.RSIStatus.errorState.rawValue)
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).errno == nil)
        // A REGEN_OBJECT after the guest read the nonces makes them stale.
        h.mapNonce(0x11)
        #expect(h.send(.regenObject, CCA.RegenObjectRequest(objectType: 3, nonceAddress: Address.nonce).encoded()).errno == nil)
        #expect(h.platform.rsiVDEVDMAEnable(function: h.function, vm: h.vm, lockNonce: 1, measurementsNonce: 1, reportNonce: 1)
                == CCA.RSIStatus.errorInput.rawValue)
        #expect(h.platform.vdevInfo(function: h.function)?.dmaEnabled == false)
        let fresh = try #require(h.platform.rsiVDEVGetInfo(function: h.function, vm: h.vm).info)
        #expect(fresh.reportNonce == 2 && fresh.state == .started)
        #expect(h.platform.rsiVDEVDMAEnable(function: h.function, vm: h.vm, lockNonce: fresh.lockNonce,
                                            measurementsNonce: fresh.measurementsNonce, reportNonce: fresh.reportNonce) == 0)
        #expect(h.platform.vdevInfo(function: h.function)?.dmaEnabled == true)
        #expect(h.platform.rsiVDEVDMADisable(function: h.function, vm: h.vm) == 0)
        #expect(h.platform.vdevInfo(function: h.function)?.dmaEnabled == false)
        // A rebind gets a new lock nonce.
        h.platform.unbind(function: h.function)
        try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID)
        #expect(h.platform.rsiVDEVGetInfo(function: h.function, vm: h.vm).info?.lockNonce == 2)
    }

    @Test("TSMFirmware.platform builds each architecture with the spec's default profile", arguments: TSMArch.allCases)
    func factory(arch: TSMArch) {
        let platform = TSMFirmware.platform(for: arch)
        #expect(platform.arch == arch)
    }
}

@Suite("CCA object cache edge cases")
struct CCACacheTests {
    @Test("an object the device did not provide is 'nothing cached': READ_OBJECT and OBJECT_INFO → EINVAL")
    func nothingCached() throws {
        let platform = CCAPlatform()
        let dsm = try DSM(functions: [dsmPF, tdiFunction], entropy: .seeded(3))
        let pf = FunctionID(bus: 0x3a, device: 0, function: 0)
        let function = FunctionID(bus: 0x3a, device: 0, function: 1)
        try platform.connect(dsm: pf, transport: dsm, evidence: DeviceEvidence(certificateChain: [1, 2, 3]))
        try platform.bind(function: function, dsm: pf, vm: 1, guestID: 1)
        let memory = MappedUserMemory()
        memory.map(Address.request, CCA.ReadObjectRequest(objectType: 2).encoded())
        memory.map(Address.response, zeroes: 64)
        let read = platform.guestRequest(function: function, GuestRequest(op: 1, tvmArch: 1, requestAddress: Address.request,
                                                                           requestLength: 16, responseAddress: Address.response,
                                                                           responseLength: 64), memory: memory)
        #expect(read.errno == .invalidArgument)
        memory.map(Address.request, CCA.ObjectInfoRequest(objectType: 1).encoded())
        let info = platform.guestRequest(function: function, GuestRequest(op: 3, tvmArch: 1, requestAddress: Address.request,
                                                                           requestLength: 4, responseAddress: Address.response,
                                                                           responseLength: 64), memory: memory)
        #expect(info.errno == nil && info.response == [3, 0, 0, 0] && info.residue == 60)
    }
}

@Suite("CCA RSI_VDEV_VALIDATE_MAPPING")
struct CCAValidateMappingTests {
    @Test("the Realm validates exactly the range the host mapped; anything else is ERROR_INPUT")
    func validateMapping() throws {
        let h = try Harness(CCAPlatform())
        let pa: UInt64 = 0x0800_0000
        #expect(h.send(.validateMMIO, CCA.ValidateMMIORequest(gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: pa).encoded()).errno == nil)
        let input = CCA.RSIStatus.errorInput.rawValue
        #expect(h.platform.rsiVDEVValidateMapping(function: h.function, vm: h.vm, gpaBase: 0x4000_0000, gpaTop: 0x4000_2000, paBase: pa) == input)
        #expect(h.platform.rsiVDEVValidateMapping(function: h.function, vm: h.vm, gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: pa + 0x1000) == input)
        #expect(h.platform.rsiVDEVValidateMapping(function: h.function, vm: 0xBAD, gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: pa) == input)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings.first?.validated == false)
        #expect(h.platform.rsiVDEVValidateMapping(function: h.function, vm: h.vm, gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: pa) == 0)
        #expect(h.platform.vdevInfo(function: h.function)?.mappings.first?.validated == true)
        h.corrupt()
        #expect(h.send(.setTDIState, CCA.SetTDIStateRequest(state: 2).encoded()).errno == .protocolError)
        #expect(h.platform.rsiVDEVValidateMapping(function: h.function, vm: h.vm, gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: pa)
                == CCA.RSIStatus.errorState.rawValue)
    }
}
