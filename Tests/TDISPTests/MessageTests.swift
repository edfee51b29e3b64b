import Testing
import TDISP
import Wire

@Suite("TDISP messages")
struct MessageTests {
    @Test("every message has the exact size of spec 2.3 and round-trips", arguments: everyMessage.map { ($0.name, $0.size) })
    func exactSizeAndRoundTrip(name: String, size: Int) throws {
        let entry = try #require(everyMessage.first { $0.name == name })
        let bytes = entry.message.encoded()
        #expect(bytes.count == size)
        #expect(bytes[1] == type(of: entry.message).messageType.rawValue)
        let decoded = try decodeLike(entry.message, bytes)
        #expect(equal(decoded, entry.message))
    }

    @Test("one byte short is truncated, one byte more is trailing", arguments: everyMessage.map(\.name))
    func sizeChecks(name: String) throws {
        let entry = try #require(everyMessage.first { $0.name == name })
        let bytes = entry.message.encoded()
        // Messages whose last field runs to the end (error data, vendor data) absorb extra bytes.
        if openEndedMinimum[name] == nil {
            #expect(throws: WireError.self) { try decodeLike(entry.message, Array(bytes.dropLast())) }
            #expect(throws: WireError.trailingBytes(offset: bytes.count, count: 1)) {
                try decodeLike(entry.message, bytes + [0])
            }
        }
        for cut in mustFailCuts(name, bytes.count) {
            #expect(throws: WireError.self) { try decodeLike(entry.message, Array(bytes.prefix(cut))) }
        }
    }

    @Test func headerLayoutAndFunctionID() throws {
        // Spec 3.1 worked example: GET_TDISP_VERSION for FUNCTION_ID 0xBEEF.
        let bytes = GetTDISPVersion(interfaceID: beef).encoded()
        #expect(Hex.encode(bytes) == "10810000efbe0000" + "0000000000000000")
        let id = FunctionID(bus: 0xE1, device: 4, function: 3, segment: 0x12)
        #expect(id.rawValue == 0x0112_E123)
        #expect(id.requesterID == 0xE123)
        #expect(id.bus == 0xE1 && id.device == 4 && id.function == 3)
        #expect(id.segment == 0x12 && id.segmentValid)
        #expect(id.description == "0012:e1:04.3")
        #expect(FunctionID(rawValue: 0x00FF_0008).segment == nil)  // segment bits without bit 24
        #expect(FunctionID(rawValue: 0xFE00_0000).reservedBits == 0x7F)
    }

    @Test func wrongMessageTypeIsRejected() {
        var bytes = StopInterfaceRequest(interfaceID: beef).encoded()
        bytes[1] = 0x85
        #expect(throws: WireError.invalidValue(field: "MessageType", value: 0x85)) {
            try StopInterfaceRequest(decoding: bytes)
        }
        #expect(throws: WireError.invalidValue(field: "MessageType", value: 0x8C)) {
            try TDISPRequest(decoding: [0x10, 0x8C] + Array(repeating: 0, count: 14))
        }
        #expect(throws: WireError.invalidValue(field: "MessageType", value: 0x81)) {
            try TDISPResponse(decoding: GetTDISPVersion(interfaceID: beef).encoded())
        }
    }

    @Test func tdiStateOutOfRangeIsRejected() {
        var bytes = DeviceInterfaceStateResponse(interfaceID: beef, state: .error).encoded()
        #expect(bytes[16] == 3)
        bytes[16] = 4
        #expect(throws: WireError.invalidValue(field: "TDI_STATE", value: 4)) {
            try DeviceInterfaceStateResponse(decoding: bytes)
        }
    }

    @Test func requestMessagesSupportedBitIndexIsCodeMinus0x80() {
        let bitmap = RequestMessagesSupported(Array(TDISPMessageType.allRequests.prefix(7)))
        #expect(bitmap.bytes == [0xFE] + Array(repeating: 0, count: 15))  // spdm-emu's sample value
        let vdm = RequestMessagesSupported([.vdmRequest])
        #expect(vdm.bytes[1] == 0x08)
        #expect(vdm.contains(.vdmRequest) && !vdm.contains(.getTDISPVersion))
        #expect(bitmap.codes.map(\.rawValue) == Array(0x81...0x87))
    }

    @Test func capabilitiesLayout() {
        let caps = TDISPCapabilities(interfaceID: beef, dsmCaps: 0, requestMessagesSupported: RequestMessagesSupported(bytes: [0xFE]),
                                     lockInterfaceFlagsSupported: [.noFirmwareUpdate, .systemCacheLineSize128, .lockMSIX],
                                     deviceAddressWidth: 48)
        let bytes = caps.encoded()
        #expect(bytes[20] == 0xFE)
        #expect(bytes[36] == 0x07 && bytes[37] == 0)
        #expect(bytes[41] == 48)
    }

    @Test func lockLayout() {
        let lock = LockInterfaceRequest(interfaceID: beef, flags: [.noFirmwareUpdate, .lockMSIX], defaultStreamID: 5,
                                        mmioReportingOffset: 0xD000_0000, bindP2PAddressMask: 0x1122)
        let bytes = lock.encoded()
        #expect(Array(bytes[16...19]) == [0x05, 0x00, 0x05, 0x00])
        #expect(Array(bytes[20...27]) == [0, 0, 0, 0xD0, 0, 0, 0, 0])
        #expect(Array(bytes[28...29]) == [0x22, 0x11])
        #expect(LockInterfaceFlags.reserved.rawValue == 0xFFE0)
        #expect(LockInterfaceFlags.defined.rawValue == 0x001F)
    }

    @Test func errorCodesAndVendorErrorData() throws {
        #expect(TDISPErrorCode.invalidRequest.rawValue == 0x0001)
        #expect(TDISPErrorCode.invalidInterfaceState.rawValue == 0x0004)
        #expect(TDISPErrorCode.unsupportedRequest.rawValue == 0x0007)
        #expect(TDISPErrorCode.versionMismatch.rawValue == 0x0041)
        #expect(TDISPErrorCode.invalidInterface.rawValue == 0x0101)
        #expect(TDISPErrorCode.invalidNonce.rawValue == 0x0102)
        #expect(TDISPErrorCode.insufficientEntropy.rawValue == 0x0103)
        #expect(TDISPErrorCode.invalidDeviceConfiguration.rawValue == 0x0104)
        #expect(TDISPErrorCode(rawValue: 0x2).name == "ERROR_0x2")
        let error = TDISPErrorResponse(interfaceID: beef, errorCode: .vendorSpecificError, errorData: 2,
                                       extendedErrorData: [0x00, 0x02, 0x86, 0x80, 0xAA, 0xBB])
        let decoded = try TDISPErrorResponse(decoding: error.encoded())
        #expect(try decoded.vendorError() == VendorDefinedBody(registryID: 0, vendorID: [0x86, 0x80], data: [0xAA, 0xBB]))
        let short = TDISPErrorResponse(interfaceID: beef, errorCode: .vendorSpecificError, extendedErrorData: [0x00, 0x05, 0x86])
        #expect(throws: WireError.truncated(offset: 2, needed: 5, available: 1)) { try short.vendorError() }
        #expect(try TDISPErrorResponse(interfaceID: beef, errorCode: .busy).vendorError() == nil)
    }

    @Test func responseTypeClearsBit7() {
        for request in TDISPMessageType.allRequests {
            #expect(request.isRequest)
            #expect(request.responseType.rawValue == request.rawValue - 0x80)
            #expect(!request.name.hasPrefix("UNKNOWN"))
        }
        #expect(TDISPMessageType(rawValue: 0x8C).name == "UNKNOWN_0x8C")
    }
}
