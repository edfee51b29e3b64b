// Test support: the guest's two paths served straight from the Firmware platform models (no
// simulated kernel yet), connected to a real DSM built from Examples/devices/tee-io-endpoint-sriov.lspci
// and to a DeviceIdentity whose certificate chain and signed measurements are the evidence the
// TSM caches at connect.
import Device
import Firmware
import Foundation
import Guest
import PCI
import Synchronization
import SystemPackage
import TDISP
import Testing
import UAPI

/// One platform of one architecture with the dump's DSM connected and one TDI bound.
struct FirmwareWorld: Sendable {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let pf = FunctionID(requesterID: 0xE100)
    static let vf = FunctionID(requesterID: 0xE120)
    static let vm: UInt64 = 7
    /// One identity for the whole test run (ECDSA signatures differ per make, EMU-ID-5).
    static let identity: DeviceIdentity = {
        do {
            return try DeviceIdentity.make(seed: Array("guest tests device".utf8), vendorID: 0x8086, deviceID: 0x0B25,
                                           serial: "TSMKIT-GUEST-1")
        } catch {
            preconditionFailure("test identity: \(error)")  // our own fixed inputs, not test input
        }
    }()
    /// Signed measurements as the TSM collected them at connect (requester nonce 0x5A…).
    static let measurements: [UInt8] = {
        do {
            return try identity.signMeasurements(requesterNonce: [UInt8](repeating: 0x5A, count: 32)).report
        } catch {
            preconditionFailure("test measurements: \(error)")
        }
    }()
    /// Another vendor's root: a trust anchor the device does not chain to.
    static let otherRoot: [UInt8] = {
        do {
            return try DeviceIdentity.make(seed: Array("another vendor".utf8), vendorID: 0x1234, deviceID: 1, serial: "OTHER-1")
                .chain.derCertificates[0]
        } catch {
            preconditionFailure("other root: \(error)")
        }
    }()

    let arch: TVMArch
    let platform: any LinkTSMDriver
    let dsm: DSM
    let function: FunctionID

    init(_ arch: TVMArch, function: FunctionID = FirmwareWorld.vf) throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci"), encoding: .utf8)
        let topology = try PCITopology(lspci: text)
        let bdf = try #require(BDF("e1:00.0"))
        dsm = try DSM(device: topology, dsm: bdf, entropy: .seeded(5))
        self.arch = arch
        self.function = function
        platform = TSMFirmware.platform(for: arch)
        try platform.connect(dsm: Self.pf, transport: dsm,
                             evidence: DeviceEvidence(certificateChain: Self.identity.spdmCertificateChain, measurements: Self.measurements))
        try platform.bind(function: function, dsm: Self.pf, vm: Self.vm, guestID: 0x10)
    }

    /// The DSM's own view of the TDI's state.
    var deviceState: TDIState? { dsm.tdi(InterfaceID(functionID: function))?.state }
    /// The report the DSM built at LOCK.
    var report: [UInt8] { dsm.tdi(InterfaceID(functionID: function))?.report?.encoded() ?? [] }
    var reportRanges: [MMIORange] { dsm.tdi(InterfaceID(functionID: function))?.report?.mmioRanges ?? [] }

    /// The host path: guest requests straight into the platform's guest_req.
    var channel: FirmwareChannel { FirmwareChannel(platform: platform, function: function, evidence: hostEvidence) }

    /// What the host keeps: the TSM's evidence and the DSM's report (SEV data pages, netlink).
    var hostEvidence: HostEvidence {
        HostEvidence(certificateChain: Self.identity.spdmCertificateChain, measurements: Self.measurements, interfaceReport: report)
    }

    /// The guest's direct path to its TSM.
    var tsm: GuestTSMInterface {
        switch arch {
        case .cca: return .cca(CCARealm(platform: platform as? CCAPlatform, function: function, vm: Self.vm))
        case .sev: return .sev(SEVPSP(platform: platform as? SEVPlatform, function: function, vm: Self.vm))
        case .tdx: return .tdx(TDXModule(platform: platform as? TDXPlatform, function: function, vm: Self.vm))
        }
    }

    func agent(anchor: [UInt8] = FirmwareWorld.identity.chain.derCertificates[0], mmio: GuestMMIOPlan = .automatic(gpaBase: GuestAgent.defaultGPABase),
               observer: GuestTranscriptObserver? = nil) throws -> GuestAgent {
        GuestAgent(verifier: try EvidenceVerifier(trustAnchorDER: anchor), mmio: mmio, observer: observer)
    }
}

/// `guest_req` of a firmware platform through a fresh user memory per request.
struct FirmwareChannel: GuestRequestChannel {
    let platform: any LinkTSMDriver
    let function: FunctionID
    let evidence: HostEvidence

    static let requestAddress: UInt64 = 0x1000_0000
    static let responseAddress: UInt64 = 0x2000_0000

    func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
        let memory = FlatUserMemory()
        memory.map(Self.requestAddress, payload)
        memory.map(Self.responseAddress, zeroes: responseCapacity)
        let request = GuestRequest(op: GuestOp(op).rawValue, tvmArch: tvmArch.rawValue, requestAddress: Self.requestAddress,
                                   requestLength: UInt32(payload.count),
                                   responseAddress: responseCapacity > 0 ? Self.responseAddress : 0,
                                   responseLength: UInt32(responseCapacity))
        let outcome = platform.guestRequest(function: function, request, memory: memory)
        if let errno = outcome.errno {
            throw GuestChannelError(errno: errno, tsmCode: outcome.tsmCode, reason: "guest_req \(op.rawValue)")
        }
        return GuestResponse(bytes: memory.region(Self.responseAddress) ?? [], residue: outcome.residue, tsmCode: outcome.tsmCode)
    }

    func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence { evidence }
}

/// Realm RSI calls straight into the RMM model.
struct CCARealm: CCARealmInterface {
    let platform: CCAPlatform?
    let function: FunctionID
    let vm: UInt64

    func vdevGetInfo() async -> (status: UInt64, info: CCAVDEVInfo?) {
        guard let platform else { return (1, nil) }
        let (status, info) = platform.rsiVDEVGetInfo(function: function, vm: vm)
        return (status, info.map {
            CCAVDEVInfo(vdevState: $0.state.rawValue, lockNonce: $0.lockNonce, measurementsNonce: $0.measurementsNonce,
                        reportNonce: $0.reportNonce, digestAlgorithm: .sha512, certificateDigest: $0.certificateDigest,
                        measurementsDigest: $0.measurementsDigest, reportDigest: $0.reportDigest)
        })
    }

    func vdevValidateMapping(gpaBase: UInt64, gpaTop: UInt64, paBase: UInt64) async -> UInt64 {
        platform?.rsiVDEVValidateMapping(function: function, vm: vm, gpaBase: gpaBase, gpaTop: gpaTop, paBase: paBase) ?? 1
    }

    func vdevDMAEnable(lockNonce: UInt64, measurementsNonce: UInt64, reportNonce: UInt64) async -> UInt64 {
        platform?.rsiVDEVDMAEnable(function: function, vm: vm, lockNonce: lockNonce, measurementsNonce: measurementsNonce,
                                   reportNonce: reportNonce) ?? 1
    }
}

/// The PSP path: tdi_id, the VMPCK counter, TDI_INFO through the v5 PCI_INFO scope.
struct SEVPSP: SEVSecureInterface {
    let platform: SEVPlatform?
    let function: FunctionID
    let vm: UInt64

    func tdiID() async throws -> UInt64 {
        guard let id = platform?.tdiID(function: function) else { throw GuestChannelError(errno: .noSuchAddressOrDevice, reason: "no TDI") }
        return id
    }

    func nextSequenceNumber() async -> UInt64 { platform?.nextSequenceNumber(vm: vm) ?? 1 }

    func exchange(message: [UInt8]) async throws -> [UInt8] {
        guard let platform else { throw GuestChannelError(errno: .noSuchAddressOrDevice, reason: "no PSP") }
        let memory = FlatUserMemory()
        memory.map(0x1000, message)
        memory.map(0x8000, zeroes: 4096)
        let outcome = platform.scopeRequest(function: function, scope: 0,
                                            GuestRequest(op: 0, tvmArch: TVMArch.sev.rawValue, requestAddress: 0x1000,
                                                         requestLength: UInt32(message.count), responseAddress: 0x8000, responseLength: 4096),
                                            memory: memory)
        if let errno = outcome.errno { throw GuestChannelError(errno: errno, tsmCode: outcome.tsmCode, reason: "TIO_GUEST_REQUEST") }
        return outcome.response
    }
}

/// TDCALLs straight into the TDX module model; the evidence digests (EMU-GUEST-1) are computed
/// here from what the module caches (the report, read without the host) and the evidence it was
/// given at connect, since the model has no such TDCALL yet.
struct TDXModule: TDXModuleInterface {
    let platform: TDXPlatform?
    let function: FunctionID
    let vm: UInt64

    func tdiRead(field: UInt64) async -> (status: UInt64, value: UInt64) {
        platform?.tdgTDIRead(function: function, vm: vm, field: field) ?? (TDX.Status.tdiNotPresent, 0)
    }

    func tdiStart(bindSessionID: UInt64) async -> UInt64 {
        platform?.tdgTDIStart(function: function, vm: vm, bindSessionID: bindSessionID) ?? TDX.Status.tdiNotPresent
    }

    func mmioAccept(gpa: UInt64) async -> UInt64 { platform?.tdgMMIOAccept(function: function, vm: vm, gpa: gpa) ?? TDX.Status.tdiNotPresent }

    func dmarAccept() async -> UInt64 { platform?.tdgDMARAccept(function: function, vm: vm) ?? TDX.Status.tdiNotPresent }

    func evidenceDigests() async -> (status: UInt64, digests: TDXEvidenceDigests?) {
        guard let platform else { return (TDX.Status.tdiNotPresent, nil) }
        let channel = FirmwareChannel(platform: platform, function: function, evidence: HostEvidence())
        guard let report = try? await channel.request(op: .readObject, tvmArch: .tdx,
                                                      payload: TDX.ReadObjectRequest(objectType: TDX.ObjectType.tdiReport.rawValue).encoded(),
                                                      responseCapacity: 0x10000)
        else { return (TDX.Status.tdiNotPresent, nil) }
        let bytes = Array(report.bytes.prefix(0x10000 - report.residue))
        return (0, TDXEvidenceDigests(certificateDigest: EvidenceDigestAlgorithm.sha384.digest(FirmwareWorld.identity.spdmCertificateChain),
                                      measurementsDigest: EvidenceDigestAlgorithm.sha384.digest(FirmwareWorld.measurements),
                                      reportDigest: EvidenceDigestAlgorithm.sha384.digest(bytes)))
    }
}

/// Collects transcript events from the observer callback.
final class EventLog: Sendable {
    private let storage = Mutex<[GuestTranscriptEvent]>([])
    var events: [GuestTranscriptEvent] { storage.withLock { $0 } }
    var observer: GuestTranscriptObserver { { event in self.storage.withLock { $0.append(event) } } }
}
