import Foundation
import Testing
@testable import PCI

@Suite("BDF")
struct BDFTests {
    @Test func rebuildFromFunctions() throws {
        let pf = try #require(BDF("e1:00.0"))
        let topology = try PCITopology(lspci: Fixtures.teeIO)
        let rebuilt = try PCITopology(functions: topology.functions)
        #expect(rebuilt == topology)
        // Dropping VF 4 keeps it dropped (no VFs are generated for a PF whose VFs are given).
        let fewer = try PCITopology(functions: topology.functions.filter { $0.vfIndex != 4 })
        #expect(fewer.virtualFunctions(of: pf).map(\.vfIndex) == [1, 2, 3])
        #expect(throws: TopologyError.duplicateFunction(pf)) {
            try PCITopology(functions: topology.functions + [topology.functions[0]])
        }
    }

    @Test(arguments: [
        ("0000:e1:00.0", UInt32(0), UInt8(0xe1), UInt8(0), UInt8(0)),
        ("e1:04.3", 0, 0xe1, 4, 3),
        ("10000:03:1f.7", 0x10000, 3, 0x1f, 7),
        ("0001:0A:0B.1", 1, 0x0a, 0x0b, 1),
    ])
    func parses(text: String, domain: UInt32, bus: UInt8, device: UInt8, function: UInt8) throws {
        let bdf = try #require(BDF(text))
        #expect(bdf == BDF(domain: domain, bus: bus, device: device, function: function))
    }

    @Test(arguments: ["", "e1", "e1:00", "e1:20.0", "e1:00.8", "g1:00.0", "e1:00.00", "123456789:00:00.0",
                      "e1:00.0:", "+1:00.0", " e1:00.0", "e1:0x.0"])
    func rejects(text: String) {
        #expect(BDF(text) == nil)
    }

    @Test func routingID() throws {
        let bdf = try #require(BDF("e1:04.3"))
        #expect(bdf.routingID == 0xe123)
        #expect(bdf.devfn == 0x23)
        #expect(BDF(routingID: 0xe123) == bdf)
        #expect(bdf.description == "0000:e1:04.3")
        #expect(bdf.withFunction(0)?.description == "0000:e1:04.0")
        #expect(bdf.withFunction(8) == nil)
        #expect(BDF(bus: 0, device: 32, function: 0) == nil)
    }
}

@Suite("Topology: PF and VFs from one dump")
struct VirtualFunctionTests {
    let pf = BDF(bus: 0xe1, device: 0, function: 0)!

    @Test func teeIODumpHasFourVFs() throws {
        let topology = try PCITopology(lspci: Fixtures.teeIO)
        #expect(topology.functions.map(\.bdf.description)
            == ["0000:e1:00.0", "0000:e1:04.0", "0000:e1:04.1", "0000:e1:04.2", "0000:e1:04.3"])
        let vfs = topology.virtualFunctions(of: pf)
        // VF n RID = 0xe100 + 32 + (n - 1) * 1
        #expect(vfs.map(\.bdf.routingID) == [0xe120, 0xe121, 0xe122, 0xe123])
        #expect(vfs.map(\.vfIndex) == [1, 2, 3, 4])
        #expect(vfs.allSatisfy { $0.isVirtual && $0.physicalFunction == pf })
        #expect(vfs.allSatisfy { $0.deviceID == 0x50a5 && $0.vendorID == 0xaaaa && $0.config == nil })
        #expect(vfs.allSatisfy { $0.express?.portType == .endpoint && $0.extendedCapabilities.isEmpty })
        #expect(vfs.allSatisfy { !$0.canBeDSM })
        #expect(topology[pf]?.isVirtual == false)
        #expect(topology.physicalFunctions.map(\.bdf) == [pf])
    }

    @Test func vfBARSlices() throws {
        let topology = try PCITopology(lspci: Fixtures.teeIO)
        let vfs = topology.virtualFunctions(of: pf)
        // VF BAR0 at 0x1fff8000000, per-VF size at most 128 MiB (alignment); BAR2 at
        // 0x2001800c000, at most 16 KiB.
        #expect(vfs.compactMap { $0.bar(0)?.address }
            == [0x1ff_f800_0000, 0x200_0000_0000, 0x200_0800_0000, 0x200_1000_0000])
        #expect(vfs.compactMap { $0.bar(2)?.address }
            == [0x200_1800_c000, 0x200_1801_0000, 0x200_1801_4000, 0x200_1801_8000])
        #expect(vfs.allSatisfy { $0.bar(0)?.size == 0x800_0000 && $0.bar(2)?.size == 0x4000 })
        #expect(vfs.allSatisfy { $0.bars.allSatisfy { $0.sizeSource == .derivedFromAlignment } })
    }

    @Test func lookups() throws {
        let topology = try PCITopology(lspci: Fixtures.teeIO)
        #expect(topology.function("e1:04.1")?.vfIndex == 2)
        #expect(topology.function("0000:e1:04.1")?.vfIndex == 2)
        #expect(topology.function("e1:04.4") == nil)
        #expect(topology.function("not an address") == nil)
        #expect(topology.virtualFunction(of: pf, index: 3)?.bdf.description == "0000:e1:04.2")
        #expect(topology.virtualFunction(of: pf, index: 5) == nil)
        #expect(topology.virtualFunction(of: pf, index: 0) == nil)
    }

    @Test(arguments: [
        (PCITopology.VFCount.total, 4), (.initial, 4), (.enabled, 0), (.none, 0), (.exactly(2), 2), (.exactly(4), 4),
    ])
    func vfCount(count: PCITopology.VFCount, expected: Int) throws {
        let topology = try PCITopology(lspci: Fixtures.teeIO, vfs: count)
        #expect(topology.virtualFunctions(of: pf).count == expected)
    }

    @Test func tooManyVFs() {
        #expect(throws: PCIDumpError.topology(.vfCountExceedsTotal(pf: pf, requested: 5, total: 4))) {
            try PCITopology(lspci: Fixtures.teeIO, vfs: .exactly(5))
        }
    }

    /// The TEE-IO image with the SR-IOV VF offset and stride replaced, at `bdf`.
    func sriovDump(_ bdf: String, offset: UInt16, stride: UInt16) -> String {
        var bytes = Fixtures.bytes(Fixtures.teeIO)
        Fixtures.put16(&bytes, 0x148 + 0x14, offset)
        Fixtures.put16(&bytes, 0x148 + 0x16, stride)
        return Fixtures.dump(bdf, bytes)
    }

    @Test func routingIDsCarryIntoTheBus() throws {
        // PF 05:1f.0 (RID 0x05f8), offset 0x10, stride 2: RIDs 0x0608, 0x060a, 0x060c, 0x060e.
        let topology = try PCITopology(lspci: sriovDump("05:1f.0", offset: 0x10, stride: 2))
        let vfs = topology.virtualFunctions(of: BDF(bus: 5, device: 0x1f, function: 0)!)
        #expect(vfs.map(\.bdf.description) == ["0000:06:01.0", "0000:06:01.2", "0000:06:01.4", "0000:06:01.6"])
    }

    @Test func routingIDPastTheLastBus() {
        let pf = BDF(bus: 0xff, device: 0x1f, function: 0)!  // RID 0xfff8 + 32 > 0xffff
        #expect(throws: PCIDumpError.topology(.vfRoutingIDOutOfRange(pf: pf, vf: 1, sriovOffset: 0x148))) {
            try PCITopology(lspci: sriovDump("ff:1f.0", offset: 32, stride: 1))
        }
    }

    @Test func strideZero() {
        #expect(throws: PCIDumpError.topology(
            .vfRoutingIDCollision(pf: pf, vf: 2, bdf: BDF(bus: 0xe1, device: 4, function: 0)!))) {
            try PCITopology(lspci: sriovDump("e1:00.0", offset: 32, stride: 0))
        }
    }

    @Test func offsetZero() {
        #expect(throws: PCIDumpError.topology(.vfRoutingIDCollision(pf: pf, vf: 1, bdf: pf))) {
            try PCITopology(lspci: sriovDump("e1:00.0", offset: 0, stride: 1))
        }
    }

    @Test func vfLandingOnAnotherFunction() {
        // VF 1 of e1:00.0 at e1:04.0, where the DOE device also sits.
        let doe = Fixtures.doe.replacingOccurrences(of: "df:00.0", with: "e1:04.0")
        #expect(throws: PCIDumpError.topology(
            .vfRoutingIDCollision(pf: pf, vf: 1, bdf: BDF(bus: 0xe1, device: 4, function: 0)!))) {
            try PCITopology(lspci: Fixtures.teeIO + "\n" + doe)
        }
    }
}

@Suite("DSM discovery and function walk (kernel-uapi.md §6.2, drivers/pci/tsm.c)")
struct DSMTests {
    /// `is_pci_tsm_pf0()` by PCIe Device/Port Type, with DevCap TEE-IO set and no IDE.
    @Test(arguments: [
        (UInt8(0x0), true), (0x1, false), (0x4, false), (0x5, true), (0x6, false), (0x7, false), (0x8, false),
        (0x9, true), (0xa, false),
    ])
    func canBeDSMByPortType(portType: UInt8, expected: Bool) throws {
        let config = try ConfigSpace(bytes: Fixtures.image(portType: portType, devCap: 0x4000_0000))
        #expect(PCIFunction(bdf: BDF(bus: 1, device: 0, function: 0)!, config: config).canBeDSM == expected)
    }

    @Test func canBeDSMNeedsFunctionZero() throws {
        let config = try ConfigSpace(bytes: Fixtures.image(devCap: 0x4000_0000))
        #expect(PCIFunction(bdf: BDF(bus: 1, device: 0, function: 0)!, config: config).canBeDSM)
        #expect(!PCIFunction(bdf: BDF(bus: 1, device: 0, function: 1)!, config: config).canBeDSM)
    }

    @Test func canBeDSMNeedsTEEIOOrIDE() throws {
        // Without DevCap bit 30 and without IDE: no. Bit 29 or 31 alone: no.
        for devCap: UInt32 in [0, 0x2000_0000, 0x8000_0000] {
            let config = try ConfigSpace(bytes: Fixtures.image(devCap: devCap))
            #expect(!PCIFunction(bdf: BDF(routingID: 0x100), config: config).canBeDSM)
        }
        // IDE capability alone is enough: the TEE-IO dump with DevCap bit 30 cleared.
        var bytes = Fixtures.bytes(Fixtures.teeIO)
        bytes[0x77] &= ~0x40
        let config = try ConfigSpace(bytes: bytes)
        #expect(config.express?.teeIOSupported == false)
        #expect(PCIFunction(bdf: BDF(routingID: 0xe100), config: config).canBeDSM)
        // Neither: also unlink IDE (PASID at 0x5f0 -> DOE at 0xe00).
        Fixtures.put32(&bytes, 0x5f0, 0xe001_001b)
        #expect(!PCIFunction(bdf: BDF(routingID: 0xe100), config: try ConfigSpace(bytes: bytes)).canBeDSM)
    }

    @Test func notPCIe() throws {
        var bytes = Fixtures.image(devCap: 0x4000_0000)
        bytes[0x40] = 0x01  // the capability is Power Management, not PCIe
        #expect(!PCIFunction(bdf: BDF(routingID: 0x100), config: try ConfigSpace(bytes: bytes)).canBeDSM)
    }

    /// The TEE-IO device at e1:00.0 (4 VFs) plus the DOE device as its function 1.
    func multiFunction() throws -> PCITopology {
        let fn1 = Fixtures.doe.replacingOccurrences(of: "df:00.0", with: "e1:00.1")
        return try PCITopology(lspci: Fixtures.teeIO + "\n" + fn1)
    }

    @Test func findDSM() throws {
        let topology = try multiFunction()
        let dsm = BDF(bus: 0xe1, device: 0, function: 0)!
        #expect(topology.findDSM(for: dsm)?.bdf == dsm)                     // step 1: itself
        #expect(topology.findDSM(for: BDF("e1:04.2")!)?.bdf == dsm)         // step 2: VF -> PF -> fn 0
        #expect(topology.findDSM(for: BDF("e1:00.1")!)?.bdf == dsm)         // step 2: fn 1 -> fn 0
        #expect(topology.findDSM(for: BDF("e1:00.1")!, isDSM: { _ in false }) == nil)  // fn 0 not connected
        #expect(topology.findDSM(for: BDF("e1:07.0")!) == nil)              // no such function
    }

    @Test func noDSMForTheDOEDevice() throws {
        let topology = try PCITopology(lspci: Fixtures.doe)
        #expect(topology.findDSM(for: BDF("df:00.0")!) == nil)
    }

    @Test func walkOrder() throws {
        let topology = try multiFunction()
        let dsm = BDF(bus: 0xe1, device: 0, function: 0)!
        // pci_tsm_walk_fns(): fn 0's VFs (fn 0 itself ran first), then fn 1 and its VFs (none).
        #expect(topology.dsmWalk(from: dsm).map(\.bdf.description)
            == ["0000:e1:04.0", "0000:e1:04.1", "0000:e1:04.2", "0000:e1:04.3", "0000:e1:00.1"])
        // pci_tsm_walk_fns_reverse(): fn 1 first, then fn 0's VFs in reverse.
        #expect(topology.dsmWalkReverse(from: dsm).map(\.bdf.description)
            == ["0000:e1:00.1", "0000:e1:04.3", "0000:e1:04.2", "0000:e1:04.1", "0000:e1:04.0"])
    }

    @Test func vfInTheDSMSlotIsVisitedTwice() throws {
        // First VF Offset 1: VF 1 is e1:00.1, which pci_get_slot() also returns as "function 1".
        var bytes = Fixtures.bytes(Fixtures.teeIO)
        Fixtures.put16(&bytes, 0x148 + 0x14, 1)
        let topology = try PCITopology(lspci: Fixtures.dump("e1:00.0", bytes), vfs: .exactly(2))
        #expect(topology.dsmWalk(from: BDF("e1:00.0")!).map(\.bdf.description)
            == ["0000:e1:00.1", "0000:e1:00.2", "0000:e1:00.1", "0000:e1:00.2"])
    }

    /// A switch: Upstream Port 10:00.0 (TEE-IO, buses 11-13) above Downstream Port 11:00.0
    /// (bus 12) above endpoint 12:00.0, and Downstream Port 11:01.0 (bus 13) above 13:00.0.
    func switchTopology(upstreamTEE: Bool = true) throws -> PCITopology {
        let upstream = Fixtures.image(headerType: 1, portType: 5, devCap: upstreamTEE ? 0x4000_0000 : 0,
                                      buses: (0x10, 0x11, 0x13))
        let down0 = Fixtures.image(headerType: 1, portType: 6, buses: (0x11, 0x12, 0x12))
        let down1 = Fixtures.image(headerType: 1, portType: 6, buses: (0x11, 0x13, 0x13))
        let endpoint = Fixtures.image(portType: 0)
        let text = [("10:00.0", upstream), ("11:00.0", down0), ("11:01.0", down1), ("12:00.0", endpoint),
                    ("13:00.0", endpoint)].map { Fixtures.dump($0.0, $0.1) }.joined(separator: "\n")
        return try PCITopology(lspci: text)
    }

    @Test func upstreamPortDSM() throws {
        let topology = try switchTopology()
        let upstream = BDF("10:00.0")!
        #expect(topology[upstream]?.canBeDSM == true)
        #expect(topology.parentBridge(of: BDF("12:00.0")!)?.bdf == BDF("11:00.0"))
        #expect(topology.findDSM(for: BDF("12:00.0")!)?.bdf == upstream)   // step 3: grandparent
        #expect(topology.findDSM(for: BDF("13:00.0")!)?.bdf == upstream)
        // pci_walk_bus(subordinate): depth first, each bridge followed by its bus.
        #expect(topology.dsmWalk(from: upstream).map(\.bdf.description)
            == ["0000:11:00.0", "0000:12:00.0", "0000:11:01.0", "0000:13:00.0"])
        #expect(topology.dsmWalkReverse(from: upstream).map(\.bdf.description)
            == ["0000:13:00.0", "0000:11:01.0", "0000:12:00.0", "0000:11:00.0"])
    }

    @Test func upstreamPortWithoutTEE() throws {
        let topology = try switchTopology(upstreamTEE: false)
        #expect(topology.findDSM(for: BDF("12:00.0")!) == nil)
        #expect(topology.dsmWalk(from: BDF("10:00.0")!).isEmpty)
    }
}
