import Wire

/// Any TDISP request, decoded by its MessageType (docs/spec/tdisp-spdm.md §2.2-2.3).
///
/// ``init(decoding:)`` throws ``WireError/truncated(offset:needed:available:)`` for fewer than 16
/// bytes or a short payload, ``WireError/trailingBytes(offset:count:)`` for extra bytes, and
/// ``WireError/invalidValue(field:value:)`` (field `MessageType`) for a code that is not one of the
/// eleven TDISP 1.0 requests.
public enum TDISPRequest: Hashable, Sendable {
    case getVersion(GetTDISPVersion)
    case getCapabilities(GetTDISPCapabilities)
    case lockInterface(LockInterfaceRequest)
    case getDeviceInterfaceReport(GetDeviceInterfaceReport)
    case getDeviceInterfaceState(GetDeviceInterfaceState)
    case startInterface(StartInterfaceRequest)
    case stopInterface(StopInterfaceRequest)
    case bindP2PStream(BindP2PStreamRequest)
    case unbindP2PStream(UnbindP2PStreamRequest)
    case setMMIOAttribute(SetMMIOAttributeRequest)
    case vdm(VDMRequest)

    /// Decodes one request (exact size).
    public init(decoding bytes: [UInt8]) throws(WireError) {
        let header = try TDISPHeader(decoding: bytes)
        switch header.messageType {
        case .getTDISPVersion: self = .getVersion(try GetTDISPVersion(decoding: bytes))
        case .getTDISPCapabilities: self = .getCapabilities(try GetTDISPCapabilities(decoding: bytes))
        case .lockInterfaceRequest: self = .lockInterface(try LockInterfaceRequest(decoding: bytes))
        case .getDeviceInterfaceReport: self = .getDeviceInterfaceReport(try GetDeviceInterfaceReport(decoding: bytes))
        case .getDeviceInterfaceState: self = .getDeviceInterfaceState(try GetDeviceInterfaceState(decoding: bytes))
        case .startInterfaceRequest: self = .startInterface(try StartInterfaceRequest(decoding: bytes))
        case .stopInterfaceRequest: self = .stopInterface(try StopInterfaceRequest(decoding: bytes))
        case .bindP2PStreamRequest: self = .bindP2PStream(try BindP2PStreamRequest(decoding: bytes))
        case .unbindP2PStreamRequest: self = .unbindP2PStream(try UnbindP2PStreamRequest(decoding: bytes))
        case .setMMIOAttributeRequest: self = .setMMIOAttribute(try SetMMIOAttributeRequest(decoding: bytes))
        case .vdmRequest: self = .vdm(try VDMRequest(decoding: bytes))
        default: throw .invalidValue(field: "MessageType", value: UInt64(header.messageType.rawValue))
        }
    }

    /// The wrapped message.
    public var message: any TDISPMessage {
        switch self {
        case let .getVersion(m): return m
        case let .getCapabilities(m): return m
        case let .lockInterface(m): return m
        case let .getDeviceInterfaceReport(m): return m
        case let .getDeviceInterfaceState(m): return m
        case let .startInterface(m): return m
        case let .stopInterface(m): return m
        case let .bindP2PStream(m): return m
        case let .unbindP2PStream(m): return m
        case let .setMMIOAttribute(m): return m
        case let .vdm(m): return m
        }
    }

    /// The message's header.
    public var header: TDISPHeader { message.header }
    /// The message's bytes.
    public func encoded() -> [UInt8] { message.encoded() }
}

/// Any TDISP response, decoded by its MessageType (docs/spec/tdisp-spdm.md §2.2-2.3); the
/// errors are those of ``TDISPRequest/init(decoding:)``.
public enum TDISPResponse: Hashable, Sendable {
    case version(TDISPVersionResponse)
    case capabilities(TDISPCapabilities)
    case lockInterface(LockInterfaceResponse)
    case deviceInterfaceReport(DeviceInterfaceReportResponse)
    case deviceInterfaceState(DeviceInterfaceStateResponse)
    case startInterface(StartInterfaceResponse)
    case stopInterface(StopInterfaceResponse)
    case bindP2PStream(BindP2PStreamResponse)
    case unbindP2PStream(UnbindP2PStreamResponse)
    case setMMIOAttribute(SetMMIOAttributeResponse)
    case vdm(VDMResponse)
    case error(TDISPErrorResponse)

    /// Decodes one response (exact size).
    public init(decoding bytes: [UInt8]) throws(WireError) {
        let header = try TDISPHeader(decoding: bytes)
        switch header.messageType {
        case .tdispVersion: self = .version(try TDISPVersionResponse(decoding: bytes))
        case .tdispCapabilities: self = .capabilities(try TDISPCapabilities(decoding: bytes))
        case .lockInterfaceResponse: self = .lockInterface(try LockInterfaceResponse(decoding: bytes))
        case .deviceInterfaceReport: self = .deviceInterfaceReport(try DeviceInterfaceReportResponse(decoding: bytes))
        case .deviceInterfaceState: self = .deviceInterfaceState(try DeviceInterfaceStateResponse(decoding: bytes))
        case .startInterfaceResponse: self = .startInterface(try StartInterfaceResponse(decoding: bytes))
        case .stopInterfaceResponse: self = .stopInterface(try StopInterfaceResponse(decoding: bytes))
        case .bindP2PStreamResponse: self = .bindP2PStream(try BindP2PStreamResponse(decoding: bytes))
        case .unbindP2PStreamResponse: self = .unbindP2PStream(try UnbindP2PStreamResponse(decoding: bytes))
        case .setMMIOAttributeResponse: self = .setMMIOAttribute(try SetMMIOAttributeResponse(decoding: bytes))
        case .vdmResponse: self = .vdm(try VDMResponse(decoding: bytes))
        case .tdispError: self = .error(try TDISPErrorResponse(decoding: bytes))
        default: throw .invalidValue(field: "MessageType", value: UInt64(header.messageType.rawValue))
        }
    }

    /// The wrapped message.
    public var message: any TDISPMessage {
        switch self {
        case let .version(m): return m
        case let .capabilities(m): return m
        case let .lockInterface(m): return m
        case let .deviceInterfaceReport(m): return m
        case let .deviceInterfaceState(m): return m
        case let .startInterface(m): return m
        case let .stopInterface(m): return m
        case let .bindP2PStream(m): return m
        case let .unbindP2PStream(m): return m
        case let .setMMIOAttribute(m): return m
        case let .vdm(m): return m
        case let .error(m): return m
        }
    }

    /// The message's header.
    public var header: TDISPHeader { message.header }
    /// The message's bytes.
    public func encoded() -> [UInt8] { message.encoded() }
}
