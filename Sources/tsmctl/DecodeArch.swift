// The architecture guest-request payloads of `tsmctl decode` (kinds `ARCH:OP:DIRECTION`):
// validated by the Firmware module's codecs, then named field by field.
// Layouts: docs/spec/arch-backends.md §1.2 (CCA), §2.3 (SEV, EMU-SEV-2), §3.2 and EMU-TDX-2 (TDX).
import Firmware
import Wire

extension DecodeRegistry {
    /// Decodes an architecture payload `kind` (one of ``archKinds``).
    static func archPayload(_ bytes: [UInt8], kind: String) throws(DecodeError) -> DecodedMessage {
        let parts = kind.split(separator: ":").map(String.init)
        guard parts.count == 3 else { throw .unknownKind(kind) }
        let (arch, op, direction) = (parts[0], parts[1], parts[2])
        var cursor = DecodeFieldCursor(bytes)
        let title: String
        do {
            switch arch {
            case "cca", "tdx":
                title = try ccaShaped(bytes, arch: arch, op: op, direction: direction, &cursor)
            case "sev":
                title = try sevPayload(bytes, op: op, direction: direction, &cursor)
            default:
                throw DecodeError.unknownKind(kind)
            }
            try cursor.expectEnd()
        } catch let error as DecodeError {
            throw error.withKind(kind)
        } catch {
            throw .invalid(kind: kind, problem: "\(error)")
        }
        return DecodedMessage(kind: kind, title: title, length: bytes.count, fields: cursor.fields)
    }

    /// Runs a Firmware codec; its `WireError` becomes the kind's problem, with the expected size.
    static func check(_ size: Int?, _ what: String, _ body: () throws(WireError) -> Void) throws(DecodeError) {
        do { try body() } catch {
            let expected = size.map { "\(what) is \($0) bytes: " } ?? "\(what): "
            throw .invalid(kind: "", problem: expected + "\(error)")
        }
    }

    // MARK: CCA and TDX (EMU-TDX-2: TDX uses the CCA layouts)

    static func objectTypeMeaning(arch: String) -> (UInt64) -> String? {
        { value in
            if arch == "tdx" {
                switch value {
                case 1: return "TDI report (DEVICE_INTERFACE_REPORT)"
                case 2: return "device info"
                default: return "unknown object type (EINVAL)"
                }
            }
            switch value {
            case 1: return "certificate chain"
            case 2: return "measurements"
            case 3: return "interface report"
            case 4: return "VCA (Linux numbering; ACS: extension evidence)"
            case 0: return "VCA under ACS numbering (Linux: unknown, EINVAL)"
            default: return "unknown object type (EINVAL)"
            }
        }
    }

    static func ccaShaped(_ bytes: [UInt8], arch: String, op: String, direction: String,
                          _ cursor: inout DecodeFieldCursor) throws -> String {
        let archName = arch == "cca" ? "Arm CCA" : "Intel TDX Connect"
        let objectType = objectTypeMeaning(arch: arch)
        switch (op, direction) {
        case ("read_object", "request"):
            try check(CCA.ReadObjectRequest.size, "READ_OBJECT request") { () throws(WireError) in _ = try CCA.ReadObjectRequest(decoding: bytes) }
            try cursor.u32("object_type", meaning: objectType)
            try cursor.u32("reserved")
            try cursor.u64("offset") { _ in "bytes into the object" }
            return "\(archName) READ_OBJECT request (16 bytes)"
        case ("regen_object", "request"):
            try check(CCA.RegenObjectRequest.size, "REGEN_OBJECT request") { () throws(WireError) in _ = try CCA.RegenObjectRequest(decoding: bytes) }
            try cursor.u32("object_type", meaning: objectType)
            try cursor.u32("reserved")
            try cursor.u64("flags")
            try cursor.u64("nonce") { _ in "user address of the 32-byte nonce" }
            return "\(archName) REGEN_OBJECT request (24 bytes)"
        case ("object_info", "request"):
            try check(CCA.ObjectInfoRequest.size, "OBJECT_INFO request") { () throws(WireError) in _ = try CCA.ObjectInfoRequest(decoding: bytes) }
            try cursor.u32("object_type", meaning: objectType)
            return "\(archName) OBJECT_INFO request (4 bytes)"
        case ("object_info", "response"):
            try check(CCA.ObjectInfoResponse.size, "OBJECT_INFO response") { () throws(WireError) in _ = try CCA.ObjectInfoResponse(decoding: bytes) }
            try cursor.u32("size") { "\($0) bytes" }
            return "\(archName) OBJECT_INFO response (4 bytes)"
        case ("validate_mmio", "request"):
            try check(CCA.ValidateMMIORequest.size, "VALIDATE_MMIO request") { () throws(WireError) in _ = try CCA.ValidateMMIORequest(decoding: bytes) }
            let base = try cursor.u64("gpa_base") { $0 & 0xFFF == 0 ? "guest address, 4 KiB aligned" : "guest address, not 4 KiB aligned (EINVAL)" }
            try cursor.u64("gpa_top") { top in
                top > base ? "end (exclusive): \((top &- base) / 4096) page(s)" : "not above gpa_base (EINVAL)"
            }
            try cursor.u64("pa_base") { $0 & 0xFFF == 0 ? "host physical address, 4 KiB aligned" : "host physical address, not 4 KiB aligned (EINVAL)" }
            return "\(archName) VALIDATE_MMIO request (24 bytes)"
        case ("set_tdi_state", "request"):
            try check(CCA.SetTDIStateRequest.size, "SET_TDI_STATE request") { () throws(WireError) in _ = try CCA.SetTDIStateRequest(decoding: bytes) }
            try cursor.u32("tdi_state") { value in
                switch value {
                case 0: return "UNLOCKED (refused: only RUN)"
                case 1: return "LOCKED (refused: only RUN)"
                case 2: return "RUN"
                default: return "unknown state (EINVAL)"
                }
            }
            return "\(archName) SET_TDI_STATE request (4 bytes)"
        case ("tdcm", "buffer") where arch == "tdx":
            try check(nil, "TDCM buffer (20-byte header + data_length)") { () throws(WireError) in _ = try TDX.TDCMBuffer(decoding: bytes) }
            try cursor.u16("operation") { value in
                let names = [1: "CHECK_TEE_IO_SUPPORT", 2: "BIND", 3: "GET_DEVICE_INFO", 4: "GET_TDI_REPORT",
                             5: "START_TDI", 6: "GET_TDI_STATE", 7: "UNBIND"]
                return names[Int(value)] ?? "unknown operation"
            }
            try cursor.u8("version")
            try cursor.u8("reserved")
            try cursor.u32("reserved")
            try cursor.u8("status") { ["WAIT", "COMPLETED", "ERROR"].indices.contains(Int($0)) ? ["WAIT", "COMPLETED", "ERROR"][Int($0)] : "unknown status" }
            try cursor.u8("error") { value in
                let names = [0: "none", 10: "TDX_MODULE", 11: "TDXIO_DEVICE", 12: "SPDM_MESSAGE", 13: "IDE_KM_MESSAGE",
                             14: "TDISP_MESSAGE", 15: "INVALID_STATE"]
                return names[Int(value)] ?? "unknown error"
            }
            try cursor.u16("reserved")
            try cursor.u32("reserved")
            let length = try cursor.u32("data_length") { "\($0) bytes" }
            try cursor.bytes("data", Int(length))
            return "Intel TDX Connect TDCM buffer (\(bytes.count) bytes)"
        default:
            throw DecodeError.unknownKind("\(arch):\(op):\(direction)")
        }
    }

    // MARK: SEV-TIO (EMU-SEV-2 guest messages)

    /// The TIO message a msg_type names, under either numbering (v19 default, v0x81).
    static func sevMessageTypeMeaning(_ value: UInt64) -> String? {
        let names = ["TDI_INFO", "MMIO_VALIDATE", "MMIO_CONFIG", "SDTE_WRITE"]
        for (index, message) in SEV.TIOMessage.allCases.enumerated() {
            if UInt64(message.requestType(.v19)) == value { return "\(names[index])_REQ (v19 numbering)" }
            if UInt64(message.responseType(.v19)) == value { return "\(names[index])_RSP (v19 numbering)" }
            if UInt64(message.requestType(.v0x81)) == value { return "\(names[index])_REQ (v0x81 numbering)" }
            if UInt64(message.responseType(.v0x81)) == value { return "\(names[index])_RSP (v0x81 numbering)" }
        }
        return "not a TIO message type (EINVAL)"
    }

    static func sevHeader(_ cursor: inout DecodeFieldCursor) throws(WireError) {
        try cursor.bytes("authtag", 32)
        try cursor.u64("msg_seqno")
        try cursor.u64("reserved")
        try cursor.u8("algo")
        try cursor.u8("hdr_version")
        try cursor.u16("hdr_sz") { $0 == 96 ? "96 bytes" : "not 96 (EINVAL)" }
        try cursor.u8("msg_type", meaning: sevMessageTypeMeaning)
        try cursor.u8("msg_version") { $0 == 2 ? "TIO version 2" : "not 2 (EINVAL)" }
        try cursor.u16("msg_sz") { "\($0) bytes of TIO struct" }
        try cursor.u32("reserved")
        try cursor.u8("msg_vmpck")
        try cursor.bytes("reserved", 35)
    }

    static func tdiIDMeaning(_ value: UInt64) -> String? { "tdi_id (or guest_device_id in bits 15:0, profile sevTDIAddressing)" }

    static func mmioValidateStatus(_ value: UInt64) -> String? {
        let latest = ["SUCCESS", "INVALID_TDI", "TDI_UNBOUND", "NOT_ASSIGNED", "NOT_IO", "NOT_UNIFORM", "NOT_IMMUTABLE",
                      "NOT_MAPPED", "NOT_REPORTED", "OUT_OF_RANGE", "NOT_4K"]
        let legacy = ["SUCCESS", "INVALID_TDI", "TDI_UNBOUND", "NOT_ASSIGNED", "NOT_UNIFORM", "NOT_IMMUTABLE",
                      "NOT_MAPPED", "NOT_REPORTED", "OUT_OF_RANGE"]
        let index = Int(clamping: value)
        let now = latest.indices.contains(index) ? latest[index] : "unknown"
        let old = legacy.indices.contains(index) ? legacy[index] : "unknown"
        return now == old ? now : "\(now) (legacy table: \(old))"
    }

    static func sevPayload(_ bytes: [UInt8], op: String, direction: String, _ cursor: inout DecodeFieldCursor) throws -> String {
        if op == "set_tdi_state", direction == "request" {
            let payload: FirmwareProfile.SEVSetStatePayload = bytes.count == 4 ? .u32 : .byte
            try check(nil, "SEV SET_TDI_STATE request (1 byte, or 4 with EMU-SEV-3 u32)") { () throws(WireError) in
                _ = try SEV.SetTDIStateRequest(decoding: bytes, payload: payload)
            }
            let meaning: (UInt64) -> String? = { $0 == 1 ? "RUN" : "not RUN: unbind (TDI_UNBIND → CONFIG_UNLOCKED)" }
            if payload == .u32 { try cursor.u32("state", meaning: meaning) } else { try cursor.u8("state", meaning: meaning) }
            return "AMD SEV-TIO SET_TDI_STATE request (\(bytes.count) byte(s))"
        }
        let message: SEV.GuestMessage
        do { message = try SEV.GuestMessage(decoding: bytes) } catch {
            throw DecodeError.invalid(kind: "", problem: "SEV guest message (96-byte header + msg_sz): \(error)")
        }
        try sevHeader(&cursor)
        let type = message.header.messageType
        func isType(_ tio: SEV.TIOMessage) -> Bool {
            let values = direction == "request" ? [tio.requestType(.v19), tio.requestType(.v0x81)]
                : [tio.responseType(.v19), tio.responseType(.v0x81)]
            return values.contains(type)
        }
        let body = message.body
        let bodyName: String
        switch (op, direction) {
        case ("validate_mmio", "request"):
            if isType(.mmioConfig) || (!isType(.mmioValidate) && body.count == SEV.MMIOConfigRequest.size) {
                try check(SEV.MMIOConfigRequest.size, "MMIO_CONFIG_REQ") { () throws(WireError) in _ = try SEV.MMIOConfigRequest(decoding: body) }
                try cursor.u16("guest_device_id")
                try cursor.u16("reserved")
                try cursor.u32("flags") { "is_non_tee_mem \(($0 >> 2) & 1), range_id \($0 >> 16)" }
                try cursor.u32("write") { $0 & 1 == 1 ? "write the config" : "read the config" }
                try cursor.u32("reserved")
                bodyName = "MMIO_CONFIG_REQ"
            } else {
                try check(SEV.MMIOValidateRequest.size, "MMIO_VALIDATE_REQ") { () throws(WireError) in _ = try SEV.MMIOValidateRequest(decoding: body) }
                try cursor.u64("tdi_id", meaning: tdiIDMeaning)
                try cursor.u64("reserved")
                try cursor.u64("subrange_base") { $0 & 0xFFF == 0 ? "guest address, 4 KiB aligned" : "guest address, not 4 KiB aligned (NOT_4K)" }
                try cursor.u32("subrange_page_count") { "\($0) × 4 KiB" }
                try cursor.u32("range_offset") { _ in "bytes into the reported range" }
                try cursor.u16("flags") { decodeFlags($0, [0: "validated", 1: "force_validated"], width: 16) }
                try cursor.u16("range_id") { _ in "RANGE_ID of the interface report" }
                try cursor.bytes("reserved", 12)
                bodyName = "MMIO_VALIDATE_REQ"
            }
        case ("validate_mmio", "response"):
            if isType(.mmioConfig) || (!isType(.mmioValidate) && body.count == SEV.MMIOConfigResponse.size) {
                try check(SEV.MMIOConfigResponse.size, "MMIO_CONFIG_RSP") { () throws(WireError) in _ = try SEV.MMIOConfigResponse(decoding: body) }
                try cursor.u16("guest_device_id")
                try cursor.u16("status") { value in
                    let names = ["SUCCESS", "INVALID_TDI", "TDI_UNBOUND", "NOT_REPORTED", "COULD_NOT_CHANGE"]
                    return names.indices.contains(Int(value)) ? names[Int(value)] : "unknown status"
                }
                try cursor.u32("flags") { value in
                    decodeFlags(value & 0xFFFF, [0: "msix_table", 1: "msix_pba", 2: "is_non_tee_mem", 3: "is_mem_attr_updateable"], width: 16)
                        + ", range_id \(value >> 16)"
                }
                try cursor.u32("write") { $0 & 1 == 1 ? "was a write" : "was a read" }
                try cursor.u32("reserved")
                bodyName = "MMIO_CONFIG_RSP"
            } else {
                try check(SEV.MMIOValidateResponse.size, "MMIO_VALIDATE_RSP") { () throws(WireError) in _ = try SEV.MMIOValidateResponse(decoding: body) }
                try cursor.u64("tdi_id", meaning: tdiIDMeaning)
                try cursor.u16("status", meaning: mmioValidateStatus)
                try cursor.bytes("reserved", 6)
                try cursor.u64("subrange_base")
                try cursor.u32("subrange_page_count") { "\($0) × 4 KiB" }
                try cursor.u32("range_offset")
                try cursor.u16("flags") { decodeFlags($0, [0: "changed"], width: 16) }
                try cursor.u16("range_id")
                try cursor.bytes("reserved", 12)
                bodyName = "MMIO_VALIDATE_RSP"
            }
        case ("sev_enable_dma", "request"), ("sev_disable_dma", "request"):
            try check(SEV.SDTEWriteRequest.size, "SDTE_WRITE_REQ") { () throws(WireError) in _ = try SEV.SDTEWriteRequest(decoding: body) }
            try cursor.u64("tdi_id", meaning: tdiIDMeaning)
            try cursor.u64("reserved")
            try cursor.bytes("sdte", 64) { sdte in
                if sdte.allSatisfy({ $0 == 0 }) { return "all zero (disable)" }
                return (sdte.first ?? 0) & 1 == 1 ? "V = 1 (valid)" : "V = 0"
            }
            bodyName = "SDTE_WRITE_REQ"
        case ("sev_enable_dma", "response"), ("sev_disable_dma", "response"):
            try check(SEV.SDTEWriteResponse.size, "SDTE_WRITE_RSP") { () throws(WireError) in _ = try SEV.SDTEWriteResponse(decoding: body) }
            try cursor.u64("tdi_id", meaning: tdiIDMeaning)
            try cursor.u16("status") { value in
                let names = ["SUCCESS", "INVALID_TDI", "TDI_NOT_BOUND", "RESERVED"]
                return names.indices.contains(Int(value)) ? names[Int(value)] : "unknown status"
            }
            try cursor.bytes("reserved", 6)
            bodyName = "SDTE_WRITE_RSP"
        case ("tdi_info", "request"):
            try check(SEV.TDIInfoRequest.size, "TDI_INFO_REQ") { () throws(WireError) in _ = try SEV.TDIInfoRequest(decoding: body) }
            try cursor.u64("tdi_id", meaning: tdiIDMeaning)
            try cursor.u64("reserved")
            bodyName = "TDI_INFO_REQ"
        case ("tdi_info", "response"):
            try check(SEV.TDIInfoResponse.size, "TDI_INFO_RSP") { () throws(WireError) in _ = try SEV.TDIInfoResponse(decoding: body) }
            try cursor.u64("tdi_id", meaning: tdiIDMeaning)
            try cursor.u16("status") { value in
                let names = ["BOUND", "INVALID", "UNBOUND"]
                return names.indices.contains(Int(value)) ? names[Int(value)] : "unknown status"
            }
            try cursor.bytes("reserved", 6)
            try cursor.u32("meas_digest_flags") { decodeFlags($0, [0: "meas_digest_valid", 1: "meas_digest_fresh"], width: 32) }
            try cursor.u32("tdisp_lock_flags") { decodeFlags($0, lockFlagNames, width: 32) }
            try cursor.u64("spdm_algos")
            try cursor.bytes("certs_digest", 48) { _ in "SHA-384" }
            try cursor.bytes("meas_digest", 48) { _ in "SHA-384" }
            try cursor.bytes("report_digest", 48) { _ in "SHA-384" }
            try cursor.u64("tdi_report_count")
            try cursor.u64("reserved")
            bodyName = "TDI_INFO_RSP"
        default:
            throw DecodeError.unknownKind("sev:\(op):\(direction)")
        }
        return "AMD SEV-TIO guest message: 96-byte header + \(bodyName) (\(body.count) bytes)"
    }
}

extension DecodeError {
    /// The same error naming `kind` (the arch helpers throw with an empty kind).
    func withKind(_ kind: String) -> DecodeError {
        if case let .invalid(_, problem) = self { return .invalid(kind: kind, problem: problem) }
        return self
    }
}
