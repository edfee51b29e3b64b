import Device
import Testing
import TDISP
import Wire

@Suite("DSM behind SPDM VENDOR_DEFINED (spec 3.1)")
struct VendorDefinedDSMTests {
    @Test func workedExchangeOfSpec31() throws {
        let dsm = try DSM(functions: [], profile: .spdmEmu, entropy: .seeded(1))
        let request = try Hex.decode("12 fe 00 00 03 00 02 01 00 11 00 01 10 81 00 00 ef be 00 00 00 00 00 00 00 00 00 00")
        let response = try dsm.respond(vendorDefined: request)
        #expect(Hex.encode(response) == "127e0000030002010013000110010000efbe000000000000000000000110")
    }

    @Test func foreignMessagesAreRefusedWithoutEffect() throws {
        let dsm = try makeDSM()
        let lock = LockInterfaceRequest(interfaceID: pf.interfaceID, flags: []).encoded()
        var ideKM = PCISIGVendorDefinedMessage.tdisp(request: lock)
        ideKM.protocolID = 0x00
        #expect(throws: WireError.invalidValue(field: "ProtocolID", value: 0)) { try dsm.respond(vendorDefined: ideKM.encoded()) }
        var cxl = PCISIGVendorDefinedMessage.tdisp(request: lock)
        cxl.vendorID = 0x1E98
        #expect(throws: WireError.invalidValue(field: "VendorID", value: 0x1E98)) { try dsm.respond(vendorDefined: cxl.encoded()) }
        let backwards = PCISIGVendorDefinedMessage.tdisp(response: lock).encoded()
        #expect(throws: WireError.invalidValue(field: "RequestResponseCode", value: 0x7E)) { try dsm.respond(vendorDefined: backwards) }
        #expect(dsm.tdi(pf.interfaceID)?.state == .configUnlocked)
        let ok = try PCISIGVendorDefinedMessage(decoding: dsm.respond(vendorDefined: PCISIGVendorDefinedMessage.tdisp(request: lock, spdmVersion: 0x13).encoded()))
        #expect(ok.spdmVersion == 0x13 && !ok.isRequest)
        #expect(dsm.tdi(pf.interfaceID)?.state == .configLocked)
    }
}
