import Device
import Foundation
import PCI
import Testing
import TDISP

/// DSMs and report sources built from the shared real dumps through the PCI module.
@Suite("DSM from PCI dumps")
struct DSMFromPCITests {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func topology(_ name: String) throws -> PCITopology {
        let text = try String(contentsOf: root.appendingPathComponent("Examples/devices/\(name)"), encoding: .utf8)
        return try PCITopology(lspci: text)
    }

    @Test func teeIOEndpointServesItsPFAndFourVFs() throws {
        let topology = try Self.topology("tee-io-endpoint-sriov.lspci")
        let pf = try #require(BDF("e1:00.0"))
        let dsm = try DSM(device: topology, dsm: pf, entropy: .seeded(3))
        // VF offset 32, stride 1: e1:04.0-e1:04.3 (routing IDs 0xe120-0xe123).
        #expect(dsm.functions.map(\.functionID.rawValue) == [0xE100, 0xE120, 0xE121, 0xE122, 0xE123])
        #expect(dsm.functions.dropFirst().allSatisfy { $0.physicalFunction?.rawValue == 0xE100 })
        let own = try #require(dsm.functions.first)
        // BAR 0 at 0x20014000000 (64-bit prefetchable; 64 MiB, the alignment bound), BAR 2 at
        // 0x20018013000 (4 KiB); PASIDCtl Enable+ → DMA with PASID; no ATS capability.
        #expect(own.bars == [
            TDIBAR(index: 0, address: 0x200_1400_0000, size: 0x400_0000, is64Bit: true, prefetchable: true),
            TDIBAR(index: 2, address: 0x200_1801_3000, size: 0x1000, is64Bit: true, prefetchable: true),
        ])
        #expect(own.pasidEnabled && !own.atsEnabled && own.msix == nil)
        let lock = try dsm.exchange(LockInterfaceRequest(interfaceID: own.interfaceID, flags: [.lockMSIX]))
        #expect(lock.nonce != nil)
        let report = try #require(dsm.tdi(own.interfaceID)?.report)
        #expect(report.interfaceInfo == [.dmaWithoutPASID, .dmaWithPASID])
        #expect(report.mmioRanges == [
            MMIORange(firstPage: 0x2001_4000, numberOfPages: 0x4000, attributes: [], rangeID: 0),
            MMIORange(firstPage: 0x2001_8013, numberOfPages: 1, attributes: [], rangeID: 2),
        ])
        // A VF's report comes from its own slice of the VF BARs and uses the PF's PASID.
        let vf = try #require(dsm.functions.last)
        #expect(vf.pasidEnabled)
        _ = try dsm.exchange(LockInterfaceRequest(interfaceID: vf.interfaceID, flags: []))
        let vfRanges = try #require(dsm.tdi(vf.interfaceID)?.report?.mmioRanges)
        #expect(vfRanges.map(\.rangeID) == [0, 2])
        #expect(vfRanges.first?.firstPage != report.mmioRanges.first?.firstPage)
    }

    @Test func doeDumpMSIXTableAndPBAShareBAR4() throws {
        let topology = try Self.topology("doe-two-mailboxes.lspci")
        let bdf = try #require(BDF("df:00.0"))
        let pci = try #require(topology[bdf])
        let function = try TDIFunction(pci, in: topology)
        // No sizes in the dump: BAR 0's alignment bound (8 MiB) would reach BAR 2 at 0x10810000,
        // so it is cut to 64 KiB (DSM-CHOICE-5); BAR 2 and BAR 4 are 4 KiB.
        #expect(function.bars.map(\.size) == [0x10000, 0x1000, 0x1000])
        #expect(function.msix == TDIMSIX(tableBIR: 4, tableOffset: 0, tableSize: 32, pbaBIR: 4, pbaOffset: 0x800, pbaSize: 8,
                                         messageControl: 0x0001))
        let report = try InterfaceReportBuilder.build(function: function, flags: [.lockMSIX], mmioReportingOffset: 0)
        #expect(report.mmioRanges == [
            MMIORange(firstPage: 0x10800, numberOfPages: 16, attributes: [], rangeID: 0),
            MMIORange(firstPage: 0x10810, numberOfPages: 1, attributes: [], rangeID: 2),
            MMIORange(firstPage: 0x10811, numberOfPages: 1, attributes: [.msixTable, .msixPBA], rangeID: 4),
        ])
        #expect(report.msixMessageControl == 0x0001)
        // Not a DSM: no TEE-IO bit and no IDE capability (kernel-uapi.md §6.2).
        #expect(throws: DeviceDSMError.notDSMCapable(bdf)) { try DSM(device: topology, dsm: bdf) }
        let missing = try #require(BDF("df:00.1"))
        #expect(throws: DeviceDSMError.noSuchFunction(missing)) { try DSM(device: topology, dsm: missing) }
    }
}
