// The guest (TVM) agent: one acceptance flow per architecture, as a TVM runs it — learn the
// device's evidence through the architecture's path, verify it, validate every MMIO range of
// the interface report, move the TDI to RUN, enable DMA, confirm. Spec: docs/spec/arch-backends.md
// §1 (CCA), §2 (SEV-TIO), §3 (TDX Connect); issue 6 deliverable 2; docs/guest.md.
import Firmware
import SystemPackage
import TDISP
import UAPI
import Wire

/// One MMIO range the guest validates: `pageCount` 4 KiB pages of the TDI's MMIO at host
/// physical address `pa`, mapped at guest physical address `gpa`.
public struct GuestMMIOMapping: Sendable, Equatable {
    /// Guest physical address (4 KiB aligned).
    public var gpa: UInt64
    /// Host physical address as the interface report gives it (MMIO_RANGE first page × 4096).
    public var pa: UInt64
    /// Number of 4 KiB pages.
    public var pageCount: UInt32

    /// Creates the value from its fields.
    public init(gpa: UInt64, pa: UInt64, pageCount: UInt32) {
        self.gpa = gpa
        self.pa = pa
        self.pageCount = pageCount
    }
}

/// Which MMIO the guest validates.
public enum GuestMMIOPlan: Sendable, Equatable {
    /// Every MMIO_RANGE of the verified report, in report order, at consecutive guest addresses
    /// from `gpaBase` (4 KiB aligned).
    case automatic(gpaBase: UInt64)
    /// Exactly these ranges (e.g. the BARs the VMM presented to the guest, which are untrusted):
    /// each must lie inside one MMIO_RANGE of the verified report, else
    /// ``GuestAcceptanceError/Code/mmioRangeNotReported`` before anything is validated.
    case explicit([GuestMMIOMapping])
}

/// A device the guest accepted: its verified evidence and what the flow did.
public struct AcceptedDevice: Sendable {
    /// The architecture of the flow.
    public var arch: TVMArch
    /// The certificate chain, verified to the trust anchor.
    public var certificateChain: VerifiedCertificateChain
    /// The measurements, signature verified with the chain's leaf key.
    public var measurements: VerifiedMeasurements
    /// The interface report, digest checked against the TSM's.
    public var report: DeviceInterfaceReport
    /// The report's bytes.
    public var reportBytes: [UInt8]
    /// The MMIO ranges validated, in order.
    public var mappings: [GuestMMIOMapping]
    /// True when DMA was enabled (RSI_VDEV_DMA_ENABLE, SEV_ENABLE_DMA, TDG.DMAR.ACCEPT).
    public var dmaEnabled: Bool
    /// The TDI's state at the end (RUN).
    public var tdiState: TDIState
    /// Every event of the flow, in order.
    public var events: [GuestTranscriptEvent]
}

/// The guest (TVM) agent: runs the acceptance flow of one TDI for its architecture.
///
/// ```swift
/// let agent = GuestAgent(verifier: try EvidenceVerifier(trustAnchorDER: rootDER), observer: { print($0.step) })
/// let device = try await agent.accept(channel: vmmChannel, tsm: .cca(realm))
/// ```
///
/// Checks of the evidence, in order (first failure wins; docs/guest.md §3):
/// 1. certificate chain to the trust anchor → ``GuestAcceptanceError/Code/certificateUntrusted``;
/// 2. chain digest = the TSM's → `certificateDigestMismatch`;
/// 3. measurements decode and their signature verifies with the leaf key → `measurementsInvalid`;
/// 4. measurements digest = the TSM's → `measurementsDigestMismatch`;
/// 5. report digest = the TSM's → `reportDigestMismatch`; 6. the report decodes → `reportMalformed`.
public struct GuestAgent: Sendable {
    /// The default guest physical base of the automatic MMIO plan: 256 GiB, a protected IPA for
    /// CCA (below 2^47, FW-CCA-2) and above any low MMIO hole.
    public static let defaultGPABase: UInt64 = 0x40_0000_0000
    /// Largest object the agent reads through the host: 16 MiB (the CCA cache limit, §1.3).
    public static let maximumObjectSize = 16 << 20

    /// The verifier holding the trust anchor.
    public var verifier: EvidenceVerifier
    /// Which MMIO to validate.
    public var mmio: GuestMMIOPlan
    /// Receives each event as it happens.
    public var observer: GuestTranscriptObserver?
    /// Number of VCA bytes at the start of the measurements report (0 in TSMKit, EMU-ID-4).
    public var measurementsVCALength: Int
    /// CCA object numbering of READ_OBJECT / OBJECT_INFO (EMU-CCA-1: Linux).
    public var ccaObjectNumbering: FirmwareProfile.CCAObjectNumbering
    /// SEV TIO msg_type numbering (EMU-SEV-2: 19-26).
    public var sevMessageNumbering: FirmwareProfile.SEVMessageNumbering
    /// SEV SET_TDI_STATE payload form (1 byte, or u32 under EMU-SEV-3).
    public var sevSetStatePayload: FirmwareProfile.SEVSetStatePayload
    /// vTOM written in the SDTE by SEV_ENABLE_DMA.
    public var sevVTOM: UInt64
    /// Chain and measurements verifications to reuse across TDIs of one DSM (nil: verify every time).
    public var evidenceCache: GuestEvidenceCache?
    /// Where CCA and TDX read the evidence objects: `true` (default) with READ_OBJECT /
    /// OBJECT_INFO through the TSM_REQ tunnel; `false` from the host's copy
    /// (``GuestRequestChannel/hostEvidence(tvmArch:)``), for kernels that reject ops 1-3
    /// (`objectOpsTunnelled` off, arch-backends.md §0 "Latest direction"). SEV always uses the host's copy.
    public var objectOpsTunnelled: Bool = true

    /// Creates an agent.
    public init(verifier: EvidenceVerifier, mmio: GuestMMIOPlan = .automatic(gpaBase: GuestAgent.defaultGPABase),
                observer: GuestTranscriptObserver? = nil, measurementsVCALength: Int = 0,
                ccaObjectNumbering: FirmwareProfile.CCAObjectNumbering = .linux,
                sevMessageNumbering: FirmwareProfile.SEVMessageNumbering = .v19,
                sevSetStatePayload: FirmwareProfile.SEVSetStatePayload = .byte, sevVTOM: UInt64 = 1 << 46,
                evidenceCache: GuestEvidenceCache? = nil) {
        self.verifier = verifier
        self.mmio = mmio
        self.observer = observer
        self.measurementsVCALength = measurementsVCALength
        self.ccaObjectNumbering = ccaObjectNumbering
        self.sevMessageNumbering = sevMessageNumbering
        self.sevSetStatePayload = sevSetStatePayload
        self.sevVTOM = sevVTOM
        self.evidenceCache = evidenceCache
    }

    /// Runs the acceptance flow of `tsm`'s architecture over `channel` (the host path).
    ///
    /// Returns the accepted device with the TDI in RUN; throws ``GuestAcceptanceError`` at the
    /// first failure (its event, status `failed` or `refused`, is the last one emitted). The
    /// agent undoes nothing on failure: the host tears the TDI down (unbind).
    public func accept(channel: any GuestRequestChannel, tsm: GuestTSMInterface) async throws(GuestAcceptanceError) -> AcceptedDevice {
        let flow = Flow(arch: tsm.arch, channel: channel, observer: observer)
        switch tsm {
        case .cca(let realm): return try await acceptCCA(flow, realm)
        case .sev(let psp): return try await acceptSEV(flow, psp)
        case .tdx(let module): return try await acceptTDX(flow, module)
        }
    }
}

// MARK: - Arm CCA (arch-backends.md §1)

extension GuestAgent {
    func acceptCCA(_ flow: Flow, _ realm: any CCARealmInterface) async throws(GuestAcceptanceError) -> AcceptedDevice {
        // 1. The RMM's view: VDEV LOCKED, nonces, digests of what it cached.
        let info = try await ccaInfo(flow, realm, step: "RSI_VDEV_GET_INFO", expecting: CCAVDEVInfo.locked)
        // 2. The objects through the host (RHI-DA OBJECT_SIZE/OBJECT_READ → READ_OBJECT/OBJECT_INFO).
        let chainBytes: [UInt8], measurementBytes: [UInt8], reportBytes: [UInt8]
        if objectOpsTunnelled {
            chainBytes = try await readObject(flow, .certificateChain, raw: ccaRaw(.certificateChain))
            measurementBytes = try await readObject(flow, .measurements, raw: ccaRaw(.measurements))
            reportBytes = try await readObject(flow, .interfaceReport, raw: ccaRaw(.interfaceReport))
        } else {
            (chainBytes, measurementBytes, reportBytes) = try await allHostObjects(flow)
        }
        // 3. Verify.
        let digests = ReportedDigests(algorithm: info.digestAlgorithm, certificate: info.certificateDigest,
                                      measurements: info.measurementsDigest, report: info.reportDigest, source: "RSI_VDEV_GET_INFO")
        let evidence = try await verify(flow, chain: chainBytes, measurements: measurementBytes, report: reportBytes, digests: digests)
        // 4. Every MMIO range: the host maps it (VALIDATE_MMIO), the Realm accepts it (RSI).
        let mappings = try plan(flow, evidence.report)
        for mapping in mappings {
            let top = mapping.gpa + UInt64(mapping.pageCount) * 4096
            let request = CCA.ValidateMMIORequest(gpaBase: mapping.gpa, gpaTop: top, paBase: mapping.pa).encoded()
            _ = try await flow.host(step: "VALIDATE_MMIO", op: .validateMMIO, payload: request, capacity: 0,
                                    sent: "gpa_base \(hex(mapping.gpa)) gpa_top \(hex(top)) pa_base \(hex(mapping.pa))",
                                    failure: .mmioValidationFailed, tdiState: .configLocked)
            let status = await realm.vdevValidateMapping(gpaBase: mapping.gpa, gpaTop: top, paBase: mapping.pa)
            try flow.tsmCall(step: "RSI_VDEV_VALIDATE_MAPPING", sent: "\(hex(mapping.gpa))..\(hex(top)) → pa \(hex(mapping.pa))",
                             status: status, statusName: rsiStatusName(status), failure: .mmioValidationFailed, tdiState: .configLocked)
        }
        // 5. RUN (RHI SET_TDI_STATE → SET_TDI_STATE → RMI_VDEV_START → START_INTERFACE).
        _ = try await flow.host(step: "SET_TDI_STATE", op: .setTDIState, payload: CCA.SetTDIStateRequest(state: CCA.RHITDIState.run.rawValue).encoded(),
                                capacity: 0, sent: "tdi_state RUN (2)", path: Flow.toDevice, failure: .hostRequestFailed, tdiState: .run)
        // 6. The RMM confirms STARTED and that nothing was regenerated meanwhile.
        let after = try await ccaInfo(flow, realm, step: "RSI_VDEV_GET_INFO (confirm)", expecting: CCAVDEVInfo.started)
        guard after.lockNonce == info.lockNonce, after.measurementsNonce == info.measurementsNonce,
              after.reportNonce == info.reportNonce, after.certificateDigest == info.certificateDigest,
              after.measurementsDigest == info.measurementsDigest, after.reportDigest == info.reportDigest
        else {
            throw flow.refuse(.evidenceChanged, "the RMM's nonces or digests changed between the first RSI_VDEV_GET_INFO and RUN", step: "RSI_VDEV_GET_INFO (confirm)")
        }
        // 7. DMA: guest → RMM directly (not tunnelled, §1.1).
        let dma = await realm.vdevDMAEnable(lockNonce: info.lockNonce, measurementsNonce: info.measurementsNonce, reportNonce: info.reportNonce)
        try flow.tsmCall(step: "RSI_VDEV_DMA_ENABLE", sent: "lock_nonce \(info.lockNonce) meas_nonce \(info.measurementsNonce) report_nonce \(info.reportNonce)",
                         status: dma, statusName: rsiStatusName(dma), failure: .dmaEnableFailed, tdiState: .run)
        return flow.accepted(evidence, mappings: mappings, dmaEnabled: true)
    }

    private func ccaRaw(_ object: CCA.Object) -> UInt32 { CCA.ObjectType.raw(object, numbering: ccaObjectNumbering) ?? 0 }

    private func ccaInfo(_ flow: Flow, _ realm: any CCARealmInterface, step: String, expecting state: UInt8) async throws(GuestAcceptanceError) -> CCAVDEVInfo {
        let (status, info) = await realm.vdevGetInfo()
        guard status == 0, let info else {
            let name = status == 0 ? "SUCCESS without information" : rsiStatusName(status)
            flow.record(step: step, path: Flow.toTSM, sent: "vdev", result: name, status: .failed, tsmCode: status)
            throw GuestAcceptanceError(.tsmCallFailed, "RSI_VDEV_GET_INFO returned \(name)", step: step, status: status)
        }
        let tdiState = Self.ccaTDIState(info.vdevState)
        flow.record(step: step, path: Flow.toTSM, sent: "vdev",
                    result: "VDEV \(Self.vdevStateName(info.vdevState)), lock_nonce \(info.lockNonce), report_nonce \(info.reportNonce), \(info.digestAlgorithm) digests",
                    status: .ok, tsmCode: status, tdiState: tdiState)
        guard info.vdevState == state else {
            throw flow.refuse(.unexpectedTDIState, "the VDEV is \(Self.vdevStateName(info.vdevState)), the step needs \(Self.vdevStateName(state))", step: step, tdiState: tdiState)
        }
        return info
    }

    static func ccaTDIState(_ vdev: UInt8) -> TDIState? {
        switch vdev {
        case 1: return .configUnlocked
        case 2: return .configLocked
        case 3: return .run
        case 4: return .error
        default: return nil
        }
    }

    static func vdevStateName(_ state: UInt8) -> String {
        ["NEW", "UNLOCKED", "LOCKED", "STARTED", "ERROR"].indices.contains(Int(state))
            ? ["NEW", "UNLOCKED", "LOCKED", "STARTED", "ERROR"][Int(state)] : "state \(state)"
    }

    private func rsiStatusName(_ status: UInt64) -> String {
        let names = ["SUCCESS", "ERROR_INPUT", "ERROR_STATE", "INCOMPLETE", "ERROR_UNKNOWN", "ERROR_DEVICE"]
        return status < UInt64(names.count) ? names[Int(status)] : "status \(status)"
    }

    /// OBJECT_INFO then READ_OBJECT of one object (CCA and TDX share the 4- and 16-byte payloads).
    func readObject(_ flow: Flow, _ object: EvidenceObject, raw: UInt32) async throws(GuestAcceptanceError) -> [UInt8] {
        let info = try await flow.host(step: "OBJECT_INFO \(object)", op: .objectInfo, payload: CCA.ObjectInfoRequest(objectType: raw).encoded(),
                                       capacity: CCA.ObjectInfoResponse.size, sent: "object_type \(raw) (\(object))",
                                       failure: .hostRequestFailed, tdiState: nil)
        guard let size = try? CCA.ObjectInfoResponse(decoding: Array(info.bytes.prefix(CCA.ObjectInfoResponse.size))).objectSize,
              size > 0, Int(size) <= Self.maximumObjectSize
        else {
            throw flow.refuse(.hostRequestFailed, "OBJECT_INFO for the \(object) gave no usable size (\(info.bytes.count) response bytes)", step: "OBJECT_INFO \(object)")
        }
        let capacity = Int(size)
        let read = try await flow.host(step: "READ_OBJECT \(object)", op: .readObject, payload: CCA.ReadObjectRequest(objectType: raw).encoded(),
                                       capacity: capacity, sent: "object_type \(raw) (\(object)) offset 0, resp_len \(capacity)",
                                       failure: .hostRequestFailed, tdiState: nil)
        let written = capacity - min(max(read.residue, 0), capacity)
        return Array(read.bytes.prefix(written))
    }
}

// MARK: - AMD SEV-TIO (arch-backends.md §2)

extension GuestAgent {
    func acceptSEV(_ flow: Flow, _ psp: any SEVSecureInterface) async throws(GuestAcceptanceError) -> AcceptedDevice {
        // 1. tdi_id (TIO_OP BIND's RCX) and TDI_INFO from the PSP: bound, digests.
        let tdiID: UInt64
        do {
            tdiID = try await psp.tdiID()
        } catch {
            flow.record(step: "SEV_TIO_OP BIND (tdi_id)", path: Flow.toVMM, sent: "guest_rid", result: "\(error)", status: .failed)
            throw GuestAcceptanceError(.hostRequestFailed, "the host gave no tdi_id: \(error)", step: "SEV_TIO_OP BIND (tdi_id)")
        }
        flow.record(step: "SEV_TIO_OP BIND (tdi_id)", path: Flow.toVMM, sent: "guest_rid", result: "tdi_id \(tdiID)", status: .ok)
        let info = try await sevTDIInfo(flow, psp, tdiID: tdiID, step: "TDI_INFO")
        // 2. The objects from the host's data pages (certificates, measurements, report GUIDs).
        let (chainBytes, measurementBytes, reportBytes) = try await allHostObjects(flow)
        // 3. Verify.
        let digests = ReportedDigests(algorithm: .sha384, certificate: info.certificatesDigest, measurements: info.measurementsDigest,
                                      report: info.reportDigest, source: "TDI_INFO")
        let evidence = try await verify(flow, chain: chainBytes, measurements: measurementBytes, report: reportBytes, digests: digests)
        let mappings = try plan(flow, evidence.report)
        // 4. RUN (TIO_OP RUN → SET_TDI_STATE → TDI_BIND(run) → START_INTERFACE), then validate.
        let runPayload = SEV.SetTDIStateRequest(value: 1).encoded(payload: sevSetStatePayload)
        _ = try await flow.host(step: "SET_TDI_STATE", op: .setTDIState, payload: runPayload, capacity: 0, sent: "state RUN (1)",
                                path: Flow.toDevice, failure: .hostRequestFailed, tdiState: .run)
        // 5. MMIO_VALIDATE every range (guest message through the PSP).
        for mapping in mappings {
            guard let (rangeID, offset) = Self.sevRangePosition(mapping, in: evidence.report) else {
                throw flow.refuse(.mmioRangeNotReported, "pa \(hex(mapping.pa)) is in no MMIO_RANGE of the report", step: "MMIO_VALIDATE")
            }
            let body = SEV.MMIOValidateRequest(tdiID: tdiID, subrangeBase: mapping.gpa, subrangePageCount: mapping.pageCount,
                                               rangeOffset: offset, validated: true, rangeID: rangeID).encoded()
            let response = try await sevMessage(flow, psp, op: .validateMMIO, type: .mmioValidate, body: body, step: "MMIO_VALIDATE",
                                                sent: "range_id \(rangeID) range_offset \(hex(UInt64(offset))) gpa \(hex(mapping.gpa)) pages \(mapping.pageCount)",
                                                failure: .mmioValidationFailed)
            guard let decoded = try? SEV.MMIOValidateResponse(decoding: response), decoded.status == 0 else {
                let status = (try? SEV.MMIOValidateResponse(decoding: response))?.status
                throw flow.refuse(.mmioValidationFailed, "MMIO_VALIDATE_RSP status \(status.map(String.init) ?? "undecodable") for range_id \(rangeID)", step: "MMIO_VALIDATE", tdiState: .run)
            }
        }
        // 6. DMA: IOMMU tsm_enable + SDTE_WRITE with V = 1.
        let sdte = SEV.SDTEWriteRequest(tdiID: tdiID, sdte: SEV.SDTEWriteRequest.validSDTE(vtom: sevVTOM)).encoded()
        let written = try await sevMessage(flow, psp, op: .sevEnableDMA, type: .sdteWrite, body: sdte, step: "SEV_ENABLE_DMA",
                                           sent: "SDTE_WRITE V=1 vTOM \(hex(sevVTOM))", failure: .dmaEnableFailed)
        guard let sdteStatus = try? SEV.SDTEWriteResponse(decoding: written).status, sdteStatus == 0 else {
            throw flow.refuse(.dmaEnableFailed, "SDTE_WRITE_RSP status is not SUCCESS", step: "SEV_ENABLE_DMA", tdiState: .run)
        }
        // 7. Confirm with the PSP: still bound, the same evidence.
        let after = try await sevTDIInfo(flow, psp, tdiID: tdiID, step: "TDI_INFO (confirm)", tdiState: .run)
        guard after.certificatesDigest == info.certificatesDigest, after.measurementsDigest == info.measurementsDigest,
              after.reportDigest == info.reportDigest
        else {
            throw flow.refuse(.evidenceChanged, "the PSP's digests changed between the first TDI_INFO and RUN", step: "TDI_INFO (confirm)")
        }
        return flow.accepted(evidence, mappings: mappings, dmaEnabled: true)
    }

    private func sevTDIInfo(_ flow: Flow, _ psp: any SEVSecureInterface, tdiID: UInt64, step: String,
                            tdiState: TDIState? = nil) async throws(GuestAcceptanceError) -> SEV.TDIInfoResponse {
        let sequence = await psp.nextSequenceNumber()
        let message = SEV.GuestMessage(sequenceNumber: sequence, messageType: SEV.TIOMessage.tdiInfo.requestType(sevMessageNumbering),
                                       body: SEV.TDIInfoRequest(tdiID: tdiID).encoded()).encoded()
        let reply: [UInt8]
        do {
            reply = try await psp.exchange(message: message)
        } catch {
            flow.record(step: step, path: Flow.toTSM, sent: "TDI_INFO_REQ tdi_id \(tdiID)", request: message, result: "\(error)", status: .failed)
            throw GuestAcceptanceError(.tsmCallFailed, "TDI_INFO failed: \(error)", step: step)
        }
        guard let decoded = try? SEV.GuestMessage(decoding: reply), decoded.header.sequenceNumber == sequence &+ 1,
              let info = try? SEV.TDIInfoResponse(decoding: decoded.body)
        else {
            flow.record(step: step, path: Flow.toTSM, sent: "TDI_INFO_REQ tdi_id \(tdiID)", request: message, response: reply,
                        result: "undecodable or replayed TDI_INFO_RSP (\(reply.count) bytes)", status: .failed)
            throw GuestAcceptanceError(.tsmCallFailed, "TDI_INFO_RSP does not decode or does not carry msg_seqno \(sequence &+ 1) (\(reply.count) bytes)", step: step)
        }
        let names = ["BOUND", "INVALID", "UNBOUND"]
        let statusName = info.status < 3 ? names[Int(info.status)] : "status \(info.status)"
        flow.record(step: step, path: Flow.toTSM, sent: "TDI_INFO_REQ tdi_id \(tdiID)", request: message, response: reply,
                    result: "\(statusName), SHA-384 digests, report count \(info.reportCount)", status: .ok,
                    tdiState: info.status == 0 ? (tdiState ?? .configLocked) : nil)
        guard info.status == SEV.TDIBindStatus.bound.rawValue, info.tdiID == tdiID else {
            throw flow.refuse(.unexpectedTDIState, "TDI_INFO says tdi_id \(info.tdiID) is \(statusName), not BOUND", step: step)
        }
        return info
    }

    private func sevMessage(_ flow: Flow, _ psp: any SEVSecureInterface, op: GuestRequestOp, type: SEV.TIOMessage, body: [UInt8],
                            step: String, sent: String, failure: GuestAcceptanceError.Code) async throws(GuestAcceptanceError) -> [UInt8] {
        let sequence = await psp.nextSequenceNumber()
        let message = SEV.GuestMessage(sequenceNumber: sequence, messageType: type.requestType(sevMessageNumbering), body: body).encoded()
        let capacity = SEV.MessageHeader.size + type.responseSize
        let response = try await flow.host(step: step, op: op, payload: message, capacity: capacity, sent: "msg_seqno \(sequence) " + sent,
                                           failure: failure, tdiState: .run)
        guard let decoded = try? SEV.GuestMessage(decoding: response.bytes), decoded.header.messageType == type.responseType(sevMessageNumbering) else {
            throw flow.refuse(failure, "the \(step) response is not a \(type) response message", step: step)
        }
        // The sev-guest driver's replay check: the response carries the request's msg_seqno + 1.
        guard decoded.header.sequenceNumber == sequence &+ 1 else {
            throw flow.refuse(failure, "the \(step) response has msg_seqno \(decoded.header.sequenceNumber), not \(sequence &+ 1): a replayed or forged response",
                              step: step)
        }
        return decoded.body
    }

    /// The RANGE_ID of the report range holding `mapping` and the byte offset of `mapping.pa`
    /// counted through every range with that id in report order (FW-SEV-6).
    static func sevRangePosition(_ mapping: GuestMMIOMapping, in report: DeviceInterfaceReport) -> (UInt16, UInt32)? {
        guard let index = report.mmioRanges.firstIndex(where: { range in Self.contains(range, mapping) }) else { return nil }
        let range = report.mmioRanges[index]
        var offset: UInt64 = 0
        for earlier in report.mmioRanges[..<index] where earlier.rangeID == range.rangeID {
            offset += UInt64(earlier.numberOfPages) * MMIORange.pageSize
        }
        offset += mapping.pa - range.firstPage * MMIORange.pageSize
        guard offset <= UInt64(UInt32.max) else { return nil }
        return (range.rangeID, UInt32(offset))
    }
}

// MARK: - Intel TDX Connect (arch-backends.md §3)

extension GuestAgent {
    func acceptTDX(_ flow: Flow, _ module: any TDXModuleInterface) async throws(GuestAcceptanceError) -> AcceptedDevice {
        // 1. The module's view: CONFIG_LOCKED, the bind session, evidence digests.
        let state = try await tdxRead(flow, module, field: .tdispState, step: "TDG.TDI.RD TDISP state")
        guard state == UInt64(TDIState.configLocked.rawValue) else {
            throw flow.refuse(.unexpectedTDIState, "TDG.TDI.RD reports TDISP state \(state), not CONFIG_LOCKED (1)", step: "TDG.TDI.RD TDISP state",
                              tdiState: TDIState(rawValue: UInt8(truncatingIfNeeded: state)))
        }
        let session = try await tdxRead(flow, module, field: .bindSessionID, step: "TDG.TDI.RD bind session")
        let (digestStatus, reported) = await module.evidenceDigests()
        guard digestStatus == 0, let reported else {
            let name = digestStatus == 0 ? "SUCCESS without digests" : tdxStatusName(digestStatus)
            flow.record(step: "TDX evidence digests", path: Flow.toTSM, sent: "EMU-GUEST-1", result: name, status: .failed, tsmCode: digestStatus)
            throw GuestAcceptanceError(.tsmCallFailed, "the TDX module gave no evidence digests (\(name))", step: "TDX evidence digests", status: digestStatus)
        }
        flow.record(step: "TDX evidence digests", path: Flow.toTSM, sent: "EMU-GUEST-1", result: "\(reported.algorithm) digests of certificate chain, measurements, TDI report",
                    status: .ok, tsmCode: 0, tdiState: .configLocked)
        // 2. The TDI report through the VMM (TDCM GET_TDI_REPORT → READ_OBJECT type 1, EMU-TDX-2);
        //    certificates and measurements from the host's evidence copy.
        let host = try await hostEvidence(flow)
        let reportBytes: [UInt8]
        if objectOpsTunnelled {
            reportBytes = try await readObject(flow, .interfaceReport, raw: TDX.ObjectType.tdiReport.rawValue)
        } else if let fromHost = host.interfaceReport {
            reportBytes = fromHost
        } else {
            throw flow.refuse(.hostRequestFailed, "the host's evidence lacks the interface report", step: "host evidence")
        }
        guard let chainBytes = host.certificateChain, let measurementBytes = host.measurements else {
            throw flow.refuse(.hostRequestFailed, "the host's evidence lacks the \(host.certificateChain == nil ? "certificate chain" : "measurements")", step: "host evidence")
        }
        // 3. Verify.
        let digests = ReportedDigests(algorithm: reported.algorithm, certificate: reported.certificateDigest,
                                      measurements: reported.measurementsDigest, report: reported.reportDigest, source: "the TDX module")
        let evidence = try await verify(flow, chain: chainBytes, measurements: measurementBytes, report: reportBytes, digests: digests)
        // 4. Every MMIO range: the host maps it (TDH.MMIO.MAP), the TD accepts each page.
        let mappings = try plan(flow, evidence.report)
        for mapping in mappings {
            let top = mapping.gpa + UInt64(mapping.pageCount) * 4096
            let request = TDX.ValidateMMIORequest(gpaBase: mapping.gpa, gpaTop: top, paBase: mapping.pa).encoded()
            _ = try await flow.host(step: "VALIDATE_MMIO", op: .validateMMIO, payload: request, capacity: 0,
                                    sent: "gpa_base \(hex(mapping.gpa)) gpa_top \(hex(top)) pa_base \(hex(mapping.pa))",
                                    failure: .mmioValidationFailed, tdiState: .configLocked)
            var status: UInt64 = 0
            var page: UInt64 = 0
            while page < UInt64(mapping.pageCount), status == 0 {
                status = await module.mmioAccept(gpa: mapping.gpa + page * 4096)
                page += 1
            }
            try flow.tsmCall(step: "TDG.MMIO.ACCEPT", sent: "\(mapping.pageCount) page(s) from \(hex(mapping.gpa))", status: status,
                             statusName: tdxStatusName(status), failure: .mmioValidationFailed, tdiState: .configLocked)
        }
        // 5. Authorise START for this bind session, then RUN through the host.
        let start = await module.tdiStart(bindSessionID: session)
        try flow.tsmCall(step: "TDG.TDI.START", sent: "bind session \(session)", status: start, statusName: tdxStatusName(start),
                         failure: .tsmCallFailed, tdiState: .configLocked)
        _ = try await flow.host(step: "SET_TDI_STATE", op: .setTDIState, payload: TDX.SetTDIStateRequest(state: 2).encoded(), capacity: 0,
                                sent: "tdi_state RUN (2)", path: Flow.toDevice, failure: .hostRequestFailed, tdiState: .run)
        // 6. DMA: TDG.DMAR.ACCEPT (not tunnelled).
        let dmar = await module.dmarAccept()
        try flow.tsmCall(step: "TDG.DMAR.ACCEPT", sent: "", status: dmar, statusName: tdxStatusName(dmar), failure: .dmaEnableFailed, tdiState: .run)
        // 7. Confirm RUN with the module.
        let final = try await tdxRead(flow, module, field: .tdispState, step: "TDG.TDI.RD TDISP state (confirm)")
        guard final == UInt64(TDIState.run.rawValue) else {
            throw flow.refuse(.unexpectedTDIState, "TDG.TDI.RD reports TDISP state \(final) after START, not RUN (2)", step: "TDG.TDI.RD TDISP state (confirm)")
        }
        return flow.accepted(evidence, mappings: mappings, dmaEnabled: true)
    }

    private func tdxRead(_ flow: Flow, _ module: any TDXModuleInterface, field: TDX.TDIField, step: String) async throws(GuestAcceptanceError) -> UInt64 {
        let (status, value) = await module.tdiRead(field: field.rawValue)
        let state: TDIState? = field == .tdispState && status == 0 ? TDIState(rawValue: UInt8(truncatingIfNeeded: value)) : nil
        try flow.tsmCall(step: step, sent: "field \(field.rawValue)", status: status, statusName: tdxStatusName(status), failure: .tsmCallFailed,
                         tdiState: state, result: "value \(value)")
        return value
    }

    private func tdxStatusName(_ status: UInt64) -> String {
        switch status {
        case TDX.Status.success: return "SUCCESS"
        case TDX.Status.invalidOperand: return "INVALID_OPERAND"
        case TDX.Status.operandBusy: return "OPERAND_BUSY"
        case TDX.Status.tdiNotPresent: return "TDI_NOT_PRESENT"
        case TDX.Status.tdiInvalidState: return "TDI_INVALID_STATE"
        default: return "status 0x\(String(status, radix: 16))"
        }
    }
}

// MARK: - Shared steps

/// The digests a TSM reported through the guest's trusted path.
struct ReportedDigests {
    var algorithm: EvidenceDigestAlgorithm
    var certificate: [UInt8]
    var measurements: [UInt8]
    var report: [UInt8]
    var source: String
}

/// Verified evidence before the MMIO and RUN steps.
struct Evidence {
    var chain: VerifiedCertificateChain
    var measurements: VerifiedMeasurements
    var report: DeviceInterfaceReport
    var reportBytes: [UInt8]
}

extension GuestAgent {
    func hostEvidence(_ flow: Flow) async throws(GuestAcceptanceError) -> HostEvidence {
        let step = flow.arch == .sev ? "TDI_INFO data pages" : "host evidence"
        do {
            let evidence = try await flow.channel.hostEvidence(tvmArch: flow.arch)
            let sizes = "certificate chain \(evidence.certificateChain?.count ?? 0) B, measurements \(evidence.measurements?.count ?? 0) B, report \(evidence.interfaceReport?.count ?? 0) B"
            flow.record(step: step, path: Flow.toVMM, sent: "read the host's copy of the device evidence", result: sizes, status: .ok)
            return evidence
        } catch {
            let channelError = error as? GuestChannelError
            flow.record(step: step, path: Flow.toVMM, sent: "read the host's copy of the device evidence", result: "\(error)", status: .failed,
                        errno: channelError?.errno)
            throw GuestAcceptanceError(.hostRequestFailed, "the host's device evidence: \(error)", step: step, errno: channelError?.errno)
        }
    }

    /// The three objects from the host's copy; each must be there.
    func allHostObjects(_ flow: Flow) async throws(GuestAcceptanceError) -> ([UInt8], [UInt8], [UInt8]) {
        let host = try await hostEvidence(flow)
        guard let chain = host.certificateChain, let measurements = host.measurements, let report = host.interfaceReport else {
            let missing = host.certificateChain == nil ? "certificate chain" : host.measurements == nil ? "measurements" : "interface report"
            throw flow.refuse(.hostRequestFailed, "the host's evidence lacks the \(missing)", step: flow.arch == .sev ? "TDI_INFO data pages" : "host evidence")
        }
        return (chain, measurements, report)
    }

    /// The evidence checks, in the order of the type's documentation.
    func verify(_ flow: Flow, chain chainBytes: [UInt8], measurements measurementBytes: [UInt8], report reportBytes: [UInt8],
                digests: ReportedDigests) async throws(GuestAcceptanceError) -> Evidence {
        let chain: VerifiedCertificateChain
        let chainCached = evidenceCache?.chain(chainBytes)
        if let chainCached {
            chain = chainCached
        } else {
            do {
                chain = try await verifier.verifyCertificateChain(chainBytes)
            } catch {
                throw flow.refuse(.certificateUntrusted, "the certificate chain (\(chainBytes.count) bytes) does not verify to the trust anchor: \(error.reason)",
                                  step: "verify certificate chain", evidenceError: error)
            }
            evidenceCache?.store(chain: chain, for: chainBytes)
        }
        flow.record(step: "verify certificate chain", path: Flow.local, sent: "\(chainBytes.count) B SPDM chain",
                    result: "\(chain.certificates.count) certificates to the trust anchor" + (chainCached == nil ? "" : " (verified earlier for this DSM)"),
                    status: .ok)
        do {
            try verifier.checkDigest(of: chainBytes, .certificateChain, reported: digests.certificate, algorithm: digests.algorithm)
        } catch {
            throw flow.refuse(.certificateDigestMismatch, "the certificate chain from the host is not the one \(digests.source) digested: \(error.reason)",
                              step: "check certificate chain digest", evidenceError: error)
        }
        flow.record(step: "check certificate chain digest", path: Flow.local, sent: "\(digests.algorithm) vs \(digests.source)", result: "match", status: .ok)
        let measurements: VerifiedMeasurements
        let measurementsCached = evidenceCache?.measurements(chain: chainBytes, report: measurementBytes, vcaLength: measurementsVCALength)
        if let measurementsCached {
            measurements = measurementsCached
        } else {
            do {
                measurements = try verifier.verifyMeasurements(report: measurementBytes, vcaLength: measurementsVCALength, chain: chain)
            } catch {
                throw flow.refuse(.measurementsInvalid, "the measurements (\(measurementBytes.count) bytes) are not validly signed by the device: \(error.reason)",
                                  step: "verify measurements", evidenceError: error)
            }
            evidenceCache?.store(measurements: measurements, chain: chainBytes, report: measurementBytes, vcaLength: measurementsVCALength)
        }
        flow.record(step: "verify measurements", path: Flow.local, sent: "\(measurementBytes.count) B report",
                    result: "\(measurements.blocks.count) blocks, signature valid" + (measurementsCached == nil ? "" : " (verified earlier for this DSM)"),
                    status: .ok)
        do {
            try verifier.checkDigest(of: measurementBytes, .measurements, reported: digests.measurements, algorithm: digests.algorithm)
        } catch {
            throw flow.refuse(.measurementsDigestMismatch, "the measurements from the host are not the ones \(digests.source) digested: \(error.reason)",
                              step: "check measurements digest", evidenceError: error)
        }
        flow.record(step: "check measurements digest", path: Flow.local, sent: "\(digests.algorithm) vs \(digests.source)", result: "match", status: .ok)
        do {
            try verifier.checkDigest(of: reportBytes, .interfaceReport, reported: digests.report, algorithm: digests.algorithm)
        } catch {
            throw flow.refuse(.reportDigestMismatch, "the interface report from the host is not the one \(digests.source) digested: \(error.reason)",
                              step: "check interface report digest", evidenceError: error)
        }
        flow.record(step: "check interface report digest", path: Flow.local, sent: "\(digests.algorithm) vs \(digests.source)", result: "match", status: .ok)
        let report: DeviceInterfaceReport
        do {
            report = try DeviceInterfaceReport(decoding: reportBytes)
        } catch {
            throw flow.refuse(.reportMalformed, "the interface report (\(reportBytes.count) bytes) does not decode: \(error)", step: "decode interface report")
        }
        flow.record(step: "decode interface report", path: Flow.local, sent: "\(reportBytes.count) B",
                    result: "\(report.mmioRanges.count) MMIO range(s)", status: .ok)
        return Evidence(chain: chain, measurements: measurements, report: report, reportBytes: reportBytes)
    }

    /// The MMIO ranges to validate under ``mmio``; every one inside a reported range.
    func plan(_ flow: Flow, _ report: DeviceInterfaceReport) throws(GuestAcceptanceError) -> [GuestMMIOMapping] {
        let step = "check MMIO ranges"
        var mappings: [GuestMMIOMapping] = []
        switch mmio {
        case .automatic(let gpaBase):
            var gpa = gpaBase
            for range in report.mmioRanges {
                let (pa, paOverflow) = range.firstPage.multipliedReportingOverflow(by: MMIORange.pageSize)
                let size = UInt64(range.numberOfPages) * MMIORange.pageSize
                let (next, gpaOverflow) = gpa.addingReportingOverflow(size)
                guard !paOverflow, !gpaOverflow, range.numberOfPages > 0, gpa & 0xFFF == 0 else {
                    throw flow.refuse(.reportMalformed, "MMIO_RANGE id \(range.rangeID) (first page \(hex(range.firstPage)), \(range.numberOfPages) pages) cannot be mapped from gpa \(hex(gpa))", step: step)
                }
                mappings.append(GuestMMIOMapping(gpa: gpa, pa: pa, pageCount: range.numberOfPages))
                gpa = next
            }
        case .explicit(let given):
            for mapping in given {
                let (_, gpaOverflow) = mapping.gpa.addingReportingOverflow(UInt64(mapping.pageCount) * MMIORange.pageSize)
                guard !gpaOverflow, mapping.gpa & 0xFFF == 0 else {
                    throw flow.refuse(.mmioValidationFailed, "gpa \(hex(mapping.gpa)) + \(mapping.pageCount) page(s) is not a 4 KiB-aligned guest range", step: step)
                }
                guard mapping.pageCount > 0, report.mmioRanges.contains(where: { Self.contains($0, mapping) }) else {
                    throw flow.refuse(.mmioRangeNotReported,
                                      "MMIO pa \(hex(mapping.pa)) + \(mapping.pageCount) page(s) (gpa \(hex(mapping.gpa))) lies in no MMIO_RANGE of the interface report",
                                      step: step)
                }
                mappings.append(mapping)
            }
        }
        flow.record(step: step, path: Flow.local, sent: "\(mappings.count) range(s)",
                    result: "every range inside the report's \(report.mmioRanges.count) MMIO_RANGE(s)", status: .ok)
        return mappings
    }

    /// True when `mapping`'s PA range lies inside `range` (no overflow on either).
    static func contains(_ range: MMIORange, _ mapping: GuestMMIOMapping) -> Bool {
        let (start, o1) = range.firstPage.multipliedReportingOverflow(by: MMIORange.pageSize)
        let (end, o2) = start.addingReportingOverflow(UInt64(range.numberOfPages) * MMIORange.pageSize)
        let (mapEnd, o3) = mapping.pa.addingReportingOverflow(UInt64(mapping.pageCount) * MMIORange.pageSize)
        guard !o1, !o2, !o3 else { return false }
        return mapping.pa >= start && mapEnd <= end && mapping.pa & 0xFFF == 0
    }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }

// MARK: - The flow's bookkeeping

/// Events, their numbering and the host calls of one flow run (one task; never shared).
final class Flow {
    static let local: [GuestTranscriptEvent.Layer] = [.guest]
    static let toVMM: [GuestTranscriptEvent.Layer] = [.guest, .vmm]
    static let toTSM: [GuestTranscriptEvent.Layer] = [.guest, .tsm]
    static let viaHost: [GuestTranscriptEvent.Layer] = [.guest, .vmm, .kernel, .tsm]
    static let toDevice: [GuestTranscriptEvent.Layer] = [.guest, .vmm, .kernel, .tsm, .device]

    let arch: TVMArch
    let channel: any GuestRequestChannel
    let observer: GuestTranscriptObserver?
    private(set) var events: [GuestTranscriptEvent] = []
    private var lastState: TDIState?

    init(arch: TVMArch, channel: any GuestRequestChannel, observer: GuestTranscriptObserver?) {
        self.arch = arch
        self.channel = channel
        self.observer = observer
    }

    func record(step: String, path: [GuestTranscriptEvent.Layer], op: GuestRequestOp? = nil, sent: String, request: [UInt8] = [],
                response: [UInt8] = [], result: String, status: GuestTranscriptEvent.Status, errno: Errno? = nil,
                tsmCode: UInt64? = nil, tdiState: TDIState? = nil) {
        if let tdiState { lastState = tdiState }
        let event = GuestTranscriptEvent(index: events.count + 1, arch: arch, step: step, path: path, op: op, sent: sent, request: request,
                                         response: response, result: result, status: status, errno: errno, tsmCode: tsmCode,
                                         tdiState: tdiState)
        events.append(event)
        observer?(event)
    }

    /// Records a refusal and returns its error.
    func refuse(_ code: GuestAcceptanceError.Code, _ reason: String, step: String, tdiState: TDIState? = nil,
                evidenceError: EvidenceError? = nil) -> GuestAcceptanceError {
        record(step: step, path: Flow.local, sent: "", result: "\(code): \(reason)", status: .refused, tdiState: tdiState)
        return GuestAcceptanceError(code, reason, step: step, evidenceError: evidenceError)
    }

    /// Records a direct TSM call; throws `failure` when `status` is not 0.
    func tsmCall(step: String, sent: String, status: UInt64, statusName: String, failure: GuestAcceptanceError.Code,
                 tdiState: TDIState?, result: String? = nil) throws(GuestAcceptanceError) {
        guard status == 0 else {
            record(step: step, path: Flow.toTSM, sent: sent, result: statusName, status: .failed, tsmCode: status)
            throw GuestAcceptanceError(failure, "\(step) returned \(statusName)", step: step, status: status)
        }
        record(step: step, path: Flow.toTSM, sent: sent, result: result ?? statusName, status: .ok, tsmCode: status, tdiState: tdiState)
    }

    /// One guest request through the host; a failure becomes `failure` with the errno and tsm_code.
    func host(step: String, op: GuestRequestOp, payload: [UInt8], capacity: Int, sent: String, path: [GuestTranscriptEvent.Layer] = Flow.viaHost,
              failure: GuestAcceptanceError.Code, tdiState: TDIState?) async throws(GuestAcceptanceError) -> GuestResponse {
        let response: GuestResponse
        do {
            response = try await channel.request(op: op, tvmArch: arch, payload: payload, responseCapacity: capacity)
        } catch {
            let channelError = error as? GuestChannelError
            let name = channelError?.errno.map { ErrnoName.name(of: $0) } ?? "error"
            record(step: step, path: path, op: op, sent: sent, request: payload, result: "\(name) tsm_code 0x\(String(channelError?.tsmCode ?? 0, radix: 16))",
                   status: .failed, errno: channelError?.errno, tsmCode: channelError?.tsmCode)
            throw GuestAcceptanceError(failure, "\(op.rawValue) (\(step)) failed through the host: \(error)", step: step,
                                       errno: channelError?.errno, status: channelError?.tsmCode)
        }
        record(step: step, path: path, op: op, sent: sent, request: payload, response: response.bytes,
               result: "ok, residue \(response.residue), tsm_code 0x\(String(response.tsmCode, radix: 16))", status: .ok,
               tsmCode: response.tsmCode, tdiState: tdiState)
        return response
    }

    func accepted(_ evidence: Evidence, mappings: [GuestMMIOMapping], dmaEnabled: Bool) -> AcceptedDevice {
        record(step: "confirm", path: Flow.local, sent: "", result: "device accepted: evidence verified, \(mappings.count) MMIO range(s) validated, TDI RUN, DMA enabled",
               status: .ok, tdiState: .run)
        return AcceptedDevice(arch: arch, certificateChain: evidence.chain, measurements: evidence.measurements, report: evidence.report,
                              reportBytes: evidence.reportBytes, mappings: mappings, dmaEnabled: dmaEnabled, tdiState: .run, events: events)
    }
}
