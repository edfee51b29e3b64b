import Wire

/// The TDISP protocol version byte: high nibble major, low nibble minor.
///
/// TDISP 1.0 is `0x10` (PCIe Base r6.1 §11.3; `DMTF/libspdm:include/industry_standard/pci_tdisp.h`
/// `PCI_TDISP_MESSAGE_VERSION_10`; docs/spec/tdisp-spdm.md §2.1).
public enum TDISPVersion {
    /// TDISP 1.0, the only version any implementation speaks.
    public static let v1_0: UInt8 = 0x10
}

/// FUNCTION_ID, the first four bytes of INTERFACE_ID: which function (TDI) a message is about.
///
/// | bits | field |
/// |---|---|
/// | 15:0 | Requester ID (bus 15:8, device 7:3, function 2:0) |
/// | 23:16 | Requester Segment (meaningful only when bit 24 is set) |
/// | 24 | Requester Segment Valid |
/// | 31:25 | reserved |
///
/// Source: docs/spec/tdisp-spdm.md §2.1 (spdm-rs, cerberus, caliptra and Linux `tsm.h` agree).
/// The raw value is kept as received, so reserved bits survive a decode/encode round trip.
public struct FunctionID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The 32-bit little-endian value as on the wire.
    public var rawValue: UInt32

    /// Wraps a raw FUNCTION_ID.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Builds a FUNCTION_ID from a Requester ID and an optional segment (sets bit 24 when given).
    public init(requesterID: UInt16, segment: UInt8? = nil) {
        var value = UInt32(requesterID)
        if let segment { value |= UInt32(segment) << 16 | 1 << 24 }
        rawValue = value
    }

    /// Builds a FUNCTION_ID from bus, device (0-31) and function (0-7) numbers; out-of-range
    /// device/function bits are masked to their field width.
    public init(bus: UInt8, device: UInt8, function: UInt8, segment: UInt8? = nil) {
        self.init(requesterID: UInt16(bus) << 8 | UInt16(device & 0x1F) << 3 | UInt16(function & 0x7), segment: segment)
    }

    /// Bits 15:0: the Requester ID (routing ID) of the function.
    public var requesterID: UInt16 { UInt16(truncatingIfNeeded: rawValue) }
    /// Bus number (Requester ID bits 15:8).
    public var bus: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
    /// Device number (Requester ID bits 7:3).
    public var device: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 3) & 0x1F }
    /// Function number (Requester ID bits 2:0).
    public var function: UInt8 { UInt8(truncatingIfNeeded: rawValue) & 0x7 }
    /// Bit 24: Requester Segment Valid.
    public var segmentValid: Bool { rawValue & (1 << 24) != 0 }
    /// Bits 23:16 when bit 24 is set, otherwise nil.
    public var segment: UInt8? { segmentValid ? UInt8(truncatingIfNeeded: rawValue >> 16) : nil }
    /// Bits 31:25, reserved (0 on a well-formed message).
    public var reservedBits: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 25) }

    /// `[ssss:]bb:dd.f` in hex, as lspci prints a function (segment only when valid).
    public var description: String {
        let bdf = hex(bus, 2) + ":" + hex(device, 2) + "." + String(function, radix: 16)
        if let segment { return hex(segment, 4) + ":" + bdf }
        return bdf
    }

    private func hex(_ value: UInt8, _ width: Int) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}

/// INTERFACE_ID (12 bytes): names one TDI of the DSM.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 4 | FUNCTION_ID (``FunctionID``) |
/// | 4 | 8 | Reserved |
///
/// Source: docs/spec/tdisp-spdm.md §2.1; `pci_tdisp_interface_id_t` in libspdm `pci_tdisp.h`.
public struct InterfaceID: Hashable, Sendable, CustomStringConvertible {
    /// Size on the wire, in bytes.
    public static let size = 12
    /// The function the TDI is.
    public var functionID: FunctionID
    /// The 8 reserved bytes, as a little-endian u64 (0 on a well-formed message).
    public var reserved: UInt64

    /// Creates an INTERFACE_ID; `reserved` defaults to 0.
    public init(functionID: FunctionID, reserved: UInt64 = 0) {
        self.functionID = functionID
        self.reserved = reserved
    }

    /// Reads the 12 bytes. Throws ``WireError/truncated(offset:needed:available:)``.
    public init(from reader: inout ByteReader) throws(WireError) {
        functionID = FunctionID(rawValue: try reader.u32())
        reserved = try reader.u64()
    }

    /// Appends the 12 bytes.
    public func encode(to writer: inout ByteWriter) {
        writer.u32(functionID.rawValue)
        writer.u64(reserved)
    }

    /// A readable form for traces and the CLI.
    public var description: String {
        reserved == 0 ? functionID.description : "\(functionID) (reserved 0x\(String(reserved, radix: 16)))"
    }
}

/// The 16-byte header of every TDISP request and response.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 0 | 1 | TDISPVersion (``TDISPVersion/v1_0``) |
/// | 1 | 1 | MessageType (``TDISPMessageType``) |
/// | 2 | 2 | Reserved (ignored on decode, 0 on encode) |
/// | 4 | 12 | INTERFACE_ID (``InterfaceID``) |
///
/// Source: docs/spec/tdisp-spdm.md §2.1.
public struct TDISPHeader: Hashable, Sendable {
    /// Size on the wire, in bytes.
    public static let size = 16
    /// TDISPVersion byte.
    public var version: UInt8
    /// MessageType byte.
    public var messageType: TDISPMessageType
    /// INTERFACE_ID.
    public var interfaceID: InterfaceID

    /// Creates a header.
    public init(version: UInt8 = TDISPVersion.v1_0, messageType: TDISPMessageType, interfaceID: InterfaceID) {
        self.version = version
        self.messageType = messageType
        self.interfaceID = interfaceID
    }

    /// Reads 16 bytes. Throws ``WireError/truncated(offset:needed:available:)`` when fewer remain.
    /// Any version and any message type are accepted here: deciding what they mean is the caller's.
    public init(from reader: inout ByteReader) throws(WireError) {
        version = try reader.u8()
        messageType = TDISPMessageType(rawValue: try reader.u8())
        try reader.skip(2)
        interfaceID = try InterfaceID(from: &reader)
    }

    /// Decodes the header at the start of `bytes` (trailing bytes are the payload and are ignored).
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        try self.init(from: &reader)
    }

    /// Appends the 16 bytes.
    public func encode(to writer: inout ByteWriter) {
        writer.u8(version)
        writer.u8(messageType.rawValue)
        writer.zeros(2)
        interfaceID.encode(to: &writer)
    }
}
