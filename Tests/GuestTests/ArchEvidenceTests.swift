import Device
import Firmware
import Foundation
import Guest
import Kernel
import PCI
import Testing
import UAPI

/// EMU-ARCH-4 (docs/arch.md): `ArchPlatform`'s default device evidence is what a guest verifies —
/// the DSM's SPDM certificate chain to its vendor's root and a signed MEASUREMENTS report
/// (docs/identity.md §6), with the modelled VCA beside it.
@Suite("ArchPlatform evidence (EMU-ARCH-4)")
struct ArchEvidenceTests {
    static let dsm = PCIFunctionAddress("e1:00.0")

    static func dump() throws -> String {
        try String(contentsOf: FirmwareWorld.root.appendingPathComponent("Examples/devices/tee-io-endpoint-sriov.lspci"), encoding: .utf8)
    }

    @Test("the default evidence verifies: chain to the vendor root, measurements signed by the leaf", arguments: TVMArch.allCases)
    func verifies(arch: TVMArch) async throws {
        let dsm = try #require(Self.dsm)
        let platform = try ArchPlatform(arch: arch, lspci: try Self.dump())
        #expect(platform.deviceEvidence.count == 1)
        let made = try #require(platform.deviceEvidence[dsm])
        let evidence = made.evidence
        let verifier = try EvidenceVerifier(trustAnchorDER: try #require(platform.trustAnchorDER(for: dsm)))
        let chain = try await verifier.verifyCertificateChain(evidence.certificateChain)
        #expect(chain.certificates.count == 3)
        // docs/identity.md §6: GET_MEASUREMENTS is 37 bytes, MEASUREMENTS 364 with the standard
        // 6-block set; the VCA is not signed in (vcaLength 0).
        #expect(evidence.measurements.count == 37 + 364)
        let measurements = try verifier.verifyMeasurements(report: evidence.measurements, vcaLength: 0, chain: chain)
        #expect(measurements.blocks.map(\.index) == [1, 2, 3, 4, 5, 0xFE])
        #expect(measurements.record == made.identity.measurements.encoded())
        // The requester nonce of EMU-ARCH-4: HKDF-SHA384 of seed 1 (8 bytes LE) ‖ routing ID 0xE100 (LE).
        let seed: [UInt8] = [1, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xE1]
        #expect(measurements.requesterNonce == SeedDerivation.bytes(seed: seed, label: "measurements requester nonce", count: 32))
        // The modelled SPDM 1.2 GET_VERSION / VERSION pair.
        #expect(evidence.vca == [0x10, 0x84, 0x00, 0x00, 0x10, 0x04, 0x00, 0x00, 0x00, 0x01, 0x00, 0x12])
        // The leaf names the device (vendor aaaa, device bbbb; serial TSMKIT + routing ID).
        #expect(chain.leaf.subject.description.contains("TSMKit Device aaaa:bbbb"))
        #expect(chain.leaf.subject.description.contains("TSMKITE100"))
        #expect(chain.certificates[0].subject.description.contains("TSMKit Root CA aaaa"))
    }

    @Test("a tampered measurement value is refused with the platform's own evidence")
    func tampered() async throws {
        let dsm = try #require(Self.dsm)
        let platform = try ArchPlatform(arch: .cca, lspci: try Self.dump())
        let evidence = try #require(platform.deviceEvidence[dsm]?.evidence)
        let verifier = try EvidenceVerifier(trustAnchorDER: try #require(platform.trustAnchorDER(for: dsm)))
        let chain = try await verifier.verifyCertificateChain(evidence.certificateChain)
        var report = evidence.measurements
        report[37 + 8 + 7] ^= 0x01  // the first byte of block 1's value
        #expect(throws: EvidenceError(.signatureInvalid, "")) {
            try verifier.verifyMeasurements(report: report, vcaLength: 0, chain: chain)
        }
    }

    @Test("DSMs of one vendor share the vendor's root; each has its own leaf")
    func vendorRoot() async throws {
        let pf = try #require(try PCITopology(lspci: try Self.dump()).functions.first { $0.canBeDSM })
        let config = try #require(pf.config)
        let other = try #require(BDF(bus: 0xE3, device: 0, function: 0))
        let topology = try PCITopology(functions: [pf, PCIFunction(bdf: other, config: config)], vfs: .none)
        let evidence = try ArchPlatform.makeEvidence(topology: topology, seed: 9)
        #expect(evidence.count == 2)
        let one = try #require(evidence[PCIFunctionAddress(pf.bdf)])
        let two = try #require(evidence[PCIFunctionAddress(other)])
        #expect(one.trustAnchorDER == two.trustAnchorDER)
        #expect(one.identity.chain.derCertificates[2] != two.identity.chain.derCertificates[2])
        let verifier = try EvidenceVerifier(trustAnchorDER: one.trustAnchorDER)
        for made in [one, two] {
            let chain = try await verifier.verifyCertificateChain(made.evidence.certificateChain)
            _ = try verifier.verifyMeasurements(report: made.evidence.measurements, chain: chain)
        }
    }

    @Test("evidence: false attaches none and has no trust anchor")
    func none() throws {
        let dsm = try #require(Self.dsm)
        let platform = try ArchPlatform(arch: .sev, lspci: try Self.dump(), evidence: false)
        #expect(platform.deviceEvidence.isEmpty)
        #expect(platform.trustAnchorDER(for: dsm) == nil)
        #expect(platform.dsmAddress(serving: try #require(PCIFunctionAddress("e1:04.0"))) == dsm)
    }
}
