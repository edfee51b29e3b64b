import Foundation
import Testing
@testable import PCI

@Suite("lspci dump forms")
struct DumpFormTests {
    @Test func hexBlockWithHeaderOnly() throws {
        let full = try LspciDump.parse(Fixtures.teeIO)
        let hexOnly = try LspciDump.parse(Fixtures.hexOnly(Fixtures.teeIO))
        #expect(hexOnly.devices.count == 1)
        #expect(hexOnly.devices.first?.bdf == full.devices.first?.bdf)
        #expect(hexOnly.devices.first?.config.bytes == full.devices.first?.config.bytes)
        #expect(hexOnly.devices.first?.config.sriov?.totalVFs == 4)
    }

    @Test func bareHexBlock() throws {
        let text = Fixtures.hexOnly(Fixtures.doe, keepHeader: false)
        let dump = try LspciDump.parse(text)
        let device = try #require(dump.devices.first)
        #expect(device.bdf.description == "0000:00:00.0")  // EMU-PCI-3
        #expect(device.title == nil)
        #expect(device.line == 1)
        #expect(device.config.doeMailboxes.map(\.offset) == [0x100, 0x130])
    }

    @Test func twoBareHexBlocksGetConsecutiveDevices() throws {
        let one = Fixtures.hexOnly(Fixtures.doe, keepHeader: false)
        let dump = try LspciDump.parse(one + "\n" + one)
        #expect(dump.devices.map(\.bdf.description) == ["0000:00:00.0", "0000:00:01.0"])
        #expect(dump.devices.map(\.line) == [1, 257])
    }

    @Test func severalDevicesInOneFile() throws {
        let dump = try LspciDump.parse(Fixtures.teeIO + "\n" + Fixtures.doe)
        #expect(dump.devices.map(\.bdf.description) == ["0000:e1:00.0", "0000:df:00.0"])
        #expect(dump.devices.map(\.line) == [1, 348])
        let topology = try PCITopology(dump: dump)
        #expect(topology.functions.count == 6)  // 2 PFs + 4 VFs
    }

    @Test func conventionalSpaceOnly() throws {
        // `lspci -xxx`: the first 256 bytes.
        let rows = Fixtures.lines(Fixtures.teeIO)
        let text = ([rows[0]] + rows[89..<105]).joined(separator: "\n")
        let config = try #require(try LspciDump.parse(text).devices.first?.config)
        #expect(config.bytes.count == 256)
        #expect(!config.hasExtendedSpace)
        #expect(config.extendedCapabilities.isEmpty)
        #expect(config.capabilities.map(\.offset) == [0x40, 0x70])
        // No IDE visible, but DevCap TEE-IO is enough to be a DSM.
        let function = PCIFunction(bdf: BDF(bus: 0xe1, device: 0, function: 0)!, config: config)
        #expect(function.canBeDSM)
        let topology = try PCITopology(lspci: text)
        #expect(topology.functions.count == 1)
    }

    @Test func domainAndCRLF() throws {
        let text = Fixtures.hexOnly(Fixtures.doe).replacingOccurrences(of: "df:00.0", with: "10000:03:00.1")
            .replacingOccurrences(of: "\n", with: "\r\n")
        let device = try #require(try LspciDump.parse(text).devices.first)
        #expect(device.bdf == BDF(domain: 0x10000, bus: 3, device: 0, function: 1))
        #expect(device.bdf.description == "10000:03:00.1")
    }

    @Test(arguments: [
        ("[size=256]", UInt64(256)), ("[size=16K]", UInt64(16 << 10)), ("[size=2M]", UInt64(2 << 20)),
        ("[size=4G]", UInt64(4) << 30), ("[size=1T]", UInt64(1) << 40),
    ])
    func sizeAnnotations(annotation: String, size: UInt64) throws {
        let text = Fixtures.doe.replacingOccurrences(
            of: "Region 4: Memory at 10811000 (32-bit, non-prefetchable) [disabled]",
            with: "Region 4: Memory at 10811000 (32-bit, non-prefetchable) [disabled] \(annotation)")
        let bar = try #require(try LspciDump.parse(text).devices.first?.config.bars.first { $0.index == 4 })
        #expect(bar.size == size)
        #expect(bar.sizeSource == .dumpText)
    }

    @Test func vfAndROMSizesFromText() throws {
        let text = Fixtures.teeIO
            .replacingOccurrences(of: "Region 0: Memory at 000001fff8000000 (64-bit, prefetchable)",
                                  with: "Region 0: Memory at 000001fff8000000 (64-bit, prefetchable) [size=2M]")
            .replacingOccurrences(of: "Expansion ROM at dc2c0000 [disabled]",
                                  with: "Expansion ROM at dc2c0000 [disabled] [size=64K]")
        let config = try #require(try LspciDump.parse(text).devices.first?.config)
        #expect(config.sriov?.vfBARs.first?.size == 2 << 20)
        #expect(config.sriov?.vfBARs.first?.sizeSource == .dumpText)
        #expect(config.bars.first?.sizeSource == .derivedFromAlignment)  // the PF's BAR 0 is untouched
        #expect(config.expansionROM?.size == 64 << 10)
        #expect(config.expansionROM?.sizeSource == .dumpText)
        // The VFs' BAR 0 slices step by the 2 MiB per-VF size.
        let topology = try PCITopology(lspci: text)
        let vfs = topology.virtualFunctions(of: BDF(bus: 0xe1, device: 0, function: 0)!)
        #expect(vfs.compactMap { $0.bar(0)?.address }
            == [0x1ff_f800_0000, 0x1ff_f820_0000, 0x1ff_f840_0000, 0x1ff_f860_0000])
    }
}

@Suite("Malformed dumps are rejected with the line or offset")
struct MalformedDumpTests {
    func replacingLine(_ number: Int, in text: String, with line: String?) -> String {
        var lines = Fixtures.lines(text)
        if let line { lines[number - 1] = line } else { lines.remove(at: number - 1) }
        return lines.joined(separator: "\n")
    }

    func error(_ text: String) -> PCIDumpError? {
        do {
            _ = try LspciDump.parse(text)
            return nil
        } catch {
            return error
        }
    }

    @Test func badHexCharacter() {
        let text = replacingLine(91, in: Fixtures.teeIO, with: "10: 0c 00 zz 14 00 02 00 00 0c 30 01 18 00 02 00 00")
        #expect(error(text) == .invalidHex(line: 91, column: 11))
    }

    @Test func oddDigitCount() {
        let text = replacingLine(91, in: Fixtures.teeIO, with: "10: 0c 00 0 14 00 02 00 00 0c 30 01 18 00 02 00 00")
        #expect(error(text) == .invalidHex(line: 91, column: 11))
    }

    @Test func shortRow() {
        let text = replacingLine(91, in: Fixtures.teeIO, with: "10: 0c 00 00 14 00 02 00 00 0c 30 01 18 00 02 00")
        #expect(error(text) == .malformedHexRow(line: 91, byteCount: 15))
    }

    @Test func missingRow() {
        let text = replacingLine(92, in: Fixtures.teeIO, with: nil)  // drop "20: ..."
        #expect(error(text) == .unexpectedRowOffset(line: 92, expected: 0x20, found: 0x30))
    }

    @Test func blockNotStartingAtZero() {
        let text = replacingLine(90, in: Fixtures.teeIO, with: nil)  // drop "00: ..."
        #expect(error(text) == .unexpectedRowOffset(line: 90, expected: 0, found: 0x10))
    }

    @Test func truncatedConventionalBlock() {
        let lines = Fixtures.lines(Fixtures.teeIO)
        let text = lines[0..<97].joined(separator: "\n")  // rows 00-70: 128 bytes
        #expect(error(text) == .truncatedHexBlock(line: 97, byteCount: 128))
    }

    @Test func truncatedExtendedBlock() {
        let lines = Fixtures.lines(Fixtures.teeIO)
        let text = lines[0..<217].joined(separator: "\n")  // rows 00-7f0: 2048 bytes
        #expect(error(text) == .truncatedHexBlock(line: 217, byteCount: 2048))
    }

    @Test func headerWithoutHex() {
        let lines = Fixtures.lines(Fixtures.teeIO)
        #expect(error(lines[0..<89].joined(separator: "\n"))
            == .missingHexBlock(line: 1, bdf: BDF(bus: 0xe1, device: 0, function: 0)!))
    }

    @Test func emptyInput() {
        #expect(error("") == .noDevices)
        #expect(error("\n\n   \n") == .noDevices)
    }

    @Test func invalidAddress() {
        let text = Fixtures.doe.replacingOccurrences(of: "df:00.0 Class", with: "df:40.0 Class")
        #expect(error(text) == .invalidAddress(line: 1, text: "df:40.0"))
    }

    @Test func invalidSizeAnnotation() {
        let text = Fixtures.doe.replacingOccurrences(
            of: "Region 4: Memory at 10811000 (32-bit, non-prefetchable) [disabled]",
            with: "Region 4: Memory at 10811000 (32-bit, non-prefetchable) [size=12Q]")
        #expect(error(text) == .invalidSizeAnnotation(line: 8))
    }

    @Test func duplicateDevice() {
        #expect(error(Fixtures.doe + "\n" + Fixtures.doe)
            == .duplicateDevice(line: 304, bdf: BDF(bus: 0xdf, device: 0, function: 0)!))
    }

    @Test func capabilityLoop() {
        var bytes = Fixtures.image()
        bytes[0x41] = 0x50  // PCIe at 0x40 -> 0x50
        bytes[0x50] = 0x01
        bytes[0x51] = 0x40  // PM at 0x50 -> back to 0x40
        let bdf = BDF(bus: 1, device: 0, function: 0)!
        #expect(error(Fixtures.dump("01:00.0", bytes))
            == .configSpace(line: 1, bdf: bdf, .capabilityLoop(at: 0x51, target: 0x40)))
    }

    @Test func capabilityPointerIntoHeader() {
        var bytes = Fixtures.image()
        bytes[0x34] = 0x20
        #expect(error(Fixtures.dump("01:00.0", bytes))
            == .configSpace(line: 1, bdf: BDF(bus: 1, device: 0, function: 0)!,
                            .capabilityPointerOutOfRange(at: 0x34, target: 0x20)))
    }

    @Test func capabilityRunningPastTheSpace() {
        var bytes = Fixtures.image()
        bytes[0x41] = 0xf0
        bytes[0xf0] = 0x10  // a second PCIe capability at 0xf0, version 2: 0x28 bytes do not fit
        bytes[0xf2] = 0x02
        #expect(throws: ConfigSpaceError.capabilityTruncated(offset: 0xf0, id: 0x10, needed: 0x28)) {
            try ConfigSpace(bytes: bytes)
        }
    }

    @Test func lowPointerBitsAreMasked() throws {
        var bytes = Fixtures.image()
        bytes[0x34] = 0x43  // reserved bits 1:0 set: still 0x40
        let config = try ConfigSpace(bytes: bytes)
        #expect(config.capabilities.map(\.offset) == [0x40])
    }

    @Test(arguments: [0, 1, 64, 255, 257, 1024, 4095, 4097])
    func wrongImageSize(size: Int) {
        #expect(throws: ConfigSpaceError.invalidSize(size)) {
            try ConfigSpace(bytes: [UInt8](repeating: 0, count: size))
        }
    }
}

@Suite("A damaged extended capability list keeps its sound part")
struct DamagedExtendedListTests {
    let bytes = Fixtures.bytes(Fixtures.teeIO)

    func patched(_ offset: Int, _ value: UInt32) -> [UInt8] {
        var copy = bytes
        Fixtures.put32(&copy, offset, value)
        return copy
    }

    @Test func loopBackToTheStart() throws {
        // PASID at 0x5f0 points back to 0x100 instead of on to IDE at 0x830.
        let config = try ConfigSpace(bytes: patched(0x5f0, 0x1001_001b))
        #expect(config.extendedCapabilities.map(\.offset)
            == [0x100, 0x148, 0x188, 0x1c0, 0x3b0, 0x400, 0x450, 0x460, 0x5f0])
        #expect(config.warnings == [.extendedCapabilityLoop(at: 0x5f0, target: 0x100)])
        #expect(config.ide == nil)
        #expect(config.doeMailboxes.isEmpty)
        #expect(config.sriov?.totalVFs == 4)
    }

    @Test func pointerBelowExtendedSpace() throws {
        // IDE at 0x830 points to 0x050.
        let config = try ConfigSpace(bytes: patched(0x830, 0x0501_0030))
        #expect(config.extendedCapabilities.last?.offset == 0x830)
        #expect(config.ide?.selectiveStreamCount == 1)
        #expect(config.doeMailboxes.isEmpty)
        #expect(config.warnings == [.extendedPointerOutOfRange(at: 0x830, target: 0x50)])
    }

    @Test func pointerToEmptySpace() throws {
        // IDE at 0x830 points to 0x700, where nothing is.
        let config = try ConfigSpace(bytes: patched(0x830, 0x7001_0030))
        #expect(config.warnings == [.extendedHeaderInvalid(offset: 0x700, header: 0)])
        #expect(config.extendedCapabilities.count == 10)
    }

    @Test func allOnesHeader() throws {
        var copy = patched(0x830, 0x7001_0030)
        Fixtures.put32(&copy, 0x700, 0xffff_ffff)
        let config = try ConfigSpace(bytes: copy)
        #expect(config.warnings == [.extendedHeaderInvalid(offset: 0x700, header: 0xffff_ffff)])
    }

    @Test func capabilityRunningPastTheEnd() throws {
        // IDE points to a DOE header at 0xff0: its 0x18 bytes do not fit; header kept, not decoded.
        var copy = patched(0x830, 0xff01_0030)
        Fixtures.put32(&copy, 0xff0, 0x0002_002e)
        let config = try ConfigSpace(bytes: copy)
        #expect(config.extendedCapabilities.last?.offset == 0xff0)
        #expect(config.extendedCapabilities.last?.id == 0x2e)
        #expect(config.extendedCapabilities.last?.body == .other)
        #expect(config.doeMailboxes.isEmpty)
        #expect(config.warnings == [.extendedCapabilityTruncated(offset: 0xff0, id: 0x2e, needed: 0x18)])
    }

    @Test func ideStreamBlocksPastTheEnd() throws {
        // An IDE capability at 0xfe0 announcing two selective streams; only one 20-byte block
        // (0xfec-0xfff) fits.
        var copy = patched(0x830, 0xfe01_0030)
        Fixtures.put32(&copy, 0xfe0, 0x0001_0030)
        Fixtures.put32(&copy, 0xfe4, 0x0001_0042)
        let config = try ConfigSpace(bytes: copy)
        guard case .ide(let ide)? = config.extendedCapabilities.last?.body else {
            Issue.record("no IDE capability at 0xfe0")
            return
        }
        #expect(ide.offset == 0xfe0)
        #expect(ide.selectiveStreamCount == 2)
        #expect(ide.selectiveStreams.map(\.offset) == [0xfec])
        #expect(config.warnings == [.ideStreamBlocksTruncated(offset: 0xfe0, announced: 2, kept: 1)])
        // The IDE capability still counts for is_pci_tsm_pf0().
        #expect(PCIFunction(bdf: BDF(routingID: 0), config: config).hasIDECapability)
    }

    @Test func emptyExtendedSpace() throws {
        var copy = bytes
        for index in 0x100..<0x1000 { copy[index] = 0xff }
        let config = try ConfigSpace(bytes: copy)
        #expect(config.extendedCapabilities.isEmpty)
        #expect(config.warnings.isEmpty)
    }
}
