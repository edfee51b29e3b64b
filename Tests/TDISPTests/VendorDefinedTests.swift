import Testing
import TDISP
import Wire

@Suite("TDISP in SPDM VENDOR_DEFINED (spec 3.1)")
struct VendorDefinedTests {
    @Test func workedRequestBytes() throws {
        let tdisp = GetTDISPVersion(interfaceID: beef).encoded()
        let wrapped = PCISIGVendorDefinedMessage.tdisp(request: tdisp).encoded()
        #expect(try Hex.decode("12 fe 00 00 03 00 02 01 00 11 00 01 10 81 00 00 ef be 00 00 00 00 00 00 00 00 00 00") == wrapped)
        #expect(wrapped.count == 28)
        let decoded = try PCISIGVendorDefinedMessage(decoding: wrapped)
        #expect(decoded.isRequest && decoded.protocolID == 0x01 && decoded.vendorID == 0x0001)
        #expect(decoded.payload == tdisp)
    }

    @Test func workedResponseBytes() throws {
        let bytes = try Hex.decode("12 7e 00 00 03 00 02 01 00 13 00 01 10 01 00 00 ef be 00 00 00 00 00 00 00 00 00 00 01 10")
        let message = try PCISIGVendorDefinedMessage(decoding: bytes)
        #expect(!message.isRequest)
        let version = try TDISPVersionResponse(decoding: message.payload)
        #expect(version.versions == [0x10])
        #expect(version.interfaceID == beef)
        #expect(PCISIGVendorDefinedMessage.tdisp(response: message.payload).encoded() == bytes)
    }

    @Test func rejectsForeignHeaders() throws {
        let good = PCISIGVendorDefinedMessage.tdisp(request: [0x10]).encoded()
        var code = good; code[1] = 0x7F
        #expect(throws: WireError.invalidValue(field: "RequestResponseCode", value: 0x7F)) { try PCISIGVendorDefinedMessage(decoding: code) }
        var standard = good; standard[4] = 0x07
        #expect(throws: WireError.invalidValue(field: "StandardID", value: 7)) { try PCISIGVendorDefinedMessage(decoding: standard) }
        var idLength = good; idLength[6] = 4
        #expect(throws: WireError.invalidValue(field: "VendorIDLength", value: 4)) { try PCISIGVendorDefinedMessage(decoding: idLength) }
        var zero = good; zero[9] = 0; zero[10] = 0
        #expect(throws: WireError.invalidValue(field: "ReqLength", value: 0)) { try PCISIGVendorDefinedMessage(decoding: zero) }
        #expect(throws: WireError.trailingBytes(offset: 13, count: 1)) { try PCISIGVendorDefinedMessage(decoding: good + [0]) }
        #expect(throws: WireError.truncated(offset: 12, needed: 1, available: 0)) {
            try PCISIGVendorDefinedMessage(decoding: Array(good.dropLast()))
        }
    }
}
