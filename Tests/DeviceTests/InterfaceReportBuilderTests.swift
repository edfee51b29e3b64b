import Device
import Testing
import TDISP

@Suite("Interface report from real BARs")
struct InterfaceReportBuilderTests {
    @Test func msixPagesAreSplitOutWithLockMSIX() throws {
        let report = try InterfaceReportBuilder.build(function: pf, flags: [.lockMSIX], mmioReportingOffset: 0)
        let bar0 = UInt64(0x2_0014_000000) >> 12
        let bar2 = UInt64(0x2_0018_010000) >> 12
        #expect(report.mmioRanges == [
            MMIORange(firstPage: bar0, numberOfPages: 2, attributes: [], rangeID: 0),
            MMIORange(firstPage: bar0 + 2, numberOfPages: 1, attributes: .msixTable, rangeID: 0),
            MMIORange(firstPage: bar0 + 3, numberOfPages: 1, attributes: .msixPBA, rangeID: 0),
            MMIORange(firstPage: bar0 + 4, numberOfPages: 12, attributes: [], rangeID: 0),
            MMIORange(firstPage: bar2, numberOfPages: 4, attributes: .memoryAttributeUpdatable, rangeID: 2),
        ])
        #expect(report.msixMessageControl == 0x0007)
        #expect(report.interfaceInfo == [.dmaWithoutPASID, .dmaWithPASID, .atsEnabled])
    }

    @Test func withoutLockMSIXTheVectorsAreNonTEE() throws {
        let report = try InterfaceReportBuilder.build(function: pf, flags: [.noFirmwareUpdate], mmioReportingOffset: 0x10_0000)
        #expect(report.msixMessageControl == 0)
        #expect(report.interfaceInfo.contains(.noFirmwareUpdate))
        let bar0 = (UInt64(0x2_0014_000000) + 0x10_0000) >> 12
        #expect(report.mmioRanges[0] == MMIORange(firstPage: bar0, numberOfPages: 2, attributes: [], rangeID: 0))
        #expect(report.mmioRanges[1] == MMIORange(firstPage: bar0 + 2, numberOfPages: 2, attributes: .nonTEEMemory, rangeID: 0))
        #expect(report.mmioRanges.count == 4)
    }

    /// The DOE dump's layout: MSI-X table at 0 and PBA at 0x800 of a 4 KiB BAR 4 (2 vectors):
    /// both in the one page.
    @Test func tableAndPBASharingAPage() throws {
        let function = TDIFunction(
            functionID: FunctionID(bus: 0xDF, device: 0, function: 0),
            bars: [TDIBAR(index: 0, address: 0x1080_0000, size: 0x10000),
                   TDIBAR(index: 2, address: 0x1081_0000, size: 0x1000),
                   TDIBAR(index: 4, address: 0x1081_1000, size: 0x1000, is64Bit: false),
                   TDIBAR(index: 5, address: 0, size: 0)],
            msix: TDIMSIX(tableBIR: 4, tableOffset: 0, pbaBIR: 4, pbaOffset: 0x800, vectors: 2, messageControl: 0x0001))
        let report = try InterfaceReportBuilder.build(function: function, flags: [.lockMSIX], mmioReportingOffset: 0)
        #expect(report.mmioRanges == [
            MMIORange(firstPage: 0x10800, numberOfPages: 16, attributes: [], rangeID: 0),
            MMIORange(firstPage: 0x10810, numberOfPages: 1, attributes: [], rangeID: 2),
            MMIORange(firstPage: 0x10811, numberOfPages: 1, attributes: [.msixTable, .msixPBA], rangeID: 4),
        ])
        #expect(report.encodedSize == 20 + 48)
    }

    @Test func smallUnalignedBarAndErrors() throws {
        let small = TDIFunction(functionID: FunctionID(rawValue: 8), bars: [TDIBAR(index: 1, address: 0x1234_5F00, size: 0x100, is64Bit: false)])
        let report = try InterfaceReportBuilder.build(function: small, flags: [], mmioReportingOffset: 0)
        #expect(report.mmioRanges == [MMIORange(firstPage: 0x12345, numberOfPages: 1, attributes: [], rangeID: 1)])
        #expect(throws: InterfaceReportBuildError.addressOverflow(barIndex: 1)) {
            try InterfaceReportBuilder.build(function: small, flags: [], mmioReportingOffset: 0xFFFF_FFFF_EDCB_B000)
        }
        let huge = TDIFunction(functionID: FunctionID(rawValue: 8), bars: [TDIBAR(index: 0, address: 0, size: 1 << 50)])
        #expect(throws: InterfaceReportBuildError.rangeTooLarge(barIndex: 0)) {
            try InterfaceReportBuilder.build(function: huge, flags: [], mmioReportingOffset: 0)
        }
        let chatty = TDIFunction(functionID: FunctionID(rawValue: 8), bars: [], deviceSpecificInfo: Array(repeating: 1, count: 0xFFF0))
        #expect(throws: InterfaceReportBuildError.reportTooLarge(size: 0xFFF0 + 20)) {
            try InterfaceReportBuilder.build(function: chatty, flags: [], mmioReportingOffset: 0)
        }
        let dsm = try DSM(functions: [chatty])
        #expect(try dsm.exchange(LockInterfaceRequest(interfaceID: chatty.interfaceID, flags: [])).errorCode == .invalidDeviceConfiguration)
    }
}
