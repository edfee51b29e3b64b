import Testing
import TDISP
import Wire

/// The spdm-emu sample report, byte for byte (docs/spec/tdisp-spdm.md §2.11).
let spdmEmuReportHex = """
03 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00
00 00 00 00 00 00 00 00 01 00 00 00 04 00 01 00
00 80 00 00 00 00 00 00 04 00 00 00 08 00 02 00
00 00 01 00 00 00 00 00 08 00 00 00 08 00 03 00
00 00 02 00 00 00 00 00 08 00 00 00 08 00 04 00
10 00 00 00 74 64 69 73 70 5f 64 65 76 5f 65 6d
75 00 00 00
"""

@Suite("DEVICE_INTERFACE_REPORT")
struct InterfaceReportTests {
    @Test func decodesTheSpdmEmuSampleReport() throws {
        let bytes = try Hex.decode(spdmEmuReportHex.split(separator: "\n").joined(separator: " "))
        #expect(bytes.count == 100)
        let report = try DeviceInterfaceReport(decoding: bytes)
        #expect(report.interfaceInfo == InterfaceInfo([.noFirmwareUpdate, .dmaWithoutPASID]))
        #expect(report.mmioRanges == [
            MMIORange(firstPage: 0, numberOfPages: 1, attributes: .nonTEEMemory, rangeID: 1),
            MMIORange(firstPage: 0x8000, numberOfPages: 4, attributes: .memoryAttributeUpdatable, rangeID: 2),
            MMIORange(firstPage: 0x10000, numberOfPages: 8, attributes: .memoryAttributeUpdatable, rangeID: 3),
            MMIORange(firstPage: 0x20000, numberOfPages: 8, attributes: .memoryAttributeUpdatable, rangeID: 4),
        ])
        #expect(report.deviceSpecificInfo == Array("tdisp_dev_emu".utf8) + [0, 0, 0])
        #expect(report.encodedSize == 100)
        #expect(report.encoded() == bytes)
    }

    @Test func countsThatOverrunAreTruncationNotAllocation() {
        var writer = ByteWriter()
        writer.zeros(12)
        writer.u32(0xFFFF_FFFF)  // MMIO_RANGE_COUNT
        #expect(throws: WireError.self) { try DeviceInterfaceReport(decoding: writer.bytes) }
        var info = ByteWriter()
        info.zeros(12)
        info.u32(0)
        info.u32(0x8000_0000)  // DEVICE_SPECIFIC_INFO_LEN
        #expect(throws: WireError.truncated(offset: 20, needed: 0x8000_0000, available: 0)) {
            try DeviceInterfaceReport(decoding: info.bytes)
        }
        #expect(throws: WireError.trailingBytes(offset: 20, count: 1)) {
            try DeviceInterfaceReport(decoding: Array(repeating: 0, count: 21))
        }
    }

    @Test func readerAssemblesTwoPortionsOf0x40() throws {
        let report = try Hex.decode(spdmEmuReportHex.split(separator: "\n").joined(separator: " "))
        var reader = InterfaceReportReader(maxPortion: 0x40, capacity: 0x1000)
        let first = reader.nextRequest(interfaceID: beef)
        #expect(first.offset == 0 && first.length == 0x40)
        try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0x24, portion: Array(report[0..<0x40])))
        #expect(!reader.isComplete)
        #expect(reader.total == 100)
        let second = reader.nextRequest(interfaceID: beef)
        #expect(second.offset == 0x40 && second.length == 0x24)
        try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0, portion: Array(report[0x40...])))
        #expect(reader.isComplete)
        #expect(try reader.report().encoded() == report)
        #expect(throws: InterfaceReportReaderError.alreadyComplete) {
            try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0, portion: [1]))
        }
    }

    @Test func readerRejectsInconsistentPortions() throws {
        var reader = InterfaceReportReader(maxPortion: 0x40, capacity: 0x1000)
        _ = reader.nextRequest(interfaceID: beef)
        #expect(throws: InterfaceReportReaderError.portionTooLong(asked: 0x40, got: 0x41)) {
            try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0, portion: Array(repeating: 0, count: 0x41)))
        }
        #expect(throws: InterfaceReportReaderError.reportTooLarge(total: 0x1010, capacity: 0x1000)) {
            try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0x1000, portion: Array(repeating: 0, count: 0x10)))
        }
        #expect(throws: InterfaceReportReaderError.emptyPortion) {
            try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 8, portion: []))
        }
        try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0x24, portion: Array(repeating: 0, count: 0x40)))
        _ = reader.nextRequest(interfaceID: beef)
        // OFFSET 0x40 + PORTION 0x10 + REMAINDER 0x20 = 0x70, not the 0x64 announced first.
        #expect(throws: InterfaceReportReaderError.inconsistentTotal(expected: 0x64, got: 0x70)) {
            try reader.accept(DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0x20, portion: Array(repeating: 0, count: 0x10)))
        }
        #expect(reader.received.count == 0x40)  // the refused portion left nothing behind
        #expect(throws: InterfaceReportReaderError.incomplete) { try reader.report() }
    }
}
