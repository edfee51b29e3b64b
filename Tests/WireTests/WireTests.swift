import Testing
@testable import Wire

@Suite struct ByteReaderTests {
    @Test func readsLittleEndian() throws {
        var reader = ByteReader([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09])
        #expect(try reader.u8() == 0x01)
        #expect(try reader.u16() == 0x0302)
        #expect(try reader.u24() == 0x06_0504)
        #expect(reader.remaining == 3)
        #expect(throws: WireError.truncated(offset: 6, needed: 4, available: 3)) { try reader.u32() }
        #expect(reader.offset == 6)
    }

    @Test func u64AndExpectEnd() throws {
        var reader = ByteReader([0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01, 0xFF])
        #expect(try reader.u64() == 0x0123_4567_89AB_CDEF)
        #expect(throws: WireError.trailingBytes(offset: 8, count: 1)) { try reader.expectEnd() }
        #expect(throws: WireError.invalidLength(-1)) { try reader.bytes(-1) }
    }

    @Test func emptyInputNeverTraps() {
        var reader = ByteReader([])
        #expect(throws: WireError.truncated(offset: 0, needed: 1, available: 0)) { try reader.u8() }
        #expect(reader.rest().isEmpty)
    }
}

@Suite struct ByteWriterTests {
    @Test func writesLittleEndianAndPatches() {
        var writer = ByteWriter()
        writer.u16(0x1234)
        writer.u24(0xFFAB_CDEF)
        writer.u32(0)
        writer.patchU32(0xDEAD_BEEF, at: 5)
        writer.patchU32(1, at: 6)  // out of range: ignored
        #expect(writer.bytes == [0x34, 0x12, 0xEF, 0xCD, 0xAB, 0xEF, 0xBE, 0xAD, 0xDE])
    }
}

@Suite struct HexTests {
    @Test func roundTrip() throws {
        #expect(Hex.encode([0x00, 0x3B, 0x96, 0xFF]) == "003b96ff")
        #expect(try Hex.decode("0x00 3B:96_ff") == [0x00, 0x3B, 0x96, 0xFF])
    }

    @Test func rejectsBadDigitsAndOddLength() {
        #expect(throws: WireError.invalidHex(position: 1)) { try Hex.decode("0g") }
        #expect(throws: WireError.invalidHex(position: 3)) { try Hex.decode("abc") }
    }
}
