// The AMD SEV-TIO platform: the PSP model (device contexts, TDI states, ASID fence, MMIO
// validated bits, SDTE, guest-message sequence numbers) and the host `sev-dev-tsm` guest_request
// in front of it. Source: arch-backends.md §2, §6.2 (EMU-SEV-1..5).
import Crypto
import Sync
import SystemPackage
import TDISP
import UAPI
import Wire

/// The AMD SEV-TIO TSM: the host driver (`drivers/crypto/ccp/sev-dev-tsm.c`) and the PSP model
/// behind it.
///
/// `tsm_code` is the PSP status (SEV_RET_*): 0 on success, the failing command's status
/// otherwise. PSP command failures return EIO (as `sev_do_cmd` does); the TIO message status
/// (MMIO_VALIDATE_*, SDTE_WRITE_*) travels only inside the response (arch-backends.md §2.1).
public final class SEVPlatform: LinkTSMDriver {
    /// The architecture this driver serves (its own `tvm_arch`).
    public let arch = TSMArch.sev
    /// The profile switches (§6.4) this platform runs with.
    public let profile: FirmwareProfile
    private let state = Locked(State())

    /// The PSP's view of a TDI.
    public struct TDIInfo: Sendable, Equatable {
        /// Firmware tdi_id (returned by TIO_OP BIND in RCX).
        public var tdiID: UInt64
        /// The guest-visible RID (guest_device_id).
        public var guestDeviceID: UInt32
        /// The firmware's state of the TDI (VDEV state for CCA, TDISP state otherwise).
        public var state: TDIState
        /// True while the ASID fence is up (cleared by TDI_BIND with the run flag).
        public var fenceUp: Bool
        /// Validated MMIO pages: GPA of each 4 KiB page.
        public var validatedPages: Set<UInt64>
        /// The SDTE last written (64 bytes, zero when disabled).
        public var sdte: [UInt8]
        /// The host IOMMU `tsm_enabled` flag of the vDevice.
        public var tsmEnabled: Bool
    }

    struct Page: Hashable, Sendable {
        var rangeID: UInt16
        var index: UInt64
    }

    struct TDI: Sendable {
        var dsm: FunctionID
        var vm: UInt64
        var guestID: UInt32
        var tdiID: UInt64
        var state: TDIState
        var fenceUp = true
        var nonce: StartInterfaceNonce? = nil
        var report: [UInt8] = []
        var ranges: [MMIORange] = []
        var attributeOverride: [UInt16: UInt16] = [:]
        var validated: [Page: UInt64] = [:]
        var sdte = [UInt8](repeating: 0, count: 64)
        var tsmEnabled = false
    }

    struct State: Sendable {
        var faults = FaultState()
        var devices: [FunctionID: DeviceLink] = [:]
        var tdis: [FunctionID: TDI] = [:]
        /// Last sequence number used per VM (the VMPCK sequence; requests use last + 1, responses last + 2).
        var sequence: [UInt64: UInt64] = [:]
        var nextTDIID: UInt64 = 1
        var nextSession: UInt32 = 1
    }

    /// A SEV platform with `profile` (default: the spec's SEV defaults).
    public init(profile: FirmwareProfile = .defaults(for: .sev)) {
        self.profile = profile
    }

    // MARK: Fault injection and inspection

    /// Installs `plan`, resetting its counters (the call log is kept).
    public func setFaultPlan(_ plan: FaultPlan) { state.withLock { $0.faults.install(plan) } }

    /// Every PSP command and TDISP request made so far, in order.
    public var callLog: [String] { state.withLock { $0.faults.log } }

    /// True when DEV_CREATE/DEV_CONNECT are done for the DSM at `dsm`.
    public func isConnected(dsm: FunctionID) -> Bool { state.withLock { $0.devices[dsm] != nil } }

    /// The PSP's view of the TDI of `function`, nil when none.
    public func tdiInfo(function: FunctionID) -> TDIInfo? {
        state.withLock { state in
            state.tdis[function].map {
                TDIInfo(tdiID: $0.tdiID, guestDeviceID: $0.guestID, state: $0.state, fenceUp: $0.fenceUp,
                        validatedPages: Set($0.validated.values), sdte: $0.sdte, tsmEnabled: $0.tsmEnabled)
            }
        }
    }

    /// The next msg_seqno the guest of `vm` must use (1, 3, 5, …).
    public func nextSequenceNumber(vm: UInt64) -> UInt64 { state.withLock { ($0.sequence[vm] ?? 0) + 1 } }

    /// The firmware's TDISP view of the TDI (see ``LinkTSMDriver/tdispState(function:)``).
    public func tdispState(function: FunctionID) -> TDIState? { state.withLock { $0.tdis[function]?.state } }

    // MARK: Link

    /// DEV_CREATE and DEV_CONNECT (SPDM session and IDE stream, modelled), then TDISP version and
    /// capabilities. Errors: EBUSY (connected); EIO (PSP failure or DSM failure).
    public func connect(dsm: FunctionID, transport: any TDISPTransport, evidence: DeviceEvidence) throws(Errno) {
        try state.withLock { (state: inout State) throws(Errno) in
            guard state.devices[dsm] == nil else { throw .resourceBusy }
            guard state.faults.firmwareCall(SEV.PSPCommand.devCreate) == nil,
                  state.faults.firmwareCall(SEV.PSPCommand.devConnect) == nil
            else { throw .ioError }
            do {
                state.devices[dsm] = try DeviceLink.establish(dsm: dsm, transport: transport, evidence: evidence,
                                                              sessionID: state.nextSession, ideStreamID: 0, faults: &state.faults)
                state.nextSession &+= 1
            } catch {
                _ = state.faults.firmwareCall(SEV.PSPCommand.devReclaim)
                throw .ioError
            }
        }
    }

    /// Unbinds every TDI of the DSM, then DEV_DISCONNECT and DEV_RECLAIM.
    public func disconnect(dsm: FunctionID) {
        let functions = state.withLock { state in state.tdis.filter { $0.value.dsm == dsm }.map(\.key) }
        for function in functions { unbind(function: function) }
        state.withLock { state in
            guard state.devices[dsm] != nil else { return }
            _ = state.faults.firmwareCall(SEV.PSPCommand.devDisconnect)
            _ = state.faults.firmwareCall(SEV.PSPCommand.devReclaim)
            state.devices[dsm] = nil
        }
    }

    // MARK: TDI

    /// TDI_CREATE, then TDI_BIND (lock): TDISP LOCK_INTERFACE + GET_DEVICE_INTERFACE_REPORT →
    /// CONFIG_LOCKED with the ASID fence up; a fresh firmware tdi_id.
    /// Errors: ENXIO (DSM not connected); EBUSY (TDI exists, or the DSM's TDI is not
    /// CONFIG_UNLOCKED); EIO (PSP failure, or the DSM failed: TDI reclaimed, DSM stopped).
    public func bind(function: FunctionID, dsm: FunctionID, vm: UInt64, guestID: UInt32) throws(Errno) {
        try state.withLock { (state: inout State) throws(Errno) in
            guard let link = state.devices[dsm] else { throw .noSuchAddressOrDevice }
            guard state.tdis[function] == nil else { throw .resourceBusy }
            guard state.faults.firmwareCall(SEV.PSPCommand.tdiCreate) == nil else { throw .ioError }
            let deviceState: TDIState
            do {
                deviceState = try link.requester(function).state(faults: &state.faults)
            } catch {
                _ = state.faults.firmwareCall(SEV.PSPCommand.tdiReclaim)
                throw .ioError
            }
            guard deviceState == .configUnlocked else {
                _ = state.faults.firmwareCall(SEV.PSPCommand.tdiReclaim)
                throw .resourceBusy
            }
            guard state.faults.firmwareCall(SEV.PSPCommand.tdiBind) == nil else {
                _ = state.faults.firmwareCall(SEV.PSPCommand.tdiReclaim)
                throw .ioError
            }
            let locked: LockedInterface
            do {
                locked = try link.lockAndFetchReport(function, faults: &state.faults)
            } catch {
                link.stopQuietly(function, faults: &state.faults)
                _ = state.faults.firmwareCall(SEV.PSPCommand.tdiReclaim)
                throw .ioError
            }
            var tdi = TDI(dsm: dsm, vm: vm, guestID: guestID, tdiID: state.nextTDIID, state: .configLocked)
            tdi.nonce = locked.nonce
            tdi.report = locked.report
            tdi.ranges = locked.ranges
            state.nextTDIID &+= 1
            state.tdis[function] = tdi
        }
    }

    /// TDI_UNBIND (TDISP STOP_INTERFACE → CONFIG_UNLOCKED), IOMMU tsm disable, TDI_RECLAIM.
    public func unbind(function: FunctionID) {
        state.withLock { state in
            guard let tdi = state.tdis[function] else { return }
            _ = state.faults.firmwareCall(SEV.PSPCommand.tdiUnbind)
            state.devices[tdi.dsm]?.stopQuietly(function, faults: &state.faults)
            _ = state.faults.firmwareCall(SEV.PSPCommand.tdiReclaim)
            state.tdis[function] = nil
        }
    }

    /// The firmware tdi_id of `function`'s TDI (what TIO_OP BIND returns in RCX), nil when none.
    public func tdiID(function: FunctionID) -> UInt64? { state.withLock { $0.tdis[function]?.tdiID } }

    // MARK: guest_req

    /// `sev-dev-tsm` guest_request in the op API (arch-backends.md §2.2, §6.2).
    ///
    /// Checks in order: tvm_arch = SEV, user pointer, known op (ops 1-3 → EINVAL, EMU-SEV-1),
    /// a TDI exists (ENXIO), then per op:
    ///
    /// | op | request | checks → errno |
    /// |---|---|---|
    /// | VALIDATE_MMIO | 96-byte header + MMIO_VALIDATE_REQ (48) or MMIO_CONFIG_REQ (16) | req_len < 96, msg_type not for this op, msg_version ≠ 2, hdr_sz ≠ 96, msg_sz ≠ struct, req_len ≠ 96 + msg_sz, resp_len < response → EINVAL; copy-in → EFAULT; msg_seqno ≠ expected → EIO, tsm_code 0x16; PSP failure → EIO, tsm_code = status |
    /// | SET_TDI_STATE | 1 byte (or u32, EMU-SEV-3) | wrong size or resp_len ≠ 0 → EINVAL; RUN outside CONFIG_LOCKED → EFAULT; PSP failure → EIO; DSM failure → EIO, tsm_code 0x33, TDI ERROR |
    /// | SEV_ENABLE_DMA / SEV_DISABLE_DMA | header + SDTE_WRITE_REQ (80) | as VALIDATE_MMIO; SDTE V ≠ 1 (enable) or SDTE ≠ 0 (disable) → EINVAL |
    ///
    /// Success returns the residue resp_len − response size (EMU-SEV-5) and tsm_code 0.
    public func guestRequest(function: FunctionID, _ request: GuestRequest, memory: any UserMemory) -> GuestRequestOutcome {
        let op: GuestOp
        switch envelopeOp(request, arch: .sev) {
        case let .failure(errno): return .failure(errno)
        case let .success(value): op = value
        }
        if op.isObjectOp { return .failure(.invalidArgument) }  // EMU-SEV-1
        return state.withLock { state in
            guard state.tdis[function] != nil else { return .failure(.noSuchAddressOrDevice) }
            if op == .setTDIState { return setTDIState(&state, function, request, memory, payload: profile.sevSetStatePayload) }
            return tioMessage(&state, function, op, request, memory)
        }
    }

    /// The v5 scope form of the same driver (`sev-dev-tsm.c`, arch-backends.md §2.2 "PCI_INFO
    /// (scope API)"), for a kernel running the v5 uAPI (`tvm_arch` absent):
    ///
    /// | scope | meaning | request | success returns |
    /// |---|---|---|---|
    /// | 0 PCI_INFO | any TIO guest message (TDI_INFO, MMIO_VALIDATE, MMIO_CONFIG, SDTE_WRITE) through PSP GUEST_REQUEST | header + struct (EMU-SEV-2) | the response length (in ``GuestRequestOutcome/residue``) |
    /// | 1 STATE_CHANGE | SET_TDI_STATE | exactly 1 byte, resp_len 0 | 0 |
    /// | other | – | – | EINVAL |
    ///
    /// The checks and errno are those of ``guestRequest(function:_:memory:)`` for the same
    /// message; an SDTE_WRITE enables DMA when its SDTE has V = 1 and disables it when all zero.
    public func scopeRequest(function: FunctionID, scope: UInt32, _ request: GuestRequest, memory: any UserMemory) -> GuestRequestOutcome {
        guard request.isUserPointer else { return .failure(.invalidArgument) }
        return state.withLock { state in
            guard state.tdis[function] != nil else { return .failure(.noSuchAddressOrDevice) }
            switch scope {
            case 0: return tioMessage(&state, function, nil, request, memory)
            case 1: return setTDIState(&state, function, request, memory, payload: .byte)
            default: return .failure(.invalidArgument)
            }
        }
    }

    /// VALIDATE_MMIO / SEV_ENABLE_DMA / SEV_DISABLE_DMA (or, with `op` nil, the v5 PCI_INFO
    /// scope): an EMU-SEV-2 guest message through PSP TIO_GUEST_REQUEST (0xE0).
    private func tioMessage(_ state: inout State, _ function: FunctionID, _ op: GuestOp?,
                            _ request: GuestRequest, _ memory: any UserMemory) -> GuestRequestOutcome {
        guard let tdi = state.tdis[function] else { return .failure(.noSuchAddressOrDevice) }
        let numbering = profile.sevTIOMessageNumbering
        guard Int(request.requestLength) >= SEV.MessageHeader.size else { return .failure(.invalidArgument) }
        guard let bytes = copyIn(request, memory) else { return .failure(.badAddress) }
        guard let header = try? SEV.MessageHeader(decoding: Array(bytes.prefix(SEV.MessageHeader.size))),
              let message = SEV.TIOMessage.request(header.messageType, numbering)
        else { return .failure(.invalidArgument) }
        let allowed: [SEV.TIOMessage]
        switch op {
        case .validateMMIO?: allowed = [.mmioValidate, .mmioConfig]
        case .sevEnableDMA?, .sevDisableDMA?: allowed = [.sdteWrite]
        default: allowed = SEV.TIOMessage.allCases
        }
        guard allowed.contains(message), header.messageVersion == SEV.MessageHeader.tioMessageVersion,
              Int(header.headerSize) == SEV.MessageHeader.size, Int(header.messageSize) == message.requestSize,
              bytes.count == SEV.MessageHeader.size + message.requestSize
        else { return .failure(.invalidArgument) }
        let responseSize = SEV.MessageHeader.size + message.responseSize
        guard Int(request.responseLength) >= responseSize else { return .failure(.invalidArgument) }
        let body = Array(bytes[SEV.MessageHeader.size...])
        var sdteRequest: SEV.SDTEWriteRequest? = nil
        var sdteOp = op
        if message == .sdteWrite {
            guard let parsed = try? SEV.SDTEWriteRequest(decoding: body) else { return .failure(.invalidArgument) }
            switch op {
            case .sevEnableDMA?: guard parsed.valid else { return .failure(.invalidArgument) }
            case .sevDisableDMA?: guard parsed.isZero else { return .failure(.invalidArgument) }
            default:
                guard parsed.valid || parsed.isZero else { return .failure(.invalidArgument) }
                sdteOp = parsed.valid ? .sevEnableDMA : .sevDisableDMA
            }
            sdteRequest = parsed
        }
        // Host IOMMU tsm_enable comes before the PSP call for SEV_ENABLE_DMA (§2.2).
        if sdteOp == .sevEnableDMA, state.faults.firmwareCall(SEV.PSPCommand.iommuTSMEnable) != nil {
            return .failure(.ioError)
        }
        let expected = (state.sequence[tdi.vm] ?? 0) + 1
        if let status = state.faults.firmwareCall(SEV.PSPCommand.guestRequest) {
            return .failure(.ioError, tsmCode: status)
        }
        guard header.sequenceNumber == expected else {
            return .failure(.ioError, tsmCode: SEV.PSPStatus.invalidParam)
        }
        let responseBody: [UInt8]
        switch message {
        case .mmioValidate:
            guard let payload = try? SEV.MMIOValidateRequest(decoding: body) else { return .failure(.invalidArgument) }
            responseBody = mmioValidate(&state, function, payload).encoded()
        case .mmioConfig:
            guard let payload = try? SEV.MMIOConfigRequest(decoding: body) else { return .failure(.invalidArgument) }
            responseBody = mmioConfig(&state, function, payload).encoded()
        case .sdteWrite:
            guard let payload = sdteRequest, let sdteOp else { return .failure(.invalidArgument) }
            responseBody = sdteWrite(&state, function, sdteOp, payload).encoded()
        case .tdiInfo:
            guard let payload = try? SEV.TDIInfoRequest(decoding: body) else { return .failure(.invalidArgument) }
            responseBody = tdiInfo(state, function, payload).encoded()
        }
        state.sequence[tdi.vm] = expected + 1
        let response = SEV.GuestMessage(sequenceNumber: expected + 1, messageType: message.responseType(numbering),
                                        body: responseBody).encoded()
        guard memory.writeSucceeded(request.responseAddress, response) else { return .failure(.badAddress) }
        if op == nil { return GuestRequestOutcome(residue: response.count, response: response) }  // scope API: the length
        return GuestRequestOutcome(residue: Int(request.responseLength) - response.count, response: response)
    }

    /// TDI_INFO: bind status, the lock flags, SHA-384 digests of the certificate chain,
    /// measurements and report (48 bytes each, FW-SEV-8), and the report count.
    private func tdiInfo(_ state: State, _ function: FunctionID, _ request: SEV.TDIInfoRequest) -> SEV.TDIInfoResponse {
        guard let tdi = state.tdis[function], addresses(request.tdiID, tdi), let link = state.devices[tdi.dsm] else {
            return SEV.TDIInfoResponse(tdiID: request.tdiID, status: SEV.TDIBindStatus.invalid.rawValue)
        }
        let bound = tdi.state == .configLocked || tdi.state == .run
        func digest(_ bytes: [UInt8]) -> [UInt8] { Array(SHA384.hash(data: bytes)) }
        let measurements = link.evidence.measurements
        return SEV.TDIInfoResponse(
            tdiID: request.tdiID,
            status: bound ? SEV.TDIBindStatus.bound.rawValue : SEV.TDIBindStatus.unbound.rawValue,
            measurementFlags: measurements.isEmpty ? 0 : 1,
            lockFlags: UInt32(link.lockFlags.rawValue),
            certificatesDigest: digest(link.evidence.certificateChain),
            measurementsDigest: digest(measurements),
            reportDigest: digest(tdi.report),
            reportCount: bound ? 1 : 0)
    }

    /// True when the TIO struct's first 8 bytes name `tdi` under the profile's addressing.
    private func addresses(_ field: UInt64, _ tdi: TDI) -> Bool {
        switch profile.sevTDIAddressing {
        case .tdiID64: return field == tdi.tdiID
        case .guestDeviceID16: return field == UInt64(tdi.guestID & 0xFFFF)
        }
    }

    /// MMIO_VALIDATE checks in the order of §6.2: TDI bound, range reported, inside the range,
    /// 4 KiB aligned, uniform validated bits; then the bits are set or cleared.
    private func mmioValidate(_ state: inout State, _ function: FunctionID, _ request: SEV.MMIOValidateRequest) -> SEV.MMIOValidateResponse {
        let table = profile.sevMMIOStatusTable
        func reply(_ status: SEV.MMIOValidateStatus, changed: Bool = false) -> SEV.MMIOValidateResponse {
            // The legacy table has no NOT_4K: misalignment reads as OUT_OF_RANGE there.
            let value = status.value(table) ?? SEV.MMIOValidateStatus.outOfRange.value(table) ?? 0
            return SEV.MMIOValidateResponse(tdiID: request.tdiID, status: value, subrangeBase: request.subrangeBase,
                                            subrangePageCount: request.subrangePageCount, rangeOffset: request.rangeOffset,
                                            changed: changed, rangeID: request.rangeID)
        }
        guard let tdi = state.tdis[function], addresses(request.tdiID, tdi) else { return reply(.invalidTDI) }
        guard tdi.state == .configLocked || tdi.state == .run else { return reply(.tdiUnbound) }
        // A RANGE_ID may group several MMIO_RANGEs (tdisp-spdm.md §2.9; our DSM splits a BAR at its
        // MSI-X pages): range_offset counts through them in report order.
        let group = tdi.ranges.filter { $0.rangeID == request.rangeID }
        guard !group.isEmpty else { return reply(.notReported) }
        let rangeSize = group.reduce(UInt64(0)) { $0 + $1.byteSize }
        let count = UInt64(request.subrangePageCount)
        let offset = UInt64(request.rangeOffset)
        guard count > 0, offset + count * pageSize <= rangeSize else { return reply(.outOfRange) }
        guard request.subrangeBase & (pageSize - 1) == 0, offset & (pageSize - 1) == 0,
              request.subrangeBase <= UInt64.max - count * pageSize
        else { return reply(.not4K) }
        let firstIndex = offset / pageSize
        var pages: [(Page, UInt64)] = []
        for step in 0..<count {
            pages.append((Page(rangeID: request.rangeID, index: firstIndex + step), request.subrangeBase + step * pageSize))
        }
        if !request.forceValidated {
            let states = Set(pages.map { tdi.validated[$0.0] != nil })
            guard states.count == 1 else { return reply(.notUniform) }
        }
        if request.validated {
            // A GPA already validated for another page of the TDI cannot be validated again.
            let taken = Dictionary(tdi.validated.map { ($0.value, $0.key) }, uniquingKeysWith: { first, _ in first })
            for (page, gpa) in pages {
                if let owner = taken[gpa], owner != page { return reply(.notUniform) }
            }
        }
        var changed = false
        for (page, gpa) in pages {
            if request.validated {
                if state.tdis[function]?.validated[page] != gpa { changed = true }
                state.tdis[function]?.validated[page] = gpa
            } else if state.tdis[function]?.validated.removeValue(forKey: page) != nil {
                changed = true
            }
        }
        return reply(.success, changed: changed)
    }

    /// MMIO_CONFIG: read (or, for IS_MEM_ATTR_UPDATABLE ranges, write) a reported range's
    /// attributes. The write is recorded by the PSP model only (no TDISP SET_MMIO_ATTRIBUTE).
    private func mmioConfig(_ state: inout State, _ function: FunctionID, _ request: SEV.MMIOConfigRequest) -> SEV.MMIOConfigResponse {
        func reply(_ status: SEV.MMIOConfigStatus, _ attributes: UInt16 = 0) -> SEV.MMIOConfigResponse {
            SEV.MMIOConfigResponse(guestDeviceID: request.guestDeviceID, status: status.rawValue,
                                   attributes: attributes, rangeID: request.rangeID, write: request.write)
        }
        guard let tdi = state.tdis[function], UInt32(request.guestDeviceID) == tdi.guestID & 0xFFFF else {
            return reply(.invalidTDI)
        }
        guard tdi.state == .configLocked || tdi.state == .run else { return reply(.tdiUnbound) }
        let group = tdi.ranges.filter { $0.rangeID == request.rangeID }
        guard !group.isEmpty else { return reply(.notReported) }
        // Attributes of the group: the union of its ranges' bits 3:0.
        let reported = group.reduce(UInt16(0)) { $0 | $1.attributes.rawValue } & 0xF
        var attributes = tdi.attributeOverride[request.rangeID] ?? reported
        if request.write {
            guard attributes & 0x8 != 0 else { return reply(.couldNotChange, attributes) }
            attributes = (attributes & ~0x4) | (request.isNonTEEMemory ? 0x4 : 0)
            state.tdis[function]?.attributeOverride[request.rangeID] = attributes
        }
        return reply(.success, attributes)
    }

    /// SDTE_WRITE: enable (V = 1, tsm_enabled set) or disable (zero SDTE; EMU-SEV-4 clears
    /// tsm_enabled too). A TDI that is not bound gets TDI_NOT_BOUND and nothing changes.
    private func sdteWrite(_ state: inout State, _ function: FunctionID, _ op: GuestOp, _ request: SEV.SDTEWriteRequest) -> SEV.SDTEWriteResponse {
        guard let tdi = state.tdis[function], addresses(request.tdiID, tdi) else {
            return SEV.SDTEWriteResponse(tdiID: request.tdiID, status: SEV.SDTEStatus.invalidTDI.rawValue)
        }
        guard tdi.state == .configLocked || tdi.state == .run else {
            return SEV.SDTEWriteResponse(tdiID: request.tdiID, status: SEV.SDTEStatus.tdiNotBound.rawValue)
        }
        state.tdis[function]?.sdte = request.sdte
        state.tdis[function]?.tsmEnabled = op == .sevEnableDMA
        return SEV.SDTEWriteResponse(tdiID: request.tdiID, status: SEV.SDTEStatus.success.rawValue)
    }

    /// SET_TDI_STATE: 1 → RUN (TDI_STATUS must read CONFIG_LOCKED; TDI_BIND with the run flag:
    /// TDISP START_INTERFACE; ASID_FENCE_CLEAR); other values → TDI_UNBIND (TDISP STOP).
    private func setTDIState(_ state: inout State, _ function: FunctionID, _ request: GuestRequest,
                             _ memory: any UserMemory, payload kind: FirmwareProfile.SEVSetStatePayload) -> GuestRequestOutcome {
        let size = kind == .byte ? 1 : 4
        guard Int(request.requestLength) == size, request.responseLength == 0 else { return .failure(.invalidArgument) }
        guard let bytes = copyIn(request, memory) else { return .failure(.badAddress) }
        guard let payload = try? SEV.SetTDIStateRequest(decoding: bytes, payload: kind),
              let tdi = state.tdis[function], let link = state.devices[tdi.dsm]
        else { return .failure(.invalidArgument) }
        let requester = link.requester(function)
        guard payload.value == 1 else {
            if let status = state.faults.firmwareCall(SEV.PSPCommand.tdiUnbind) { return .failure(.ioError, tsmCode: status) }
            do {
                try requester.stop(faults: &state.faults)
            } catch {
                state.tdis[function]?.state = .error
                return .failure(.ioError, tsmCode: SEV.PSPStatus.spdmError)
            }
            state.tdis[function]?.state = .configUnlocked
            state.tdis[function]?.validated = [:]
            state.tdis[function]?.sdte = [UInt8](repeating: 0, count: 64)
            state.tdis[function]?.tsmEnabled = false
            state.tdis[function]?.fenceUp = true
            return GuestRequestOutcome()
        }
        if let status = state.faults.firmwareCall(SEV.PSPCommand.tdiStatus) { return .failure(.ioError, tsmCode: status) }
        let deviceState: TDIState
        do {
            deviceState = try requester.state(faults: &state.faults)
        } catch {
            state.tdis[function]?.state = .error
            return .failure(.ioError, tsmCode: SEV.PSPStatus.spdmError)
        }
        if deviceState == .run && tdi.state == .run { return GuestRequestOutcome() }
        guard deviceState == .configLocked, tdi.state == .configLocked else { return .failure(.badAddress) }
        if let status = state.faults.firmwareCall(SEV.PSPCommand.tdiBind) { return .failure(.ioError, tsmCode: status) }
        do {
            guard let nonce = tdi.nonce else { throw DeviceFailure.malformed }
            try requester.start(nonce: nonce, faults: &state.faults)
        } catch {
            state.tdis[function]?.state = .error
            return .failure(.ioError, tsmCode: SEV.PSPStatus.spdmError)
        }
        state.tdis[function]?.state = .run
        if state.faults.firmwareCall(SEV.PSPCommand.asidFenceClear) == nil {
            state.tdis[function]?.fenceUp = false
        }
        return GuestRequestOutcome()
    }
}
