import Device
import Firmware
import Foundation
import Guest
import Kernel
import SystemPackage
import TDISP
import Testing
import UAPI
import VMM

/// The guest's host path through the VMM library and the simulated kernel: TSMTunnel.tsmRequest →
/// IOMMU_VDEVICE_TSM_REQ → iommufd → pci-tsm → the architecture's link TSM (Kernel/Arch) → the
/// firmware model → the DSM of tee-io-endpoint-sriov.lspci.
struct VMMChannel: GuestRequestChannel {
    let tunnel: TSMTunnel
    let evidence: HostEvidence

    func request(op: GuestRequestOp, tvmArch: TVMArch, payload: [UInt8], responseCapacity: Int) async throws -> GuestResponse {
        do {
            let response = try tunnel.tsmRequest(op: op, tvmArch: tvmArch, request: payload, responseCapacity: responseCapacity)
            return GuestResponse(bytes: response.bytes, residue: response.residue, tsmCode: response.tsmCode ?? 0)
        } catch {
            throw GuestChannelError(errno: error.errno, tsmCode: error.tsmCode ?? 0, reason: error.description)
        }
    }

    func hostEvidence(tvmArch: TVMArch) async throws -> HostEvidence { evidence }
}

@Suite("Guest flows through the VMM and the simulated kernel")
struct KernelPathTests {
    static let dsm = PCIFunctionAddress("e1:00.0")
    static let vf = PCIFunctionAddress("e1:04.0")

    @Test("each architecture: VF e1:04.0 bound with TSM_OP, accepted by the guest through TSM_REQ, RUN", arguments: TVMArch.allCases)
    func accept(arch: TVMArch) async throws {
        let dsm = try #require(Self.dsm), vf = try #require(Self.vf)
        let text = try String(contentsOf: FirmwareWorld.root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci"),
                              encoding: .utf8)
        // The platform's default evidence (EMU-ARCH-4): the DSM's chain and its signed
        // measurements report, verified to the root of the DSM's vendor.
        let platform = try ArchPlatform(arch: arch, lspci: text)
        let evidence = try #require(platform.deviceEvidence[dsm]?.evidence)
        let anchor = try #require(platform.trustAnchorDER(for: dsm))
        let backend = SimulatedBackend(kernel: platform.kernel)
        let session = try IOMMUFDSession(backend: backend)
        let vfio = try VFIODevice.open(SimulatedBackend.vfioDevicePath(vf), backend: backend)
        let vmFD = backend.createVM()
        try backend.addToVM(vmFD, vfio: vfio)
        let device = try vfio.bind(to: session.iommufd)
        let setup = try session.iommufd.setUpVDevice(device: device, virtID: 0x10)
        try platform.kernel.pciTSM.connect(dsm, "tsm0")
        let tunnel = session.tunnel(for: setup.vdevice)
        try tunnel.bind()
        let vm = platform.driver.firmwareVM(try platform.kernel.vm(vmFD))
        let function = try #require(vf.functionID)
        let report = platform.dsms[dsm]?.tdi(InterfaceID(functionID: function))?.report?.encoded() ?? []
        let channel = VMMChannel(tunnel: tunnel, evidence: HostEvidence(certificateChain: evidence.certificateChain,
                                                                        measurements: evidence.measurements, interfaceReport: report))
        let tsm = try #require(GuestTSMInterface.simulated(platform.driver.linkFirmware, function: function, vm: vm, evidence: evidence))
        let agent = GuestAgent(verifier: try EvidenceVerifier(trustAnchorDER: anchor))
        let accepted = try await agent.accept(channel: channel, tsm: tsm)
        #expect(accepted.tdiState == .run)
        // The measurements the guest verified are the DSM identity's record, signed by its leaf.
        #expect(accepted.measurements.record == platform.deviceEvidence[dsm]?.identity.measurements.encoded())
        #expect(accepted.certificateChain.certificates.count == 3)
        #expect(platform.deviceTDIState(vf) == .run && platform.firmwareTDIState(vf) == .run)
        #expect(accepted.reportBytes == report && !report.isEmpty)
        // Tampering on this path is refused too.
        try tunnel.unbind()
        try tunnel.bind()
        let fresh = platform.dsms[dsm]?.tdi(InterfaceID(functionID: function))?.report?.encoded() ?? []
        let honest = VMMChannel(tunnel: tunnel, evidence: HostEvidence(certificateChain: evidence.certificateChain,
                                                                       measurements: evidence.measurements, interfaceReport: fresh))
        await #expect(throws: GuestAcceptanceError(.reportDigestMismatch, "", step: "")) {
            try await agent.accept(channel: TamperingChannel(honest, tampering: .report), tsm: tsm)
        }
        #expect(platform.deviceTDIState(vf) == .configLocked)
        try tunnel.unbind()
        try vfio.close()
    }
}
