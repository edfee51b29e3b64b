// The guest's two paths served in-process by the Firmware platform models, for the simulated
// platform (`tsmctl assign --backend simulated`, the scale benchmark, tests): the direct TSM path
// of each architecture (Realm RSI, the PSP, TDCALLs) and, until a kernel-backed channel is used,
// a host path straight into a platform's guest_req. docs/guest.md §5.
import Firmware
import SystemPackage
import TDISP
import UAPI

/// Realm RSI calls of the Realm `vm` for the VDEV of `function`, answered by a ``CCAPlatform``
/// (its `rsiVDEV*` calls; digests SHA-512, FW-CCA-4).
public struct SimulatedRealm: CCARealmInterface {
    /// The RMM model.
    public let platform: CCAPlatform
    /// The TDI's function.
    public let function: FunctionID
    /// The Realm (the `vm` given at bind).
    public let vm: UInt64

    /// Creates the value from its fields.
    public init(platform: CCAPlatform, function: FunctionID, vm: UInt64) {
        self.platform = platform
        self.function = function
        self.vm = vm
    }

    /// RSI_VDEV_GET_INFO.
    public func vdevGetInfo() async -> (status: UInt64, info: CCAVDEVInfo?) {
        let (status, info) = platform.rsiVDEVGetInfo(function: function, vm: vm)
        return (status, info.map {
            CCAVDEVInfo(vdevState: $0.state.rawValue, lockNonce: $0.lockNonce, measurementsNonce: $0.measurementsNonce,
                        reportNonce: $0.reportNonce, digestAlgorithm: .sha512, certificateDigest: $0.certificateDigest,
                        measurementsDigest: $0.measurementsDigest, reportDigest: $0.reportDigest)
        })
    }

    /// RSI_VDEV_VALIDATE_MAPPING.
    public func vdevValidateMapping(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) async -> UInt64 {
        platform.rsiVDEVValidateMapping(function: function, vm: vm, gpaBase: gpaBase, gpaTop: gpaTop, paBase: paBase)
    }

    /// RSI_VDEV_DMA_ENABLE.
    public func vdevDMAEnable(lockNonce: UInt64, measurementsNonce: UInt64, reportNonce: UInt64) async -> UInt64 {
        platform.rsiVDEVDMAEnable(function: function, vm: vm, lockNonce: lockNonce, measurementsNonce: measurementsNonce,
                                  reportNonce: reportNonce)
    }
}

/// The PSP path of the SNP guest `vm` for the TDI of `function`, answered by an ``SEVPlatform``:
/// tdi_id, the VMPCK sequence counter, and TIO guest messages through the v5 PCI_INFO scope
/// (scope 0), the only form that carries TDI_INFO.
public struct SimulatedPSP: SEVSecureInterface {
    /// The PSP model.
    public let platform: SEVPlatform
    /// The TDI's function.
    public let function: FunctionID
    /// The guest (the `vm` given at bind).
    public let vm: UInt64

    /// Creates the value from its fields.
    public init(platform: SEVPlatform, function: FunctionID, vm: UInt64) {
        self.platform = platform
        self.function = function
        self.vm = vm
    }

    /// The firmware tdi_id; ``GuestChannelError`` ENXIO when no TDI is bound.
    public func tdiID() async throws -> UInt64 {
        guard let id = platform.tdiID(function: function) else {
            throw GuestChannelError(errno: .noSuchAddressOrDevice, reason: "TIO_OP BIND: no TDI is bound for \(function)")
        }
        return id
    }

    /// The next msg_seqno the PSP expects from this guest.
    public func nextSequenceNumber() async -> UInt64 { platform.nextSequenceNumber(vm: vm) }

    /// One TIO guest message through PSP TIO_GUEST_REQUEST; ``GuestChannelError`` with the errno
    /// and PSP status on failure.
    public func exchange(message: [UInt8]) async throws -> [UInt8] {
        let memory = MappedUserMemory()
        let requestAddress: UInt64 = 0x1000, responseAddress: UInt64 = 0x10_0000, capacity = 4096
        memory.map(requestAddress, message)
        memory.map(responseAddress, zeroes: capacity)
        let request = GuestRequest(op: 0, tvmArch: TVMArch.sev.rawValue, requestAddress: requestAddress,
                                   requestLength: UInt32(truncatingIfNeeded: message.count), responseAddress: responseAddress,
                                   responseLength: UInt32(capacity))
        let outcome = platform.scopeRequest(function: function, scope: 0, request, memory: memory)
        if let errno = outcome.errno {
            throw GuestChannelError(errno: errno, tsmCode: outcome.tsmCode, reason: "TIO_GUEST_REQUEST")
        }
        return outcome.response
    }
}

/// TDCALLs of the TD `vm` for the TDI of `function`, answered by a ``TDXPlatform``.
///
/// ``evidenceDigests()`` (EMU-GUEST-1) has no TDCALL in the model: it digests (SHA-384) the TDI
/// report the module caches (read with the model's TDCM GET_TDI_REPORT service directly, not
/// through the host) and the `evidence` the module was given at connect.
public struct SimulatedTDXModule: TDXModuleInterface {
    /// The TDX module model.
    public let platform: TDXPlatform
    /// The TDI's function.
    public let function: FunctionID
    /// The TD (the `vm` given at bind).
    public let vm: UInt64
    /// The evidence given to the module at connect.
    public let evidence: DeviceEvidence

    /// Creates the value from its fields.
    public init(platform: TDXPlatform, function: FunctionID, vm: UInt64, evidence: DeviceEvidence) {
        self.platform = platform
        self.function = function
        self.vm = vm
        self.evidence = evidence
    }

    /// TDG.TDI.RD.
    public func tdiRead(field: UInt64) async -> (status: UInt64, value: UInt64) {
        platform.tdgTDIRead(function: function, vm: vm, field: field)
    }

    /// TDG.TDI.START.
    public func tdiStart(bindSessionID: UInt64) async -> UInt64 {
        platform.tdgTDIStart(function: function, vm: vm, bindSessionID: bindSessionID)
    }

    /// TDG.MMIO.ACCEPT.
    public func mmioAccept(gpa: UInt64) async -> UInt64 { platform.tdgMMIOAccept(function: function, vm: vm, gpa: gpa) }

    /// TDG.DMAR.ACCEPT.
    public func dmarAccept() async -> UInt64 { platform.tdgDMARAccept(function: function, vm: vm) }

    /// EMU-GUEST-1 digests; TDI_NOT_PRESENT when the module has no report for the TDI.
    public func evidenceDigests() async -> (status: UInt64, digests: TDXEvidenceDigests?) {
        // The module's cached report (GET_TDI_REPORT of the model's TDCM service reads it; no host).
        let request = TDX.TDCMBuffer(operation: TDX.TDCMOperation.getTDIReport.rawValue).encoded()
        guard let reply = platform.serviceTDCM(function: function, dsm: function, vm: vm, request: request),
              reply.status == TDX.TDCMStatus.completed
        else { return (TDX.Status.tdiNotPresent, nil) }
        let sha384 = EvidenceDigestAlgorithm.sha384
        return (TDX.Status.success, TDXEvidenceDigests(certificateDigest: sha384.digest(evidence.certificateChain),
                                                      measurementsDigest: sha384.digest(evidence.measurements),
                                                      reportDigest: sha384.digest(reply.data)))
    }
}

extension GuestTSMInterface {
    /// The direct TSM path of `platform`'s architecture for the TDI of `function` in VM `vm`
    /// (`evidence`: what the platform was given at connect, used by TDX's EMU-GUEST-1 digests).
    /// Nil when `platform` is not one of the three Firmware platforms.
    public static func simulated(_ platform: any LinkTSMDriver, function: FunctionID, vm: UInt64,
                                 evidence: DeviceEvidence) -> GuestTSMInterface? {
        if let cca = platform as? CCAPlatform { return .cca(SimulatedRealm(platform: cca, function: function, vm: vm)) }
        if let sev = platform as? SEVPlatform { return .sev(SimulatedPSP(platform: sev, function: function, vm: vm)) }
        if let tdx = platform as? TDXPlatform {
            return .tdx(SimulatedTDXModule(platform: tdx, function: function, vm: vm, evidence: evidence))
        }
        return nil
    }
}

/// A host path with no VMM and no kernel: each guest request goes straight into a platform's
/// `guest_req` through a fresh user memory (request at 0x1000_0000, response at 0x2000_0000;
/// `resp_uptr` 0 when the capacity is 0). For tests and benchmarks of the guest alone; a real
/// assignment uses the VMM library's channel. `hostEvidence` returns what it was given.
public struct DirectFirmwareChannel: GuestRequestChannel {
    /// The platform whose guest_req serves the requests.
    public let platform: any LinkTSMDriver
    /// The TDI's function.
    public let function: FunctionID
    /// What ``hostEvidence(tvmArch:)`` returns (nil: unsupported).
    public let evidence: HostEvidence?

    /// Creates the value from its fields.
    public init(platform: any LinkTSMDriver, function: FunctionID, evidence: HostEvidence? = nil) {
        self.platform = platform
        self.function = function
        self.evidence = evidence
    }

    /// The platform's guest_req; ``GuestChannelError`` with its errno and tsm_code on failure.
    public func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
        guard responseCapacity >= 0, responseCapacity <= Int(UInt32.max), payload.count <= Int(UInt32.max) else {
            throw GuestChannelError(errno: .invalidArgument, reason: "request or response size does not fit a u32")
        }
        let memory = MappedUserMemory()
        let requestAddress: UInt64 = 0x1000_0000, responseAddress: UInt64 = 0x2000_0000
        memory.map(requestAddress, payload)
        memory.map(responseAddress, zeroes: responseCapacity)
        let request = GuestRequest(op: GuestOp(op).rawValue, tvmArch: tvmArch.rawValue, requestAddress: requestAddress,
                                   requestLength: UInt32(payload.count), responseAddress: responseCapacity > 0 ? responseAddress : 0,
                                   responseLength: UInt32(responseCapacity))
        let outcome = platform.guestRequest(function: function, request, memory: memory)
        if let errno = outcome.errno {
            throw GuestChannelError(errno: errno, tsmCode: outcome.tsmCode, reason: "guest_req \(op.rawValue)")
        }
        return GuestResponse(bytes: memory.region(responseAddress) ?? [], residue: outcome.residue, tsmCode: outcome.tsmCode)
    }

    /// The evidence given at init; ``GuestChannelError/unsupported(_:)`` when none.
    public func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence {
        guard let evidence else { throw GuestChannelError.unsupported("this host path keeps no copy of the device evidence") }
        return evidence
    }
}
