import Foundation
import Testing
@testable import PCI

/// Header layouts, BAR encodings and the capabilities no shared dump has, on built images.
@Suite("Header, BARs and other capabilities")
struct HeaderTests {
    @Test func ioAndLegacyBARs() throws {
        var bytes = Fixtures.image()
        Fixtures.put32(&bytes, 0x10, 0x0000_e001)  // I/O at 0xe000
        Fixtures.put32(&bytes, 0x14, 0x000c_0002)  // memory below 1M at 0xc0000
        Fixtures.put32(&bytes, 0x18, 0xfb00_0008)  // 32-bit prefetchable at 0xfb000000
        let config = try ConfigSpace(bytes: bytes, barSizes: [0: 32])
        #expect(config.bars.map(\.space) == [.io, .memoryBelow1M, .memory32])
        #expect(config.bars.map(\.address) == [0xe000, 0xc_0000, 0xfb00_0000])
        #expect(config.bars.map(\.isPrefetchable) == [false, false, true])
        #expect(config.bars.map(\.size) == [32, 0x4_0000, 0x100_0000])
        #expect(config.bars.map(\.sizeSource) == [.dumpText, .derivedFromAlignment, .derivedFromAlignment])
        #expect(config.bars[0].lastAddress == 0xe01f)
        #expect(config.warnings.isEmpty)
    }

    @Test func unassignedBARWithTextSize() throws {
        var bytes = Fixtures.image()
        Fixtures.put32(&bytes, 0x10, 0x0000_000c)  // 64-bit prefetchable, unassigned
        let config = try ConfigSpace(bytes: bytes, barSizes: [3: 4096])
        #expect(config.bars.map(\.index) == [0, 3])
        #expect(config.bars[0].address == 0)
        #expect(config.bars[0].size == nil)
        #expect(config.bars[0].sizeSource == nil)
        #expect(config.bars[1].size == 4096)
    }

    @Test func oddBARs() throws {
        var bytes = Fixtures.image()
        Fixtures.put32(&bytes, 0x10, 0xfb00_0006)  // reserved type 0b11
        Fixtures.put32(&bytes, 0x24, 0xfc00_0004)  // 64-bit in the last register
        let config = try ConfigSpace(bytes: bytes)
        #expect(config.warnings == [.barReservedType(offset: 0x10), .bar64WithoutUpperHalf(offset: 0x24)])
        #expect(config.bars.map(\.index) == [5])
        #expect(config.bars.first?.space == .memory32)
        #expect(config.bars.first?.address == 0xfc00_0000)
    }

    @Test func bridgeHeader() throws {
        var bytes = Fixtures.image(headerType: 0x81, portType: 4, buses: (0x00, 0x01, 0x05))
        Fixtures.put32(&bytes, 0x10, 0xfe00_0000)
        Fixtures.put32(&bytes, 0x18, 0xfd00_0000)  // bus numbers' register: not a BAR in type 1
        Fixtures.put32(&bytes, 0x38, 0xfc00_0001)  // expansion ROM of a type 1 header, enabled
        bytes[0x18] = 0x00
        bytes[0x19] = 0x01
        bytes[0x1a] = 0x05
        let config = try ConfigSpace(bytes: bytes)
        #expect(config.headerType == .type1)
        #expect(config.isMultiFunction)
        #expect(config.bridgeBuses == BridgeBuses(primary: 0, secondary: 1, subordinate: 5))
        #expect(config.bars.map(\.index) == [0])
        #expect(config.subsystemVendorID == nil)
        #expect(config.expansionROM?.address == 0xfc00_0000)
        #expect(config.expansionROM?.isEnabled == true)
        #expect(config.express?.portType == .rootPort)
    }

    @Test func cardBusCapabilityPointer() throws {
        var bytes = Fixtures.image(headerType: 2)
        bytes[0x34] = 0
        bytes[0x14] = 0x40
        let config = try ConfigSpace(bytes: bytes)
        #expect(config.headerType == .type2)
        #expect(config.bars.isEmpty)
        #expect(config.capabilities.map(\.offset) == [0x40])
    }

    @Test func unknownHeaderType() throws {
        let config = try ConfigSpace(bytes: Fixtures.image(headerType: 0x7f))
        #expect(config.headerType == .other(0x7f))
        #expect(config.capabilities.isEmpty)
        #expect(config.warnings == [.unknownHeaderType(0x7f)])
    }

    @Test func capabilityListBitOff() throws {
        var bytes = Fixtures.image()
        bytes[0x06] = 0  // Status bit 4 clear: 0x34 is not a pointer
        bytes[0x34] = 0x20
        #expect(try ConfigSpace(bytes: bytes).capabilities.isEmpty)
    }

    /// A 4096-byte image with one extended capability `id` at 0x100 and `registers` after its
    /// header.
    func extended(_ id: UInt16, _ registers: [UInt32]) throws -> ConfigSpace {
        var bytes = Fixtures.image(size: 4096)
        Fixtures.put32(&bytes, 0x100, 0x0001_0000 | UInt32(id))
        for (index, value) in registers.enumerated() { Fixtures.put32(&bytes, 0x104 + 4 * index, value) }
        return try ConfigSpace(bytes: bytes)
    }

    @Test func ats() throws {
        // ATS Capability 0x0065: queue depth 5, Page Aligned Request, Global Invalidate;
        // ATS Control 0x8003: Enable, STU 3.
        let ats = try #require(try extended(0x000f, [0x8003_0065]).ats)
        #expect(ats.offset == 0x100)
        #expect(ats.invalidateQueueDepth == 5)
        #expect(ats.pageAlignedRequest)
        #expect(ats.globalInvalidateSupported)
        #expect(ats.isEnabled)
        #expect(ats.smallestTranslationUnit == 3)
        // Queue depth 0 means 32 (PCI_ATS_MAX_QDEP).
        let deep = try #require(try extended(0x000f, [0x0000_0000]).ats)
        #expect(deep.invalidateQueueDepth == 32)
        #expect(!deep.isEnabled)
    }

    @Test func ariAndPASIDBits() throws {
        // ARI Capability 0x0803: MFVC+, ACS+, next function 8; Control 0x0030: group 3.
        let ari = try #require(try extended(0x000e, [0x0030_0803]).ari)
        #expect(ari.mfvcFunctionGroupsSupported)
        #expect(ari.acsFunctionGroupsSupported)
        #expect(ari.nextFunctionNumber == 8)
        #expect(ari.functionGroup == 3)
        // PASID Capability 0x1400: width 20, no Exec/Priv; Control 0x0006: Exec and Priv enabled.
        let pasid = try #require(try extended(0x001b, [0x0006_1400]).pasid)
        #expect(pasid.maxPASIDWidth == 20)
        #expect(!pasid.executePermissionSupported)
        #expect(!pasid.privilegedModeSupported)
        #expect(!pasid.isEnabled)
        #expect(pasid.executePermissionEnabled)
        #expect(pasid.privilegedModeEnabled)
    }

    @Test func linkIDEStreams() throws {
        // IDE Capability 0x01014043: Link IDE with 3 TCs (field 2), Selective with 2 streams,
        // IDE_KM, TEE-limited. Then 3 link blocks (8 bytes), 2 selective blocks (20 bytes each).
        var registers: [UInt32] = [0x0101_4043, 0]
        registers += [0x0500_0001, 0x2, 0, 0, 0, 0]  // link 0 enabled, ID 5, secure
        registers += [0, 0x0080_0001, 0, 0, 0]  // selective 0: no address blocks; control TEE-limited + enable
        registers += [0, 0, 0, 0, 0x0000_0001]  // selective 1: RID association valid
        let ide = try #require(try extended(0x0030, registers).ide)
        #expect(ide.linkStreamCount == 3)
        #expect(ide.linkStreams.map(\.offset) == [0x10c, 0x114, 0x11c])
        #expect(ide.linkStreams.first?.isEnabled == true)
        #expect(ide.linkStreams.first?.streamID == 5)
        #expect(ide.linkStreams.first?.state == 2)
        #expect(ide.selectiveStreamCount == 2)
        #expect(ide.selectiveStreams.map(\.offset) == [0x124, 0x138])
        #expect(ide.selectiveStreams.first?.isTEELimited == true)
        #expect(ide.selectiveStreams.first?.isEnabled == true)
        #expect(ide.selectiveStreams.last?.ridAssociationValid == true)
        #expect(ide.teeLimitedStreamSupported)
        #expect(ide.ideKMSupported)
    }

    @Test func vfBARClaimingIO() throws {
        var bytes = Fixtures.bytes(Fixtures.teeIO)
        Fixtures.put32(&bytes, 0x148 + 0x24, 0x0000_e001)  // VF BAR 0 (and its upper half) as I/O
        Fixtures.put32(&bytes, 0x148 + 0x28, 0)
        let config = try ConfigSpace(bytes: bytes)
        #expect(config.warnings == [.vfBARIsIO(offset: 0x16c)])
        #expect(config.sriov?.vfBARs.map(\.index) == [2])
    }

    @Test func virtualExpansionROM() throws {
        let text = Fixtures.doe.replacingOccurrences(
            of: "\tCapabilities: [40] MSI-X",
            with: "\t[virtual] Expansion ROM at 000c0000 [disabled] [size=128K]\n\tCapabilities: [40] MSI-X")
        let config = try #require(try LspciDump.parse(text).devices.first?.config)
        // The ROM register of the image is 0; the text gives its size.
        #expect(config.expansionROM?.address == 0)
        #expect(config.expansionROM?.size == 128 << 10)
        #expect(config.expansionROM?.sizeSource == .dumpText)
    }
}

@Suite("MSI-X regions and raw register reads")
struct RegionTests {
    @Test func msixRegionsOfTheDOEDump() throws {
        let function = try #require(try PCITopology(lspci: Fixtures.doe).function("df:00.0"))
        // "Vector table: BAR=4 offset=00000000", "PBA: BAR=4 offset=00000800"; BAR 4 at 0x10811000.
        #expect(function.msixTable == BARRegion(barIndex: 4, offset: 0, address: 0x1081_1000, length: 32))
        #expect(function.msixPBA == BARRegion(barIndex: 4, offset: 0x800, address: 0x1081_1800, length: 8))
    }

    @Test func noMSIX() throws {
        let function = try #require(try PCITopology(lspci: Fixtures.teeIO).function("e1:00.0"))
        #expect(function.msixTable == nil)
        #expect(function.msixPBA == nil)
    }

    @Test func rawReads() throws {
        let config = try #require(try LspciDump.parse(Fixtures.teeIO).devices.first?.config)
        #expect(config.dword(at: 0x74) == 0x512c_8023)  // DevCap
        #expect(config.word(at: 0x00) == 0xaaaa)
        #expect(config.byte(at: 0x0e) == 0x80)
        #expect(config.dword(at: 0xffc) == 0)
        #expect(config.dword(at: 0xffd) == nil)
        #expect(config.word(at: -1) == nil)
        #expect(config.byte(at: 4096) == nil)
    }
}
