import Device
import Testing
import TDISP
import Wire

/// Requests of wrong size, version or code get the spec's TDISP_ERROR (order EMU-TDISP-5) and
/// leave every TDI as it was.
@Suite("DSM bad requests")
struct BadRequestTests {
    struct Case: Sendable, CustomStringConvertible {
        var description: String
        var bytes: [UInt8]
        var code: TDISPErrorCode
        var data: UInt32 = 0
    }

    static let id = pf.interfaceID
    static func with(_ message: some TDISPMessage, _ change: (inout [UInt8]) -> Void) -> [UInt8] {
        var bytes = message.encoded()
        change(&bytes)
        return bytes
    }

    static let cases: [Case] = [
        Case(description: "empty", bytes: [], code: .invalidRequest),
        Case(description: "15-byte header", bytes: Array(GetTDISPVersion(interfaceID: id).encoded().prefix(15)), code: .invalidRequest),
        Case(description: "LOCK one byte short", bytes: Array(LockInterfaceRequest(interfaceID: id, flags: []).encoded().dropLast()), code: .invalidRequest),
        Case(description: "LOCK one byte long", bytes: LockInterfaceRequest(interfaceID: id, flags: []).encoded() + [0], code: .invalidRequest),
        Case(description: "START one byte short", bytes: Array(StartInterfaceRequest(interfaceID: id, nonce: StartInterfaceNonce(Array(repeating: 1, count: 32))!).encoded().dropLast()), code: .invalidRequest),
        Case(description: "STOP with a payload", bytes: StopInterfaceRequest(interfaceID: id).encoded() + [0], code: .invalidRequest),
        Case(description: "version 0x11", bytes: with(StopInterfaceRequest(interfaceID: id)) { $0[0] = 0x11 }, code: .versionMismatch),
        Case(description: "version 0x00 LOCK", bytes: with(LockInterfaceRequest(interfaceID: id, flags: [])) { $0[0] = 0 }, code: .versionMismatch),
        Case(description: "wrong size wins over wrong version", bytes: with(StopInterfaceRequest(interfaceID: id)) { $0[0] = 0x11; $0.append(0) }, code: .invalidRequest),
        Case(description: "code 0x80", bytes: with(StopInterfaceRequest(interfaceID: id)) { $0[1] = 0x80 }, code: .unsupportedRequest, data: 0x80),
        Case(description: "code 0x8C", bytes: with(StopInterfaceRequest(interfaceID: id)) { $0[1] = 0x8C }, code: .unsupportedRequest, data: 0x8C),
        Case(description: "VDM_REQUEST", bytes: VDMRequest(interfaceID: id, body: VendorDefinedBody(registryID: 0, vendorID: [1, 0], data: [])).encoded(), code: .unsupportedRequest, data: 0x8B),
        Case(description: "a response code", bytes: StopInterfaceResponse(interfaceID: id).encoded(), code: .unsupportedRequest, data: 0x07),
        Case(description: "unknown function", bytes: StopInterfaceRequest(interfaceID: InterfaceID(functionID: FunctionID(rawValue: 0xE101))).encoded(), code: .invalidInterface),
        Case(description: "second LOCK", bytes: LockInterfaceRequest(interfaceID: id, flags: []).encoded(), code: .invalidInterfaceState),
        Case(description: "START with a wrong nonce", bytes: StartInterfaceRequest(interfaceID: id, nonce: StartInterfaceNonce(Array(repeating: 1, count: 32))!).encoded(), code: .invalidNonce),
    ]

    @Test("refused, nothing changes", arguments: cases)
    func refused(_ bad: Case) throws {
        let dsm = try makeDSM()
        try drive(dsm, pf.interfaceID, to: .configLocked)
        try drive(dsm, vf.interfaceID, to: .run)
        let before = [dsm.tdi(pf.interfaceID), dsm.tdi(vf.interfaceID)]
        let error = try TDISPErrorResponse(decoding: dsm.respond(bad.bytes))
        #expect(error.errorCode == bad.code)
        #expect(error.errorData == bad.data)
        #expect(error.version == 0x10)  // EMU-TDISP-5
        #expect(error.interfaceID.reserved == 0)
        #expect([dsm.tdi(pf.interfaceID), dsm.tdi(vf.interfaceID)] == before)
    }

    @Test func errorCopiesFunctionIDWhenItHasOne() throws {
        let dsm = try makeDSM()
        let short = Array(StopInterfaceRequest(interfaceID: vf.interfaceID).encoded().prefix(10))
        #expect(try TDISPErrorResponse(decoding: dsm.respond(short)).interfaceID.functionID == vfID)
        #expect(try TDISPErrorResponse(decoding: dsm.respond([0x10, 0x87])).interfaceID.functionID.rawValue == 0)
    }

    struct LockCase: Sendable, CustomStringConvertible {
        var description: String
        var flags: LockInterfaceFlags
        var offset: UInt64
        var code: TDISPErrorCode
    }

    static let lockCases: [LockCase] = [
        LockCase(description: "reserved flag bit 5 (EMU-TDISP-1)", flags: LockInterfaceFlags(rawValue: 0x0020), offset: 0, code: .invalidRequest),
        LockCase(description: "reserved flag bit 15 (EMU-TDISP-1)", flags: LockInterfaceFlags(rawValue: 0x8000), offset: 0, code: .invalidRequest),
        LockCase(description: "offset not 4 KiB aligned (EMU-TDISP-6)", flags: [], offset: 0x800, code: .invalidRequest),
        LockCase(description: "offset overflows the address", flags: [], offset: 0xFFFF_FFFF_FFFF_F000, code: .invalidRequest),
    ]

    @Test("LOCK parameter checks", arguments: lockCases)
    func lockParameters(_ bad: LockCase) throws {
        let dsm = try makeDSM()
        let response = try dsm.exchange(LockInterfaceRequest(interfaceID: pf.interfaceID, flags: bad.flags, mmioReportingOffset: bad.offset))
        #expect(response.errorCode == bad.code)
        #expect(dsm.tdi(pf.interfaceID)?.state == .configUnlocked)
        #expect(dsm.tdi(pf.interfaceID)?.hasNonce == false)
    }

    @Test func unsupportedFlagIsRefused() throws {
        var profile = DSMProfile.standard
        profile.lockInterfaceFlagsSupported = [.noFirmwareUpdate]
        let dsm = try makeDSM(profile)
        #expect(try dsm.exchange(LockInterfaceRequest(interfaceID: pf.interfaceID, flags: [.lockMSIX])).errorCode == .invalidRequest)
        #expect(try dsm.exchange(LockInterfaceRequest(interfaceID: pf.interfaceID, flags: [.noFirmwareUpdate])).nonce != nil)
    }

    @Test func randomRequestsNeverTrap() throws {
        let dsm = try makeDSM()
        var state: UInt64 = 0x5EED
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<3000 {
            let length = Int(next() % 60)
            var bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: next()) }
            if bytes.count > 7 {
                bytes[0] = 0x10
                bytes[1] = 0x81 + UInt8(next() % 11)
                bytes[4] = next() % 2 == 0 ? 0x00 : 0x20
                bytes[5] = 0xE1
                bytes[6] = 0; bytes[7] = 0
            }
            let response = dsm.respond(bytes)
            #expect((try? TDISPResponse(decoding: response)) != nil)
        }
    }
}
