// Guest-request payloads by name and fields, for `tsmctl script` steps ("build CCA VALIDATE_MMIO
// with gpa_base/gpa_top/pa_base", "check the decoded response's status"). Built on the payload
// value types of CCAPayloads.swift, SEVPayloads.swift and TDXPayloads.swift.

/// Why a payload could not be built from fields or a response not decoded into fields.
public struct PayloadFieldError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What was wrong.
    public var reason: String
    /// Creates the error.
    public init(_ reason: String) { self.reason = reason }
    /// The reason, naming the payload field that could not be built or read.
    public var description: String { reason }
}

/// Request and response payloads of every (arch, op) pair as named fields, using the wire
/// names of arch-backends.md (`object_type`, `gpa_base`, `msg_seqno`, `subrange_base`, …).
///
/// Requests: ``request(arch:op:fields:profile:)`` starts from zero for every field, applies the
/// given ones and encodes; an unknown field name, or a value that does not fit its field, is a
/// ``PayloadFieldError``. SEV requests (ops 4, 6, 7) are EMU-SEV-2 guest messages: the header
/// fields `msg_seqno` and `msg_type` (default: MMIO_VALIDATE_REQ for op 4, SDTE_WRITE_REQ for ops
/// 6/7, numbered per the profile) come first; `msg_type` = MMIO_CONFIG_REQ selects that struct.
///
/// Responses: ``response(arch:op:bytes:profile:)`` decodes the bytes a guest request returned
/// into fields (object ops: `size`, or `length` of the object bytes).
public enum GuestPayloads {
    /// The field names accepted for the request of (arch, op) (`msg_type` picks the SEV struct).
    public static func requestFieldNames(arch: TSMArch, op: GuestOp, messageType: UInt8? = nil,
                                         profile: FirmwareProfile? = nil) -> [String] {
        let numbering = (profile ?? .defaults(for: arch)).sevTIOMessageNumbering
        switch (arch, op) {
        case (.sev, .setTDIState): return ["value"]
        case (.sev, .validateMMIO) where messageType == SEV.TIOMessage.mmioConfig.requestType(numbering):
            return ["msg_seqno", "msg_type", "guest_device_id", "range_id", "write", "is_non_tee_mem"]
        case (.sev, .validateMMIO):
            return ["msg_seqno", "msg_type", "tdi_id", "subrange_base", "subrange_page_count", "range_offset",
                    "validated", "force_validated", "range_id"]
        case (.sev, .sevEnableDMA), (.sev, .sevDisableDMA): return ["msg_seqno", "msg_type", "tdi_id", "sdte_v", "vtom"]
        case (.sev, _): return []
        case (_, .readObject): return ["object_type", "reserved", "offset"]
        case (_, .regenObject): return ["object_type", "reserved", "flags", "nonce"]
        case (_, .objectInfo): return ["object_type"]
        case (_, .validateMMIO): return ["gpa_base", "gpa_top", "pa_base"]
        case (_, .setTDIState): return ["tdi_state"]
        case (_, .sevEnableDMA), (_, .sevDisableDMA): return []
        }
    }

    /// Builds the request payload of (arch, op) from `fields` (missing fields are 0).
    /// Errors: an op the architecture has no payload for (SEV ops 1-3, SEV_* on CCA/TDX); an
    /// unknown field name; a value too large for its field.
    public static func request(arch: TSMArch, op: GuestOp, fields: [String: UInt64],
                               profile: FirmwareProfile? = nil) throws(PayloadFieldError) -> [UInt8] {
        let profile = profile ?? .defaults(for: arch)
        let numbering = profile.sevTIOMessageNumbering
        var defaultType: UInt8? = nil
        if arch == .sev {
            switch op {
            case .validateMMIO: defaultType = SEV.TIOMessage.mmioValidate.requestType(numbering)
            case .sevEnableDMA, .sevDisableDMA: defaultType = SEV.TIOMessage.sdteWrite.requestType(numbering)
            default: break
            }
        }
        let names = requestFieldNames(arch: arch, op: op, messageType: fields["msg_type"].map { UInt8(truncatingIfNeeded: $0) } ?? defaultType,
                                      profile: profile)
        guard !names.isEmpty else { throw PayloadFieldError("\(arch.name) has no \(op) request payload") }
        for name in fields.keys where !names.contains(name) {
            throw PayloadFieldError("unknown field \(name) for \(arch.name) \(op); fields: \(names.joined(separator: ", "))")
        }
        var reader = FieldReader(fields: fields)
        switch (arch, op) {
        case (.sev, .setTDIState):
            let width: UInt64 = profile.sevSetStatePayload == .byte ? 0xFF : 0xFFFF_FFFF
            return SEV.SetTDIStateRequest(value: UInt32(try reader.value("value", max: width))).encoded(payload: profile.sevSetStatePayload)
        case (.sev, _):
            let seqno = try reader.value("msg_seqno", max: .max)
            let type = UInt8(try reader.value("msg_type", max: 0xFF, default: UInt64(defaultType ?? 0)))
            let body: [UInt8]
            if op == .validateMMIO, type == SEV.TIOMessage.mmioConfig.requestType(numbering) {
                body = SEV.MMIOConfigRequest(guestDeviceID: UInt16(try reader.value("guest_device_id", max: 0xFFFF)),
                                             rangeID: UInt16(try reader.value("range_id", max: 0xFFFF)),
                                             write: try reader.flag("write"), isNonTEEMemory: try reader.flag("is_non_tee_mem")).encoded()
            } else if op == .validateMMIO {
                body = SEV.MMIOValidateRequest(tdiID: try reader.value("tdi_id", max: .max),
                                               subrangeBase: try reader.value("subrange_base", max: .max),
                                               subrangePageCount: UInt32(try reader.value("subrange_page_count", max: 0xFFFF_FFFF)),
                                               rangeOffset: UInt32(try reader.value("range_offset", max: 0xFFFF_FFFF)),
                                               validated: try reader.flag("validated"), forceValidated: try reader.flag("force_validated"),
                                               rangeID: UInt16(try reader.value("range_id", max: 0xFFFF))).encoded()
            } else {
                let sdte = try reader.flag("sdte_v")
                    ? SEV.SDTEWriteRequest.validSDTE(vtom: try reader.value("vtom", max: .max)) : [UInt8](repeating: 0, count: 64)
                body = SEV.SDTEWriteRequest(tdiID: try reader.value("tdi_id", max: .max), sdte: sdte).encoded()
            }
            return SEV.GuestMessage(sequenceNumber: seqno, messageType: type, body: body).encoded()
        case (_, .readObject):
            return CCA.ReadObjectRequest(objectType: UInt32(try reader.value("object_type", max: 0xFFFF_FFFF)),
                                         reserved: UInt32(try reader.value("reserved", max: 0xFFFF_FFFF)),
                                         offset: try reader.value("offset", max: .max)).encoded()
        case (_, .regenObject):
            return CCA.RegenObjectRequest(objectType: UInt32(try reader.value("object_type", max: 0xFFFF_FFFF)),
                                          reserved: UInt32(try reader.value("reserved", max: 0xFFFF_FFFF)),
                                          flags: try reader.value("flags", max: .max),
                                          nonceAddress: try reader.value("nonce", max: .max)).encoded()
        case (_, .objectInfo):
            return CCA.ObjectInfoRequest(objectType: UInt32(try reader.value("object_type", max: 0xFFFF_FFFF))).encoded()
        case (_, .validateMMIO):
            return CCA.ValidateMMIORequest(gpaBase: try reader.value("gpa_base", max: .max), gpaTop: try reader.value("gpa_top", max: .max),
                                           paBase: try reader.value("pa_base", max: .max)).encoded()
        case (_, .setTDIState):
            return CCA.SetTDIStateRequest(state: UInt32(try reader.value("tdi_state", max: 0xFFFF_FFFF))).encoded()
        case (_, .sevEnableDMA), (_, .sevDisableDMA):
            throw PayloadFieldError("\(arch.name) has no \(op) request payload")
        }
    }

    /// Decodes the response bytes of (arch, op) into named fields.
    ///
    /// | arch, op | fields |
    /// |---|---|
    /// | CCA/TDX READ_OBJECT | `length` (the object bytes themselves are the response) |
    /// | CCA/TDX OBJECT_INFO | `size` |
    /// | SEV 4/6/7 | `msg_seqno`, `msg_type`, then the response struct: MMIO_VALIDATE `tdi_id`, `status`, `subrange_base`, `subrange_page_count`, `range_offset`, `changed`, `range_id`; MMIO_CONFIG `guest_device_id`, `status`, `attributes`, `range_id`, `write`; SDTE_WRITE `tdi_id`, `status`; TDI_INFO `tdi_id`, `status`, `report_count` |
    /// | others | none (empty response) |
    ///
    /// Errors: bytes that do not decode as that response (never traps).
    public static func response(arch: TSMArch, op: GuestOp, bytes: [UInt8],
                                profile: FirmwareProfile? = nil) throws(PayloadFieldError) -> [String: UInt64] {
        let numbering = (profile ?? .defaults(for: arch)).sevTIOMessageNumbering
        switch (arch, op) {
        case (.sev, .validateMMIO), (.sev, .sevEnableDMA), (.sev, .sevDisableDMA):
            guard let message = try? SEV.GuestMessage(decoding: bytes) else { throw PayloadFieldError("not an SNP guest message") }
            var fields: [String: UInt64] = ["msg_seqno": message.header.sequenceNumber, "msg_type": UInt64(message.header.messageType)]
            let type = message.header.messageType
            if type == SEV.TIOMessage.mmioValidate.responseType(numbering), let r = try? SEV.MMIOValidateResponse(decoding: message.body) {
                fields.merge(["tdi_id": r.tdiID, "status": UInt64(r.status), "subrange_base": r.subrangeBase,
                              "subrange_page_count": UInt64(r.subrangePageCount), "range_offset": UInt64(r.rangeOffset),
                              "changed": r.changed ? 1 : 0, "range_id": UInt64(r.rangeID)]) { $1 }
            } else if type == SEV.TIOMessage.mmioConfig.responseType(numbering), let r = try? SEV.MMIOConfigResponse(decoding: message.body) {
                fields.merge(["guest_device_id": UInt64(r.guestDeviceID), "status": UInt64(r.status), "attributes": UInt64(r.attributes),
                              "range_id": UInt64(r.rangeID), "write": r.write ? 1 : 0]) { $1 }
            } else if type == SEV.TIOMessage.sdteWrite.responseType(numbering), let r = try? SEV.SDTEWriteResponse(decoding: message.body) {
                fields.merge(["tdi_id": r.tdiID, "status": UInt64(r.status)]) { $1 }
            } else if type == SEV.TIOMessage.tdiInfo.responseType(numbering), let r = try? SEV.TDIInfoResponse(decoding: message.body) {
                fields.merge(["tdi_id": r.tdiID, "status": UInt64(r.status), "report_count": r.reportCount]) { $1 }
            } else {
                throw PayloadFieldError("msg_type \(type) with a \(message.body.count)-byte body is not a TIO response")
            }
            return fields
        case (.cca, .objectInfo), (.tdx, .objectInfo):
            guard let info = try? CCA.ObjectInfoResponse(decoding: bytes) else { throw PayloadFieldError("OBJECT_INFO response is 4 bytes") }
            return ["size": UInt64(info.objectSize)]
        case (.cca, .readObject), (.tdx, .readObject):
            return ["length": UInt64(bytes.count)]
        default:
            guard bytes.isEmpty else { throw PayloadFieldError("\(arch.name) \(op) has no response payload") }
            return [:]
        }
    }
}

/// Reads named values with range checks.
private struct FieldReader {
    let fields: [String: UInt64]

    func value(_ name: String, max: UInt64, default fallback: UInt64 = 0) throws(PayloadFieldError) -> UInt64 {
        let value = fields[name] ?? fallback
        guard value <= max else { throw PayloadFieldError("\(name) = \(value) does not fit (max \(max))") }
        return value
    }

    func flag(_ name: String) throws(PayloadFieldError) -> Bool { try value(name, max: 1) == 1 }
}
