import Wire

/// A TDISP message: the 16-byte ``TDISPHeader`` followed by a payload whose layout depends on
/// the message type (docs/spec/tdisp-spdm.md §2.3).
///
/// Every conforming type decodes with an exact-size check: fewer bytes than the layout needs
/// throw ``WireError/truncated(offset:needed:available:)``, more throw
/// ``WireError/trailingBytes(offset:count:)``, and a MessageType other than ``messageType`` throws
/// ``WireError/invalidValue(field:value:)`` with field `MessageType`. The version byte is not
/// checked by the codec (a DSM answers a wrong version with VERSION_MISMATCH, §2.8).
public protocol TDISPMessage: Hashable, Sendable {
    /// The MessageType every value of this type carries.
    static var messageType: TDISPMessageType { get }
    /// TDISPVersion byte (``TDISPVersion/v1_0`` unless testing a mismatch).
    var version: UInt8 { get set }
    /// INTERFACE_ID: which TDI.
    var interfaceID: InterfaceID { get set }
    /// Decodes the payload after `header` (whose type already matched). Must consume exactly the
    /// payload's bytes; ``TDISPMessage/init(decoding:)`` checks nothing is left.
    init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError)
    /// Appends the payload (everything after the header).
    func encodePayload(to writer: inout ByteWriter)
}

extension TDISPMessage {
    /// The header this message is sent with.
    public var header: TDISPHeader {
        TDISPHeader(version: version, messageType: Self.messageType, interfaceID: interfaceID)
    }

    /// Decodes a whole message (exact size); see ``TDISPMessage`` for the errors.
    public init(decoding bytes: [UInt8]) throws(WireError) {
        var reader = ByteReader(bytes)
        let header = try TDISPHeader(from: &reader)
        guard header.messageType == Self.messageType else {
            throw .invalidValue(field: "MessageType", value: UInt64(header.messageType.rawValue))
        }
        try self.init(header: header, payload: &reader)
        try reader.expectEnd()
    }

    /// The message's bytes.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        header.encode(to: &writer)
        encodePayload(to: &writer)
        return writer.bytes
    }
}

/// A TDISP message without payload: the 16-byte header is the whole message (GET_TDISP_VERSION,
/// GET_DEVICE_INTERFACE_STATE, STOP_INTERFACE_REQUEST, and the responses 0x06-0x0A). A conformer
/// declares `messageType`, `version`, `interfaceID` and the memberwise initializer; decoding
/// (which consumes nothing, so ``TDISPMessage/init(decoding:)`` refuses any byte after the header
/// with `WireError.trailingBytes`) and encoding (nothing after the header) come from here.
public protocol HeaderOnlyTDISPMessage: TDISPMessage {
    /// Creates the message from its two header fields.
    init(version: UInt8, interfaceID: InterfaceID)
}

extension HeaderOnlyTDISPMessage {
    /// Decodes the empty payload after `header`.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID)
    }
    /// Appends nothing: the header is the whole message.
    public func encodePayload(to writer: inout ByteWriter) {}
}

// MARK: - Requests

/// GET_TDISP_VERSION (0x81), 16 bytes: header only.
public struct GetTDISPVersion: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.getTDISPVersion
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// GET_TDISP_CAPABILITIES (0x82), 20 bytes: 16: TSM_CAPS (4, no bits defined).
public struct GetTDISPCapabilities: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.getTDISPCapabilities
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// TSM_CAPS (reserved: every implementation sends 0, §2.3).
    public var tsmCaps: UInt32
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, tsmCaps: UInt32 = 0) {
        self.version = version
        self.interfaceID = interfaceID
        self.tsmCaps = tsmCaps
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, tsmCaps: try reader.u32())
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { writer.u32(tsmCaps) }
}

/// LOCK_INTERFACE_REQUEST (0x83), 36 bytes.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 16 | 2 | FLAGS (``LockInterfaceFlags``) |
/// | 18 | 1 | DEFAULT_STREAM_ID |
/// | 19 | 1 | Reserved |
/// | 20 | 8 | MMIO_REPORTING_OFFSET (bytes) |
/// | 28 | 8 | BIND_P2P_ADDRESS_MASK |
public struct LockInterfaceRequest: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.lockInterfaceRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// FLAGS.
    public var flags: LockInterfaceFlags
    /// DEFAULT_STREAM_ID: the IDE stream id of the default stream.
    public var defaultStreamID: UInt8
    /// MMIO_REPORTING_OFFSET, in bytes, added to every FIRST_PAGE address (EMU-TDISP-6).
    public var mmioReportingOffset: UInt64
    /// BIND_P2P_ADDRESS_MASK (valid with BIND_P2P).
    public var bindP2PAddressMask: UInt64
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, flags: LockInterfaceFlags,
                defaultStreamID: UInt8 = 0, mmioReportingOffset: UInt64 = 0, bindP2PAddressMask: UInt64 = 0) {
        self.version = version
        self.interfaceID = interfaceID
        self.flags = flags
        self.defaultStreamID = defaultStreamID
        self.mmioReportingOffset = mmioReportingOffset
        self.bindP2PAddressMask = bindP2PAddressMask
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        version = header.version
        interfaceID = header.interfaceID
        flags = LockInterfaceFlags(rawValue: try reader.u16())
        defaultStreamID = try reader.u8()
        try reader.skip(1)
        mmioReportingOffset = try reader.u64()
        bindP2PAddressMask = try reader.u64()
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) {
        writer.u16(flags.rawValue)
        writer.u8(defaultStreamID)
        writer.zeros(1)
        writer.u64(mmioReportingOffset)
        writer.u64(bindP2PAddressMask)
    }
}

/// GET_DEVICE_INTERFACE_REPORT (0x84), 20 bytes: 16: OFFSET (2), 18: LENGTH (2), both in bytes.
public struct GetDeviceInterfaceReport: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.getDeviceInterfaceReport
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// OFFSET: bytes of the report already received.
    public var offset: UInt16
    /// LENGTH: most bytes the requester takes in this portion (0xFFFF: as much as possible).
    public var length: UInt16
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, offset: UInt16, length: UInt16) {
        self.version = version
        self.interfaceID = interfaceID
        self.offset = offset
        self.length = length
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID,
                  offset: try reader.u16(), length: try reader.u16())
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) {
        writer.u16(offset)
        writer.u16(length)
    }
}

/// GET_DEVICE_INTERFACE_STATE (0x85), 16 bytes: header only.
public struct GetDeviceInterfaceState: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.getDeviceInterfaceState
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// START_INTERFACE_REQUEST (0x86), 48 bytes: 16: START_INTERFACE_NONCE (32).
public struct StartInterfaceRequest: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.startInterfaceRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// The nonce of the LOCK_INTERFACE_RESPONSE.
    public var nonce: StartInterfaceNonce
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, nonce: StartInterfaceNonce) {
        self.version = version
        self.interfaceID = interfaceID
        self.nonce = nonce
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, nonce: try StartInterfaceNonce(from: &reader))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { writer.bytes(nonce.bytes) }
}

/// STOP_INTERFACE_REQUEST (0x87), 16 bytes: header only.
public struct StopInterfaceRequest: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.stopInterfaceRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// BIND_P2P_STREAM_REQUEST (0x88), 17 bytes: 16: P2P_STREAM_ID (1).
public struct BindP2PStreamRequest: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.bindP2PStreamRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// P2P_STREAM_ID.
    public var p2pStreamID: UInt8
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, p2pStreamID: UInt8) {
        self.version = version
        self.interfaceID = interfaceID
        self.p2pStreamID = p2pStreamID
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, p2pStreamID: try reader.u8())
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { writer.u8(p2pStreamID) }
}

/// UNBIND_P2P_STREAM_REQUEST (0x89), 17 bytes: 16: P2P_STREAM_ID (1).
public struct UnbindP2PStreamRequest: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.unbindP2PStreamRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// P2P_STREAM_ID.
    public var p2pStreamID: UInt8
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, p2pStreamID: UInt8) {
        self.version = version
        self.interfaceID = interfaceID
        self.p2pStreamID = p2pStreamID
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, p2pStreamID: try reader.u8())
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { writer.u8(p2pStreamID) }
}

/// SET_MMIO_ATTRIBUTE_REQUEST (0x8A), 32 bytes: 16: one ``MMIORange`` (16).
public struct SetMMIOAttributeRequest: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.setMMIOAttributeRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// The MMIO_RANGE whose attributes are to change.
    public var range: MMIORange
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, range: MMIORange) {
        self.version = version
        self.interfaceID = interfaceID
        self.range = range
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, range: try MMIORange(from: &reader))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { range.encode(to: &writer) }
}

/// The body shared by VDM_REQUEST and VDM_RESPONSE and by the extended error data of
/// VENDOR_SPECIFIC_ERROR: REGISTRY_ID (1), VENDOR_ID_LEN (1) = v, VENDOR_ID [v], data [rest].
///
/// REGISTRY_ID: 0x00 PCI-SIG, 0x01 CXL. Source: docs/spec/tdisp-spdm.md §2.3 (VDM, [I][CHECK]:
/// only intel/rust-spdm encodes it) and §2.8 (extended error data, libspdm struct).
public struct VendorDefinedBody: Hashable, Sendable {
    /// REGISTRY_ID: 0x00 PCI-SIG, 0x01 CXL.
    public var registryID: UInt8
    /// VENDOR_ID (VENDOR_ID_LEN bytes).
    public var vendorID: [UInt8]
    /// The vendor data that follows, to the end of the message.
    public var data: [UInt8]
    /// VENDOR_ID longer than 255 bytes is truncated to 255 on encode.
    public init(registryID: UInt8, vendorID: [UInt8], data: [UInt8]) {
        self.registryID = registryID
        self.vendorID = vendorID
        self.data = data
    }
    /// Reads the body up to the end of `reader`.
    public init(from reader: inout ByteReader) throws(WireError) {
        registryID = try reader.u8()
        let length = try reader.u8()
        vendorID = try reader.bytes(Int(length))
        data = reader.rest()
    }
    /// Appends REGISTRY_ID, VENDOR_ID_LEN, VENDOR_ID and the data.
    public func encode(to writer: inout ByteWriter) {
        let id = vendorID.prefix(255)
        writer.u8(registryID)
        writer.u8(UInt8(id.count))
        writer.bytes(id)
        writer.bytes(data)
    }
}

/// VDM_REQUEST (0x8B), 18 + v + d bytes: 16: ``VendorDefinedBody``.
public struct VDMRequest: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.vdmRequest
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// The vendor-defined body.
    public var body: VendorDefinedBody
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, body: VendorDefinedBody) {
        self.version = version
        self.interfaceID = interfaceID
        self.body = body
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, body: try VendorDefinedBody(from: &reader))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { body.encode(to: &writer) }
}

// MARK: - Responses

/// TDISP_VERSION (0x01), 17 + n bytes: 16: VERSION_NUM_COUNT (1) = n; 17: VERSION_NUM_ENTRY[n].
public struct TDISPVersionResponse: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.tdispVersion
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// VERSION_NUM_ENTRY[] (0x10 = 1.0). More than 255 entries are truncated on encode.
    public var versions: [UInt8]
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, versions: [UInt8]) {
        self.version = version
        self.interfaceID = interfaceID
        self.versions = versions
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        let count = try reader.u8()
        self.init(version: header.version, interfaceID: header.interfaceID, versions: try reader.bytes(Int(count)))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) {
        let entries = versions.prefix(255)
        writer.u8(UInt8(entries.count))
        writer.bytes(entries)
    }
}

/// TDISP_CAPABILITIES (0x02), 44 bytes.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 16 | 4 | DSM_CAPS (no bits defined) |
/// | 20 | 16 | REQ_MSGS_SUPPORTED (``RequestMessagesSupported``) |
/// | 36 | 2 | LOCK_INTERFACE_FLAGS_SUPPORTED (``LockInterfaceFlags``) |
/// | 38 | 3 | Reserved |
/// | 41 | 1 | DEV_ADDR_WIDTH (address bits) |
/// | 42 | 1 | NUM_REQ_THIS |
/// | 43 | 1 | NUM_REQ_ALL |
public struct TDISPCapabilities: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.tdispCapabilities
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// DSM_CAPS (no bits defined; 0).
    public var dsmCaps: UInt32
    /// REQ_MSGS_SUPPORTED.
    public var requestMessagesSupported: RequestMessagesSupported
    /// LOCK_INTERFACE_FLAGS_SUPPORTED.
    public var lockInterfaceFlagsSupported: LockInterfaceFlags
    /// DEV_ADDR_WIDTH: address bits the device supports.
    public var deviceAddressWidth: UInt8
    /// NUM_REQ_THIS: outstanding requests permitted for this TDI.
    public var numRequestsThis: UInt8
    /// NUM_REQ_ALL: outstanding requests permitted for all TDIs of the DSM.
    public var numRequestsAll: UInt8
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, dsmCaps: UInt32 = 0,
                requestMessagesSupported: RequestMessagesSupported, lockInterfaceFlagsSupported: LockInterfaceFlags,
                deviceAddressWidth: UInt8, numRequestsThis: UInt8 = 0, numRequestsAll: UInt8 = 0) {
        self.version = version
        self.interfaceID = interfaceID
        self.dsmCaps = dsmCaps
        self.requestMessagesSupported = requestMessagesSupported
        self.lockInterfaceFlagsSupported = lockInterfaceFlagsSupported
        self.deviceAddressWidth = deviceAddressWidth
        self.numRequestsThis = numRequestsThis
        self.numRequestsAll = numRequestsAll
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        version = header.version
        interfaceID = header.interfaceID
        dsmCaps = try reader.u32()
        requestMessagesSupported = RequestMessagesSupported(bytes: try reader.bytes(RequestMessagesSupported.size))
        lockInterfaceFlagsSupported = LockInterfaceFlags(rawValue: try reader.u16())
        try reader.skip(3)
        deviceAddressWidth = try reader.u8()
        numRequestsThis = try reader.u8()
        numRequestsAll = try reader.u8()
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) {
        writer.u32(dsmCaps)
        writer.bytes(requestMessagesSupported.bytes)
        writer.u16(lockInterfaceFlagsSupported.rawValue)
        writer.zeros(3)
        writer.u8(deviceAddressWidth)
        writer.u8(numRequestsThis)
        writer.u8(numRequestsAll)
    }
}

/// LOCK_INTERFACE_RESPONSE (0x03), 48 bytes: 16: START_INTERFACE_NONCE (32).
public struct LockInterfaceResponse: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.lockInterfaceResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// START_INTERFACE_NONCE.
    public var nonce: StartInterfaceNonce
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, nonce: StartInterfaceNonce) {
        self.version = version
        self.interfaceID = interfaceID
        self.nonce = nonce
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, nonce: try StartInterfaceNonce(from: &reader))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { writer.bytes(nonce.bytes) }
}

/// DEVICE_INTERFACE_REPORT (0x04), 20 + p bytes.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 16 | 2 | PORTION_LENGTH = p |
/// | 18 | 2 | REMAINDER_LENGTH (report bytes still unsent after this portion) |
/// | 20 | p | report bytes |
///
/// Decoding requires exactly p bytes after offset 20. On encode, a portion longer than 0xFFFF
/// bytes is cut to 0xFFFF.
public struct DeviceInterfaceReportResponse: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.deviceInterfaceReport
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// REMAINDER_LENGTH: report bytes still unsent after this portion.
    public var remainderLength: UInt16
    /// The report bytes of this portion (PORTION_LENGTH of them).
    public var portion: [UInt8]
    /// PORTION_LENGTH.
    public var portionLength: UInt16 { UInt16(clamping: portion.count) }
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, remainderLength: UInt16, portion: [UInt8]) {
        self.version = version
        self.interfaceID = interfaceID
        self.remainderLength = remainderLength
        self.portion = portion
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        let length = try reader.u16()
        let remainder = try reader.u16()
        self.init(version: header.version, interfaceID: header.interfaceID, remainderLength: remainder,
                  portion: try reader.bytes(Int(length)))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) {
        let bytes = portion.prefix(0xFFFF)
        writer.u16(UInt16(bytes.count))
        writer.u16(remainderLength)
        writer.bytes(bytes)
    }
}

/// DEVICE_INTERFACE_STATE (0x05), 17 bytes: 16: TDI_STATE (1, ``TDIState``).
public struct DeviceInterfaceStateResponse: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.deviceInterfaceState
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// TDI_STATE.
    public var state: TDIState
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, state: TDIState) {
        self.version = version
        self.interfaceID = interfaceID
        self.state = state
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        let raw = try reader.u8()
        guard let state = TDIState(rawValue: raw) else { throw .invalidValue(field: "TDI_STATE", value: UInt64(raw)) }
        self.init(version: header.version, interfaceID: header.interfaceID, state: state)
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { writer.u8(state.rawValue) }
}

/// START_INTERFACE_RESPONSE (0x06), 16 bytes: header only.
public struct StartInterfaceResponse: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.startInterfaceResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// STOP_INTERFACE_RESPONSE (0x07), 16 bytes: header only.
public struct StopInterfaceResponse: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.stopInterfaceResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// BIND_P2P_STREAM_RESPONSE (0x08), 16 bytes: header only.
public struct BindP2PStreamResponse: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.bindP2PStreamResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// UNBIND_P2P_STREAM_RESPONSE (0x09), 16 bytes: header only.
public struct UnbindP2PStreamResponse: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.unbindP2PStreamResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// SET_MMIO_ATTRIBUTE_RESPONSE (0x0A), 16 bytes: header only.
public struct SetMMIOAttributeResponse: HeaderOnlyTDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.setMMIOAttributeResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID) {
        self.version = version
        self.interfaceID = interfaceID
    }
}

/// VDM_RESPONSE (0x0B), 18 + v + d bytes: 16: ``VendorDefinedBody``.
public struct VDMResponse: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.vdmResponse
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// The vendor-defined body.
    public var body: VendorDefinedBody
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, body: VendorDefinedBody) {
        self.version = version
        self.interfaceID = interfaceID
        self.body = body
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        self.init(version: header.version, interfaceID: header.interfaceID, body: try VendorDefinedBody(from: &reader))
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) { body.encode(to: &writer) }
}

/// TDISP_ERROR (0x7F), 24 + x bytes.
///
/// | Off | Size | Field |
/// |---|---|---|
/// | 16 | 4 | ERROR_CODE (``TDISPErrorCode``) |
/// | 20 | 4 | ERROR_DATA (UNSUPPORTED_REQUEST: the request code; otherwise 0 or vendor) |
/// | 24 | x | EXTENDED_ERROR_DATA (VENDOR_SPECIFIC_ERROR: ``VendorDefinedBody``) |
///
/// A TDISP_ERROR is a normal response value (docs/spec/tdisp-spdm.md §2.8), not a Swift error.
public struct TDISPErrorResponse: TDISPMessage {
    /// The MessageType every value of this type carries.
    public static let messageType = TDISPMessageType.tdispError
    /// TDISPVersion byte (0x10).
    public var version: UInt8
    /// INTERFACE_ID: the TDI the message is about.
    public var interfaceID: InterfaceID
    /// ERROR_CODE.
    public var errorCode: TDISPErrorCode
    /// ERROR_DATA (UNSUPPORTED_REQUEST: the request code; otherwise 0 or vendor-defined).
    public var errorData: UInt32
    /// EXTENDED_ERROR_DATA: the bytes after offset 24.
    public var extendedErrorData: [UInt8]
    /// Creates the message; `version` defaults to TDISP 1.0 (0x10).
    public init(version: UInt8 = TDISPVersion.v1_0, interfaceID: InterfaceID, errorCode: TDISPErrorCode,
                errorData: UInt32 = 0, extendedErrorData: [UInt8] = []) {
        self.version = version
        self.interfaceID = interfaceID
        self.errorCode = errorCode
        self.errorData = errorData
        self.extendedErrorData = extendedErrorData
    }
    /// Decodes the payload after `header`; see ``TDISPMessage`` for the errors.
    public init(header: TDISPHeader, payload reader: inout ByteReader) throws(WireError) {
        version = header.version
        interfaceID = header.interfaceID
        errorCode = TDISPErrorCode(rawValue: try reader.u32())
        errorData = try reader.u32()
        extendedErrorData = reader.rest()
    }
    /// Appends the payload (everything after the 16-byte header).
    public func encodePayload(to writer: inout ByteWriter) {
        writer.u32(errorCode.rawValue)
        writer.u32(errorData)
        writer.bytes(extendedErrorData)
    }

    /// For VENDOR_SPECIFIC_ERROR, the extended error data decoded as REGISTRY_ID, VENDOR_ID_LEN,
    /// VENDOR_ID, vendor error data; nil for other codes or when there is none. Throws
    /// ``WireError/truncated(offset:needed:available:)`` when VENDOR_ID_LEN overruns.
    public func vendorError() throws(WireError) -> VendorDefinedBody? {
        guard errorCode == .vendorSpecificError, !extendedErrorData.isEmpty else { return nil }
        var reader = ByteReader(extendedErrorData)
        return try VendorDefinedBody(from: &reader)
    }
}
