// Shared vocabulary of the three TSM firmware models: architectures, ops, the guest-request
// envelope the kernel hands a driver, its outcome, user memory, the TDISP transport and device
// evidence. Spec: docs/spec/arch-backends.md §0 and §4; docs/spec/kernel-uapi.md §4.3-§4.4.
import Device
import SystemPackage
import TDISP
import UAPI

/// The `tvm_arch` value of `struct iommu_vdevice_tsm_req`: the uAPI's own ``UAPI/TVMArch``
/// (CCA = 1, SEV = 2, TDX = 3; arch-backends.md §0 [P]), named here so firmware clients need not
/// import `UAPI`.
public typealias TSMArch = TVMArch

/// The `op` value of `struct iommu_vdevice_tsm_req` (revised uAPI).
///
/// | value | op |
/// |---|---|
/// | 1 | READ_OBJECT |
/// | 2 | REGEN_OBJECT |
/// | 3 | OBJECT_INFO |
/// | 4 | VALIDATE_MMIO |
/// | 5 | SET_TDI_STATE |
/// | 6 | SEV_ENABLE_DMA |
/// | 7 | SEV_DISABLE_DMA |
///
/// Source: arch-backends.md §0 [P].
public enum GuestOp: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case readObject = 1
    case regenObject = 2
    case objectInfo = 3
    case validateMMIO = 4
    case setTDIState = 5
    case sevEnableDMA = 6
    case sevDisableDMA = 7

    /// The uAPI enumerator name (`TSM_REQ_READ_OBJECT`, …), as `UAPI.GuestRequestOp` spells it,
    /// so the kernel glue can map a profile's op numbering onto these values by name.
    public var uapiName: String { "TSM_REQ_" + description }

    /// The op of a `UAPI.GuestRequestOp` (the kernel maps its profile's numbering to it with
    /// `UAPIProfile.op(rawValue:)`).
    public init(_ op: GuestRequestOp) {
        switch op {
        case .readObject: self = .readObject
        case .regenObject: self = .regenObject
        case .objectInfo: self = .objectInfo
        case .validateMMIO: self = .validateMMIO
        case .setTDIState: self = .setTDIState
        case .sevEnableDMA: self = .sevEnableDMA
        case .sevDisableDMA: self = .sevDisableDMA
        }
    }

    /// The op whose uAPI enumerator name is `uapiName`, or nil.
    public init?(uapiName: String) {
        guard let op = GuestOp.allCases.first(where: { $0.uapiName == uapiName }) else { return nil }
        self = op
    }

    /// True for ops 1-3, the object ops governed by ``FirmwareProfile/objectOpsTunnelled``.
    public var isObjectOp: Bool { rawValue <= 3 }

    /// The name the standard or spec uses.
    public var description: String {
        switch self {
        case .readObject: return "READ_OBJECT"
        case .regenObject: return "REGEN_OBJECT"
        case .objectInfo: return "OBJECT_INFO"
        case .validateMMIO: return "VALIDATE_MMIO"
        case .setTDIState: return "SET_TDI_STATE"
        case .sevEnableDMA: return "SEV_ENABLE_DMA"
        case .sevDisableDMA: return "SEV_DISABLE_DMA"
        }
    }
}

/// The envelope of one guest request as the kernel's pci-tsm layer hands it to a TSM driver's
/// `guest_req` (kernel-uapi.md §4.3 step 13): the fields of `struct iommu_vdevice_tsm_req` that
/// reach the driver. The payloads stay in user memory; the driver copies them in and out itself
/// through ``UserMemory``, in the order the architecture's driver does.
public struct GuestRequest: Sendable, Equatable {
    /// `op` (``GuestOp`` raw value; unknown values are rejected with EINVAL).
    public var op: UInt32
    /// `tvm_arch` (``TSMArch`` raw value; a value that is not the driver's own → EINVAL).
    public var tvmArch: UInt32
    /// `req_uptr`: user address of the request payload.
    public var requestAddress: UInt64
    /// `req_len`: request payload length in bytes.
    public var requestLength: UInt32
    /// `resp_uptr`: user address of the response buffer (0 = none).
    public var responseAddress: UInt64
    /// `resp_len`: response buffer capacity in bytes.
    public var responseLength: UInt32
    /// False when the kernel passes a kernel-space sockptr; the CCA driver rejects that with
    /// EINVAL (arch-backends.md §1.2 [P]), and so do the SEV and TDX models.
    public var isUserPointer: Bool

    /// Creates the value from its fields.
    public init(op: UInt32, tvmArch: UInt32, requestAddress: UInt64, requestLength: UInt32,
                responseAddress: UInt64, responseLength: UInt32, isUserPointer: Bool = true) {
        self.op = op
        self.tvmArch = tvmArch
        self.requestAddress = requestAddress
        self.requestLength = requestLength
        self.responseAddress = responseAddress
        self.responseLength = responseLength
        self.isUserPointer = isUserPointer
    }
}

/// What a driver's `guest_req` returns to the kernel, unchanged on its way to user space.
///
/// - `errno` nil: success; the ioctl returns ``residue`` (kernel-uapi.md §4.4: response bytes
///   not filled, or request bytes not consumed when there is no response buffer).
/// - `errno` set: the ioctl returns `-errno`.
/// - ``tsmCode`` is written back in both cases (kernel-uapi.md §4.3 step 14): always 0 for CCA,
///   the PSP status (SEV_RET_*) for SEV, the 64-bit TDX module status for TDX (arch-backends.md §4).
public struct GuestRequestOutcome: Sendable, Equatable, CustomStringConvertible {
    /// The error, or nil on success.
    public var errno: Errno?
    /// The residue on success (≥ 0); 0 on error.
    public var residue: Int
    /// The architecture's firmware status for `tsm_code`.
    public var tsmCode: UInt64
    /// The response bytes the driver wrote at `resp_uptr` (empty when none); kept for traces.
    public var response: [UInt8]

    /// Creates the value from its fields.
    public init(errno: Errno? = nil, residue: Int = 0, tsmCode: UInt64 = 0, response: [UInt8] = []) {
        self.errno = errno
        self.residue = residue
        self.tsmCode = tsmCode
        self.response = response
    }

    /// A failure with `errno` and `tsmCode`.
    public static func failure(_ errno: Errno, tsmCode: UInt64 = 0) -> GuestRequestOutcome {
        GuestRequestOutcome(errno: errno, tsmCode: tsmCode)
    }

    /// The ioctl's return value: `-errno` or the residue.
    public var returnValue: Int { errno.map { -Int($0.rawValue) } ?? residue }

    /// The name the standard or spec uses.
    public var description: String {
        if let errno { return "errno \(errno) tsm_code 0x\(String(tsmCode, radix: 16))" }
        return "ok residue \(residue) tsm_code 0x\(String(tsmCode, radix: 16)) resp \(response.count) B"
    }
}

/// The user address space of the calling process, as the driver sees it through `sockptr`s.
///
/// The requirements are those of the simulated kernel's `UserAddressSpace`, so the kernel glue
/// conforms it with an empty extension. Reads and writes that touch an unmapped byte fail as a
/// whole (nothing is written); the driver maps that to its architecture's copy-fault errno
/// (EFAULT on copy-in; EIO for CCA's READ_OBJECT/OBJECT_INFO copy-out, arch-backends.md §1.2),
/// whatever errno the memory threw.
public protocol UserMemory {
    /// `count` bytes at `address`; throws (e.g. EFAULT) when any of them is not mapped.
    func read(_ address: UInt64, count: Int) throws(Errno) -> [UInt8]
    /// Writes `bytes` at `address`; throws (and writes nothing) when any byte is not mapped.
    func write(_ address: UInt64, _ bytes: [UInt8]) throws(Errno)
}

extension UserMemory {
    /// The bytes, or nil on a fault.
    func readOrNil(_ address: UInt64, count: Int) -> [UInt8]? { try? read(address, count: count) }
    /// True when the write succeeded.
    func writeSucceeded(_ address: UInt64, _ bytes: [UInt8]) -> Bool { (try? write(address, bytes)) != nil }
}

/// A simple user address space made of mapped regions, for tests, scripts and the guest agent.
///
/// Not thread-safe by itself: one request at a time, as a single calling thread would use it.
public final class MappedUserMemory: UserMemory {
    private var regions: [(base: UInt64, bytes: [UInt8])] = []

    /// An empty address space.
    public init() {}

    /// Maps `bytes` at `base` (replacing any region with the same base).
    public func map(_ base: UInt64, _ bytes: [UInt8]) {
        regions.removeAll { $0.base == base }
        regions.append((base, bytes))
    }

    /// Maps `count` zero bytes at `base`.
    public func map(_ base: UInt64, zeroes count: Int) { map(base, [UInt8](repeating: 0, count: max(0, count))) }

    /// The bytes of the region mapped at `base`, or nil.
    public func region(_ base: UInt64) -> [UInt8]? { regions.first { $0.base == base }?.bytes }

    /// See ``UserMemory/read(_:count:)``; throws EFAULT outside a mapped region.
    public func read(_ address: UInt64, count: Int) throws(Errno) -> [UInt8] {
        guard count >= 0 else { throw .badAddress }
        if count == 0 { return [] }
        guard let (index, start) = locate(address, count) else { throw .badAddress }
        return Array(regions[index].bytes[start..<start + count])
    }

    /// See ``UserMemory/write(_:_:)``; throws EFAULT outside a mapped region.
    public func write(_ address: UInt64, _ bytes: [UInt8]) throws(Errno) {
        if bytes.isEmpty { return }
        guard let (index, start) = locate(address, bytes.count) else { throw .badAddress }
        regions[index].bytes.replaceSubrange(start..<start + bytes.count, with: bytes)
    }

    private func locate(_ address: UInt64, _ count: Int) -> (Int, Int)? {
        for (index, region) in regions.enumerated() where address >= region.base {
            let (start, overflow) = address.subtractingReportingOverflow(region.base)
            guard !overflow, start <= UInt64(region.bytes.count) else { continue }
            let begin = Int(start)
            guard count <= region.bytes.count - begin else { continue }
            return (index, begin)
        }
        return nil
    }
}

/// How a firmware model reaches a device's DSM: one TDISP request message in, one TDISP response
/// message out (the 16-byte TDISP header included, tdisp-spdm.md §2.1). Plain for now; SPDM
/// secured messages over DOE slot in behind the same protocol later.
///
/// Errors: throw ``TDISPTransportError/noResponse`` when the device does not answer.
public protocol TDISPTransport: Sendable {
    /// Sends `request` and returns the DSM's response bytes.
    func exchange(_ request: [UInt8]) throws -> [UInt8]
}

/// Transport-level failures (not TDISP_ERROR answers, which are ordinary responses).
public enum TDISPTransportError: Error, Equatable, Sendable {
    /// The device did not answer (timed out, link down, or an injected "device silent" fault).
    case noResponse
}

/// Device evidence gathered over SPDM when the link is connected, which the CCA RMM caches
/// next to the interface report (arch-backends.md §1.3) and TDX serves as device info.
///
/// All fields are opaque bytes to the firmware: the certificate chain in SPDM form
/// (DSP0274 §"GET_CERTIFICATE"), the measurement blocks, and the VCA transcript.
public struct DeviceEvidence: Sendable, Equatable {
    /// The SPDM certificate chain of the device's slot 0.
    public var certificateChain: [UInt8]
    /// The device's measurement blocks (SPDM MEASUREMENTS record).
    public var measurements: [UInt8]
    /// The VCA transcript (GET_VERSION … ALGORITHMS).
    public var vca: [UInt8]

    /// Creates the value from its fields.
    public init(certificateChain: [UInt8] = [], measurements: [UInt8] = [], vca: [UInt8] = []) {
        self.certificateChain = certificateChain
        self.measurements = measurements
        self.vca = vca
    }
}

/// The link-TSM operations every architecture's driver offers the simulated kernel
/// (kernel-uapi.md §6.1 "link ops"): connect/disconnect a DSM, bind/unbind a TDI, and
/// `guest_req`. The kernel glue registers one conforming object per platform.
public protocol LinkTSMDriver: AnyObject, Sendable {
    /// The architecture this driver serves (its own `tvm_arch`).
    var arch: TSMArch { get }
    /// Establishes the secure session and an IDE stream with the DSM at `dsm` (modelled).
    /// Errors: EBUSY when already connected; EIO when the DSM does not speak TDISP 1.0 or does
    /// not answer; ENXIO for an injected firmware failure.
    func connect(dsm: FunctionID, transport: any TDISPTransport, evidence: DeviceEvidence) throws(Errno)
    /// Tears the link down, unbinding every TDI of the DSM first. Never fails.
    func disconnect(dsm: FunctionID)
    /// Creates the TDI of `function` (managed by `dsm`) for the VM `vm` with the guest-visible
    /// id `guestID`, and moves it to CONFIG_LOCKED over TDISP. Errors per architecture (see
    /// docs/firmware.md); on failure nothing remains (the DSM is walked back to CONFIG_UNLOCKED).
    func bind(function: FunctionID, dsm: FunctionID, vm: UInt64, guestID: UInt32) throws(Errno)
    /// Stops the TDI (TDISP STOP_INTERFACE → CONFIG_UNLOCKED) and destroys it. Never fails.
    func unbind(function: FunctionID)
    /// Handles one guest request for the TDI of `function` (the envelope checks of the driver,
    /// then the op). Never throws: the result carries errno, residue and tsm_code.
    func guestRequest(function: FunctionID, _ request: GuestRequest, memory: any UserMemory) -> GuestRequestOutcome
    /// The firmware's view of the TDI's TDISP state (nil when no TDI exists), to compare with the
    /// DSM's state.
    func tdispState(function: FunctionID) -> TDIState?
    /// Installs a fault plan (docs/firmware.md "Fault injection"), resetting its counters.
    func setFaultPlan(_ plan: FaultPlan)
    /// Every firmware call (by the architecture's name) and TDISP request (`TDISP 0x8n`) made so
    /// far, in order.
    var callLog: [String] { get }
}

/// The emulated DSM of the Device module is a transport as it is: every request gets its
/// response bytes (TDISP_ERROR included), so a firmware model can drive it directly.
extension DSM: TDISPTransport {
    /// Answers `request` with the DSM's response bytes (``DSM/respond(_:)``); never throws.
    public func exchange(_ request: [UInt8]) throws -> [UInt8] { respond(request) }
}

/// Builds the platform of an architecture, for the kernel glue and `tsmctl script`.
public enum TSMFirmware {
    /// A fresh ``CCAPlatform``, ``SEVPlatform`` or ``TDXPlatform`` with `profile` (default: the
    /// spec's defaults for `arch`, arch-backends.md §6.4).
    public static func platform(for arch: TSMArch, profile: FirmwareProfile? = nil) -> any LinkTSMDriver {
        let chosen = profile ?? .defaults(for: arch)
        switch arch {
        case .cca: return CCAPlatform(profile: chosen)
        case .sev: return SEVPlatform(profile: chosen)
        case .tdx: return TDXPlatform(profile: chosen)
        }
    }
}
