// The Arm CCA platform: the RMM model (PDEV/VDEV states, object cache, device-memory mappings)
// and the host driver `cca_tsm_guest_req` in front of it. Source: arch-backends.md §1, §6.1
// (EMU-CCA-1..4).
import Crypto
import Sync
import SystemPackage
import TDISP
import UAPI
import Wire

/// The Arm CCA TSM: the host driver (`drivers/virt/coco/arm-cca-host/arm-cca.c`) and the RMM
/// model behind it, for every DSM connected to this platform.
///
/// State per DSM: a PDEV (``CCA/PDEVState``); per TDI: a VDEV (``CCA/VDEVState``), its object
/// cache (interface report, measurements, certificate chain, VCA) filled at bind, the report
/// nonce and generation counter, and the device-memory mappings made by VALIDATE_MMIO.
/// `tsm_code` is never written (always 0); injected RMI statuses are recorded in the call log
/// only (EMU-CCA-3).
public final class CCAPlatform: LinkTSMDriver {
    /// The architecture this driver serves (its own `tvm_arch`).
    public let arch = TSMArch.cca
    /// The profile switches (§6.4) this platform runs with.
    public let profile: FirmwareProfile
    private let state = Locked(State())

    /// A device-memory mapping made by VALIDATE_MMIO: [gpaBase, gpaTop) → paBase.
    public struct Mapping: Sendable, Equatable {
        /// `gpa_base`: first guest (IPA/GPA) byte address, 4 KiB aligned.
        public var gpaBase: UInt64
        /// `gpa_top`: end of the range (exclusive), 4 KiB aligned.
        public var gpaTop: UInt64
        /// `pa_base`: host physical address the range maps to, 4 KiB aligned.
        public var paBase: UInt64
        /// True once the Realm validated the whole mapping with RSI_VDEV_VALIDATE_MAPPING.
        public var validated: Bool
        /// Creates the value from its fields.
        public init(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64, validated: Bool = false) {
            self.gpaBase = gpaBase
            self.gpaTop = gpaTop
            self.paBase = paBase
            self.validated = validated
        }
    }

    /// What the RMM reports about a VDEV (the RSI_VDEV_GET_INFO view, arch-backends.md §1.5).
    public struct VDEVInfo: Sendable, Equatable {
        /// The firmware's state of the TDI (VDEV state for CCA, TDISP state otherwise).
        public var state: CCA.VDEVState
        /// The guest-visible RID given at bind (`vdev_id`).
        public var vdevID: UInt32
        /// The nonce of the last REGEN_OBJECT (nil before the first).
        public var reportNonce: [UInt8]?
        /// 1 after bind, +1 per successful REGEN_OBJECT.
        public var reportGeneration: Int
        /// Device-memory mappings made by VALIDATE_MMIO, in order.
        public var mappings: [Mapping]
        /// Set by RSI_VDEV_DMA_ENABLE, cleared by RSI_VDEV_DMA_DISABLE and unbind.
        public var dmaEnabled: Bool
    }

    /// What RSI_VDEV_GET_INFO returns to the Realm (arch-backends.md §1.5, in its field order;
    /// the digests are SHA-512, 64 bytes, of the cached objects — FW-CCA-4).
    public struct RSIVDEVInfo: Sendable, Equatable {
        /// The firmware's state of the TDI (VDEV state for CCA, TDISP state otherwise).
        public var state: CCA.VDEVState
        /// Lock generation of the VDEV (changes on every bind).
        public var lockNonce: UInt64
        /// Measurement generation (measurements are fixed at connect: 1).
        public var measurementsNonce: UInt64
        /// Report generation (1 after bind, +1 per REGEN_OBJECT).
        public var reportNonce: UInt64
        /// SHA-512 of the cached VCA.
        public var vcaDigest: [UInt8]
        /// SHA-512 of the cached certificate chain.
        public var certificateDigest: [UInt8]
        /// SHA-512 of the cached measurements.
        public var measurementsDigest: [UInt8]
        /// SHA-512 of the cached interface report.
        public var reportDigest: [UInt8]
    }

    struct PDEV: Sendable {
        var state: CCA.PDEVState
        var link: DeviceLink
    }

    struct VDEV: Sendable {
        var dsm: FunctionID
        var vm: UInt64
        var vdevID: UInt32
        var state: CCA.VDEVState
        var cache: [CCA.Object: [UInt8]] = [:]
        var ranges: [MMIORange] = []
        var startNonce: StartInterfaceNonce? = nil
        var reportNonce: [UInt8]? = nil
        var reportGeneration = 0
        var mappings: [Mapping] = []
        var lockGeneration: UInt64 = 0
        var dmaEnabled = false
    }

    struct State: Sendable {
        var faults = FaultState()
        var pdevs: [FunctionID: PDEV] = [:]
        var vdevs: [FunctionID: VDEV] = [:]
        var nextSession: UInt32 = 1
        var nextLockGeneration: UInt64 = 1
    }

    /// A CCA platform with `profile` (default: the spec's CCA defaults).
    public init(profile: FirmwareProfile = .defaults(for: .cca)) {
        self.profile = profile
    }

    // MARK: Fault injection and inspection

    /// Installs `plan`, resetting its counters (the call log is kept).
    public func setFaultPlan(_ plan: FaultPlan) { state.withLock { $0.faults.install(plan) } }

    /// Every firmware call (RMI names) and TDISP request (`TDISP 0x8n`) made so far, in order.
    public var callLog: [String] { state.withLock { $0.faults.log } }

    /// The PDEV state of the DSM at `dsm`, nil when not connected.
    public func pdevState(dsm: FunctionID) -> CCA.PDEVState? { state.withLock { $0.pdevs[dsm]?.state } }

    /// The RMM's view of the VDEV of `function`, nil when none exists.
    public func vdevInfo(function: FunctionID) -> VDEVInfo? {
        state.withLock { state in
            state.vdevs[function].map {
                VDEVInfo(state: $0.state, vdevID: $0.vdevID, reportNonce: $0.reportNonce,
                         reportGeneration: $0.reportGeneration, mappings: $0.mappings, dmaEnabled: $0.dmaEnabled)
            }
        }
    }

    /// The cached object of `function`'s VDEV (nil when none).
    public func cachedObject(function: FunctionID, _ object: CCA.Object) -> [UInt8]? {
        state.withLock { $0.vdevs[function]?.cache[object] }
    }

    /// The firmware's TDISP view of the TDI (see ``LinkTSMDriver/tdispState(function:)``).
    public func tdispState(function: FunctionID) -> TDIState? {
        state.withLock { state in
            state.vdevs[function].map { vdev in
                switch vdev.state {
                case .new, .unlocked: return TDIState.configUnlocked
                case .locked: return .configLocked
                case .started: return .run
                case .error: return .error
                }
            }
        }
    }

    // MARK: Link: connect / disconnect

    /// PDEV create and communicate (SPDM session, IDE keys, modelled) until READY, then TDISP
    /// version and capabilities with the DSM.
    /// Errors: EBUSY (already connected); ENXIO (RMI_PDEV_* failure); EIO (DSM failure).
    public func connect(dsm: FunctionID, transport: any TDISPTransport, evidence: DeviceEvidence) throws(Errno) {
        try state.withLock { (state: inout State) throws(Errno) in
            guard state.pdevs[dsm] == nil else { throw .resourceBusy }
            guard state.faults.firmwareCall(CCA.RMI.pdevCreate) == nil else { throw .noSuchAddressOrDevice }
            guard state.faults.firmwareCall(CCA.RMI.pdevCommunicate) == nil else { throw .noSuchAddressOrDevice }
            let session = state.nextSession
            let link: DeviceLink
            do {
                link = try DeviceLink.establish(dsm: dsm, transport: transport, evidence: evidence,
                                                sessionID: session, ideStreamID: 0, faults: &state.faults)
            } catch {
                throw .ioError
            }
            state.nextSession &+= 1
            state.pdevs[dsm] = PDEV(state: .ready, link: link)
        }
    }

    /// Unbinds every VDEV of the DSM, then destroys the PDEV.
    public func disconnect(dsm: FunctionID) {
        let functions = state.withLock { state in state.vdevs.filter { $0.value.dsm == dsm }.map(\.key) }
        for function in functions { unbind(function: function) }
        state.withLock { state in
            guard state.pdevs[dsm] != nil else { return }
            _ = state.faults.firmwareCall(CCA.RMI.pdevDestroy)
            state.pdevs[dsm] = nil
        }
    }

    // MARK: TDI: bind / unbind

    /// RMI_VDEV_CREATE (NEW), a communicate step (UNLOCKED), RMI_VDEV_LOCK: TDISP
    /// LOCK_INTERFACE + GET_DEVICE_INTERFACE_REPORT (LOCKED); then the object cache is filled.
    /// Errors: ENXIO (no READY PDEV, or an RMI failure); EBUSY (a VDEV exists, or the DSM's TDI
    /// is not CONFIG_UNLOCKED); EIO (the DSM failed: the VDEV went to ERROR and was destroyed,
    /// the DSM is walked back with STOP_INTERFACE).
    public func bind(function: FunctionID, dsm: FunctionID, vm: UInt64, guestID: UInt32) throws(Errno) {
        try state.withLock { (state: inout State) throws(Errno) in
            guard let pdev = state.pdevs[dsm], pdev.state == .ready else { throw .noSuchAddressOrDevice }
            guard state.vdevs[function] == nil else { throw .resourceBusy }
            let requester = pdev.link.requester(function)
            guard state.faults.firmwareCall(CCA.RMI.vdevCreate) == nil else { throw .noSuchAddressOrDevice }
            var vdev = VDEV(dsm: dsm, vm: vm, vdevID: guestID, state: .new)
            guard state.faults.firmwareCall(CCA.RMI.vdevCommunicate) == nil else {
                _ = state.faults.firmwareCall(CCA.RMI.vdevDestroy)
                throw .noSuchAddressOrDevice
            }
            let deviceState: TDIState
            do {
                deviceState = try requester.state(faults: &state.faults)
            } catch {
                _ = state.faults.firmwareCall(CCA.RMI.vdevDestroy)
                throw .ioError
            }
            guard deviceState == .configUnlocked else {
                _ = state.faults.firmwareCall(CCA.RMI.vdevDestroy)
                throw .resourceBusy
            }
            vdev.state = .unlocked
            guard state.faults.firmwareCall(CCA.RMI.vdevLock) == nil else {
                _ = state.faults.firmwareCall(CCA.RMI.vdevDestroy)
                throw .noSuchAddressOrDevice
            }
            let locked: LockedInterface
            do {
                locked = try pdev.link.lockAndFetchReport(function, faults: &state.faults)
            } catch {
                // VDEV → ERROR; the driver destroys it and the device is stopped (best effort).
                pdev.link.stopQuietly(function, faults: &state.faults)
                _ = state.faults.firmwareCall(CCA.RMI.vdevDestroy)
                throw .ioError
            }
            vdev.state = .locked
            vdev.startNonce = locked.nonce
            vdev.ranges = locked.ranges
            vdev.reportGeneration = 1
            vdev.lockGeneration = state.nextLockGeneration
            state.nextLockGeneration &+= 1
            vdev.cache[.interfaceReport] = locked.report
            vdev.cache[.certificateChain] = pdev.link.evidence.certificateChain
            vdev.cache[.measurements] = pdev.link.evidence.measurements
            vdev.cache[.vca] = pdev.link.evidence.vca
            state.vdevs[function] = vdev
        }
    }

    /// RMI_VDEV_UNLOCK (TDISP STOP_INTERFACE → CONFIG_UNLOCKED), unmaps device memory, then
    /// RMI_VDEV_DESTROY. Never fails; a silent device still loses its VDEV.
    public func unbind(function: FunctionID) {
        state.withLock { state in
            guard let vdev = state.vdevs[function] else { return }
            _ = state.faults.firmwareCall(CCA.RMI.vdevUnlock)
            state.pdevs[vdev.dsm]?.link.stopQuietly(function, faults: &state.faults)
            for _ in vdev.mappings {
                _ = state.faults.firmwareCall(CCA.RMI.devMemUnmap)
                _ = state.faults.firmwareCall(CCA.RMI.granuleUndelegate)
            }
            _ = state.faults.firmwareCall(CCA.RMI.vdevDestroy)
            state.vdevs[function] = nil
        }
    }

    // MARK: Realm RSI calls (guest → RMM directly, arch-backends.md §1.1, §1.5)

    /// RSI_VDEV_GET_INFO for the Realm `vm`: returns (RSI status, info). ERROR_INPUT (1) when the
    /// VDEV does not exist or belongs to another Realm.
    public func rsiVDEVGetInfo(function: FunctionID, vm: UInt64) -> (status: UInt64, info: RSIVDEVInfo?) {
        state.withLock { state in
            guard let vdev = state.vdevs[function], vdev.vm == vm else { return (CCA.RSIStatus.errorInput.rawValue, nil) }
            func digest(_ object: CCA.Object) -> [UInt8] { Array(SHA512.hash(data: vdev.cache[object] ?? [])) }
            let info = RSIVDEVInfo(state: vdev.state, lockNonce: vdev.lockGeneration, measurementsNonce: 1,
                                   reportNonce: UInt64(vdev.reportGeneration), vcaDigest: digest(.vca),
                                   certificateDigest: digest(.certificateChain), measurementsDigest: digest(.measurements),
                                   reportDigest: digest(.interfaceReport))
            return (CCA.RSIStatus.success.rawValue, info)
        }
    }

    /// RSI_VDEV_DMA_ENABLE: the Realm enables DMA for a STARTED VDEV, passing the nonces it read
    /// with RSI_VDEV_GET_INFO; the RMM checks they are unchanged (§1.5). Statuses: ERROR_INPUT
    /// (no VDEV for this Realm, or a nonce changed since — e.g. a REGEN_OBJECT in between),
    /// ERROR_STATE (VDEV not STARTED), SUCCESS.
    public func rsiVDEVDMAEnable(function: FunctionID, vm: UInt64, lockNonce: UInt64, measurementsNonce: UInt64,
                                 reportNonce: UInt64) -> UInt64 {
        state.withLock { state in
            guard let vdev = state.vdevs[function], vdev.vm == vm else { return CCA.RSIStatus.errorInput.rawValue }
            guard vdev.state == .started else { return CCA.RSIStatus.errorState.rawValue }
            guard lockNonce == vdev.lockGeneration, measurementsNonce == 1, reportNonce == UInt64(vdev.reportGeneration) else {
                return CCA.RSIStatus.errorInput.rawValue
            }
            state.vdevs[function]?.dmaEnabled = true
            return CCA.RSIStatus.success.rawValue
        }
    }

    /// RSI_VDEV_VALIDATE_MAPPING (0xC400019F): the Realm accepts a device-memory range the host
    /// mapped with VALIDATE_MMIO (the RMM's RMI_VDEV_VALIDATE_MAPPING check at REC entry, §1.2).
    /// Statuses: ERROR_INPUT (no VDEV for this Realm; unaligned or empty range; not exactly one
    /// existing mapping with the same IPA and PA), ERROR_STATE (VDEV not LOCKED or STARTED),
    /// SUCCESS (the mapping is marked validated).
    public func rsiVDEVValidateMapping(function: FunctionID, vm: UInt64, gpaBase: UInt64, gpaTop: UInt64,
                                       paBase: UInt64) -> UInt64 {
        state.withLock { state in
            guard let vdev = state.vdevs[function], vdev.vm == vm else { return CCA.RSIStatus.errorInput.rawValue }
            guard vdev.state == .locked || vdev.state == .started else { return CCA.RSIStatus.errorState.rawValue }
            let mask = pageSize - 1
            guard gpaBase & mask == 0, gpaTop & mask == 0, paBase & mask == 0, gpaBase < gpaTop,
                  let index = vdev.mappings.firstIndex(where: {
                      $0.gpaBase == gpaBase && $0.gpaTop == gpaTop && $0.paBase == paBase
                  })
            else { return CCA.RSIStatus.errorInput.rawValue }
            state.vdevs[function]?.mappings[index].validated = true
            return CCA.RSIStatus.success.rawValue
        }
    }

    /// RSI_VDEV_DMA_DISABLE: ERROR_INPUT when the VDEV is not this Realm's, else SUCCESS.
    public func rsiVDEVDMADisable(function: FunctionID, vm: UInt64) -> UInt64 {
        state.withLock { state in
            guard let vdev = state.vdevs[function], vdev.vm == vm else { return CCA.RSIStatus.errorInput.rawValue }
            state.vdevs[function]?.dmaEnabled = false
            return CCA.RSIStatus.success.rawValue
        }
    }

    // MARK: guest_req

    /// `cca_tsm_guest_req`: checks in driver order (arch-backends.md §6.1): tvm_arch = CCA,
    /// user pointer, known op (SEV ops and, with `objectOpsTunnelled` off, ops 1-3 → EINVAL),
    /// a VDEV exists (ENXIO), exact req_len, copy-in (EFAULT), then the op. `tsm_code` is 0.
    ///
    /// | op | req | errors |
    /// |---|---|---|
    /// | READ_OBJECT | 16 | EINVAL (type unknown / not cached, offset > length with EMU-CCA-4), E2BIG (resp_len < object), EIO (copy-out) |
    /// | REGEN_OBJECT | 24 | EINVAL (type ≠ report, stale nonce), EFAULT (nonce pointer), ENXIO (RMI failure, VDEV not LOCKED/STARTED, device failure) |
    /// | OBJECT_INFO | 4 | EINVAL (resp_len < 4, unknown type, nothing cached), EIO (copy-out) |
    /// | VALIDATE_MMIO | 24 | EINVAL (unaligned, empty, not private, outside the report, overlap EMU-CCA-2), ENOMEM (RTT creation), EIO (RMI failure, rolled back) |
    /// | SET_TDI_STATE | 4 | EINVAL (state ≠ RUN), ENXIO (VDEV not LOCKED or RMI_VDEV_START failure), EPROTO (VDEV not STARTED afterwards) |
    public func guestRequest(function: FunctionID, _ request: GuestRequest, memory: any UserMemory) -> GuestRequestOutcome {
        let op: GuestOp
        switch envelopeOp(request, arch: .cca) {
        case let .failure(errno): return .failure(errno)
        case let .success(value): op = value
        }
        if op == .sevEnableDMA || op == .sevDisableDMA { return .failure(.invalidArgument) }
        if op.isObjectOp && !profile.objectOpsTunnelled { return .failure(.invalidArgument) }
        return state.withLock { state in
            guard state.vdevs[function] != nil else { return .failure(.noSuchAddressOrDevice) }
            let expected: Int
            switch op {
            case .readObject: expected = CCA.ReadObjectRequest.size
            case .regenObject: expected = CCA.RegenObjectRequest.size
            case .objectInfo: expected = CCA.ObjectInfoRequest.size
            case .validateMMIO: expected = CCA.ValidateMMIORequest.size
            case .setTDIState, .sevEnableDMA, .sevDisableDMA: expected = CCA.SetTDIStateRequest.size
            }
            guard Int(request.requestLength) == expected else { return .failure(.invalidArgument) }
            guard let bytes = copyIn(request, memory) else { return .failure(.badAddress) }
            switch op {
            case .readObject: return readObject(&state, function, bytes, request, memory)
            case .regenObject: return regenObject(&state, function, bytes, memory)
            case .objectInfo: return objectInfo(&state, function, bytes, request, memory)
            case .validateMMIO: return validateMMIO(&state, function, bytes)
            case .setTDIState, .sevEnableDMA, .sevDisableDMA: return setTDIState(&state, function, bytes)
            }
        }
    }

    /// READ_OBJECT: copies the host-side cached object; no RMM call (arch-backends.md §1.2).
    private func readObject(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8],
                            _ request: GuestRequest, _ memory: any UserMemory) -> GuestRequestOutcome {
        guard let vdev = state.vdevs[function], let payload = try? CCA.ReadObjectRequest(decoding: bytes),
              let object = CCA.ObjectType.object(payload.objectType, numbering: profile.ccaObjectNumbering),
              let cached = vdev.cache[object], !cached.isEmpty
        else { return .failure(.invalidArgument) }
        var data = cached
        if profile.ccaReadObjectHonoursOffset {
            guard payload.offset <= UInt64(cached.count) else { return .failure(.invalidArgument) }
            data = Array(cached[Int(payload.offset)...])
        }
        guard Int(request.responseLength) >= data.count else { return .failure(.argListTooLong) }
        guard memory.writeSucceeded(request.responseAddress, data) else { return .failure(.ioError) }
        return GuestRequestOutcome(residue: Int(request.responseLength) - data.count, response: data)
    }

    /// REGEN_OBJECT: RMI_VDEV_GET_INTERFACE_REPORT, a communicate loop (TDISP
    /// GET_DEVICE_INTERFACE_REPORT), then the cache, nonce and generation are refreshed.
    private func regenObject(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8],
                             _ memory: any UserMemory) -> GuestRequestOutcome {
        guard let vdev = state.vdevs[function], let payload = try? CCA.RegenObjectRequest(decoding: bytes),
              CCA.ObjectType.object(payload.objectType, numbering: profile.ccaObjectNumbering) == .interfaceReport
        else { return .failure(.invalidArgument) }
        guard let nonce = memory.readOrNil(payload.nonceAddress, count: CCA.RegenObjectRequest.nonceSize) else {
            return .failure(.badAddress)
        }
        // FW-CCA-1: the nonce must be fresh (differ from the one the cached report was made with).
        guard nonce != vdev.reportNonce else { return .failure(.invalidArgument) }
        let status = state.faults.firmwareCall(CCA.RMI.vdevGetInterfaceReport)
        guard status == nil, vdev.state == .locked || vdev.state == .started else {
            return .failure(.noSuchAddressOrDevice)
        }
        guard state.faults.firmwareCall(CCA.RMI.vdevCommunicate) == nil,
              let link = state.pdevs[vdev.dsm]?.link
        else { return .failure(.noSuchAddressOrDevice) }
        let report: [UInt8]
        let ranges: [MMIORange]
        do {
            let fetched = try link.requester(function).report(faults: &state.faults)
            report = fetched.bytes
            ranges = fetched.report.mmioRanges
        } catch {
            state.vdevs[function]?.state = .error
            return .failure(.noSuchAddressOrDevice)
        }
        state.vdevs[function]?.cache[.interfaceReport] = report
        state.vdevs[function]?.ranges = ranges
        state.vdevs[function]?.reportNonce = nonce
        state.vdevs[function]?.reportGeneration += 1
        return GuestRequestOutcome()
    }

    /// OBJECT_INFO: the cached size as a u32.
    private func objectInfo(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8],
                            _ request: GuestRequest, _ memory: any UserMemory) -> GuestRequestOutcome {
        guard request.responseLength >= 4 else { return .failure(.invalidArgument) }
        guard let vdev = state.vdevs[function], let payload = try? CCA.ObjectInfoRequest(decoding: bytes),
              let object = CCA.ObjectType.object(payload.objectType, numbering: profile.ccaObjectNumbering),
              let cached = vdev.cache[object], !cached.isEmpty
        else { return .failure(.invalidArgument) }
        let response = CCA.ObjectInfoResponse(objectSize: UInt32(truncatingIfNeeded: cached.count)).encoded()
        guard memory.writeSucceeded(request.responseAddress, response) else { return .failure(.ioError) }
        return GuestRequestOutcome(residue: Int(request.responseLength) - 4, response: response)
    }

    /// VALIDATE_MMIO: delegate the PA range and map it as device memory; on RMI_ERROR_RTT create
    /// the missing RTT and retry; roll back on failure.
    private func validateMMIO(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8]) -> GuestRequestOutcome {
        guard let vdev = state.vdevs[function], let payload = try? CCA.ValidateMMIORequest(decoding: bytes) else {
            return .failure(.invalidArgument)
        }
        let mask = pageSize - 1
        guard payload.gpaBase & mask == 0, payload.gpaTop & mask == 0, payload.paBase & mask == 0,
              payload.gpaBase < payload.gpaTop
        else { return .failure(.invalidArgument) }
        // Protected (private) IPA: below the top bit of a 48-bit IPA space (KVM's check on base and top-1).
        guard payload.gpaTop - 1 < CCAPlatform.protectedIPALimit else { return .failure(.invalidArgument) }
        let size = payload.gpaTop - payload.gpaBase
        guard insideReport(vdev.ranges, base: payload.paBase, size: size) else { return .failure(.invalidArgument) }
        let paTop = payload.paBase + size
        for mapping in vdev.mappings {
            let mappingPATop = mapping.paBase &+ (mapping.gpaTop - mapping.gpaBase)
            if overlaps(payload.gpaBase, payload.gpaTop, mapping.gpaBase, mapping.gpaTop)
                || overlaps(payload.paBase, paTop, mapping.paBase, mappingPATop) {
                return .failure(.invalidArgument)  // EMU-CCA-2
            }
        }
        guard state.faults.firmwareCall(CCA.RMI.granuleDelegate) == nil else { return .failure(.ioError) }
        var status = state.faults.firmwareCall(CCA.RMI.devMemMap)
        if status.map({ $0 & 0xFF }) == CCA.RMIStatus.errorRTT.rawValue {
            guard state.faults.firmwareCall(CCA.RMI.rttCreate) == nil else {
                _ = state.faults.firmwareCall(CCA.RMI.granuleUndelegate)
                return .failure(.noMemory)
            }
            status = state.faults.firmwareCall(CCA.RMI.devMemMap)
        }
        guard status == nil else {
            _ = state.faults.firmwareCall(CCA.RMI.granuleUndelegate)
            return .failure(.ioError)
        }
        state.vdevs[function]?.mappings.append(Mapping(gpaBase: payload.gpaBase, gpaTop: payload.gpaTop, paBase: payload.paBase))
        return GuestRequestOutcome()
    }

    /// SET_TDI_STATE(RUN): RMI_VDEV_START, a communicate step (TDISP START_INTERFACE with the
    /// LOCK nonce), then the VDEV must report STARTED.
    private func setTDIState(_ state: inout State, _ function: FunctionID, _ bytes: [UInt8]) -> GuestRequestOutcome {
        guard let vdev = state.vdevs[function], let payload = try? CCA.SetTDIStateRequest(decoding: bytes),
              payload.state == CCA.RHITDIState.run.rawValue
        else { return .failure(.invalidArgument) }
        let status = state.faults.firmwareCall(CCA.RMI.vdevStart)
        guard status == nil, vdev.state == .locked, let link = state.pdevs[vdev.dsm]?.link else {
            return .failure(.noSuchAddressOrDevice)
        }
        guard state.faults.firmwareCall(CCA.RMI.vdevCommunicate) == nil else {
            return .failure(.noSuchAddressOrDevice)
        }
        do {
            guard let nonce = vdev.startNonce else { throw DeviceFailure.malformed }
            try link.requester(function).start(nonce: nonce, faults: &state.faults)
        } catch {
            state.vdevs[function]?.state = .error
            return .failure(.protocolError)
        }
        state.vdevs[function]?.state = .started
        return GuestRequestOutcome()
    }

    /// First IPA that is not protected: bit 47 of a 48-bit IPA space is the unprotected bit.
    public static let protectedIPALimit: UInt64 = 1 << 47
}
