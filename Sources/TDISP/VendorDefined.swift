import Wire

/// SPDM VENDOR_DEFINED_REQUEST / VENDOR_DEFINED_RESPONSE carrying a PCI-SIG protocol message
/// (TDISP or IDE_KM), the SPDM 1.2/1.3 form (docs/spec/tdisp-spdm.md §3.1).
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 1 | SPDMVersion (e.g. 0x12) |
/// | 1 | 1 | RequestResponseCode: 0xFE request, 0x7E response |
/// | 2 | 1 | Param1 (0) |
/// | 3 | 1 | Param2 (0) |
/// | 4 | 2 | StandardID: 0x0003 PCI-SIG |
/// | 6 | 1 | Len (VendorID length): 2 |
/// | 7 | 2 | VendorID: 0x0001 PCI-SIG |
/// | 9 | 2 | ReqLength / RespLength = 1 + protocol message size |
/// | 11 | 1 | protocol id: 0x01 TDISP, 0x00 IDE_KM |
/// | 12 | n | protocol message |
///
/// Decoding checks, each throwing ``WireError/invalidValue(field:value:)`` (or truncated /
/// trailing bytes): code 0xFE/0x7E (`RequestResponseCode`), StandardID 3 (`StandardID`),
/// Len 2 (`VendorIDLength`), VendorID any (CXL uses 0x1E98), length ≥ 1 (`ReqLength`) and equal to
/// the bytes that follow. Source: libspdm `spdm.h`, `pcidoe.h`; spdm-emu
/// `pci_doe_spdm_vendor_dispatch.c` checks.
public struct PCISIGVendorDefinedMessage: Hashable, Sendable {
    /// SPDM RequestResponseCode of VENDOR_DEFINED_REQUEST.
    public static let requestCode: UInt8 = 0xFE
    /// SPDM RequestResponseCode of VENDOR_DEFINED_RESPONSE.
    public static let responseCode: UInt8 = 0x7E
    /// DMTF registry StandardID of PCI-SIG.
    public static let pciSIGStandardID: UInt16 = 0x0003
    /// PCI-SIG's vendor id.
    public static let pciSIGVendorID: UInt16 = 0x0001
    /// PCI-SIG protocol id of TDISP.
    public static let tdispProtocolID: UInt8 = 0x01
    /// PCI-SIG protocol id of IDE_KM.
    public static let ideKMProtocolID: UInt8 = 0x00

    /// SPDMVersion byte.
    public var spdmVersion: UInt8
    /// True for VENDOR_DEFINED_REQUEST (0xFE), false for _RESPONSE (0x7E).
    public var isRequest: Bool
    /// Param1 (0; SPDM 1.4 bit 7 is LargeReq/LargeResp, not supported here).
    public var param1: UInt8
    /// Param2 (0).
    public var param2: UInt8
    /// VendorID (0x0001 PCI-SIG; 0x1E98 CXL).
    public var vendorID: UInt16
    /// PCI protocol id.
    public var protocolID: UInt8
    /// The protocol message (for TDISP, a whole TDISP message of §2).
    public var payload: [UInt8]

    /// Creates a message; defaults: SPDM 1.2, Param1/2 0, PCI-SIG vendor, TDISP protocol.
    public init(spdmVersion: UInt8 = 0x12, isRequest: Bool, param1: UInt8 = 0, param2: UInt8 = 0,
                vendorID: UInt16 = PCISIGVendorDefinedMessage.pciSIGVendorID,
                protocolID: UInt8 = PCISIGVendorDefinedMessage.tdispProtocolID, payload: [UInt8]) {
        self.spdmVersion = spdmVersion
        self.isRequest = isRequest
        self.param1 = param1
        self.param2 = param2
        self.vendorID = vendorID
        self.protocolID = protocolID
        self.payload = payload
    }

    /// Largest protocol message that fits (ReqLength is u16 and counts the protocol id byte).
    public static let maximumPayload = 0xFFFE

    /// Decodes one SPDM message (exact size); see the type for the checks.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        spdmVersion = try reader.u8()
        let code = try reader.u8()
        switch code {
        case Self.requestCode: isRequest = true
        case Self.responseCode: isRequest = false
        default: throw .invalidValue(field: "RequestResponseCode", value: UInt64(code))
        }
        param1 = try reader.u8()
        param2 = try reader.u8()
        let standard = try reader.u16()
        guard standard == Self.pciSIGStandardID else { throw .invalidValue(field: "StandardID", value: UInt64(standard)) }
        let idLength = try reader.u8()
        guard idLength == 2 else { throw .invalidValue(field: "VendorIDLength", value: UInt64(idLength)) }
        vendorID = try reader.u16()
        let length = try reader.u16()
        guard length >= 1 else { throw .invalidValue(field: "ReqLength", value: 0) }
        protocolID = try reader.u8()
        payload = try reader.bytes(Int(length) - 1)
        try reader.expectEnd()
    }

    /// The SPDM message's bytes. A payload over ``maximumPayload`` bytes is cut to fit.
    public func encoded() -> [UInt8] {
        let body = payload.prefix(Self.maximumPayload)
        var writer = ByteWriter(capacity: 12 + body.count)
        writer.u8(spdmVersion)
        writer.u8(isRequest ? Self.requestCode : Self.responseCode)
        writer.u8(param1)
        writer.u8(param2)
        writer.u16(Self.pciSIGStandardID)
        writer.u8(2)
        writer.u16(vendorID)
        writer.u16(UInt16(body.count + 1))
        writer.u8(protocolID)
        writer.bytes(body)
        return writer.bytes
    }

    /// Wraps a TDISP request (protocol 0x01, vendor PCI-SIG).
    public static func tdisp(request: [UInt8], spdmVersion: UInt8 = 0x12) -> Self {
        Self(spdmVersion: spdmVersion, isRequest: true, payload: request)
    }

    /// Wraps a TDISP response (protocol 0x01, vendor PCI-SIG).
    public static func tdisp(response: [UInt8], spdmVersion: UInt8 = 0x12) -> Self {
        Self(spdmVersion: spdmVersion, isRequest: false, payload: response)
    }
}
