import Firmware
import SystemPackage
import Testing
import Wire

/// Decoders of every fixed-size payload, by name, for the length and fuzz matrices.
private let fixedDecoders: [(name: String, size: Int, decode: @Sendable ([UInt8]) throws -> Void)] = [
    ("CCA.ReadObjectRequest", 16, { _ = try CCA.ReadObjectRequest(decoding: $0) }),
    ("CCA.RegenObjectRequest", 24, { _ = try CCA.RegenObjectRequest(decoding: $0) }),
    ("CCA.ObjectInfoRequest", 4, { _ = try CCA.ObjectInfoRequest(decoding: $0) }),
    ("CCA.ObjectInfoResponse", 4, { _ = try CCA.ObjectInfoResponse(decoding: $0) }),
    ("CCA.ValidateMMIORequest", 24, { _ = try CCA.ValidateMMIORequest(decoding: $0) }),
    ("CCA.SetTDIStateRequest", 4, { _ = try CCA.SetTDIStateRequest(decoding: $0) }),
    ("SEV.MessageHeader", 96, { _ = try SEV.MessageHeader(decoding: $0) }),
    ("SEV.TDIInfoRequest", 16, { _ = try SEV.TDIInfoRequest(decoding: $0) }),
    ("SEV.TDIInfoResponse", 192, { _ = try SEV.TDIInfoResponse(decoding: $0) }),
    ("SEV.MMIOValidateRequest", 48, { _ = try SEV.MMIOValidateRequest(decoding: $0) }),
    ("SEV.MMIOValidateResponse", 48, { _ = try SEV.MMIOValidateResponse(decoding: $0) }),
    ("SEV.MMIOConfigRequest", 16, { _ = try SEV.MMIOConfigRequest(decoding: $0) }),
    ("SEV.MMIOConfigResponse", 16, { _ = try SEV.MMIOConfigResponse(decoding: $0) }),
    ("SEV.SDTEWriteRequest", 80, { _ = try SEV.SDTEWriteRequest(decoding: $0) }),
    ("SEV.SDTEWriteResponse", 16, { _ = try SEV.SDTEWriteResponse(decoding: $0) }),
]

private func le(_ value: UInt64, _ width: Int) -> [UInt8] {
    (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
}

@Suite("Guest-request payload codecs")
struct CodecTests {
    @Test("every fixed payload rejects one byte short and one byte long, and accepts its exact size",
          arguments: fixedDecoders.map(\.name))
    func exactSizes(name: String) throws {
        let decoder = try #require(fixedDecoders.first { $0.name == name })
        #expect(throws: WireError.self) { try decoder.decode([UInt8](repeating: 0, count: decoder.size - 1)) }
        #expect(throws: WireError.self) { try decoder.decode([]) }
        #expect(throws: WireError.trailingBytes(offset: decoder.size, count: 1)) {
            try decoder.decode([UInt8](repeating: 0, count: decoder.size + 1))
        }
        try decoder.decode([UInt8](repeating: 0, count: decoder.size))
    }

    @Test("seeded fuzz: random and truncated inputs never trap", arguments: [UInt64(1), 0x5EED, 0xC0FFEE])
    func fuzz(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<400 {
            let count = Int(generator.next() % 260)
            let bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            for decoder in fixedDecoders { _ = try? decoder.decode(bytes) }
            _ = try? SEV.GuestMessage(decoding: bytes)
            _ = try? TDX.TDCMBuffer(decoding: bytes)
            _ = try? SEV.SetTDIStateRequest(decoding: bytes, payload: .byte)
            _ = try? SEV.SetTDIStateRequest(decoding: bytes, payload: .u32)
        }
        // Every prefix of a valid guest message and TDCM buffer is rejected, never accepted.
        let message = SEV.GuestMessage(sequenceNumber: 9, messageType: 21, body: [UInt8](repeating: 7, count: 48)).encoded()
        let tdcm = TDX.TDCMBuffer(operation: 4, data: [1, 2, 3, 4, 5]).encoded()
        for cut in 0..<message.count { #expect((try? SEV.GuestMessage(decoding: Array(message.prefix(cut)))) == nil) }
        for cut in 0..<tdcm.count { #expect((try? TDX.TDCMBuffer(decoding: Array(tdcm.prefix(cut)))) == nil) }
    }

    @Test("CCA VALIDATE_MMIO: gpa_base @0, gpa_top @8, pa_base @16 (arch-backends.md §1.2)")
    func ccaValidateLayout() throws {
        let bytes = le(0x0000_0080_0000_0000, 8) + le(0x0000_0080_0000_4000, 8) + le(0x0000_0000_0800_0000, 8)
        let request = try CCA.ValidateMMIORequest(decoding: bytes)
        #expect(request.gpaBase == 0x80_0000_0000 && request.gpaTop == 0x80_0000_4000 && request.paBase == 0x800_0000)
        #expect(request.encoded() == bytes)
    }

    @Test("CCA READ_OBJECT and REGEN_OBJECT layouts")
    func ccaObjectLayouts() throws {
        let read = le(3, 4) + le(0, 4) + le(0x40, 8)
        #expect(try CCA.ReadObjectRequest(decoding: read) == CCA.ReadObjectRequest(objectType: 3, offset: 0x40))
        let regen = le(3, 4) + le(0, 4) + le(1, 8) + le(0x7FFF_0000_1000, 8)
        let decoded = try CCA.RegenObjectRequest(decoding: regen)
        #expect(decoded.objectType == 3 && decoded.flags == 1 && decoded.nonceAddress == 0x7FFF_0000_1000)
        #expect(decoded.encoded() == regen)
        #expect(CCA.SetTDIStateRequest(state: 2).encoded() == [2, 0, 0, 0])
    }

    @Test("CCA object numbering: Linux 1 cert, 2 measurements, 3 report, 4 VCA; ACS 0 VCA, 4 extension (EMU-CCA-1)")
    func ccaNumbering() {
        #expect(CCA.ObjectType.object(1, numbering: .linux) == .certificateChain)
        #expect(CCA.ObjectType.object(2, numbering: .linux) == .measurements)
        #expect(CCA.ObjectType.object(3, numbering: .linux) == .interfaceReport)
        #expect(CCA.ObjectType.object(4, numbering: .linux) == .vca)
        #expect(CCA.ObjectType.object(0, numbering: .linux) == nil)
        #expect(CCA.ObjectType.object(0, numbering: .acs) == .vca)
        #expect(CCA.ObjectType.object(4, numbering: .acs) == .extensionEvidence)
        #expect(CCA.ObjectType.object(5, numbering: .acs) == nil)
        for object in CCA.Object.allCases {
            for numbering in [FirmwareProfile.CCAObjectNumbering.linux, .acs] {
                if let raw = CCA.ObjectType.raw(object, numbering: numbering) {
                    #expect(CCA.ObjectType.object(raw, numbering: numbering) == object)
                }
            }
        }
    }

    @Test("SNP message header: msg_seqno @32, hdr_sz @50, msg_type @52, msg_version @53, msg_sz @54")
    func sevHeader() throws {
        let header = SEV.MessageHeader(sequenceNumber: 0x0102_0304_0506_0708, messageType: 21, messageSize: 48, vmpck: 2)
        let bytes = header.encoded()
        #expect(bytes.count == 96)
        #expect(Array(bytes[32..<40]) == [8, 7, 6, 5, 4, 3, 2, 1])
        #expect(Array(bytes[50..<52]) == [96, 0])
        #expect(bytes[52] == 21 && bytes[53] == 2)
        #expect(Array(bytes[54..<56]) == [48, 0])
        #expect(bytes[60] == 2)
        #expect(try SEV.MessageHeader(decoding: bytes) == header)
    }

    @Test("SEV guest message needs 96 + msg_sz bytes exactly")
    func sevMessageLength() throws {
        let body = [UInt8](repeating: 1, count: 16)
        let bytes = SEV.GuestMessage(sequenceNumber: 1, messageType: 25, body: body).encoded()
        #expect(try SEV.GuestMessage(decoding: bytes).body == body)
        #expect(throws: WireError.invalidValue(field: "msg_sz", value: 16)) { try SEV.GuestMessage(decoding: bytes + [0]) }
    }

    @Test("SEV MMIO_VALIDATE_REQ layout (arch-backends.md §2.3)")
    func sevValidateLayout() throws {
        var bytes = le(5, 8) + [UInt8](repeating: 0, count: 8) + le(0x8_0000_0000, 8) + le(4, 4) + le(0x2000, 4)
        bytes += le(0b11, 2) + le(2, 2) + [UInt8](repeating: 0, count: 12)
        let request = try SEV.MMIOValidateRequest(decoding: bytes)
        #expect(request == SEV.MMIOValidateRequest(tdiID: 5, subrangeBase: 0x8_0000_0000, subrangePageCount: 4,
                                                   rangeOffset: 0x2000, validated: true, forceValidated: true, rangeID: 2))
        #expect(request.encoded() == bytes)
        let response = SEV.MMIOValidateResponse(tdiID: 5, status: 9, subrangeBase: 0x1000, subrangePageCount: 1,
                                                rangeOffset: 0, changed: true, rangeID: 7).encoded()
        #expect(Array(response[8..<10]) == [9, 0] && response[32] == 1 && Array(response[34..<36]) == [7, 0])
    }

    @Test("SEV MMIO_CONFIG: range_id in bits 31:16 and is_non_tee_mem bit 2 of the word at 4")
    func sevConfigLayout() throws {
        let bytes = SEV.MMIOConfigRequest(guestDeviceID: 0x0108, rangeID: 3, write: true, isNonTEEMemory: true).encoded()
        #expect(bytes == [0x08, 0x01, 0, 0, 0x04, 0, 3, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        let response = SEV.MMIOConfigResponse(guestDeviceID: 8, status: 0, attributes: 0xC, rangeID: 3, write: false)
        #expect(try SEV.MMIOConfigResponse(decoding: response.encoded()) == response)
    }

    @Test("SEV SDTE_WRITE_REQ: tdi_id @0, SDTE @16; TDI_INFO_RSP is 192 bytes with digests at 32/80/128")
    func sevSDTEAndInfo() throws {
        let sdte = SEV.SDTEWriteRequest.validSDTE(vtom: 0x40_0000_0000)
        let request = SEV.SDTEWriteRequest(tdiID: 3, sdte: sdte)
        let bytes = request.encoded()
        #expect(bytes.count == 80 && bytes[0] == 3 && bytes[16] == 1)
        #expect(request.valid && !request.isZero)
        #expect(SEV.SDTEWriteRequest(tdiID: 3, sdte: []).isZero)
        let info = SEV.TDIInfoResponse(tdiID: 1, status: 0, certificatesDigest: [0xAA], measurementsDigest: [0xBB],
                                       reportDigest: [0xCC], reportCount: 2)
        let infoBytes = info.encoded()
        #expect(infoBytes.count == 192 && infoBytes[32] == 0xAA && infoBytes[80] == 0xBB && infoBytes[128] == 0xCC && infoBytes[176] == 2)
        #expect(try SEV.TDIInfoResponse(decoding: infoBytes) == info)
    }

    @Test("TIO msg_type numbering: v19 (EMU-SEV-2) and v0x81")
    func tioNumbering() {
        let all = SEV.TIOMessage.allCases
        #expect(all.map { $0.requestType(.v19) } == [19, 21, 23, 25])
        #expect(all.map { $0.responseType(.v19) } == [20, 22, 24, 26])
        #expect(all.map { $0.requestType(.v0x81) } == [0x81, 0x82, 0x83, 0x84])
        #expect(all.map { $0.responseType(.v0x81) } == [0x01, 0x02, 0x03, 0x04])
        #expect(SEV.TIOMessage.request(22, .v19) == nil)
    }

    @Test("MMIO validate status tables: latest and legacy (arch-backends.md §2.3)")
    func mmioStatusTables() {
        let latest = SEV.MMIOValidateStatus.allCases.map { $0.value(.latest) }
        #expect(latest == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
        let legacy = SEV.MMIOValidateStatus.allCases.map { $0.value(.legacy) }
        #expect(legacy == [0, 1, 2, 3, nil, 4, 5, 6, 7, 8, nil])
        #expect(SEV.MMIOValidateStatus.status(7, .legacy) == .notReported)
    }

    @Test("GHCB RDX encodings: MMIO (GPA 51:12, order 11:4, T bit 3, range 2:0) and SDTE (vTOM 51:21, bit 0)")
    func ghcbRDX() {
        #expect(SEV.mmioRDX(gpa: 0x8_0000_0FFF, order: 2, isPrivate: true, rangeID: 5) == 0x8_0000_0000 | 0x20 | 0x8 | 5)
        #expect(SEV.sdteRDX(vtom: 0x40_001F_FFFF, validate: true) == 0x40_0000_0001)
    }

    @Test("SET_TDI_STATE payloads: 1 byte or u32 (EMU-SEV-3)")
    func sevSetState() throws {
        #expect(try SEV.SetTDIStateRequest(decoding: [1], payload: .byte).value == 1)
        #expect(throws: WireError.trailingBytes(offset: 1, count: 3)) { try SEV.SetTDIStateRequest(decoding: [1, 0, 0, 0], payload: .byte) }
        #expect(try SEV.SetTDIStateRequest(decoding: [2, 0, 0, 0], payload: .u32).value == 2)
        #expect(SEV.SetTDIStateRequest(value: 1).encoded(payload: .u32) == [1, 0, 0, 0])
    }

    @Test("TDCM buffer: operation @0, version @2, status @8, error @9, data_length @16, data @20")
    func tdcm() throws {
        let buffer = TDX.TDCMBuffer(operation: TDX.TDCMOperation.getTDIReport.rawValue, version: 1,
                                    status: TDX.TDCMStatus.error, error: TDX.TDCMError.tdispMessage.rawValue, data: [9, 8])
        let bytes = buffer.encoded()
        #expect(bytes == [4, 0, 1, 0, 0, 0, 0, 0, 2, 14, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 9, 8])
        #expect(try TDX.TDCMBuffer(decoding: bytes) == buffer)
        #expect(throws: WireError.trailingBytes(offset: 22, count: 1)) { try TDX.TDCMBuffer(decoding: bytes + [0]) }
        var huge = bytes
        huge[16] = 0xFF
        huge[19] = 0xFF
        #expect((try? TDX.TDCMBuffer(decoding: huge)) == nil)
    }

    @Test("TDX statuses: class values in the high 32 bits (arch-backends.md §3.2, §6.3)")
    func tdxStatus() {
        #expect(TDX.Status.invalidOperand >> 32 == 0xC000_0100)
        #expect(TDX.Status.operandBusy >> 32 == 0x8000_0200)
        #expect(TDX.Status.tdiNotPresent >> 32 == 0xC000_0F40)
        #expect(TDX.Status.tdiInvalidMetadata >> 32 == 0xC000_0F41)
    }

    @Test("profile defaults of §6.4")
    func profileDefaults() {
        #expect(FirmwareProfile.defaults(for: .cca).objectOpsTunnelled)
        #expect(FirmwareProfile.defaults(for: .tdx).objectOpsTunnelled)
        #expect(!FirmwareProfile.defaults(for: .sev).objectOpsTunnelled)
        let profile = FirmwareProfile.defaults(for: .sev)
        #expect(profile.ccaObjectNumbering == .linux && !profile.ccaReadObjectHonoursOffset)
        #expect(profile.sevTIOMessageNumbering == .v19 && profile.sevTDIAddressing == .tdiID64)
        #expect(profile.sevMMIOStatusTable == .latest && profile.sevSetStatePayload == .byte)
    }

    @Test("GuestRequestOutcome.returnValue is -errno or the residue")
    func returnValue() {
        #expect(GuestRequestOutcome.failure(.argListTooLong).returnValue == -7)
        #expect(GuestRequestOutcome(residue: 12).returnValue == 12)
    }

    @Test("MappedUserMemory: reads and writes fail as a whole (EFAULT) outside a mapped region")
    func mappedMemory() throws {
        let memory = MappedUserMemory()
        memory.map(0x1000, [1, 2, 3, 4])
        #expect(try memory.read(0x1001, count: 3) == [2, 3, 4])
        #expect(throws: Errno.badAddress) { try memory.read(0x1002, count: 3) }
        #expect(throws: Errno.badAddress) { try memory.read(0x0FFF, count: 1) }
        #expect(throws: Errno.badAddress) { try memory.write(0x1003, [9, 9]) }
        #expect(memory.region(0x1000) == [1, 2, 3, 4])
        try memory.write(0x1002, [9, 9])
        #expect(memory.region(0x1000) == [1, 2, 9, 9])
        #expect(throws: Errno.badAddress) { try memory.read(UInt64.max, count: 1) }
    }

    @Test("ops carry the uAPI enumerator names and the §0 numbers")
    func opNames() {
        #expect(GuestOp.validateMMIO.uapiName == "TSM_REQ_VALIDATE_MMIO" && GuestOp.validateMMIO.rawValue == 4)
        #expect(GuestOp(uapiName: "TSM_REQ_SEV_DISABLE_DMA") == .sevDisableDMA)
        #expect(GuestOp(uapiName: "TSM_REQ_NOPE") == nil)
        #expect(GuestOp.allCases.map(\.rawValue) == [1, 2, 3, 4, 5, 6, 7])
        #expect(TSMArch.allCases.map(\.rawValue) == [1, 2, 3])
    }
}
