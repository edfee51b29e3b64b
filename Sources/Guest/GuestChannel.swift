// How the guest (TVM) agent reaches the outside world: the untrusted host path (the VMM, which
// forwards guest requests as IOMMU_VDEVICE_TSM_REQ and hands out its copy of the device
// evidence) and, per architecture, the guest's direct path to its TSM (Realm RSI calls, SEV-SNP
// VMPCK-protected guest messages to the PSP, TDX TDCALLs). Spec: docs/spec/arch-backends.md §0,
// §1.1, §2.1, §3.1; issue 6 deliverable 2. docs/guest.md describes the flows built on these.
import SystemPackage
import TDISP
import UAPI

/// What one guest request returned through the host: the fields of `struct
/// iommu_vdevice_tsm_req` that come back to user space (kernel-uapi.md §4.3-§4.4).
public struct GuestResponse: Sendable, Equatable {
    /// The response bytes written at `resp_uptr` (at most the capacity asked for).
    public var bytes: [UInt8]
    /// The ioctl's non-negative return value: response bytes not written (or request bytes not
    /// consumed when there is no response buffer).
    public var residue: Int
    /// `tsm_code`: 0 for CCA, the PSP status for SEV, the TDX module status for TDX
    /// (arch-backends.md §4).
    public var tsmCode: UInt64

    /// Creates the value from its fields.
    public init(bytes: [UInt8], residue: Int = 0, tsmCode: UInt64 = 0) {
        self.bytes = bytes
        self.residue = residue
        self.tsmCode = tsmCode
    }
}

/// A guest request the host path failed: the ioctl returned `-errno` (with `tsm_code` written
/// back, kernel-uapi.md §4.3 step 14), or the host cannot serve the request at all.
///
/// Channel implementations throw this for every failure they can name; the agent reports any
/// other error as ``GuestAcceptanceError/Code/hostRequestFailed`` too, with its description.
public struct GuestChannelError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The errno of the failed call (EINVAL, ENXIO, …), nil when the host has no such service.
    public var errno: Errno?
    /// `tsm_code` as written back with the failure (0 when none).
    public var tsmCode: UInt64
    /// Where it failed and why, e.g. "IOMMU_VDEVICE_TSM_REQ".
    public var reason: String

    /// Creates the value from its fields.
    public init(errno: Errno?, tsmCode: UInt64 = 0, reason: String) {
        self.errno = errno
        self.tsmCode = tsmCode
        self.reason = reason
    }

    /// The host offers no such service (e.g. no copy of the device evidence).
    public static func unsupported(_ reason: String) -> GuestChannelError { GuestChannelError(errno: nil, reason: reason) }

    /// `EINVAL tsm_code 0x0: reason`.
    public var description: String {
        let name = errno.map { ErrnoName.name(of: $0) } ?? "unsupported"
        return "\(name) tsm_code 0x\(String(tsmCode, radix: 16)): \(reason)"
    }
}

/// The device evidence as the host holds it: what the VMM hands the guest outside the TSM_REQ
/// tunnel — the Linux netlink "device evidence" cache (arch-backends.md §0), SEV-TIO's TDI_INFO
/// data pages (§2.3) — all **untrusted** until checked against the digests the TSM reports.
public struct HostEvidence: Sendable, Equatable {
    /// The SPDM certificate chain of slot 0 (tdisp-spdm.md §4.5), or nil when the host has none.
    public var certificateChain: [UInt8]?
    /// The measurements report: VCA ‖ GET_MEASUREMENTS ‖ MEASUREMENTS (docs/identity.md §6).
    public var measurements: [UInt8]?
    /// The TDISP DEVICE_INTERFACE_REPORT (tdisp-spdm.md §2.9).
    public var interfaceReport: [UInt8]?

    /// Creates the value from its fields.
    public init(certificateChain: [UInt8]? = nil, measurements: [UInt8]? = nil, interfaceReport: [UInt8]? = nil) {
        self.certificateChain = certificateChain
        self.measurements = measurements
        self.interfaceReport = interfaceReport
    }
}

/// The guest's untrusted path to its device's TSM: the VMM, which turns each guest request (RHI-DA
/// host call, SEV TIO guest request, TDX TDCM) into `IOMMU_VDEVICE_TSM_REQ` on the vDevice of the
/// TDI, and which keeps a copy of the device evidence. One channel serves one TDI.
///
/// The VMM library (`VMM.tsmRequest(op:tvmArch:request:responseCapacity:)`) and the simulated
/// kernel's architecture drivers sit behind it; ``TamperingChannel`` decorates one.
public protocol GuestRequestChannel: Sendable {
    /// Sends `payload` as guest request `op` for `tvmArch` with a response buffer of
    /// `responseCapacity` bytes (0: none).
    ///
    /// Throws ``GuestChannelError`` with the errno and `tsm_code` when the ioctl fails.
    func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse

    /// The host's copy of the device evidence for this TDI (untrusted).
    ///
    /// Default: throws ``GuestChannelError/unsupported(_:)``.
    func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence
}

extension GuestRequestChannel {
    /// Default: the host keeps no evidence (``GuestChannelError/unsupported(_:)``).
    public func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence {
        throw GuestChannelError.unsupported("the host offers no copy of the device evidence")
    }
}

// MARK: - The guest's direct paths to its TSM (trusted)

/// What RSI_VDEV_GET_INFO (0xC400019D) tells a Realm about its VDEV (arch-backends.md §1.5):
/// the VDEV state, the nonces RSI_VDEV_DMA_ENABLE later checks, and the RMM's digests of the
/// objects it cached (64-byte fields; the digest algorithm is `digestAlgorithm`).
public struct CCAVDEVInfo: Sendable, Equatable {
    /// RMI VDEV state: NEW 0, UNLOCKED 1, LOCKED 2, STARTED 3, ERROR 4.
    public var vdevState: UInt8
    /// lock_nonce (changes on every lock).
    public var lockNonce: UInt64
    /// meas_nonce.
    public var measurementsNonce: UInt64
    /// report_nonce (changes on every REGEN_OBJECT).
    public var reportNonce: UInt64
    /// The algorithm of the digests below (the model uses SHA-512, FW-CCA-4).
    public var digestAlgorithm: EvidenceDigestAlgorithm
    /// Digest of the cached SPDM certificate chain.
    public var certificateDigest: [UInt8]
    /// Digest of the cached measurements.
    public var measurementsDigest: [UInt8]
    /// Digest of the cached interface report.
    public var reportDigest: [UInt8]

    /// Creates the value from its fields.
    public init(vdevState: UInt8, lockNonce: UInt64, measurementsNonce: UInt64, reportNonce: UInt64,
                digestAlgorithm: EvidenceDigestAlgorithm, certificateDigest: [UInt8], measurementsDigest: [UInt8],
                reportDigest: [UInt8]) {
        self.vdevState = vdevState
        self.lockNonce = lockNonce
        self.measurementsNonce = measurementsNonce
        self.reportNonce = reportNonce
        self.digestAlgorithm = digestAlgorithm
        self.certificateDigest = certificateDigest
        self.measurementsDigest = measurementsDigest
        self.reportDigest = reportDigest
    }

    /// RMI VDEV state LOCKED.
    public static let locked: UInt8 = 2
    /// RMI VDEV state STARTED.
    public static let started: UInt8 = 3
}

/// A Realm's RSI calls for one VDEV, handled by the RMM without the host (arch-backends.md §1.1,
/// §1.5). Each returns the RSI status: SUCCESS 0, ERROR_INPUT 1, ERROR_STATE 2, INCOMPLETE 3,
/// ERROR_UNKNOWN 4, ERROR_DEVICE 5.
public protocol CCARealmInterface: Sendable {
    /// RSI_VDEV_GET_INFO (0xC400019D).
    func vdevGetInfo() async -> (status: UInt64, info: CCAVDEVInfo?)
    /// RSI_VDEV_VALIDATE_MAPPING (0xC400019F): accept the device-memory range the host mapped.
    func vdevValidateMapping(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) async -> UInt64
    /// RSI_VDEV_DMA_ENABLE (0xC400019C) with the nonces read by RSI_VDEV_GET_INFO.
    func vdevDMAEnable(lockNonce: UInt64, measurementsNonce: UInt64, reportNonce: UInt64) async -> UInt64
}

/// An SEV-SNP guest's VMPCK-protected path to the PSP for one TDI (arch-backends.md §2.1): the
/// host carries these messages but cannot read or alter them (AES-GCM with the VMPCK; the model
/// is plaintext, EMU-SEV-2, so this protocol marks the trust boundary instead).
public protocol SEVSecureInterface: Sendable {
    /// The firmware tdi_id of the TDI (SVM_VMGEXIT_SEV_TIO_OP BIND's RCX); TDI_INFO confirms it.
    func tdiID() async throws -> UInt64
    /// The next msg_seqno of the guest's VMPCK (the sev-guest driver's counter: requests use
    /// last + 1).
    func nextSequenceNumber() async -> UInt64
    /// Sends a TIO guest message (96-byte header ‖ struct) to the PSP and returns its response
    /// message. Used for TDI_INFO (msg_type 19), which the op uAPI does not tunnel.
    func exchange(message: [UInt8]) async throws -> [UInt8]
}

/// The SHA-384 digests a TD learns from the TDX module about its TDI's evidence (EMU-GUEST-1 in
/// docs/guest.md: the TDX Connect guest ABI for this is not public, §5.3).
public struct TDXEvidenceDigests: Sendable, Equatable {
    /// The algorithm of the digests (SHA-384).
    public var algorithm: EvidenceDigestAlgorithm
    /// Digest of the SPDM certificate chain.
    public var certificateDigest: [UInt8]
    /// Digest of the measurements report.
    public var measurementsDigest: [UInt8]
    /// Digest of the TDI report (the interface report).
    public var reportDigest: [UInt8]

    /// Creates the value from its fields.
    public init(algorithm: EvidenceDigestAlgorithm = .sha384, certificateDigest: [UInt8], measurementsDigest: [UInt8],
                reportDigest: [UInt8]) {
        self.algorithm = algorithm
        self.certificateDigest = certificateDigest
        self.measurementsDigest = measurementsDigest
        self.reportDigest = reportDigest
    }
}

/// A TD's TDCALLs for one TDI, handled by the TDX module without the VMM (arch-backends.md §3.1).
/// Each returns the 64-bit TDX module status (0 = success; high half 0xC0000100 INVALID_OPERAND, …).
public protocol TDXModuleInterface: Sendable {
    /// TDG.TDI.RD (leaf 67): field 2 = TDISP state, 5 = bind session id.
    func tdiRead(field: UInt64) async -> (status: UInt64, value: UInt64)
    /// TDG.TDI.START (68): authorises the host's TDH.TDI.START for `bindSessionID`.
    func tdiStart(bindSessionID: UInt64) async -> UInt64
    /// TDG.MMIO.ACCEPT (71) of the 4 KiB page at `gpa`.
    func mmioAccept(gpa: UInt64) async -> UInt64
    /// TDG.DMAR.ACCEPT (70).
    func dmarAccept() async -> UInt64
    /// The module's digests of the TDI's evidence (EMU-GUEST-1).
    func evidenceDigests() async -> (status: UInt64, digests: TDXEvidenceDigests?)
}

/// The guest's direct path to its TSM, one per architecture.
public enum GuestTSMInterface: Sendable {
    /// Arm CCA: Realm RSI calls to the RMM.
    case cca(any CCARealmInterface)
    /// AMD SEV-TIO: VMPCK-protected guest messages to the PSP.
    case sev(any SEVSecureInterface)
    /// Intel TDX Connect: TDCALLs to the TDX module.
    case tdx(any TDXModuleInterface)

    /// The architecture.
    public var arch: TVMArch {
        switch self {
        case .cca: return .cca
        case .sev: return .sev
        case .tdx: return .tdx
        }
    }
}
