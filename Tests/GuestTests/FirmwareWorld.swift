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

    init(_ arch: TVMArch, function: FunctionID = FirmwareWorld.vf, profile: FirmwareProfile? = nil) throws {
        let text = try String(contentsOf: Self.root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci"), encoding: .utf8)
        let topology = try PCITopology(lspci: text)
        let bdf = try #require(BDF("e1:00.0"))
        dsm = try DSM(device: topology, dsm: bdf, entropy: .seeded(5))
        self.arch = arch
        self.function = function
        platform = TSMFirmware.platform(for: arch, profile: profile)
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
    var channel: DirectFirmwareChannel { DirectFirmwareChannel(platform: platform, function: function, evidence: hostEvidence) }

    /// What the host keeps: the TSM's evidence and the DSM's report (SEV data pages, netlink).
    var hostEvidence: HostEvidence {
        HostEvidence(certificateChain: Self.identity.spdmCertificateChain, measurements: Self.measurements, interfaceReport: report)
    }

    /// The guest's direct path to its TSM.
    var tsm: GuestTSMInterface {
        get throws {
            try #require(GuestTSMInterface.simulated(platform, function: function, vm: Self.vm,
                                                     evidence: DeviceEvidence(certificateChain: Self.identity.spdmCertificateChain,
                                                                              measurements: Self.measurements)))
        }
    }

    func agent(anchor: [UInt8] = FirmwareWorld.identity.chain.derCertificates[0], mmio: GuestMMIOPlan = .automatic(gpaBase: GuestAgent.defaultGPABase),
               observer: GuestTranscriptObserver? = nil) throws -> GuestAgent {
        GuestAgent(verifier: try EvidenceVerifier(trustAnchorDER: anchor), mmio: mmio, observer: observer)
    }
}

/// Collects transcript events from the observer callback.
final class EventLog: Sendable {
    private let storage = Mutex<[GuestTranscriptEvent]>([])
    var events: [GuestTranscriptEvent] { storage.withLock { $0 } }
    var observer: GuestTranscriptObserver { { event in self.storage.withLock { $0.append(event) } } }
}
