// The decoder registry behind `tsmctl decode` (docs/decode.md): every kind of byte string the
// project produces or consumes — uAPI structs, TDISP messages (bare or inside SPDM
// VENDOR_DEFINED), interface reports, DMTF measurement records, SPDM certificate chains and the
// architecture guest-request payloads — decoded into named fields (name, offset, size, value,
// meaning). Validity is always decided by the owning module's codec (UAPI, TDISP, Device,
// Firmware); this file only names the fields the codec accepted.
import Device
import Firmware
import Foundation
import TDISP
import UAPI
import Wire

/// One decoded field: its standard name, byte offset and size in the decoded bytes, its value
/// (`0x…` hex for integers; hex bytes for byte strings; text for certificate subjects) and, for
/// enumerations and flags, what the value means.
struct DecodedField: Encodable, Equatable, Sendable {
    /// The field's name as the standard or kernel header spells it (`tvm_arch`, `FUNCTION_ID`,
    /// `mmio_range[0].FIRST_PAGE`).
    let name: String
    /// Offset from the start of the decoded bytes (for an SPDM-wrapped TDISP message: of the SPDM
    /// message).
    let offset: Int
    /// Size in bytes.
    let size: Int
    /// The value as text.
    let value: String
    /// The meaning of an enumeration or flag value (nil when the value speaks for itself).
    let meaning: String?
}

/// The result of decoding one byte string.
struct DecodedMessage: Encodable, Equatable, Sendable {
    /// The registry kind that decoded it (after `auto` detection), e.g. `tdisp`.
    let kind: String
    /// What it is, e.g. `TDISP LOCK_INTERFACE_REQUEST (0x83)` or
    /// `struct iommu_vdevice_tsm_req (profile rev-k, 48 bytes)`.
    let title: String
    /// Total length in bytes.
    let length: Int
    /// Every field, in wire order.
    let fields: [DecodedField]
}

/// Why `tsmctl decode` refused its input. Each description is one line naming the problem and
/// the input, followed by the valid kinds (so a user can correct `--as`).
enum DecodeError: Error, Equatable, CustomStringConvertible {
    /// The text is not hexadecimal: `source` names the input, `position` the character index.
    case badHex(source: String, position: Int)
    /// The input holds no bytes.
    case empty(source: String)
    /// `kind` is not a registry kind.
    case unknownKind(String)
    /// The bytes are not a valid `kind`: `problem` says why (length or field).
    case invalid(kind: String, problem: String)
    /// `--as auto` found no kind that accepts the bytes.
    case undetected(length: Int)
    /// A trace line is not a trace record (`line` is 1-based).
    case badTraceLine(source: String, line: Int, problem: String)
    /// A file could not be read.
    case unreadable(path: String, reason: String)
    /// `--profile` (or a trace line's `profile`) is not a uAPI profile; `message` names the valid ones.
    case unknownProfile(message: String)

    /// The one-line message, ending with the valid kinds.
    var description: String {
        let kinds = "; valid kinds: " + DecodeRegistry.kinds.joined(separator: ", ")
        switch self {
        case let .badHex(source, position):
            return "bad hex in \(source) at character \(position)" + kinds
        case let .empty(source):
            return "no bytes in \(source)" + kinds
        case let .unknownKind(kind):
            return "unknown kind '\(kind)'" + kinds
        case let .invalid(kind, problem):
            return "not a valid \(kind): \(problem)" + kinds
        case let .undetected(length):
            return "\(length) byte(s) match no kind tried by auto (tdisp, spdm-vdm, interface-report, certificate-chain, measurement-record); name one with --as" + kinds
        case let .badTraceLine(source, line, problem):
            return "\(source) line \(line): \(problem)" + kinds
        case let .unreadable(path, reason):
            return "cannot read \(path): \(reason)" + kinds
        case let .unknownProfile(message):
            return message + kinds
        }
    }
}

/// Reads fields in order from a byte string and records each one as a ``DecodedField``.
/// Every read is bounds-checked by `Wire.ByteReader` (a short buffer throws, never traps).
struct DecodeFieldCursor {
    private var reader: ByteReader
    /// Added to every recorded offset (the position of these bytes inside a larger message).
    let base: Int
    /// The fields read so far.
    private(set) var fields: [DecodedField] = []

    /// A cursor at the start of `bytes`; recorded offsets are `base` + the position in `bytes`.
    init(_ bytes: [UInt8], base: Int = 0) {
        reader = ByteReader(bytes)
        self.base = base
    }

    /// The position in the bytes.
    var offset: Int { reader.offset }
    /// Bytes not read yet.
    var remaining: Int { reader.remaining }

    private mutating func record(_ name: String, at start: Int, size: Int, value: String, meaning: String?) {
        fields.append(DecodedField(name: name, offset: base + start, size: size, value: value, meaning: meaning))
    }

    /// Reads and records a u8; `meaning` names the value. Throws ``WireError/truncated(offset:needed:available:)``.
    @discardableResult
    mutating func u8(_ name: String, meaning: ((UInt64) -> String?)? = nil) throws(WireError) -> UInt64 {
        let start = reader.offset
        let value = UInt64(try reader.u8())
        record(name, at: start, size: 1, value: decodeHex(value, digits: 2), meaning: meaning?(value))
        return value
    }

    /// Reads and records a little-endian u16 (errors as ``u8(_:meaning:)``).
    @discardableResult
    mutating func u16(_ name: String, meaning: ((UInt64) -> String?)? = nil) throws(WireError) -> UInt64 {
        let start = reader.offset
        let value = UInt64(try reader.u16())
        record(name, at: start, size: 2, value: decodeHex(value, digits: 4), meaning: meaning?(value))
        return value
    }

    /// Reads and records a little-endian u32 (errors as ``u8(_:meaning:)``).
    @discardableResult
    mutating func u32(_ name: String, meaning: ((UInt64) -> String?)? = nil) throws(WireError) -> UInt64 {
        let start = reader.offset
        let value = UInt64(try reader.u32())
        record(name, at: start, size: 4, value: decodeHex(value, digits: 8), meaning: meaning?(value))
        return value
    }

    /// Reads and records a little-endian u64 (errors as ``u8(_:meaning:)``).
    @discardableResult
    mutating func u64(_ name: String, meaning: ((UInt64) -> String?)? = nil) throws(WireError) -> UInt64 {
        let start = reader.offset
        let value = try reader.u64()
        record(name, at: start, size: 8, value: decodeHex(value, digits: 16), meaning: meaning?(value))
        return value
    }

    /// Reads and records `count` bytes as hex (errors as ``u8(_:meaning:)``).
    @discardableResult
    mutating func bytes(_ name: String, _ count: Int, meaning: (([UInt8]) -> String?)? = nil) throws(WireError) -> [UInt8] {
        let start = reader.offset
        let value = try reader.bytes(count)
        record(name, at: start, size: count, value: Hex.encode(value), meaning: meaning?(value))
        return value
    }

    /// Records the rest of the bytes (possibly none) as one field.
    @discardableResult
    mutating func rest(_ name: String, meaning: (([UInt8]) -> String?)? = nil) -> [UInt8] {
        let start = reader.offset
        let value = reader.rest()
        record(name, at: start, size: value.count, value: Hex.encode(value), meaning: meaning?(value))
        return value
    }

    /// Records a field whose value is text (certificate subjects), consuming `count` bytes.
    mutating func text(_ name: String, _ count: Int, value: String, meaning: String?) throws(WireError) {
        let start = reader.offset
        try reader.skip(count)
        record(name, at: start, size: count, value: value, meaning: meaning)
    }

    /// Appends fields decoded elsewhere (already carrying their offsets).
    mutating func append(_ more: [DecodedField]) { fields.append(contentsOf: more) }

    /// Throws ``WireError/trailingBytes(offset:count:)`` unless every byte was read.
    func expectEnd() throws(WireError) { try reader.expectEnd() }
}

/// `0x` and `digits` lower-case hex digits (more if the value needs them).
func decodeHex(_ value: UInt64, digits: Int) -> String {
    let text = String(value, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, digits - text.count)) + text
}

/// Names the set bits of `value` from `names` (bit → name); unnamed set bits are listed as
/// `bit N (reserved)`; `none` when no bit is set.
func decodeFlags(_ value: UInt64, _ names: [Int: String], width: Int) -> String {
    var parts: [String] = []
    for bit in 0..<width where value & (1 << UInt64(bit)) != 0 {
        parts.append(names[bit] ?? "bit \(bit) (reserved)")
    }
    return parts.isEmpty ? "none" : parts.joined(separator: " | ")
}

/// The decoder registry: kinds by name, and ``decode(_:as:profile:)``.
///
/// | kind | what |
/// |---|---|
/// | `auto` | TDISP header first, then spdm-vdm, interface-report, certificate-chain, measurement-record |
/// | a uAPI struct's kernel name (`iommu_vdevice_tsm_req`, …) or its `CIOMMUFD` name | the struct; the TSM_REQ layout and op numbering follow `--profile` |
/// | `tdisp` | a TDISP request or response, told apart by the message type code |
/// | `spdm-vdm` | SPDM VENDOR_DEFINED_REQUEST/RESPONSE (PCI-SIG) with the TDISP message inside |
/// | `interface-report` | a TDISP DEVICE_INTERFACE_REPORT (§2.9) |
/// | `measurement-record` | DMTF measurement blocks (SPDM MEASUREMENTS MeasurementRecord) |
/// | `certificate-chain` | an SPDM certificate chain (SHA-384 or SHA-256 RootHash) |
/// | `ARCH:OP:DIRECTION` | an architecture guest-request payload (``archKinds``) |
enum DecodeRegistry {
    /// The architecture payload kinds: `(arch, op, direction)` for every payload the Firmware
    /// module has a codec for.
    static let archKinds: [String] = {
        let ccaShaped = ["read_object:request", "regen_object:request", "object_info:request",
                         "object_info:response", "validate_mmio:request", "set_tdi_state:request"]
        let sev = ["validate_mmio:request", "validate_mmio:response", "set_tdi_state:request",
                   "sev_enable_dma:request", "sev_enable_dma:response",
                   "sev_disable_dma:request", "sev_disable_dma:response",
                   "tdi_info:request", "tdi_info:response"]
        return ccaShaped.map { "cca:" + $0 } + sev.map { "sev:" + $0 } + ccaShaped.map { "tdx:" + $0 }
            + ["tdx:tdcm:buffer"]
    }()

    /// The uAPI kinds: each kernel struct name once, then the distinct `CIOMMUFD` names.
    static let uapiKinds: [String] = {
        var names: [String] = []
        for layout in StructLayout.all where !names.contains(layout.name) { names.append(layout.name) }
        for layout in StructLayout.all where !names.contains(layout.cName) { names.append(layout.cName) }
        return names
    }()

    /// Every kind `--as` accepts, in the order help and error messages list them.
    static let kinds: [String] = ["auto", "tdisp", "spdm-vdm", "interface-report", "measurement-record",
                                  "certificate-chain"] + uapiKinds + archKinds

    /// Decodes `bytes` as `kind` (``kinds``). `profile` picks the TSM_REQ layout and op numbering.
    /// Throws ``DecodeError/unknownKind(_:)``, ``DecodeError/invalid(kind:problem:)`` or (auto)
    /// ``DecodeError/undetected(length:)``.
    static func decode(_ bytes: [UInt8], as kind: String, profile: UAPIProfile) throws(DecodeError) -> DecodedMessage {
        switch kind {
        case "auto": return try auto(bytes, profile: profile)
        case "tdisp": return try tdisp(bytes)
        case "spdm-vdm": return try spdmVDM(bytes)
        case "interface-report": return try interfaceReport(bytes)
        case "measurement-record": return try measurementRecord(bytes)
        case "certificate-chain": return try certificateChain(bytes)
        default: break
        }
        if uapiKinds.contains(kind) { return try uapiStruct(bytes, name: kind, profile: profile) }
        if archKinds.contains(kind) { return try archPayload(bytes, kind: kind) }
        throw .unknownKind(kind)
    }

    // MARK: auto

    static func auto(_ bytes: [UInt8], profile: UAPIProfile) throws(DecodeError) -> DecodedMessage {
        for kind in ["tdisp", "spdm-vdm", "interface-report", "certificate-chain", "measurement-record"] {
            if let decoded = try? decode(bytes, as: kind, profile: profile) { return decoded }
        }
        throw .undetected(length: bytes.count)
    }

    // MARK: uAPI structs

    /// The layout `name` selects under `profile`: a `cName` is exact; a kernel name shared by
    /// several layouts (TSM_REQ) takes the profile's.
    static func layout(named name: String, profile: UAPIProfile) -> StructLayout? {
        if let exact = StructLayout.all.first(where: { $0.cName == name && $0.cName != $0.name }) { return exact }
        if name == profile.tsmReqLayout.layout.name { return profile.tsmReqLayout.layout }
        return StructLayout.all.first { $0.name == name }
    }

    static func uapiStruct(_ bytes: [UInt8], name: String, profile: UAPIProfile) throws(DecodeError) -> DecodedMessage {
        guard let layout = layout(named: name, profile: profile) else { throw .unknownKind(name) }
        guard bytes.count == layout.size else {
            throw .invalid(kind: name, problem: "struct \(layout.cName) (profile \(profile.name)) is \(layout.size) bytes, got \(bytes.count)")
        }
        let values: [(field: FieldLayout, value: UInt64)]
        do { values = try layout.fieldValues(from: bytes) } catch {
            throw .invalid(kind: name, problem: error.description)
        }
        let byName = Dictionary(values.map { ($0.field.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let fields = values.map { entry in
            DecodedField(name: entry.field.name, offset: entry.field.offset, size: entry.field.size,
                         value: entry.field.isSigned
                            ? String(Int32(truncatingIfNeeded: entry.value))
                            : decodeHex(entry.value, digits: entry.field.size * 2),
                         meaning: uapiMeaning(layout: layout, field: entry.field, value: entry.value,
                                              all: byName, profile: profile))
        }
        return DecodedMessage(kind: name, title: "struct \(layout.name) (\(layout.cName), profile \(profile.name), \(layout.size) bytes)",
                              length: bytes.count, fields: fields)
    }

    static func uapiMeaning(layout: StructLayout, field: FieldLayout, value: UInt64, all: [String: UInt64],
                            profile: UAPIProfile) -> String? {
        switch field.role {
        case .size:
            return value == UInt64(layout.size) ? "sizeof(struct \(layout.name)) = \(layout.size)"
                : "not sizeof(struct \(layout.name)) = \(layout.size)"
        case .reserved:
            return value == 0 ? "reserved, 0" : "reserved, must be 0 (the kernel refuses non-zero)"
        case .objectID:
            return field.direction == .out ? "object ID (out)" : "object ID"
        case .userPointer:
            return "user address"
        case .value:
            break
        }
        switch (layout.name, field.name) {
        case ("iommu_vdevice_tsm_req", "op"):
            guard let op = profile.op(rawValue: UInt32(truncatingIfNeeded: value)) else {
                return "not an op of profile \(profile.name) (EINVAL); valid: "
                    + profile.validOps.map { "\($0.rawValue) \($0.op.kernelName)" }.joined(separator: ", ")
            }
            let verdict = profile.guestRequestVerdict(op: UInt32(truncatingIfNeeded: value),
                                                      tvmArch: UInt32(truncatingIfNeeded: all["tvm_arch"] ?? 0))
            if case .opRequiresSEV = verdict { return "\(op.kernelName) (profile \(profile.name); SEV only: EINVAL with this tvm_arch)" }
            return "\(op.kernelName) (profile \(profile.name))"
        case ("iommu_vdevice_tsm_req", "tvm_arch"):
            return TVMArch(rawValue: UInt32(truncatingIfNeeded: value))?.kernelName ?? "no such tvm_arch (EINVAL)"
        case ("iommu_vdevice_tsm_req", "scope"):
            return TSMReqScope(rawValue: UInt32(truncatingIfNeeded: value))?.kernelName ?? "no such scope (EINVAL)"
        case ("iommu_vdevice_tsm_req", "req_len"), ("iommu_vdevice_tsm_req", "resp_len"):
            return "bytes"
        case ("iommu_vdevice_tsm_req", "tsm_code"):
            switch TVMArch(rawValue: UInt32(truncatingIfNeeded: all["tvm_arch"] ?? 0)) {
            case .cca?: return "CCA: always 0"
            case .sev?: return "SEV: PSP status" + (value == 0 ? " SUCCESS" : "")
            case .tdx?: return "TDX: TDX module status" + (value == 0 ? " SUCCESS" : "")
            case nil: return "firmware status (out)"
            }
        case ("iommu_vdevice_tsm_op", "type"):
            return VDeviceTSMOpType(rawValue: UInt32(truncatingIfNeeded: value))?.kernelName ?? "no such type (EINVAL)"
        case ("iommu_vdevice_tsm_op", "flags"):
            return value == 0 ? "none" : "must be 0 (EOPNOTSUPP)"
        case ("iommu_hwpt_alloc", "flags"):
            return decodeFlags(value, [0: "IOMMU_HWPT_ALLOC_NEST_PARENT", 1: "IOMMU_HWPT_ALLOC_DIRTY_TRACKING",
                                     2: "IOMMU_HWPT_FAULT_ID_VALID", 3: "IOMMU_HWPT_ALLOC_PASID"], width: 32)
        case ("iommu_hwpt_alloc", "data_type"):
            return ["IOMMU_HWPT_DATA_NONE", "IOMMU_HWPT_DATA_VTD_S1", "IOMMU_HWPT_DATA_ARM_SMMUV3"]
                .indices.contains(Int(clamping: value))
                ? ["IOMMU_HWPT_DATA_NONE", "IOMMU_HWPT_DATA_VTD_S1", "IOMMU_HWPT_DATA_ARM_SMMUV3"][Int(clamping: value)]
                : "unknown data type"
        case ("iommu_viommu_alloc", "type"):
            let names = ["IOMMU_VIOMMU_TYPE_DEFAULT", "IOMMU_VIOMMU_TYPE_ARM_SMMUV3", "IOMMU_VIOMMU_TYPE_TEGRA241_CMDQV"]
            return names.indices.contains(Int(clamping: value)) ? names[Int(clamping: value)] : "unknown vIOMMU type"
        case ("vfio_device_bind_iommufd", "flags"):
            return decodeFlags(value, [0: "VFIO_DEVICE_BIND_FLAG_TOKEN"], width: 32)
        default:
            return nil
        }
    }

    // MARK: TDISP

    static let lockFlagNames: [Int: String] = [0: "NO_FW_UPDATE", 1: "SYSTEM_CACHE_LINE_SIZE_128", 2: "LOCK_MSIX",
                                               3: "BIND_P2P", 4: "ALL_REQUEST_REDIRECT"]
    static let interfaceInfoNames: [Int: String] = [0: "NO_FW_UPDATE", 1: "DMA_WITHOUT_PASID", 2: "DMA_WITH_PASID",
                                                    3: "ATS_ENABLED", 4: "PRS_ENABLED"]
    static let rangeAttributeNames: [Int: String] = [0: "MSI_X_TABLE", 1: "MSI_X_PBA", 2: "IS_NON_TEE_MEM",
                                                     3: "IS_MEM_ATTR_UPDATABLE"]

    static func messageTypeName(_ code: UInt8) -> String {
        let type = TDISPMessageType(rawValue: code)
        let known = TDISPMessageType.allRequests.contains(type) || (0x01...0x0B).contains(code) || code == 0x7F
        return known ? "\(type.name)" : "unknown message type"
    }

    static func tdisp(_ bytes: [UInt8]) throws(DecodeError) -> DecodedMessage {
        let fields = try tdispFields(bytes, base: 0, kind: "tdisp")
        let code = bytes.count > 1 ? bytes[1] : 0
        let direction = code >= 0x80 ? "request" : "response"
        return DecodedMessage(kind: "tdisp", title: "TDISP \(direction) \(messageTypeName(code)) (\(decodeHex(UInt64(code), digits: 2)))",
                              length: bytes.count, fields: fields)
    }

    /// Validates `bytes` with the TDISP module (request if the code is ≥ 0x80, else response),
    /// then names every field; offsets are relative to `base`.
    static func tdispFields(_ bytes: [UInt8], base: Int, kind: String) throws(DecodeError) -> [DecodedField] {
        guard bytes.count >= TDISPHeader.size else {
            throw .invalid(kind: kind, problem: "a TDISP message is at least \(TDISPHeader.size) bytes (header), got \(bytes.count)")
        }
        let code = bytes[1]
        do {
            if code >= 0x80 { _ = try TDISPRequest(decoding: bytes) } else { _ = try TDISPResponse(decoding: bytes) }
        } catch {
            throw .invalid(kind: kind, problem: "TDISP \(messageTypeName(code)) (\(decodeHex(UInt64(code), digits: 2))): \(error)")
        }
        var cursor = DecodeFieldCursor(bytes, base: base)
        do {
            try cursor.u8("TDISPVersion") { $0 == 0x10 ? "TDISP 1.0" : "not TDISP 1.0 (VERSION_MISMATCH)" }
            try cursor.u8("MessageType") { messageTypeName(UInt8(truncatingIfNeeded: $0)) }
            try cursor.u16("Reserved")
            try cursor.u32("INTERFACE_ID.FUNCTION_ID") { "\(FunctionID(rawValue: UInt32(truncatingIfNeeded: $0)))" }
            try cursor.u64("INTERFACE_ID.Reserved")
            try tdispPayload(code, &cursor)
            try cursor.expectEnd()
        } catch {
            throw .invalid(kind: kind, problem: "\(error)")
        }
        return cursor.fields
    }

    static func mmioRange(_ prefix: String, _ cursor: inout DecodeFieldCursor) throws(WireError) {
        try cursor.u64(prefix + "FIRST_PAGE") { "address \(decodeHex($0 &<< 12, digits: 1))" }
        try cursor.u32(prefix + "NUMBER_OF_PAGES") { "\($0) × 4 KiB" }
        try cursor.u16(prefix + "RANGE_ATTRIBUTES") { decodeFlags($0, rangeAttributeNames, width: 16) }
        try cursor.u16(prefix + "RANGE_ID")
    }

    static func tdispPayload(_ code: UInt8, _ cursor: inout DecodeFieldCursor) throws(WireError) {
        switch code {
        case 0x82:
            try cursor.u32("TSM_CAPS")
        case 0x83:
            try cursor.u16("FLAGS") { decodeFlags($0, lockFlagNames, width: 16) }
            try cursor.u8("DEFAULT_STREAM_ID")
            try cursor.u8("Reserved")
            try cursor.u64("MMIO_REPORTING_OFFSET")
            try cursor.u64("BIND_P2P_ADDRESS_MASK")
        case 0x84:
            try cursor.u16("OFFSET") { "\($0) bytes into the report" }
            try cursor.u16("LENGTH") { "\($0) bytes asked" }
        case 0x86, 0x03:
            try cursor.bytes("START_INTERFACE_NONCE", StartInterfaceNonce.size)
        case 0x88, 0x89:
            try cursor.u8("P2P_STREAM_ID")
        case 0x8A:
            try mmioRange("MMIO_RANGE.", &cursor)
        case 0x8B, 0x0B:
            try cursor.u8("REGISTRY_ID")
            let length = try cursor.u8("VENDOR_ID_LEN")
            try cursor.bytes("VENDOR_ID", Int(length))
            cursor.rest("VENDOR_DEFINED_DATA")
        case 0x01:
            let count = try cursor.u8("VERSION_NUM_COUNT")
            for index in 0..<Int(count) {
                try cursor.u8("VERSION_NUM_ENTRY[\(index)]") { "\($0 >> 4).\($0 & 0xF)" }
            }
        case 0x02:
            try cursor.u32("DSM_CAPS")
            try cursor.bytes("REQ_MSGS_SUPPORTED", RequestMessagesSupported.size) { bytes in
                RequestMessagesSupported(bytes: bytes).codes.map { "\($0.name)" }.joined(separator: ", ")
            }
            try cursor.u16("LOCK_INTERFACE_FLAGS_SUPPORTED") { decodeFlags($0, lockFlagNames, width: 16) }
            try cursor.bytes("Reserved", 3)
            try cursor.u8("DEV_ADDR_WIDTH") { "\($0) address bits" }
            try cursor.u8("NUM_REQ_THIS")
            try cursor.u8("NUM_REQ_ALL")
        case 0x04:
            let portion = try cursor.u16("PORTION_LENGTH") { "\($0) bytes in this response" }
            try cursor.u16("REMAINDER_LENGTH") { "\($0) bytes still to fetch" }
            try cursor.bytes("REPORT_BYTES", Int(portion))
        case 0x05:
            try cursor.u8("TDI_STATE") { TDIState(rawValue: UInt8(truncatingIfNeeded: $0)).map { "\($0)" } ?? "unknown state" }
        case 0x7F:
            try cursor.u32("ERROR_CODE") { "\(TDISPErrorCode(rawValue: UInt32(truncatingIfNeeded: $0)))" }
            try cursor.u32("ERROR_DATA")
            cursor.rest("EXTENDED_ERROR_DATA")
        default:
            break // header-only messages: 0x81, 0x85, 0x87, 0x06-0x0A
        }
    }

    static func spdmVDM(_ bytes: [UInt8]) throws(DecodeError) -> DecodedMessage {
        let message: PCISIGVendorDefinedMessage
        do { message = try PCISIGVendorDefinedMessage(decoding: bytes) } catch {
            throw .invalid(kind: "spdm-vdm", problem: "SPDM VENDOR_DEFINED: \(error)")
        }
        guard message.protocolID == PCISIGVendorDefinedMessage.tdispProtocolID else {
            throw .invalid(kind: "spdm-vdm", problem: "protocol id \(decodeHex(UInt64(message.protocolID), digits: 2)) is not TDISP (0x01)")
        }
        var cursor = DecodeFieldCursor(bytes)
        do {
            try cursor.u8("SPDMVersion") { "SPDM \($0 >> 4).\($0 & 0xF)" }
            try cursor.u8("RequestResponseCode") { $0 == 0xFE ? "VENDOR_DEFINED_REQUEST" : "VENDOR_DEFINED_RESPONSE" }
            try cursor.u8("Param1")
            try cursor.u8("Param2")
            try cursor.u16("StandardID") { $0 == 3 ? "PCI-SIG" : nil }
            try cursor.u8("Len") { _ in "VendorID length" }
            try cursor.u16("VendorID") { $0 == 1 ? "PCI-SIG" : nil }
            try cursor.u16(message.isRequest ? "ReqLength" : "RespLength") { "1 + \(Int($0) - 1) bytes of protocol message" }
            try cursor.u8("ProtocolID") { _ in "TDISP" }
        } catch {
            throw .invalid(kind: "spdm-vdm", problem: "\(error)")
        }
        let inner = try tdispFields(message.payload, base: 12, kind: "spdm-vdm")
        cursor.append(inner.map { DecodedField(name: "TDISP." + $0.name, offset: $0.offset, size: $0.size, value: $0.value, meaning: $0.meaning) })
        let code = message.payload.count > 1 ? message.payload[1] : 0
        return DecodedMessage(kind: "spdm-vdm",
                              title: "SPDM \(message.isRequest ? "VENDOR_DEFINED_REQUEST" : "VENDOR_DEFINED_RESPONSE") carrying TDISP \(messageTypeName(code)) (\(decodeHex(UInt64(code), digits: 2)))",
                              length: bytes.count, fields: cursor.fields)
    }

    // MARK: Evidence objects

    static func interfaceReport(_ bytes: [UInt8]) throws(DecodeError) -> DecodedMessage {
        let report: DeviceInterfaceReport
        do { report = try DeviceInterfaceReport(decoding: bytes) } catch {
            throw .invalid(kind: "interface-report", problem: "\(error)")
        }
        var cursor = DecodeFieldCursor(bytes)
        do {
            try cursor.u16("INTERFACE_INFO") { decodeFlags($0, interfaceInfoNames, width: 16) }
            try cursor.u16("Reserved")
            try cursor.u16("MSI_X_MESSAGE_CONTROL")
            try cursor.u16("LNR_CONTROL")
            try cursor.u32("TPH_CONTROL")
            try cursor.u32("MMIO_RANGE_COUNT") { "\($0) range(s)" }
            for index in report.mmioRanges.indices { try mmioRange("MMIO_RANGE[\(index)].", &cursor) }
            let length = try cursor.u32("DEVICE_SPECIFIC_INFO_LEN") { "\($0) bytes" }
            try cursor.bytes("DEVICE_SPECIFIC_INFO", Int(length)) { printable($0) }
            try cursor.expectEnd()
        } catch {
            throw .invalid(kind: "interface-report", problem: "\(error)")
        }
        return DecodedMessage(kind: "interface-report",
                              title: "TDISP DEVICE_INTERFACE_REPORT (\(report.mmioRanges.count) MMIO range(s), \(bytes.count) bytes)",
                              length: bytes.count, fields: cursor.fields)
    }

    /// The printable ASCII of `bytes` up to the first NUL, quoted, or nil if it has none.
    static func printable(_ bytes: [UInt8]) -> String? {
        let text = bytes.prefix { $0 != 0 }
        guard !text.isEmpty, text.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else { return nil }
        return "\"" + String(decoding: text, as: UTF8.self) + "\""
    }

    static func measurementRecord(_ bytes: [UInt8]) throws(DecodeError) -> DecodedMessage {
        // Count the blocks by their sizes, then let the Device module validate the record.
        var count = 0
        var probe = ByteReader(bytes)
        while !probe.isAtEnd {
            guard (try? probe.skip(5)) != nil, let size = try? probe.u16(), (try? probe.skip(Int(size))) != nil else {
                throw .invalid(kind: "measurement-record", problem: "measurement block \(count) at offset \(probe.offset) is truncated")
            }
            count += 1
        }
        guard count > 0 else { throw .invalid(kind: "measurement-record", problem: "no measurement block") }
        let record: MeasurementRecord
        do { record = try MeasurementRecord(decoding: bytes, numberOfBlocks: count) } catch {
            throw .invalid(kind: "measurement-record", problem: error.reason)
        }
        var cursor = DecodeFieldCursor(bytes)
        do {
            for (position, block) in record.blocks.enumerated() {
                let prefix = "block[\(position)]."
                try cursor.u8(prefix + "Index") { index in
                    switch index {
                    case 0xFD: return "measurement manifest"
                    case 0xFE: return "device mode"
                    default: return nil
                    }
                }
                try cursor.u8(prefix + "MeasurementSpecification") { $0 == 1 ? "DMTF" : nil }
                try cursor.u16(prefix + "MeasurementSize") { "\($0) bytes" }
                try cursor.u8(prefix + "DMTFSpecMeasurementValueType") {
                    "\(MeasurementValueType(rawValue: UInt8(truncatingIfNeeded: $0))), " + ($0 & 0x80 != 0 ? "raw bit stream" : "digest")
                }
                try cursor.u16(prefix + "DMTFSpecMeasurementValueSize") { "\($0) bytes" }
                try cursor.bytes(prefix + "DMTFSpecMeasurementValue", block.value.count) { value in
                    if block.isRawBitStream && block.valueType == .version { return printable(value) }
                    if block.isRawBitStream && block.valueType == .secureVersionNumber && value.count == 8 {
                        var reader = ByteReader(value)
                        return (try? reader.u64()).map { "SVN \($0)" }
                    }
                    if !block.isRawBitStream {
                        switch value.count {
                        case 32: return "SHA-256 digest"
                        case 48: return "SHA-384 digest"
                        case 64: return "SHA-512 digest"
                        default: return nil
                        }
                    }
                    return nil
                }
            }
            try cursor.expectEnd()
        } catch {
            throw .invalid(kind: "measurement-record", problem: "\(error)")
        }
        return DecodedMessage(kind: "measurement-record", title: "DMTF measurement record (\(record.blocks.count) block(s), \(bytes.count) bytes)",
                              length: bytes.count, fields: cursor.fields)
    }

    static func certificateChain(_ bytes: [UInt8]) throws(DecodeError) -> DecodedMessage {
        var chain: CertificateChain?
        var algorithm = IdentityHashAlgorithm.sha384
        var firstError: IdentityError?
        for candidate in [IdentityHashAlgorithm.sha384, .sha256] {
            do {
                chain = try CertificateChain(spdmEncoded: bytes, hashAlgorithm: candidate)
                algorithm = candidate
                break
            } catch {
                if firstError == nil { firstError = error }
            }
        }
        guard let chain else {
            throw .invalid(kind: "certificate-chain", problem: firstError?.reason ?? "not an SPDM certificate chain")
        }
        var cursor = DecodeFieldCursor(bytes)
        do {
            try cursor.u16("Length") { "\($0) bytes" }
            try cursor.u16("Reserved")
            try cursor.bytes("RootHash", algorithm.digestSize) { _ in "\(algorithm) of certificate[0]" }
            for (index, certificate) in chain.certificates.enumerated() {
                let role = index == 0 ? "root" : (index == chain.certificates.count - 1 ? "leaf" : "intermediate")
                try cursor.text("certificate[\(index)]", chain.derCertificates[index].count,
                                value: "\(certificate.subject)", meaning: "\(role), issued by \(certificate.issuer)")
            }
            try cursor.expectEnd()
        } catch {
            throw .invalid(kind: "certificate-chain", problem: "\(error)")
        }
        return DecodedMessage(kind: "certificate-chain",
                              title: "SPDM certificate chain (\(chain.certificates.count) certificate(s), \(algorithm) RootHash, \(bytes.count) bytes)",
                              length: bytes.count, fields: cursor.fields)
    }
}
