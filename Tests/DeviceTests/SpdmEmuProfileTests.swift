import Device
import Testing
import TDISP
import Wire

/// The `spdm-emu` profile against DMTF's sample device, byte for byte (docs/spec/tdisp-spdm.md
/// §2.11), walked the way spdm-emu's requester walks it (FUNCTION_ID 0xBEEF).
@Suite("spdm-emu profile golden vectors (spec 2.11)")
struct SpdmEmuProfileTests {
    static let beef = InterfaceID(functionID: FunctionID(rawValue: 0xBEEF))
    static let report = """
    03 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00
    00 00 00 00 00 00 00 00 01 00 00 00 04 00 01 00
    00 80 00 00 00 00 00 00 04 00 00 00 08 00 02 00
    00 00 01 00 00 00 00 00 08 00 00 00 08 00 03 00
    00 00 02 00 00 00 00 00 08 00 00 00 08 00 04 00
    10 00 00 00 74 64 69 73 70 5f 64 65 76 5f 65 6d
    75 00 00 00
    """

    @Test func requesterWalk() throws {
        let dsm = try DSM(functions: [], profile: .spdmEmu, entropy: .seeded(1))
        let id = Self.beef
        // GET_TDISP_VERSION: spec 3.1's worked answer (inside the VENDOR_DEFINED wrapper).
        let version = dsm.respond(GetTDISPVersion(interfaceID: id).encoded())
        #expect(Hex.encode(version) == "10010000efbe0000000000000000000001" + "10")
        // TDISP_CAPABILITIES: DSM_CAPS 0, REQ_MSGS byte 0 0xFE, flags 0x0007, width 48, 0, 0.
        let caps = dsm.respond(GetTDISPCapabilities(interfaceID: id).encoded())
        #expect(Hex.encode(caps) == "10020000efbe0000" + "0000000000000000" + "00000000" + "fe" + String(repeating: "00", count: 15)
            + "0700" + "000000" + "30" + "00" + "00")
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: id)) == .deviceInterfaceState(
            DeviceInterfaceStateResponse(interfaceID: id, state: .configUnlocked)))
        let lock = try dsm.exchange(LockInterfaceRequest(interfaceID: id, flags: [.noFirmwareUpdate, .systemCacheLineSize128, .lockMSIX],
                                                         mmioReportingOffset: 0xD000_0000))
        let nonce = try #require(lock.nonce)
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: id)) == .deviceInterfaceState(
            DeviceInterfaceStateResponse(interfaceID: id, state: .configLocked)))

        // Two portions: (0x40, remainder 0x24) then (0x24, 0); offset not applied.
        let golden = try hexLines(Self.report)
        let first = dsm.respond(GetDeviceInterfaceReport(interfaceID: id, offset: 0, length: 0x40).encoded())
        #expect(first == [0x10, 0x04, 0, 0, 0xEF, 0xBE, 0, 0] + Array(repeating: 0, count: 8) + [0x40, 0x00, 0x24, 0x00] + golden[0..<0x40])
        let second = dsm.respond(GetDeviceInterfaceReport(interfaceID: id, offset: 0x40, length: 0x24).encoded())
        #expect(second == [0x10, 0x04, 0, 0, 0xEF, 0xBE, 0, 0] + Array(repeating: 0, count: 8) + [0x24, 0x00, 0x00, 0x00] + golden[0x40...])
        // LENGTH above 0x40 is capped to 0x40.
        let capped = try dsm.exchange(GetDeviceInterfaceReport(interfaceID: id, offset: 0, length: 0xFFFF))
        guard case let .deviceInterfaceReport(portion) = capped else { Issue.record("\(capped)"); return }
        #expect(portion.portionLength == 0x40 && portion.remainderLength == 0x24)

        #expect(try dsm.exchange(StartInterfaceRequest(interfaceID: id, nonce: nonce)).header.messageType == .startInterfaceResponse)
        #expect(dsm.tdi(id)?.state == .run)
        #expect(try dsm.exchange(StopInterfaceRequest(interfaceID: id)).header.messageType == .stopInterfaceResponse)
        #expect(dsm.tdi(id)?.state == .configUnlocked)
        // Its STOP rule: STOP in CONFIG_UNLOCKED is INVALID_INTERFACE_STATE (EMU-TDISP-3 stopStrict).
        #expect(try dsm.exchange(StopInterfaceRequest(interfaceID: id)).errorCode == .invalidInterfaceState)
        // After STOP it still serves the old report, with no state check.
        let stale = dsm.respond(GetDeviceInterfaceReport(interfaceID: id, offset: 0x40, length: 0x40).encoded())
        #expect(stale == second)
    }

    @Test func beforeLockTheReportIsInvalidRequest() throws {
        let dsm = try DSM(functions: [], profile: .spdmEmu, entropy: .seeded(1))
        _ = dsm.respond(GetTDISPVersion(interfaceID: Self.beef).encoded())
        #expect(try dsm.exchange(GetDeviceInterfaceReport(interfaceID: Self.beef, offset: 0, length: 0x40)).errorCode == .invalidRequest)
    }

    @Test func versionReinitialisesTheGlobalContext() throws {
        let dsm = try DSM(functions: [], profile: .spdmEmu, entropy: .seeded(1))
        let other = InterfaceID(functionID: FunctionID(rawValue: 0x0100))
        _ = dsm.respond(GetTDISPVersion(interfaceID: Self.beef).encoded())
        _ = try dsm.exchange(LockInterfaceRequest(interfaceID: Self.beef, flags: []))
        #expect(dsm.tdi(Self.beef)?.state == .configLocked)
        // Another INTERFACE_ID is INVALID_INTERFACE until a GET_TDISP_VERSION names it...
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: other)).errorCode == .invalidInterface)
        // ...which then replaces the context and resets it to CONFIG_UNLOCKED.
        _ = dsm.respond(GetTDISPVersion(interfaceID: other).encoded())
        #expect(dsm.interfaceIDs == [other])
        #expect(dsm.tdi(other)?.state == .configUnlocked)
        #expect(try dsm.exchange(GetDeviceInterfaceState(interfaceID: Self.beef)).errorCode == .invalidInterface)
    }

    @Test func unsupportedCodesAndErrorVersionEcho() throws {
        let dsm = try DSM(functions: [], profile: .spdmEmu, entropy: .seeded(1))
        _ = dsm.respond(GetTDISPVersion(interfaceID: Self.beef).encoded())
        for code in [0x88, 0x89, 0x8A, 0x8B] as [UInt8] {
            var bytes = BindP2PStreamRequest(interfaceID: Self.beef, p2pStreamID: 0).encoded()
            bytes[1] = code
            let response = try TDISPErrorResponse(decoding: dsm.respond(bytes))
            #expect(response.errorCode == .unsupportedRequest)
            #expect(response.errorData == UInt32(code))
        }
        // spdm-emu echoes the request's version byte in TDISP_ERROR.
        var wrong = GetDeviceInterfaceState(interfaceID: Self.beef)
        wrong.version = 0x11
        let error = try TDISPErrorResponse(decoding: dsm.respond(wrong.encoded()))
        #expect(error.errorCode == .versionMismatch && error.version == 0x11)
        // spdm-emu does not check LOCK parameters: an unaligned offset and reserved flags pass.
        let lock = try dsm.exchange(LockInterfaceRequest(interfaceID: Self.beef, flags: LockInterfaceFlags(rawValue: 0xFFFF),
                                                         mmioReportingOffset: 0x123))
        #expect(lock.nonce != nil)
    }
}
