import Device
import Firmware
import SystemPackage
import TDISP
import Testing
import Wire

private struct SEVSnapshot: Equatable {
    var tdi: SEVPlatform.TDIInfo?
    var sequence: UInt64
    var device: TDISnapshot?
    var deviceRequests: Int
    init(_ h: Harness<SEVPlatform>) {
        tdi = h.platform.tdiInfo(function: h.function)
        sequence = h.platform.nextSequenceNumber(vm: h.vm)
        device = h.deviceSnapshot
        deviceRequests = h.tdispRequests
    }
}

/// Guest address the tests validate range 0 (BAR 0: 4 pages, IS_MEM_ATTR_UPDATABLE) at.
private let guestMMIO: UInt64 = 0x8_0000_0000

extension Harness where Platform == SEVPlatform {
    var tdiID: UInt64 { platform.tdiID(function: function) ?? 0 }

    /// An EMU-SEV-2 message with the platform's expected sequence number unless `seqno` is given.
    func message(_ type: UInt8, _ body: [UInt8], seqno: UInt64? = nil) -> [UInt8] {
        SEV.GuestMessage(sequenceNumber: seqno ?? platform.nextSequenceNumber(vm: vm), messageType: type, body: body).encoded()
    }

    func validate(base: UInt64 = guestMMIO, pages: UInt32 = 4, offset: UInt32 = 0, rangeID: UInt16 = 0,
                  validated: Bool = true, force: Bool = false, tdi: UInt64? = nil, seqno: UInt64? = nil) -> GuestRequestOutcome {
        let body = SEV.MMIOValidateRequest(tdiID: tdi ?? tdiID, subrangeBase: base, subrangePageCount: pages, rangeOffset: offset,
                                           validated: validated, forceValidated: force, rangeID: rangeID).encoded()
        return send(.validateMMIO, message(SEV.TIOMessage.mmioValidate.requestType(platform.profile.sevTIOMessageNumbering), body, seqno: seqno),
                    responseLength: 4096)
    }

    func validateStatus(_ outcome: GuestRequestOutcome) -> UInt16? {
        guard outcome.errno == nil, let message = try? SEV.GuestMessage(decoding: outcome.response),
              let body = try? SEV.MMIOValidateResponse(decoding: message.body) else { return nil }
        return body.status
    }

    func sdte(_ op: GuestOp, _ entry: [UInt8], tdi: UInt64? = nil) -> GuestRequestOutcome {
        let body = SEV.SDTEWriteRequest(tdiID: tdi ?? tdiID, sdte: entry).encoded()
        return send(op, message(25, body), responseLength: 112)
    }

    func sdteStatus(_ outcome: GuestRequestOutcome) -> UInt16? {
        guard outcome.errno == nil, let message = try? SEV.GuestMessage(decoding: outcome.response),
              let body = try? SEV.SDTEWriteResponse(decoding: message.body) else { return nil }
        return body.status
    }

    func setState(_ value: UInt8) -> GuestRequestOutcome { send(.setTDIState, [value]) }
}

@Suite("SEV-TIO PSP and host driver")
struct SEVTests {
    @Test("bind: TDI_CREATE + TDI_BIND lock the device; fence up; firmware and DSM agree")
    func bind() throws {
        let h = try Harness(SEVPlatform())
        let info = try #require(h.platform.tdiInfo(function: h.function))
        #expect(info.state == .configLocked)
        #expect(info.fenceUp)
        #expect(info.tdiID == 1)
        #expect(h.deviceState == .configLocked)
        #expect(h.platform.callLog.prefix(2) == [SEV.PSPCommand.devCreate, SEV.PSPCommand.devConnect])
        #expect(h.platform.callLog.contains(SEV.PSPCommand.tdiBind))
    }

    @Test("walk: RUN, validate MMIO, enable and disable DMA, back to CONFIG_UNLOCKED")
    func walk() throws {
        let h = try Harness(SEVPlatform())
        let run = h.setState(1)
        #expect(run.errno == nil && run.tsmCode == 0 && run.residue == 0)
        #expect(h.deviceState == .run)
        #expect(h.platform.tdiInfo(function: h.function)?.fenceUp == false)
        #expect(h.platform.tdispState(function: h.function) == .run)

        let validate = h.validate()
        #expect(validate.errno == nil && validate.tsmCode == 0)
        #expect(validate.residue == 4096 - 144)
        let message = try SEV.GuestMessage(decoding: validate.response)
        #expect(message.header.messageType == 22)
        #expect(message.header.sequenceNumber == 2)
        #expect(message.header.messageVersion == 2)
        let body = try SEV.MMIOValidateResponse(decoding: message.body)
        #expect(body.status == 0 && body.changed && body.rangeID == 0 && body.tdiID == 1)
        #expect(h.platform.tdiInfo(function: h.function)?.validatedPages ==
                Set([guestMMIO, guestMMIO + 0x1000, guestMMIO + 0x2000, guestMMIO + 0x3000]))
        #expect(h.platform.nextSequenceNumber(vm: h.vm) == 3)

        let enable = h.sdte(.sevEnableDMA, SEV.SDTEWriteRequest.validSDTE(vtom: 1 << 40))
        #expect(h.sdteStatus(enable) == 0)
        #expect(enable.residue == 0)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == true)

        let disable = h.sdte(.sevDisableDMA, [UInt8](repeating: 0, count: 64))
        #expect(h.sdteStatus(disable) == 0)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == false)  // EMU-SEV-4

        #expect(h.setState(0).errno == nil)
        #expect(h.deviceState == .configUnlocked)
        #expect(h.platform.tdiInfo(function: h.function)?.state == .configUnlocked)
        #expect(h.platform.tdiInfo(function: h.function)?.validatedPages == [])
        h.platform.unbind(function: h.function)
        #expect(h.platform.tdiInfo(function: h.function) == nil)
    }

    @Test("envelope: foreign tvm_arch, kernel pointer, unknown op and object ops (EMU-SEV-1) → EINVAL",
          arguments: [(UInt32(5), TSMArch.cca, true), (5, .tdx, true), (5, .sev, false), (1, .sev, true),
                      (2, .sev, true), (3, .sev, true), (0, .sev, true), (8, .sev, true)])
    func envelope(op: UInt32, arch: TSMArch, user: Bool) throws {
        var profile = FirmwareProfile.defaults(for: .sev)
        profile.objectOpsTunnelled = true  // EMU-SEV-1 holds even when the kernel lets them through
        let h = try Harness(SEVPlatform(profile: profile))
        let before = SEVSnapshot(h)
        let outcome = h.send(rawOp: op, [1], arch: arch, user: user)
        #expect(outcome.errno == .invalidArgument && outcome.tsmCode == 0)
        #expect(SEVSnapshot(h) == before)
    }

    @Test("SET_TDI_STATE: byte payload only, resp_len 0 only", arguments: [0, 2, 4])
    func setStateLength(length: Int) throws {
        let h = try Harness(SEVPlatform())
        let before = SEVSnapshot(h)
        #expect(h.send(.setTDIState, [UInt8](repeating: 1, count: length)).errno == .invalidArgument)
        #expect(h.send(.setTDIState, [1], responseLength: 1).errno == .invalidArgument)
        #expect(SEVSnapshot(h) == before)
    }

    @Test("SET_TDI_STATE with the u32 payload profile (EMU-SEV-3)")
    func setStateU32() throws {
        var profile = FirmwareProfile.defaults(for: .sev)
        profile.sevSetStatePayload = .u32
        let h = try Harness(SEVPlatform(profile: profile))
        #expect(h.send(.setTDIState, [1]).errno == .invalidArgument)
        #expect(h.send(.setTDIState, SEV.SetTDIStateRequest(value: 1).encoded(payload: .u32)).errno == nil)
        #expect(h.deviceState == .run)
    }

    @Test("SET_TDI_STATE(RUN) needs CONFIG_LOCKED (EFAULT) and is idempotent in RUN")
    func runPreconditions() throws {
        let h = try Harness(SEVPlatform())
        #expect(h.setState(1).errno == nil)
        let starts = h.tdispRequests(0x86)
        #expect(h.setState(1).errno == nil)
        #expect(h.tdispRequests(0x86) == starts)
        #expect(h.setState(0).errno == nil)
        let before = h.platform.tdiInfo(function: h.function)
        let outcome = h.setState(1)
        #expect(outcome.errno == .badAddress && outcome.tsmCode == 0)
        #expect(h.platform.tdiInfo(function: h.function) == before)
        #expect(h.deviceState == .configUnlocked)
    }

    @Test("SET_TDI_STATE faults: PSP status → EIO with that tsm_code; DSM failure → EIO, 0x33, TDI ERROR")
    func setStateFaults() throws {
        let h = try Harness(SEVPlatform())
        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(SEV.PSPCommand.tdiBind), .firmwareStatus(SEV.PSPStatus.invalidTDIState))]))
        let before = SEVSnapshot(h)
        let psp = h.setState(1)
        #expect(psp.errno == .ioError && psp.tsmCode == 0x3C)
        #expect(SEVSnapshot(h).tdi == before.tdi)
        #expect(h.deviceState == .configLocked)

        h.platform.setFaultPlan(FaultPlan([.init(.tdispRequest(0x86), .tdispError(code: 0x0102))]))
        let device = h.setState(1)
        #expect(device.errno == .ioError && device.tsmCode == 0x33)
        #expect(h.platform.tdiInfo(function: h.function)?.state == .error)
        #expect(h.deviceState == .configLocked)
        #expect(h.platform.tdiInfo(function: h.function)?.fenceUp == true)
    }

    @Test("guest message header checks → EINVAL, sequence number not consumed",
          arguments: ["type", "version", "hdr_sz", "msg_sz", "short", "long", "resp_len", "tdi_info"])
    func headerChecks(kind: String) throws {
        let h = try Harness(SEVPlatform())
        let body = SEV.MMIOValidateRequest(tdiID: 1, subrangeBase: guestMMIO, subrangePageCount: 1, rangeOffset: 0,
                                           validated: true, rangeID: 0).encoded()
        var header = SEV.MessageHeader(sequenceNumber: 1, messageType: 21, messageSize: 48)
        var tail = body
        var responseLength = 4096
        switch kind {
        case "type": header.messageType = 25
        case "version": header.messageVersion = 1
        case "hdr_sz": header.headerSize = 95
        case "msg_sz": header.messageSize = 47
        case "short": tail.removeLast()
        case "long": tail.append(0)
        case "resp_len": responseLength = 143
        default: header.messageType = 19
        }
        let before = SEVSnapshot(h)
        let outcome = h.send(.validateMMIO, header.encoded() + tail, responseLength: responseLength)
        #expect(outcome.errno == .invalidArgument && outcome.tsmCode == 0)
        #expect(SEVSnapshot(h) == before)
        #expect(h.send(.validateMMIO, Array(header.encoded().prefix(95))).errno == .invalidArgument)
    }

    @Test("replayed and skipped sequence numbers → EIO, tsm_code INVALID_PARAM, nothing changes")
    func sequenceNumbers() throws {
        let h = try Harness(SEVPlatform())
        #expect(h.validateStatus(h.validate(pages: 1)) == 0)
        let before = SEVSnapshot(h)
        for seqno: UInt64 in [1, 2, 5, 0] {
            let outcome = h.validate(base: guestMMIO + 0x1000, pages: 1, offset: 0x1000, seqno: seqno)
            #expect(outcome.errno == .ioError)
            #expect(outcome.tsmCode == SEV.PSPStatus.invalidParam)
        }
        #expect(SEVSnapshot(h) == before)
        #expect(h.validateStatus(h.validate(base: guestMMIO + 0x1000, pages: 1, offset: 0x1000, seqno: 3)) == 0)
    }

    @Test("MMIO_VALIDATE statuses (latest and legacy tables); failures change no validated bit",
          arguments: [FirmwareProfile.SEVMMIOStatusTable.latest, .legacy])
    func mmioStatuses(table: FirmwareProfile.SEVMMIOStatusTable) throws {
        var profile = FirmwareProfile.defaults(for: .sev)
        profile.sevMMIOStatusTable = table
        let h = try Harness(SEVPlatform(profile: profile))
        let legacy = table == .legacy
        #expect(h.validateStatus(h.validate(pages: 2)) == 0)
        let before = h.platform.tdiInfo(function: h.function)
        #expect(h.validateStatus(h.validate(tdi: 99)) == 1)                       // INVALID_TDI
        #expect(h.validateStatus(h.validate(rangeID: 9)) == (legacy ? 7 : 8))       // NOT_REPORTED
        #expect(h.validateStatus(h.validate(pages: 5)) == (legacy ? 8 : 9))         // OUT_OF_RANGE
        #expect(h.validateStatus(h.validate(pages: 0)) == (legacy ? 8 : 9))
        #expect(h.validateStatus(h.validate(pages: 1, offset: 0x4000)) == (legacy ? 8 : 9))
        #expect(h.validateStatus(h.validate(base: guestMMIO + 0x800, pages: 1)) == (legacy ? 8 : 10))  // NOT_4K
        #expect(h.validateStatus(h.validate(pages: 1, offset: 0x800)) == (legacy ? 8 : 10))
        #expect(h.validateStatus(h.validate(pages: 4)) == (legacy ? 4 : 5))         // NOT_UNIFORM
        #expect(h.validateStatus(h.validate(base: guestMMIO, pages: 1, offset: 0x2000)) == (legacy ? 4 : 5))  // GPA taken
        #expect(h.platform.tdiInfo(function: h.function) == before)
        // force_validated skips the uniformity check.
        #expect(h.validateStatus(h.validate(pages: 4, force: true)) == 0)
        #expect(h.platform.tdiInfo(function: h.function)?.validatedPages.count == 4)
        // Invalidate is the guest's unlock step.
        #expect(h.validateStatus(h.validate(pages: 4, validated: false)) == 0)
        #expect(h.platform.tdiInfo(function: h.function)?.validatedPages == [])
        h.platform.unbind(function: h.function)
    }

    @Test("MMIO_VALIDATE on an unbound TDI → TDI_UNBOUND")
    func mmioUnbound() throws {
        let h = try Harness(SEVPlatform())
        #expect(h.setState(0).errno == nil)
        #expect(h.validateStatus(h.validate(pages: 1)) == 2)
    }

    @Test("MMIO_CONFIG: read attributes, write only updatable ranges")
    func mmioConfig() throws {
        let h = try Harness(SEVPlatform())
        func config(_ range: UInt16, write: Bool, nonTEE: Bool = false, device: UInt16? = nil) throws -> SEV.MMIOConfigResponse {
            let body = SEV.MMIOConfigRequest(guestDeviceID: device ?? UInt16(h.guestID), rangeID: range, write: write, isNonTEEMemory: nonTEE).encoded()
            let outcome = h.send(.validateMMIO, h.message(23, body), responseLength: 112)
            #expect(outcome.errno == nil)
            return try SEV.MMIOConfigResponse(decoding: SEV.GuestMessage(decoding: outcome.response).body)
        }
        let read = try config(4, write: false)
        #expect(read.status == 0 && read.attributes == 0x4)
        #expect(try config(4, write: true).status == 4)     // COULD_NOT_CHANGE
        let written = try config(0, write: true, nonTEE: true)
        #expect(written.status == 0 && written.attributes == 0xC)
        #expect(try config(7, write: false).status == 3)    // NOT_REPORTED
        #expect(try config(0, write: false, device: 0x77).status == 1)
    }

    @Test("SDTE_WRITE: content must match the op (EINVAL); statuses INVALID_TDI and TDI_NOT_BOUND")
    func sdteChecks() throws {
        let h = try Harness(SEVPlatform())
        let before = SEVSnapshot(h)
        #expect(h.sdte(.sevEnableDMA, [UInt8](repeating: 0, count: 64)).errno == .invalidArgument)
        #expect(h.sdte(.sevDisableDMA, SEV.SDTEWriteRequest.validSDTE(vtom: 0)).errno == .invalidArgument)
        #expect(h.send(.sevEnableDMA, h.message(21, [UInt8](repeating: 0, count: 48)), responseLength: 4096).errno == .invalidArgument)
        #expect(SEVSnapshot(h) == before)
        #expect(h.sdteStatus(h.sdte(.sevEnableDMA, SEV.SDTEWriteRequest.validSDTE(vtom: 0), tdi: 42)) == 1)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == false)
        #expect(h.setState(0).errno == nil)
        #expect(h.sdteStatus(h.sdte(.sevEnableDMA, SEV.SDTEWriteRequest.validSDTE(vtom: 0))) == 2)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == false)
    }

    @Test("faults on the guest-message path: PSP status → EIO with tsm_code; IOMMU tsm_enable → EIO; nothing changes",
          arguments: [(SEV.PSPCommand.guestRequest, SEV.PSPStatus.invalidTDI, SEV.PSPStatus.invalidTDI),
                      (SEV.PSPCommand.iommuTSMEnable, 1, 0)])
    func messageFaults(call: String, status: UInt64, tsmCode: UInt64) throws {
        let h = try Harness(SEVPlatform())
        h.platform.setFaultPlan(FaultPlan([.init(.firmwareCall(call), .firmwareStatus(status))]))
        let before = SEVSnapshot(h)
        let outcome = h.sdte(.sevEnableDMA, SEV.SDTEWriteRequest.validSDTE(vtom: 0))
        #expect(outcome.errno == .ioError && outcome.tsmCode == tsmCode)
        #expect(SEVSnapshot(h) == before)
    }

    @Test("copy faults: request → EFAULT (seqno kept); response → EFAULT")
    func copyFaults() throws {
        let h = try Harness(SEVPlatform())
        let body = SEV.SDTEWriteRequest(tdiID: h.tdiID, sdte: SEV.SDTEWriteRequest.validSDTE(vtom: 0)).encoded()
        let message = h.message(25, body)
        #expect(h.send(.sevEnableDMA, message, responseLength: 112, requestAddress: Address.unmapped).errno == .badAddress)
        #expect(h.platform.nextSequenceNumber(vm: h.vm) == 1)
        #expect(h.send(.setTDIState, [1], requestAddress: Address.unmapped).errno == .badAddress)
        #expect(h.send(.sevEnableDMA, message, responseLength: 112, responseAddress: Address.unmapped).errno == .badAddress)
    }

    @Test("v0x81 message numbering and u16 guest_device_id addressing profiles")
    func profiles() throws {
        var profile = FirmwareProfile.defaults(for: .sev)
        profile.sevTIOMessageNumbering = .v0x81
        profile.sevTDIAddressing = .guestDeviceID16
        let h = try Harness(SEVPlatform(profile: profile))
        let outcome = h.validate(pages: 1, tdi: UInt64(h.guestID))
        #expect(h.validateStatus(outcome) == 0)
        #expect(try SEV.GuestMessage(decoding: outcome.response).header.messageType == 0x02)
        #expect(h.validateStatus(h.validate(base: guestMMIO + 0x1000, pages: 1, offset: 0x1000, tdi: 1)) == 1)
        let old = h.send(.validateMMIO, h.message(21, [UInt8](repeating: 0, count: 48)), responseLength: 4096)
        #expect(old.errno == .invalidArgument)
    }

    @Test("unbound function → ENXIO; bind faults leave nothing",
          arguments: [
            (FaultPlan.Rule(.firmwareCall(SEV.PSPCommand.tdiCreate), .firmwareStatus(SEV.PSPStatus.inUse)), Errno.ioError),
            (FaultPlan.Rule(.firmwareCall(SEV.PSPCommand.tdiBind), .firmwareStatus(SEV.PSPStatus.invalidDevState)), .ioError),
            (FaultPlan.Rule(.tdispRequest(0x83), .tdispError(code: 0x0004)), .ioError),
            (FaultPlan.Rule(.tdispRequest(0x84), .deviceSilent), .ioError),
          ])
    func bindFaults(rule: FaultPlan.Rule, errno: Errno) throws {
        let h = try Harness(SEVPlatform(), bind: false)
        #expect(h.setState(1).errno == .noSuchAddressOrDevice)
        h.platform.setFaultPlan(FaultPlan([rule]))
        #expect(throws: errno) { try h.platform.bind(function: h.function, dsm: h.dsmFunction, vm: h.vm, guestID: h.guestID) }
        #expect(h.platform.tdiInfo(function: h.function) == nil)
        // A device that stopped answering after LOCK cannot be walked back: it stays CONFIG_LOCKED.
        #expect(h.deviceState == (rule.effect == .deviceSilent ? .configLocked : .configUnlocked))
    }
}

@Suite("SEV-TIO v5 scope form")
struct SEVScopeTests {
    private func scope(_ h: Harness<SEVPlatform>, _ scope: UInt32, _ payload: [UInt8], responseLength: Int = 0,
                       user: Bool = true) -> GuestRequestOutcome {
        h.memory.map(Address.request, payload)
        h.memory.map(Address.response, zeroes: responseLength)
        let request = GuestRequest(op: scope, tvmArch: 0, requestAddress: Address.request, requestLength: UInt32(payload.count),
                                   responseAddress: Address.response, responseLength: UInt32(responseLength), isUserPointer: user)
        return h.platform.scopeRequest(function: h.function, scope: scope, request, memory: h.memory)
    }

    @Test("PCI_INFO with TDI_INFO returns the response length and the TDI's evidence digests")
    func tdiInfo() throws {
        let h = try Harness(SEVPlatform())
        let outcome = scope(h, 0, h.message(19, SEV.TDIInfoRequest(tdiID: h.tdiID).encoded()), responseLength: 4096)
        #expect(outcome.errno == nil && outcome.tsmCode == 0)
        #expect(outcome.residue == 96 + 192)
        let message = try SEV.GuestMessage(decoding: outcome.response)
        #expect(message.header.messageType == 20)
        let info = try SEV.TDIInfoResponse(decoding: message.body)
        #expect(info.status == SEV.TDIBindStatus.bound.rawValue && info.tdiID == 1)
        #expect(info.lockFlags == 0x5)          // NO_FW_UPDATE | LOCK_MSIX, both supported by the DSM
        #expect(info.measurementFlags == 1 && info.reportCount == 1)
        #expect(info.reportDigest.count == 48 && info.reportDigest != info.certificatesDigest)
        #expect(info.reportDigest != [UInt8](repeating: 0, count: 48))
        let wrong = scope(h, 0, h.message(19, SEV.TDIInfoRequest(tdiID: 77).encoded()), responseLength: 4096)
        #expect(try SEV.TDIInfoResponse(decoding: SEV.GuestMessage(decoding: wrong.response).body).status == SEV.TDIBindStatus.invalid.rawValue)
    }

    @Test("STATE_CHANGE runs the TDI; SDTE_WRITE under PCI_INFO enables or disables by content")
    func stateAndSDTE() throws {
        let h = try Harness(SEVPlatform())
        #expect(scope(h, 1, [1], responseLength: 1).errno == .invalidArgument)
        #expect(scope(h, 1, [1, 0, 0, 0]).errno == .invalidArgument)
        #expect(scope(h, 1, [1]).errno == nil)
        #expect(h.deviceState == .run)
        let enable = scope(h, 0, h.message(25, SEV.SDTEWriteRequest(tdiID: h.tdiID, sdte: SEV.SDTEWriteRequest.validSDTE(vtom: 0)).encoded()), responseLength: 112)
        #expect(enable.errno == nil && enable.residue == 112)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == true)
        var junk = [UInt8](repeating: 0, count: 64)
        junk[9] = 1
        #expect(scope(h, 0, h.message(25, SEV.SDTEWriteRequest(tdiID: h.tdiID, sdte: junk).encoded()), responseLength: 112).errno == .invalidArgument)
        #expect(scope(h, 0, h.message(25, SEV.SDTEWriteRequest(tdiID: h.tdiID, sdte: []).encoded()), responseLength: 112).errno == nil)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == false)
    }

    @Test("other scopes, kernel pointers → EINVAL; no TDI → ENXIO", arguments: [UInt32(2), 3, 4])
    func rejects(value: UInt32) throws {
        let h = try Harness(SEVPlatform())
        #expect(scope(h, value, [1]).errno == .invalidArgument)
        #expect(scope(h, 1, [1], user: false).errno == .invalidArgument)
        let unbound = try Harness(SEVPlatform(), bind: false)
        #expect(scope(unbound, 1, [1]).errno == .noSuchAddressOrDevice)
    }
}
