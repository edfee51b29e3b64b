import Firmware
import SystemPackage
import Testing

@Suite("Guest payloads by name and fields")
struct PayloadFieldsTests {
    @Test("CCA VALIDATE_MMIO from gpa_base/gpa_top/pa_base is the 24-byte layout")
    func ccaValidate() throws {
        let bytes = try GuestPayloads.request(arch: .cca, op: .validateMMIO,
                                              fields: ["gpa_base": 0x4000_0000, "gpa_top": 0x4000_4000, "pa_base": 0x0800_0000])
        #expect(bytes == CCA.ValidateMMIORequest(gpaBase: 0x4000_0000, gpaTop: 0x4000_4000, paBase: 0x0800_0000).encoded())
        #expect(try GuestPayloads.request(arch: .tdx, op: .setTDIState, fields: ["tdi_state": 2]) == [2, 0, 0, 0])
        #expect(try GuestPayloads.request(arch: .cca, op: .regenObject, fields: ["object_type": 3, "nonce": 0x1000]).count == 24)
    }

    @Test("unknown fields, oversized values and ops without a payload are errors", arguments: [
        (TSMArch.cca, GuestOp.validateMMIO, ["gpa": UInt64(1)]),
        (.cca, .objectInfo, ["object_type": 0x1_0000_0000]),
        (.sev, .setTDIState, ["value": 0x100]),
        (.sev, .readObject, [:]),
        (.cca, .sevEnableDMA, [:]),
        (.sev, .validateMMIO, ["validated": 2]),
        (.sev, .validateMMIO, ["msg_type": 23, "tdi_id": 1]),
    ])
    func errors(arch: TSMArch, op: GuestOp, fields: [String: UInt64]) {
        #expect(throws: PayloadFieldError.self) { try GuestPayloads.request(arch: arch, op: op, fields: fields) }
    }

    @Test("SEV messages built from fields go through the platform; responses decode to fields")
    func sevRoundTrip() throws {
        let h = try Harness(SEVPlatform())
        let validate = try GuestPayloads.request(arch: .sev, op: .validateMMIO, fields: [
            "msg_seqno": 1, "tdi_id": h.tdiID, "subrange_base": 0x8_0000_0000, "subrange_page_count": 2, "validated": 1,
        ])
        let outcome = h.send(.validateMMIO, validate, responseLength: 256)
        #expect(outcome.errno == nil)
        let fields = try GuestPayloads.response(arch: .sev, op: .validateMMIO, bytes: outcome.response)
        #expect(fields["status"] == 0 && fields["changed"] == 1 && fields["msg_seqno"] == 2 && fields["msg_type"] == 22)
        let config = try GuestPayloads.request(arch: .sev, op: .validateMMIO,
                                               fields: ["msg_seqno": 3, "msg_type": 23, "guest_device_id": UInt64(h.guestID), "range_id": 4])
        let configFields = try GuestPayloads.response(arch: .sev, op: .validateMMIO, bytes: h.send(.validateMMIO, config, responseLength: 112).response)
        #expect(configFields["status"] == 0 && configFields["attributes"] == 0x4 && configFields["msg_type"] == 24)
        let enable = try GuestPayloads.request(arch: .sev, op: .sevEnableDMA, fields: ["msg_seqno": 5, "tdi_id": h.tdiID, "sdte_v": 1])
        let enableFields = try GuestPayloads.response(arch: .sev, op: .sevEnableDMA, bytes: h.send(.sevEnableDMA, enable, responseLength: 112).response)
        #expect(enableFields["status"] == 0)
        #expect(h.platform.tdiInfo(function: h.function)?.tsmEnabled == true)
        #expect(h.send(.setTDIState, try GuestPayloads.request(arch: .sev, op: .setTDIState, fields: ["value": 1])).errno == nil)
        #expect(h.deviceState == .run)
    }

    @Test("response decoding: OBJECT_INFO size, READ_OBJECT length, empty responses; garbage refused")
    func responses() throws {
        #expect(try GuestPayloads.response(arch: .cca, op: .objectInfo, bytes: [100, 0, 0, 0]) == ["size": 100])
        #expect(try GuestPayloads.response(arch: .tdx, op: .readObject, bytes: [1, 2, 3]) == ["length": 3])
        #expect(try GuestPayloads.response(arch: .cca, op: .setTDIState, bytes: []) == [:])
        #expect(throws: PayloadFieldError.self) { try GuestPayloads.response(arch: .cca, op: .objectInfo, bytes: [1]) }
        #expect(throws: PayloadFieldError.self) { try GuestPayloads.response(arch: .sev, op: .validateMMIO, bytes: [UInt8](repeating: 0, count: 144)) }
        var generator = SeededGenerator(seed: 9)
        for _ in 0..<300 {
            let bytes = (0..<Int(generator.next() % 300)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            for arch in TSMArch.allCases {
                for op in GuestOp.allCases { _ = try? GuestPayloads.response(arch: arch, op: op, bytes: bytes) }
            }
        }
    }
}
