import TDISP
import Wire

/// SplitMix64: a deterministic generator so fuzz tests are reproducible.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

let beef = InterfaceID(functionID: FunctionID(rawValue: 0xBEEF))
let sampleNonce = StartInterfaceNonce(Array(0x20..<0x40))!

/// One value of every TDISP message with the exact size §2.3 gives it.
let everyMessage: [(name: String, message: any TDISPMessage, size: Int)] = [
    ("GET_TDISP_VERSION", GetTDISPVersion(interfaceID: beef), 16),
    ("TDISP_VERSION", TDISPVersionResponse(interfaceID: beef, versions: [0x10]), 18),
    ("GET_TDISP_CAPABILITIES", GetTDISPCapabilities(interfaceID: beef), 20),
    ("TDISP_CAPABILITIES", TDISPCapabilities(interfaceID: beef, requestMessagesSupported: RequestMessagesSupported(bytes: [0xFE]),
                                             lockInterfaceFlagsSupported: [.noFirmwareUpdate], deviceAddressWidth: 48), 44),
    ("LOCK_INTERFACE_REQUEST", LockInterfaceRequest(interfaceID: beef, flags: [.lockMSIX], mmioReportingOffset: 0xD000_0000), 36),
    ("LOCK_INTERFACE_RESPONSE", LockInterfaceResponse(interfaceID: beef, nonce: sampleNonce), 48),
    ("GET_DEVICE_INTERFACE_REPORT", GetDeviceInterfaceReport(interfaceID: beef, offset: 0, length: 0x40), 20),
    ("DEVICE_INTERFACE_REPORT", DeviceInterfaceReportResponse(interfaceID: beef, remainderLength: 0x24, portion: [1, 2, 3]), 23),
    ("GET_DEVICE_INTERFACE_STATE", GetDeviceInterfaceState(interfaceID: beef), 16),
    ("DEVICE_INTERFACE_STATE", DeviceInterfaceStateResponse(interfaceID: beef, state: .run), 17),
    ("START_INTERFACE_REQUEST", StartInterfaceRequest(interfaceID: beef, nonce: sampleNonce), 48),
    ("START_INTERFACE_RESPONSE", StartInterfaceResponse(interfaceID: beef), 16),
    ("STOP_INTERFACE_REQUEST", StopInterfaceRequest(interfaceID: beef), 16),
    ("STOP_INTERFACE_RESPONSE", StopInterfaceResponse(interfaceID: beef), 16),
    ("BIND_P2P_STREAM_REQUEST", BindP2PStreamRequest(interfaceID: beef, p2pStreamID: 3), 17),
    ("BIND_P2P_STREAM_RESPONSE", BindP2PStreamResponse(interfaceID: beef), 16),
    ("UNBIND_P2P_STREAM_REQUEST", UnbindP2PStreamRequest(interfaceID: beef, p2pStreamID: 3), 17),
    ("UNBIND_P2P_STREAM_RESPONSE", UnbindP2PStreamResponse(interfaceID: beef), 16),
    ("SET_MMIO_ATTRIBUTE_REQUEST", SetMMIOAttributeRequest(interfaceID: beef, range: MMIORange(
        firstPage: 0x8000, numberOfPages: 4, attributes: [.memoryAttributeUpdatable, .nonTEEMemory], rangeID: 2)), 32),
    ("SET_MMIO_ATTRIBUTE_RESPONSE", SetMMIOAttributeResponse(interfaceID: beef), 16),
    ("VDM_REQUEST", VDMRequest(interfaceID: beef, body: VendorDefinedBody(registryID: 0, vendorID: [0x86, 0x80], data: [9, 9, 9])), 23),
    ("VDM_RESPONSE", VDMResponse(interfaceID: beef, body: VendorDefinedBody(registryID: 1, vendorID: [], data: [])), 18),
    ("TDISP_ERROR", TDISPErrorResponse(interfaceID: beef, errorCode: .unsupportedRequest, errorData: 0x88), 24),
]

/// Decodes `bytes` as the same type as `message`.
func decodeLike(_ message: any TDISPMessage, _ bytes: [UInt8]) throws(WireError) -> any TDISPMessage {
    func open<M: TDISPMessage>(_: M) throws(WireError) -> any TDISPMessage { try M(decoding: bytes) }
    return try open(message)
}

func equal(_ a: any TDISPMessage, _ b: any TDISPMessage) -> Bool {
    func open<M: TDISPMessage>(_ a: M) -> Bool { (b as? M) == a }
    return open(a)
}

/// Messages whose last field runs to the end: the smallest size that still decodes.
let openEndedMinimum: [String: Int] = ["TDISP_ERROR": 24, "VDM_REQUEST": 20, "VDM_RESPONSE": 18]

/// The prefixes of `name`'s encoding that must fail to decode.
func mustFailCuts(_ name: String, _ count: Int) -> Range<Int> { 0..<(openEndedMinimum[name] ?? count) }
