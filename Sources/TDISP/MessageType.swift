/// A TDISP MessageType byte (request or response code).
///
/// Requests have bit 7 set; a response is its request's code with bit 7 cleared, except
/// TDISP_ERROR (0x7F). Unknown codes are representable (a DSM answers them with
/// UNSUPPORTED_REQUEST), so this is a struct over the byte rather than a closed enum.
///
/// | Request | Code | Response | Code |
/// |---|---|---|---|
/// | GET_TDISP_VERSION | 0x81 | TDISP_VERSION | 0x01 |
/// | GET_TDISP_CAPABILITIES | 0x82 | TDISP_CAPABILITIES | 0x02 |
/// | LOCK_INTERFACE_REQUEST | 0x83 | LOCK_INTERFACE_RESPONSE | 0x03 |
/// | GET_DEVICE_INTERFACE_REPORT | 0x84 | DEVICE_INTERFACE_REPORT | 0x04 |
/// | GET_DEVICE_INTERFACE_STATE | 0x85 | DEVICE_INTERFACE_STATE | 0x05 |
/// | START_INTERFACE_REQUEST | 0x86 | START_INTERFACE_RESPONSE | 0x06 |
/// | STOP_INTERFACE_REQUEST | 0x87 | STOP_INTERFACE_RESPONSE | 0x07 |
/// | BIND_P2P_STREAM_REQUEST | 0x88 | BIND_P2P_STREAM_RESPONSE | 0x08 |
/// | UNBIND_P2P_STREAM_REQUEST | 0x89 | UNBIND_P2P_STREAM_RESPONSE | 0x09 |
/// | SET_MMIO_ATTRIBUTE_REQUEST | 0x8A | SET_MMIO_ATTRIBUTE_RESPONSE | 0x0A |
/// | VDM_REQUEST | 0x8B | VDM_RESPONSE | 0x0B |
/// | — | — | TDISP_ERROR | 0x7F |
///
/// Source: docs/spec/tdisp-spdm.md §2.2 (libspdm `pci_tdisp.h`).
public struct TDISPMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The code byte.
    public var rawValue: UInt8
    /// Wraps a code byte.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// 0x81: GET_TDISP_VERSION.
    public static let getTDISPVersion = Self(rawValue: 0x81)
    /// 0x82: GET_TDISP_CAPABILITIES.
    public static let getTDISPCapabilities = Self(rawValue: 0x82)
    /// 0x83: LOCK_INTERFACE_REQUEST.
    public static let lockInterfaceRequest = Self(rawValue: 0x83)
    /// 0x84: GET_DEVICE_INTERFACE_REPORT.
    public static let getDeviceInterfaceReport = Self(rawValue: 0x84)
    /// 0x85: GET_DEVICE_INTERFACE_STATE.
    public static let getDeviceInterfaceState = Self(rawValue: 0x85)
    /// 0x86: START_INTERFACE_REQUEST.
    public static let startInterfaceRequest = Self(rawValue: 0x86)
    /// 0x87: STOP_INTERFACE_REQUEST.
    public static let stopInterfaceRequest = Self(rawValue: 0x87)
    /// 0x88: BIND_P2P_STREAM_REQUEST.
    public static let bindP2PStreamRequest = Self(rawValue: 0x88)
    /// 0x89: UNBIND_P2P_STREAM_REQUEST.
    public static let unbindP2PStreamRequest = Self(rawValue: 0x89)
    /// 0x8A: SET_MMIO_ATTRIBUTE_REQUEST.
    public static let setMMIOAttributeRequest = Self(rawValue: 0x8A)
    /// 0x8B: VDM_REQUEST.
    public static let vdmRequest = Self(rawValue: 0x8B)

    /// 0x01: TDISP_VERSION.
    public static let tdispVersion = Self(rawValue: 0x01)
    /// 0x02: TDISP_CAPABILITIES.
    public static let tdispCapabilities = Self(rawValue: 0x02)
    /// 0x03: LOCK_INTERFACE_RESPONSE.
    public static let lockInterfaceResponse = Self(rawValue: 0x03)
    /// 0x04: DEVICE_INTERFACE_REPORT.
    public static let deviceInterfaceReport = Self(rawValue: 0x04)
    /// 0x05: DEVICE_INTERFACE_STATE.
    public static let deviceInterfaceState = Self(rawValue: 0x05)
    /// 0x06: START_INTERFACE_RESPONSE.
    public static let startInterfaceResponse = Self(rawValue: 0x06)
    /// 0x07: STOP_INTERFACE_RESPONSE.
    public static let stopInterfaceResponse = Self(rawValue: 0x07)
    /// 0x08: BIND_P2P_STREAM_RESPONSE.
    public static let bindP2PStreamResponse = Self(rawValue: 0x08)
    /// 0x09: UNBIND_P2P_STREAM_RESPONSE.
    public static let unbindP2PStreamResponse = Self(rawValue: 0x09)
    /// 0x0A: SET_MMIO_ATTRIBUTE_RESPONSE.
    public static let setMMIOAttributeResponse = Self(rawValue: 0x0A)
    /// 0x0B: VDM_RESPONSE.
    public static let vdmResponse = Self(rawValue: 0x0B)
    /// 0x7F: TDISP_ERROR.
    public static let tdispError = Self(rawValue: 0x7F)

    /// The eleven request codes defined by TDISP 1.0, in code order.
    public static let allRequests: [Self] = (0x81...0x8B).map { Self(rawValue: $0) }

    /// True for codes with bit 7 set.
    public var isRequest: Bool { rawValue & 0x80 != 0 }

    /// For a request code, the code of its successful response (bit 7 cleared).
    public var responseType: Self { Self(rawValue: rawValue & 0x7F) }

    /// The standard's name of the message, or `UNKNOWN_0xNN`.
    public var name: String {
        switch rawValue {
        case 0x81: return "GET_TDISP_VERSION"
        case 0x82: return "GET_TDISP_CAPABILITIES"
        case 0x83: return "LOCK_INTERFACE_REQUEST"
        case 0x84: return "GET_DEVICE_INTERFACE_REPORT"
        case 0x85: return "GET_DEVICE_INTERFACE_STATE"
        case 0x86: return "START_INTERFACE_REQUEST"
        case 0x87: return "STOP_INTERFACE_REQUEST"
        case 0x88: return "BIND_P2P_STREAM_REQUEST"
        case 0x89: return "UNBIND_P2P_STREAM_REQUEST"
        case 0x8A: return "SET_MMIO_ATTRIBUTE_REQUEST"
        case 0x8B: return "VDM_REQUEST"
        case 0x01: return "TDISP_VERSION"
        case 0x02: return "TDISP_CAPABILITIES"
        case 0x03: return "LOCK_INTERFACE_RESPONSE"
        case 0x04: return "DEVICE_INTERFACE_REPORT"
        case 0x05: return "DEVICE_INTERFACE_STATE"
        case 0x06: return "START_INTERFACE_RESPONSE"
        case 0x07: return "STOP_INTERFACE_RESPONSE"
        case 0x08: return "BIND_P2P_STREAM_RESPONSE"
        case 0x09: return "UNBIND_P2P_STREAM_RESPONSE"
        case 0x0A: return "SET_MMIO_ATTRIBUTE_RESPONSE"
        case 0x0B: return "VDM_RESPONSE"
        case 0x7F: return "TDISP_ERROR"
        default:
            let digits = String(rawValue, radix: 16, uppercase: true)
            return "UNKNOWN_0x" + (digits.count < 2 ? "0" : "") + digits
        }
    }

    /// A readable form for traces and the CLI.
    public var description: String { name }

    /// The exact size in bytes of a message of this type when the size is fixed, or nil when it
    /// depends on the payload (TDISP_VERSION, DEVICE_INTERFACE_REPORT, VDM_*, TDISP_ERROR) or the
    /// code is unknown. Source: docs/spec/tdisp-spdm.md §2.3.
    public var fixedSize: Int? {
        switch rawValue {
        case 0x81, 0x85, 0x87: return 16
        case 0x82, 0x84: return 20
        case 0x83: return 36
        case 0x86: return 48
        case 0x88, 0x89: return 17
        case 0x8A: return 32
        case 0x02: return 44
        case 0x03: return 48
        case 0x05: return 17
        case 0x06, 0x07, 0x08, 0x09, 0x0A: return 16
        default: return nil
        }
    }
}
