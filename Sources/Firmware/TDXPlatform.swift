// The Intel TDX Connect platform: the TDX module model (link, bind session, TDI states, guest
// TDG.TDI.START gate, host MMIO maps and guest accepts, DMAR accept) and the host guest_req in
// front of it. Entirely emulator-defined: arch-backends.md §3.3, §6.3 (EMU-TDX-1..3).
import Sync
import SystemPackage
import TDISP
import UAPI
import Wire

/// The Intel TDX Connect TSM: the host driver and the TDX module model behind it.
///
/// `tsm_code` carries the 64-bit TDX module status of the simulated SEAMCALL (``TDX/Status``),
/// 0 on success and for rejections made by the driver before any SEAMCALL. A module status of
/// class OPERAND_BUSY returns EBUSY; other injected statuses return EIO.
public final class TDXPlatform: LinkTSMDriver {
    /// The architecture this driver serves (its own `tvm_arch`).
    public let arch = TSMArch.tdx
    /// The profile switches (§6.4) this platform runs with.
    public let profile: FirmwareProfile
    private let state = Locked(State())

    /// A host MMIO mapping made by TDH.MMIO.MAP (VALIDATE_MMIO).
    public struct Mapping: Sendable, Equatable {
        /// `gpa_base`: first guest (IPA/GPA) byte address, 4 KiB aligned.
        public var gpaBase: UInt64
        /// `gpa_top`: end of the range (exclusive), 4 KiB aligned.
        public var gpaTop: UInt64
        /// `pa_base`: host physical address the range maps to, 4 KiB aligned.
        public var paBase: UInt64
        /// Creates the value from its fields.
        public init(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) {
            self.gpaBase = gpaBase
            self.gpaTop = gpaTop
            self.paBase = paBase
        }
    }

    /// The TDX module's view of a TDI.
    public struct TDIInfo: Sendable, Equatable {
        /// The firmware's state of the TDI (VDEV state for CCA, TDISP state otherwise).
        public var state: TDIState
        /// Changes on every bind; the guest reads it with TDG.TDI.RD(GET_BIND_SESSION_ID).
        public var bindSessionID: UInt64
        /// The session the guest authorised with TDG.TDI.START, if any.
        public var guestStartSession: UInt64?
        /// Device-memory mappings made by VALIDATE_MMIO, in order.
        public var mappings: [Mapping]
        /// GPAs of pages the guest accepted with TDG.MMIO.ACCEPT.
        public var acceptedPages: Set<UInt64>
        /// True after TDG.DMAR.ACCEPT.
        public var dmarAccepted: Bool
    }

    struct TDI: Sendable {
        var dsm: FunctionID
        var vm: UInt64
        var guestID: UInt32
        var state: TDIState
        var bindSessionID: UInt64
        var guestStartSession: UInt64? = nil
        var nonce: StartInterfaceNonce? = nil
        var report: [UInt8] = []
        var ranges: [MMIORange] = []
        var reportNonce: [UInt8]? = nil
        var mappings: [Mapping] = []
        var accepted: Set<UInt64> = []
        var dmarAccepted = false
    }

    struct State: Sendable {
        var faults = FaultState()
        var links: [FunctionID: DeviceLink] = [:]
        var tdis: [FunctionID: TDI] = [:]
        var nextSession: UInt64 = 0x1000
        var nextLinkSession: UInt32 = 1
    }

    /// A TDX platform with `profile` (default: the spec's TDX defaults).
    public init(profile: FirmwareProfile = .defaults(for: .tdx)) {
        self.profile = profile
    }

    // MARK: Fault injection and inspection

    /// Installs `plan`, resetting its counters (the call log is kept).
    public func setFaultPlan(_ plan: FaultPlan) { state.withLock { $0.faults.install(plan) } }

    /// Every SEAMCALL and TDISP request made so far, in order.
    public var callLog: [String] { state.withLock { $0.faults.log } }

    /// True when the SPDM session and IDE stream to the DSM at `dsm` are set up.
    public func isConnected(dsm: FunctionID) -> Bool { state.withLock { $0.links[dsm] != nil } }

    /// The module's view of `function`'s TDI, nil when none.
    public func tdiInfo(function: FunctionID) -> TDIInfo? {
        state.withLock { state in
            state.tdis[function].map {
                TDIInfo(state: $0.state, bindSessionID: $0.bindSessionID, guestStartSession: $0.guestStartSession,
                        mappings: $0.mappings, acceptedPages: $0.accepted, dmarAccepted: $0.dmarAccepted)
            }
        }
    }

    /// The firmware's TDISP view of the TDI (see ``LinkTSMDriver/tdispState(function:)``).
    public func tdispState(function: FunctionID) -> TDIState? { state.withLock { $0.tdis[function]?.state } }

    // MARK: Link

    /// TDH.SPDM.CREATE/CONNECT, TDH.IDE.STREAM.CREATE/KM, TDH.IOMMU.SETUP (modelled), then TDISP
    /// version and capabilities. Errors: EBUSY (connected, or an OPERAND_BUSY status); EIO
    /// (another SEAMCALL failure or a DSM failure).
    public func connect(dsm: FunctionID, transport: any TDISPTransport, evidence: DeviceEvidence) throws(Errno) {
        try state.withLock { (state: inout State) throws(Errno) in
            guard state.links[dsm] == nil else { throw .resourceBusy }
            for call in [TDX.SEAMCALL.spdmCreate, TDX.SEAMCALL.spdmConnect, TDX.SEAMCALL.ideStreamCreate,
                         TDX.SEAMCALL.ideStreamKM, TDX.SEAMCALL.iommuSetup] {
                if let status = state.faults.firmwareCall(call) { throw TDXPlatform.errno(for: status) }
            }
            do {
                state.links[dsm] = try DeviceLink.establish(dsm: dsm, transport: transport, evidence: evidence,
                                                            sessionID: state.nextLinkSession, ideStreamID: 0, faults: &state.faults)
                state.nextLinkSession &+= 1
            } catch {
                throw .ioError
            }
        }
    }

    /// Unbinds every TDI of the DSM, then tears the SPDM session down.
    public func disconnect(dsm: FunctionID) {
        let functions = state.withLock { state in state.tdis.filter { $0.value.dsm == dsm }.map(\.key) }
        for function in functions { unbind(function: function) }
        state.withLock { state in
            guard state.links[dsm] != nil else { return }
            _ = state.faults.firmwareCall(TDX.SEAMCALL.spdmDisconnect)
            state.links[dsm] = nil
        }
    }

    // MARK: TDI

    /// TDH.TDI.CREATE, TDH.TDI.BIND (new bind session; TDISP LOCK_INTERFACE), TDH.TDI.GET_REPORT
    /// (TDISP GET_DEVICE_INTERFACE_REPORT) → CONFIG_LOCKED.
    /// Errors: ENXIO (not connected); EBUSY (TDI exists, DSM's TDI not CONFIG_UNLOCKED, or
    /// OPERAND_BUSY); EIO (SEAMCALL or DSM failure; the DSM is stopped, nothing remains).
    public func bind(function: FunctionID, dsm: FunctionID, vm: UInt64, guestID: UInt32) throws(Errno) {
        try state.withLock { (state: inout State) throws(Errno) in
            guard let link = state.links[dsm] else { throw .noSuchAddressOrDevice }
            guard state.tdis[function] == nil else { throw .resourceBusy }
            if let status = state.faults.firmwareCall(TDX.SEAMCALL.tdiCreate) { throw TDXPlatform.errno(for: status) }
            let deviceState: TDIState
            do {
                deviceState = try link.requester(function).state(faults: &state.faults)
            } catch {
                throw .ioError
            }
            guard deviceState == .configUnlocked else { throw .resourceBusy }
            if let status = state.faults.firmwareCall(TDX.SEAMCALL.tdiBind) { throw TDXPlatform.errno(for: status) }
            if let status = state.faults.firmwareCall(TDX.SEAMCALL.tdiGetReport) { throw TDXPlatform.errno(for: status) }
            let locked: LockedInterface
            do {
                locked = try link.lockAndFetchReport(function, faults: &state.faults)
            } catch {
                link.stopQuietly(function, faults: &state.faults)
                throw .ioError
            }
            var tdi = TDI(dsm: dsm, vm: vm, guestID: guestID, state: .configLocked, bindSessionID: state.nextSession)
            tdi.nonce = locked.nonce
            tdi.report = locked.report
            tdi.ranges = locked.ranges
            state.nextSession &+= 1
            state.tdis[function] = tdi
        }
    }

    /// TDH.TDI.STOP (TDISP STOP_INTERFACE → CONFIG_UNLOCKED) and TDH.TDI.UNBIND; mappings and
    /// accepts are dropped.
    public func unbind(function: FunctionID) {
        state.withLock { state in
            guard let tdi = state.tdis[function] else { return }
            _ = state.faults.firmwareCall(TDX.SEAMCALL.tdiStop)
            state.links[tdi.dsm]?.stopQuietly(function, faults: &state.faults)
            _ = state.faults.firmwareCall(TDX.SEAMCALL.tdiUnbind)
            state.tdis[function] = nil
        }
    }

    // MARK: Guest TDCALLs (guest → TDX module directly, arch-backends.md §3.1)

    /// `TDG.TDI.RD`: reads `field` of the TDI of `function` for the TD `vm`.
    /// Returns (status, value): TDI_NOT_PRESENT when the TDI does not exist or belongs to another
    /// TD; INVALID_OPERAND for an unknown field.
    public func tdgTDIRead(function: FunctionID, vm: UInt64, field: UInt64) -> (status: UInt64, value: UInt64) {
        state.withLock { state in
            guard let tdi = state.tdis[function], tdi.vm == vm else { return (TDX.Status.tdiNotPresent, 0) }
            switch TDX.TDIField(rawValue: field) {
            case .tdispState: return (TDX.Status.success, UInt64(tdi.state.rawValue))
            case .bindSessionID: return (TDX.Status.success, tdi.bindSessionID)
            case nil: return (TDX.Status.invalidOperand, 0)
            }
        }
    }

    /// `TDG.TDI.START`: the guest authorises the host's TDH.TDI.START for `bindSessionID`.
    /// Returns TDI_NOT_PRESENT (no TDI for this TD), INVALID_OPERAND (a stale or wrong session),
    /// TDI_INVALID_STATE (not CONFIG_LOCKED), or SUCCESS (the authorisation is recorded).
    public func tdgTDIStart(function: FunctionID, vm: UInt64, bindSessionID: UInt64) -> UInt64 {
        state.withLock { state in
            guard let tdi = state.tdis[function], tdi.vm == vm else { return TDX.Status.tdiNotPresent }
            guard tdi.bindSessionID == bindSessionID else { return TDX.Status.invalidOperand }
            guard tdi.state == .configLocked else { return TDX.Status.tdiInvalidState }
            state.tdis[function]?.guestStartSession = bindSessionID
            return TDX.Status.success
        }
    }

    /// `TDG.MMIO.ACCEPT` of the 4 KiB page at `gpa`: the page must be inside a host mapping of
    /// the TDI and not yet accepted (INVALID_OPERAND otherwise: the public names
    /// MMIO_PAGE_NOT_IN_ASSOC_RANGE / PAGE_ALREADY_ACCEPTED have no public values).
    public func tdgMMIOAccept(function: FunctionID, vm: UInt64, gpa: UInt64) -> UInt64 {
        state.withLock { state in
            guard let tdi = state.tdis[function], tdi.vm == vm else { return TDX.Status.tdiNotPresent }
            guard gpa & (pageSize - 1) == 0,
                  tdi.mappings.contains(where: { gpa >= $0.gpaBase && gpa < $0.gpaTop }),
                  !tdi.accepted.contains(gpa)
            else { return TDX.Status.invalidOperand }
            state.tdis[function]?.accepted.insert(gpa)
            return TDX.Status.success
        }
    }

    /// `TDG.DMAR.ACCEPT`: the guest accepts the TDI's DMA remapping; the TDI must be in RUN.
    public func tdgDMARAccept(function: FunctionID, vm: UInt64) -> UInt64 {
        state.withLock { state in
            guard let tdi = state.tdis[function], tdi.vm == vm else { return TDX.Status.tdiNotPresent }
            guard tdi.state == .run else { return TDX.Status.tdiInvalidState }
            state.tdis[function]?.dmarAccepted = true
            return TDX.Status.success
        }
    }

    // MARK: TDCM service (guest → VMM shared buffer, arch-backends.md §3.1-§3.2; EMU-TDX-1, EMU-TDX-3)

    /// Serves the TDCM operations that only read state, for the VMM's TDCM emulation; the VMM
    /// routes the others through the kernel (BIND → IOMMU_VDEVICE_TSM_OP BIND, START_TDI →
    /// SET_TDI_STATE after the guest's TDG.TDI.START, UNBIND → TSM_OP UNBIND) and gets nil here,
    /// as it does for a buffer that does not decode or an unknown operation.
    ///
    /// | operation | data on COMPLETED | ERROR (error byte) |
    /// |---|---|---|
    /// | CHECK_TEEIO_SUPP | u8 is_supported (1 when the DSM `dsm` is connected) | – |
    /// | GET_DEV_INFO | the TDISP_CAPABILITIES payload (FW-TDX-2) | INVALID_STATE (15): not connected |
    /// | GET_TDI_REPORT | the cached report | INVALID_STATE: no TDI for this TD |
    /// | GET_TDI_STATE | u8 TDISP state read live from the DSM | INVALID_STATE: no TDI; TDISP_MESSAGE (14): the DSM failed or is silent (EMU-TDX-3) |
    public func serviceTDCM(function: FunctionID, dsm: FunctionID, vm: UInt64, request: [UInt8]) -> TDX.TDCMBuffer? {
        guard let buffer = try? TDX.TDCMBuffer(decoding: request),
              let operation = TDX.TDCMOperation(rawValue: buffer.operation)
        else { return nil }
        func completed(_ data: [UInt8]) -> TDX.TDCMBuffer {
            TDX.TDCMBuffer(operation: buffer.operation, version: buffer.version, status: TDX.TDCMStatus.completed, data: data)
        }
        func failed(_ error: TDX.TDCMError) -> TDX.TDCMBuffer {
            TDX.TDCMBuffer(operation: buffer.operation, version: buffer.version, status: TDX.TDCMStatus.error, error: error.rawValue)
        }
        return state.withLock { state -> TDX.TDCMBuffer? in
            switch operation {
            case .checkTEEIOSupport:
                return completed([state.links[dsm] != nil ? 1 : 0])
            case .getDeviceInfo:
                guard let link = state.links[dsm] else { return failed(.invalidState) }
                return completed(link.capabilitiesPayload)
            case .getTDIReport:
                guard let tdi = state.tdis[function], tdi.vm == vm else { return failed(.invalidState) }
                return completed(tdi.report)
            case .getTDIState:
                guard let tdi = state.tdis[function], tdi.vm == vm, let link = state.links[tdi.dsm] else {
                    return failed(.invalidState)
                }
                do {
                    return completed([try link.requester(function).state(faults: &state.faults).rawValue])
                } catch {
                    return failed(.tdispMessage)
                }
            case .bind, .startTDI, .unbind:
                return nil
            }
        }
    }

    // MARK: guest_req

    /// The host guest_req of the TDX model (EMU-TDX-2). Checks: tvm_arch = TDX, user pointer,
    /// known op (SEV ops, and ops 1-3 without `objectOpsTunnelled` → EINVAL), a TDI exists
    /// (ENXIO), exact req_len (EINVAL), copy-in (EFAULT), then:
    ///
    /// | op | req | errors (tsm_code) |
    /// |---|---|---|
    /// | READ_OBJECT | 16 | EINVAL (type not 1/2), E2BIG (resp_len < object), EFAULT (copy-out) |
    /// | REGEN_OBJECT | 24 | EINVAL (type ≠ 1, stale nonce; TDI not LOCKED/RUN: TDI_INVALID_STATE), EFAULT (nonce), EIO (SEAMCALL status; device: TDI ERROR, DEVICE_ERROR) |
    /// | OBJECT_INFO | 4 | EINVAL (resp_len < 4, type), EFAULT (copy-out) |
    /// | VALIDATE_MMIO | 24 | EINVAL (unaligned, empty, outside the report, overlap: INVALID_OPERAND; TDI not LOCKED/RUN: TDI_INVALID_STATE), EIO/EBUSY (injected) |
    /// | SET_TDI_STATE | 4 | EINVAL (state ≠ RUN; TDI not CONFIG_LOCKED: TDI_INVALID_STATE), EPERM (no TDG.TDI.START for the current session: TDI_INVALID_STATE), EIO (device: TDI ERROR, DEVICE_ERROR) |
    public func guestRequest(function: FunctionID, _ request: GuestRequest, memory: any UserMemory) -> GuestRequestOutcome {
        let op: GuestOp
        switch envelopeOp(request, arch: .tdx) {
        case let .failure(errno): return .failure(errno)
        case let .success(value): op = value
        }
        if op == .sevEnableDMA || op == .sevDisableDMA { return .failure(.invalidArgument) }
        if op.isObjectOp && !profile.objectOpsTunnelled { return .failure(.invalidArgument) }
        return state.withLock { state in
            guard state.tdis[function] != nil else { return .failure(.noSuchAddressOrDevice) }
            let expected: Int
            switch op {
            case .readObject: expected = TDX.ReadObjectRequest.size
            case .regenObject: expected = TDX.RegenObjectRequest.size
            case .objectInfo: expected = TDX.ObjectInfoRequest.size
            case .validateMMIO: expected = TDX.ValidateMMIORequest.size
            case .setTDIState, .sevEnableDMA, .sevDisableDMA: expected = TDX.SetTDIStateRequest.size
            }
            guard Int(request.requestLength) == expected else { return .failure(.invalidArgument) }
            guard let bytes = copyIn(request, memory) else { return .failure(.badAddress) }
            switch op {
            case .readObject, .objectInfo: return readObject(&state, function, op, bytes, request, memory)
            case .regenObject: return regenObject(&state, function, bytes, memory)
            case .validateMMIO: return validateMMIO(&state, function, bytes)
            case .setTDIState, .sevEnableDMA, .sevDisableDMA: return setTDIState(&state, function, bytes)
            }
        }
    }

    private func object(_ state: State, _ function: FunctionID, _ raw: UInt32) -> [UInt8]? {
        guard let tdi = state.tdis[function], let type = TDX.ObjectType(rawValue: raw) else { return nil }
        switch type {
        case .tdiReport: return tdi.report
        case .deviceInfo: return state.links[tdi.dsm]?.capabilitiesPayload
        }
    }

    /// READ_OBJECT and OBJECT_INFO: the cached TDI report or device info; no SEAMCALL.
    private func readObject(_ state: inout State, _ function: FunctionID, _ op: GuestOp, _ bytes: [UInt8],
                            _ request: GuestRequest, _ memory: any UserMemory) -> GuestRequestOutcome {
        if op == .objectInfo {
            guard request.responseLength >= 4 else { return .failure(.invalidArgument) }
            guard let payload = try? TDX.ObjectInfoRequest(decoding: bytes),
                  let data = object(state, function, payload.objectType), !data.isEmpty
            else { return .failure(.invalidArgument) }
            let response = TDX.ObjectInfoResponse(objectSize: UInt32(truncatingIfNeeded: data.count)).encoded()
            guard memory.writeSucceeded(request.responseAddress, response) else { return .failure(.badAddress) }
            return GuestRequestOutcome(residue: Int(request.responseLength) - 4, response: response)
        }
        guard let payload = try? TDX.ReadObjectRequest(decoding: bytes),
              let data = object(state, function, payload.objectType), !data.isEmpty
        else { return .failure(.invalidArgument) }
        guard Int(request.responseLength) >= data.count else { return .failure(.argListTooLong) }
        guard memory.writeSucceeded(request.responseAddress, data) else { return .failure(.badAddress) }
        return GuestRequestOutcome(residue: Int(request.responseLength) - data.count, response: data)
    }

    /// REGEN_OBJECT (TDI report only): TDH.TDI.GET_REPORT re-fetches the report over TDISP.
    private func regenObject(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8], _ memory: any UserMemory) -> GuestRequestOutcome {
        guard let tdi = state.tdis[function], let payload = try? TDX.RegenObjectRequest(decoding: bytes),
              payload.objectType == TDX.ObjectType.tdiReport.rawValue
        else { return .failure(.invalidArgument) }
        guard let nonce = memory.readOrNil(payload.nonceAddress, count: TDX.RegenObjectRequest.nonceSize) else {
            return .failure(.badAddress)
        }
        guard nonce != tdi.reportNonce else { return .failure(.invalidArgument) }  // FW-CCA-1, shared
        if let status = state.faults.firmwareCall(TDX.SEAMCALL.tdiGetReport) {
            return .failure(TDXPlatform.errno(for: status), tsmCode: status)
        }
        guard tdi.state == .configLocked || tdi.state == .run, let link = state.links[tdi.dsm] else {
            return .failure(.invalidArgument, tsmCode: TDX.Status.tdiInvalidState)
        }
        do {
            let fetched = try link.requester(function).report(faults: &state.faults)
            state.tdis[function]?.report = fetched.bytes
            state.tdis[function]?.ranges = fetched.report.mmioRanges
            state.tdis[function]?.reportNonce = nonce
        } catch {
            state.tdis[function]?.state = .error
            return .failure(.ioError, tsmCode: TDX.Status.tdiDeviceError)
        }
        return GuestRequestOutcome()
    }

    /// VALIDATE_MMIO: simulated TDH.MMIO.MAP, so that the guest's later TDG.MMIO.ACCEPT succeeds.
    private func validateMMIO(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8]) -> GuestRequestOutcome {
        guard let tdi = state.tdis[function], let payload = try? TDX.ValidateMMIORequest(decoding: bytes) else {
            return .failure(.invalidArgument)
        }
        if let status = state.faults.firmwareCall(TDX.SEAMCALL.mmioMap) {
            return .failure(TDXPlatform.errno(for: status), tsmCode: status)
        }
        let operand = GuestRequestOutcome.failure(.invalidArgument, tsmCode: TDX.Status.invalidOperand)
        let mask = pageSize - 1
        guard payload.gpaBase & mask == 0, payload.gpaTop & mask == 0, payload.paBase & mask == 0,
              payload.gpaBase < payload.gpaTop
        else { return operand }
        guard tdi.state == .configLocked || tdi.state == .run else {
            return .failure(.invalidArgument, tsmCode: TDX.Status.tdiInvalidState)
        }
        let size = payload.gpaTop - payload.gpaBase
        guard insideReport(tdi.ranges, base: payload.paBase, size: size) else { return operand }
        for mapping in tdi.mappings {
            let mappingPATop = mapping.paBase &+ (mapping.gpaTop - mapping.gpaBase)
            if overlaps(payload.gpaBase, payload.gpaTop, mapping.gpaBase, mapping.gpaTop)
                || overlaps(payload.paBase, payload.paBase + size, mapping.paBase, mappingPATop) {
                return operand
            }
        }
        state.tdis[function]?.mappings.append(Mapping(gpaBase: payload.gpaBase, gpaTop: payload.gpaTop, paBase: payload.paBase))
        return GuestRequestOutcome()
    }

    /// SET_TDI_STATE(RUN): simulated TDH.TDI.START, gated on the guest's TDG.TDI.START with the
    /// current bind session; then TDISP START_INTERFACE.
    private func setTDIState(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8]) -> GuestRequestOutcome {
        guard let tdi = state.tdis[function], let payload = try? TDX.SetTDIStateRequest(decoding: bytes),
              payload.state == UInt32(TDIState.run.rawValue)
        else { return .failure(.invalidArgument) }
        if let status = state.faults.firmwareCall(TDX.SEAMCALL.tdiStart) {
            return .failure(TDXPlatform.errno(for: status), tsmCode: status)
        }
        guard tdi.state == .configLocked, let link = state.links[tdi.dsm] else {
            return .failure(.invalidArgument, tsmCode: TDX.Status.tdiInvalidState)
        }
        guard tdi.guestStartSession == tdi.bindSessionID else {
            return .failure(.notPermitted, tsmCode: TDX.Status.tdiInvalidState)
        }
        do {
            guard let nonce = tdi.nonce else { throw DeviceFailure.malformed }
            try link.requester(function).start(nonce: nonce, faults: &state.faults)
        } catch {
            state.tdis[function]?.state = .error
            return .failure(.ioError, tsmCode: TDX.Status.tdiDeviceError)
        }
        state.tdis[function]?.state = .run
        return GuestRequestOutcome()
    }

    /// EBUSY for an OPERAND_BUSY-class status (high 32 bits 0x80000200), EIO otherwise.
    static func errno(for status: UInt64) -> Errno {
        status >> 32 == TDX.Status.operandBusy >> 32 ? .resourceBusy : .ioError
    }
}
