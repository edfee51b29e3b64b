// AMD SEV-TIO (tvm_arch = 2): the plaintext stand-in of the SNP guest message (EMU-SEV-2), the
// TIO request/response structs, and the PSP numbers. Source: arch-backends.md §2.1-§2.5 [P],
// §6.2 (EMU-SEV-1..5).
import Wire

/// AMD SEV-TIO payloads and constants (arch-backends.md §2).
public enum SEV {
    /// The 96-byte SNP guest-message header (arch-backends.md §2.1 [P]). Real messages are
    /// AES-GCM encrypted with the VMPCK; EMU-SEV-2 carries the payload in plaintext after it and
    /// does not model authtag, but checks msg_seqno.
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 32 | authtag |
    /// | 32 | 8 | msg_seqno |
    /// | 40 | 8 | reserved |
    /// | 48 | 1 | algo |
    /// | 49 | 1 | hdr_version |
    /// | 50 | 2 | hdr_sz (96) |
    /// | 52 | 1 | msg_type (``TIOMessage``) |
    /// | 53 | 1 | msg_version (2 for TIO) |
    /// | 54 | 2 | msg_sz (size of the TIO struct that follows) |
    /// | 56 | 4 | reserved |
    /// | 60 | 1 | msg_vmpck |
    /// | 61 | 35 | reserved |
    public struct MessageHeader: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 96
        /// msg_version of TIO messages (older revisions used 1).
        public static let tioMessageVersion: UInt8 = 2
        /// `authtag` (32 bytes; not checked, EMU-SEV-2).
        public var authTag: [UInt8]
        /// `msg_seqno`.
        public var sequenceNumber: UInt64
        /// `algo`.
        public var algorithm: UInt8
        /// `hdr_version`.
        public var headerVersion: UInt8
        /// `hdr_sz` (96).
        public var headerSize: UInt16
        /// `msg_type`.
        public var messageType: UInt8
        /// `msg_version` (2 for TIO).
        public var messageVersion: UInt8
        /// `msg_sz`: size of the body after the header.
        public var messageSize: UInt16
        /// `msg_vmpck`: the VMPCK index.
        public var vmpck: UInt8

        /// Creates the value from its fields.
        public init(sequenceNumber: UInt64, messageType: UInt8, messageSize: UInt16,
                    messageVersion: UInt8 = MessageHeader.tioMessageVersion, algorithm: UInt8 = 1,
                    headerVersion: UInt8 = 1, vmpck: UInt8 = 0, authTag: [UInt8] = [UInt8](repeating: 0, count: 32)) {
            self.authTag = authTag
            self.sequenceNumber = sequenceNumber
            self.algorithm = algorithm
            self.headerVersion = headerVersion
            self.headerSize = UInt16(Self.size)
            self.messageType = messageType
            self.messageVersion = messageVersion
            self.messageSize = messageSize
            self.vmpck = vmpck
        }

        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            try self.init(reading: &reader)
            try reader.expectEnd()
        }

        init(reading reader: inout ByteReader) throws(WireError) {
            authTag = try reader.bytes(32)
            sequenceNumber = try reader.u64()
            try reader.skip(8)
            algorithm = try reader.u8()
            headerVersion = try reader.u8()
            headerSize = try reader.u16()
            messageType = try reader.u8()
            messageVersion = try reader.u8()
            messageSize = try reader.u16()
            try reader.skip(4)
            vmpck = try reader.u8()
            try reader.skip(35)
        }

        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            let tag = authTag.count >= 32 ? Array(authTag.prefix(32)) : authTag + [UInt8](repeating: 0, count: 32 - authTag.count)
            writer.bytes(tag)
            writer.u64(sequenceNumber)
            writer.zeros(8)
            writer.u8(algorithm)
            writer.u8(headerVersion)
            writer.u16(headerSize)
            writer.u8(messageType)
            writer.u8(messageVersion)
            writer.u16(messageSize)
            writer.zeros(4)
            writer.u8(vmpck)
            writer.zeros(35)
            return writer.bytes
        }
    }

    /// The four TIO guest messages (arch-backends.md §2.3 [P]).
    public enum TIOMessage: Sendable, CaseIterable {
        case tdiInfo, mmioValidate, mmioConfig, sdteWrite

        /// The request msg_type: 19/21/23/25 (`v19`, EMU-SEV-2) or 0x81-0x84 (`v0x81`).
        public func requestType(_ numbering: FirmwareProfile.SEVMessageNumbering) -> UInt8 {
            switch numbering {
            case .v19: return 19 + 2 * index
            case .v0x81: return 0x81 + index
            }
        }

        /// The response msg_type: 20/22/24/26 (`v19`) or 0x01-0x04 (`v0x81`).
        public func responseType(_ numbering: FirmwareProfile.SEVMessageNumbering) -> UInt8 {
            switch numbering {
            case .v19: return 20 + 2 * index
            case .v0x81: return 0x01 + index
            }
        }

        /// The message whose request msg_type is `raw`, or nil.
        public static func request(_ raw: UInt8, _ numbering: FirmwareProfile.SEVMessageNumbering) -> TIOMessage? {
            allCases.first { $0.requestType(numbering) == raw }
        }

        /// Size of the request struct after the header.
        public var requestSize: Int {
            switch self {
            case .tdiInfo: return TDIInfoRequest.size
            case .mmioValidate: return MMIOValidateRequest.size
            case .mmioConfig: return MMIOConfigRequest.size
            case .sdteWrite: return SDTEWriteRequest.size
            }
        }

        /// Size of the response struct after the header.
        public var responseSize: Int {
            switch self {
            case .tdiInfo: return TDIInfoResponse.size
            case .mmioValidate: return MMIOValidateResponse.size
            case .mmioConfig: return MMIOConfigResponse.size
            case .sdteWrite: return SDTEWriteResponse.size
            }
        }

        private var index: UInt8 {
            switch self {
            case .tdiInfo: return 0
            case .mmioValidate: return 1
            case .mmioConfig: return 2
            case .sdteWrite: return 3
            }
        }
    }

    /// A guest message: the 96-byte header followed by exactly `header.messageSize` body bytes
    /// (EMU-SEV-2). `decode` requires the total length to be 96 + msg_sz.
    public struct GuestMessage: Sendable, Equatable {
        /// The 96-byte header.
        public var header: MessageHeader
        /// The TIO struct after the header.
        public var body: [UInt8]
        /// Creates the value from its fields.
        public init(header: MessageHeader, body: [UInt8]) {
            self.header = header
            self.body = body
        }
        /// Builds a message whose header's msg_sz is the body's size.
        public init(sequenceNumber: UInt64, messageType: UInt8, body: [UInt8]) {
            header = MessageHeader(sequenceNumber: sequenceNumber, messageType: messageType,
                                   messageSize: UInt16(truncatingIfNeeded: body.count))
            self.body = body
        }
        /// Errors: truncated header; `invalidValue(field: "msg_sz")` when 96 + msg_sz is not the
        /// total length.
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            header = try MessageHeader(reading: &reader)
            guard reader.remaining == Int(header.messageSize) else {
                throw .invalidValue(field: "msg_sz", value: UInt64(header.messageSize))
            }
            body = reader.rest()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] { header.encoded() + body }
    }

    /// TDI_INFO_REQ, 16 bytes: tdi_id u64 @0, reserved[8] @8 (arch-backends.md §2.3 [P]).
    public struct TDIInfoRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 16
        /// `tdi_id` (or the guest_device_id in its low 16 bits, profile `sevTDIAddressing`).
        public var tdiID: UInt64
        /// Creates the value from its fields.
        public init(tdiID: UInt64) { self.tdiID = tdiID }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            tdiID = try reader.u64()
            try reader.skip(8)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(tdiID)
            writer.zeros(8)
            return writer.bytes
        }
    }

    /// TDI_INFO_RSP, 192 bytes (arch-backends.md §2.3 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 8 | tdi_id |
    /// | 8 | 2 | status (BOUND 0, INVALID 1, UNBOUND 2) |
    /// | 10 | 6 | reserved |
    /// | 16 | 4 | bit 0 meas_digest_valid, bit 1 meas_digest_fresh |
    /// | 20 | 4 | TDISP lock flags (no_fw_update, cache_line_size, lock_msix, bind_p2p, all_request_redirect) |
    /// | 24 | 8 | spdm_algos |
    /// | 32 | 48 | certs_digest |
    /// | 80 | 48 | meas_digest |
    /// | 128 | 48 | report_digest |
    /// | 176 | 8 | tdi_report_count |
    /// | 184 | 8 | reserved |
    public struct TDIInfoResponse: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 192
        /// `tdi_id` (or the guest_device_id in its low 16 bits, profile `sevTDIAddressing`).
        public var tdiID: UInt64
        /// `status` (the message's status table).
        public var status: UInt16
        /// Bit 0 meas_digest_valid, bit 1 meas_digest_fresh.
        public var measurementFlags: UInt32
        /// The TDISP LOCK flags the TDI was locked with.
        public var lockFlags: UInt32
        /// `spdm_algos`.
        public var spdmAlgorithms: UInt64
        /// `certs_digest` (48 bytes).
        public var certificatesDigest: [UInt8]
        /// SHA-512 of the cached measurements.
        public var measurementsDigest: [UInt8]
        /// SHA-512 of the cached interface report.
        public var reportDigest: [UInt8]
        /// `tdi_report_count`.
        public var reportCount: UInt64

        /// Creates the value from its fields.
        public init(tdiID: UInt64, status: UInt16, measurementFlags: UInt32 = 0, lockFlags: UInt32 = 0,
                    spdmAlgorithms: UInt64 = 0, certificatesDigest: [UInt8] = [], measurementsDigest: [UInt8] = [],
                    reportDigest: [UInt8] = [], reportCount: UInt64 = 0) {
            self.tdiID = tdiID
            self.status = status
            self.measurementFlags = measurementFlags
            self.lockFlags = lockFlags
            self.spdmAlgorithms = spdmAlgorithms
            self.certificatesDigest = SEV.fit(certificatesDigest, 48)
            self.measurementsDigest = SEV.fit(measurementsDigest, 48)
            self.reportDigest = SEV.fit(reportDigest, 48)
            self.reportCount = reportCount
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            tdiID = try reader.u64()
            status = try reader.u16()
            try reader.skip(6)
            measurementFlags = try reader.u32()
            lockFlags = try reader.u32()
            spdmAlgorithms = try reader.u64()
            certificatesDigest = try reader.bytes(48)
            measurementsDigest = try reader.bytes(48)
            reportDigest = try reader.bytes(48)
            reportCount = try reader.u64()
            try reader.skip(8)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(tdiID)
            writer.u16(status)
            writer.zeros(6)
            writer.u32(measurementFlags)
            writer.u32(lockFlags)
            writer.u64(spdmAlgorithms)
            writer.bytes(SEV.fit(certificatesDigest, 48))
            writer.bytes(SEV.fit(measurementsDigest, 48))
            writer.bytes(SEV.fit(reportDigest, 48))
            writer.u64(reportCount)
            writer.zeros(8)
            return writer.bytes
        }
    }

    /// MMIO_VALIDATE_REQ, 48 bytes (arch-backends.md §2.3 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 8 | tdi_id (or u16 guest_device_id + 6 reserved, profile `sevTDIAddressing`) |
    /// | 8 | 8 | reserved |
    /// | 16 | 8 | subrange_base: GPA of the first page (bytes, 4 KiB aligned) |
    /// | 24 | 4 | subrange_page_count (4 KiB pages) |
    /// | 28 | 4 | range_offset: byte offset of the subrange inside the reported range |
    /// | 32 | 2 | bit 0 validated, bit 1 force_validated |
    /// | 34 | 2 | range_id (RANGE_ID of the interface report) |
    /// | 36 | 12 | reserved |
    public struct MMIOValidateRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 48
        /// `tdi_id` (or the guest_device_id in its low 16 bits, profile `sevTDIAddressing`).
        public var tdiID: UInt64
        /// `subrange_base`: GPA of the first page, in bytes.
        public var subrangeBase: UInt64
        /// `subrange_page_count`: number of 4 KiB pages.
        public var subrangePageCount: UInt32
        /// `range_offset`: byte offset of the subrange inside the reported range.
        public var rangeOffset: UInt32
        /// Bit 0: validate (1) or invalidate (0).
        public var validated: Bool
        /// Bit 1: skip the uniformity check.
        public var forceValidated: Bool
        /// `range_id`: the RANGE_ID of the interface report.
        public var rangeID: UInt16
        /// Creates the value from its fields.
        public init(tdiID: UInt64, subrangeBase: UInt64, subrangePageCount: UInt32, rangeOffset: UInt32,
                    validated: Bool, forceValidated: Bool = false, rangeID: UInt16) {
            self.tdiID = tdiID
            self.subrangeBase = subrangeBase
            self.subrangePageCount = subrangePageCount
            self.rangeOffset = rangeOffset
            self.validated = validated
            self.forceValidated = forceValidated
            self.rangeID = rangeID
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            tdiID = try reader.u64()
            try reader.skip(8)
            subrangeBase = try reader.u64()
            subrangePageCount = try reader.u32()
            rangeOffset = try reader.u32()
            let bits = try reader.u16()
            validated = bits & 1 != 0
            forceValidated = bits & 2 != 0
            rangeID = try reader.u16()
            try reader.skip(12)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(tdiID)
            writer.zeros(8)
            writer.u64(subrangeBase)
            writer.u32(subrangePageCount)
            writer.u32(rangeOffset)
            writer.u16((validated ? 1 : 0) | (forceValidated ? 2 : 0))
            writer.u16(rangeID)
            writer.zeros(12)
            return writer.bytes
        }
    }

    /// MMIO_VALIDATE_RSP, 48 bytes (arch-backends.md §2.3 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 8 | tdi_id |
    /// | 8 | 2 | status (``MMIOValidateStatus``, numbered per profile) |
    /// | 10 | 6 | reserved |
    /// | 16 | 8 | subrange_base |
    /// | 24 | 4 | subrange_page_count |
    /// | 28 | 4 | range_offset |
    /// | 32 | 2 | bit 0 changed |
    /// | 34 | 2 | range_id |
    /// | 36 | 12 | reserved |
    public struct MMIOValidateResponse: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 48
        /// `tdi_id` (or the guest_device_id in its low 16 bits, profile `sevTDIAddressing`).
        public var tdiID: UInt64
        /// `status` (the message's status table).
        public var status: UInt16
        /// `subrange_base`: GPA of the first page, in bytes.
        public var subrangeBase: UInt64
        /// `subrange_page_count`: number of 4 KiB pages.
        public var subrangePageCount: UInt32
        /// `range_offset`: byte offset of the subrange inside the reported range.
        public var rangeOffset: UInt32
        /// Bit 0: some page changed state.
        public var changed: Bool
        /// `range_id`: the RANGE_ID of the interface report.
        public var rangeID: UInt16
        /// Creates the value from its fields.
        public init(tdiID: UInt64, status: UInt16, subrangeBase: UInt64, subrangePageCount: UInt32,
                    rangeOffset: UInt32, changed: Bool, rangeID: UInt16) {
            self.tdiID = tdiID
            self.status = status
            self.subrangeBase = subrangeBase
            self.subrangePageCount = subrangePageCount
            self.rangeOffset = rangeOffset
            self.changed = changed
            self.rangeID = rangeID
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            tdiID = try reader.u64()
            status = try reader.u16()
            try reader.skip(6)
            subrangeBase = try reader.u64()
            subrangePageCount = try reader.u32()
            rangeOffset = try reader.u32()
            changed = try reader.u16() & 1 != 0
            rangeID = try reader.u16()
            try reader.skip(12)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(tdiID)
            writer.u16(status)
            writer.zeros(6)
            writer.u64(subrangeBase)
            writer.u32(subrangePageCount)
            writer.u32(rangeOffset)
            writer.u16(changed ? 1 : 0)
            writer.u16(rangeID)
            writer.zeros(12)
            return writer.bytes
        }
    }

    /// MMIO validate status (arch-backends.md §2.3 [P]); the wire number depends on the table.
    ///
    /// | status | latest | legacy |
    /// |---|---|---|
    /// | SUCCESS | 0 | 0 |
    /// | INVALID_TDI | 1 | 1 |
    /// | TDI_UNBOUND | 2 | 2 |
    /// | NOT_ASSIGNED | 3 | 3 |
    /// | NOT_IO | 4 | – |
    /// | NOT_UNIFORM | 5 | 4 |
    /// | NOT_IMMUTABLE | 6 | 5 |
    /// | NOT_MAPPED | 7 | 6 |
    /// | NOT_REPORTED | 8 | 7 |
    /// | OUT_OF_RANGE | 9 | 8 |
    /// | NOT_4K | 10 | – |
    public enum MMIOValidateStatus: Sendable, CaseIterable {
        case success, invalidTDI, tdiUnbound, notAssigned, notIO, notUniform, notImmutable
        case notMapped, notReported, outOfRange, not4K

        /// The wire value under `table`; nil when the legacy table has no such status.
        public func value(_ table: FirmwareProfile.SEVMMIOStatusTable) -> UInt16? {
            let latest: UInt16
            switch self {
            case .success: latest = 0
            case .invalidTDI: latest = 1
            case .tdiUnbound: latest = 2
            case .notAssigned: latest = 3
            case .notIO: latest = 4
            case .notUniform: latest = 5
            case .notImmutable: latest = 6
            case .notMapped: latest = 7
            case .notReported: latest = 8
            case .outOfRange: latest = 9
            case .not4K: latest = 10
            }
            guard table == .legacy else { return latest }
            switch self {
            case .notIO, .not4K: return nil
            case .success, .invalidTDI, .tdiUnbound, .notAssigned: return latest
            default: return latest - 1
            }
        }

        /// The status a wire value names under `table`, or nil.
        public static func status(_ value: UInt16, _ table: FirmwareProfile.SEVMMIOStatusTable) -> MMIOValidateStatus? {
            allCases.first { $0.value(table) == value }
        }
    }

    /// MMIO_CONFIG_REQ, 16 bytes (guest_device_id revision, arch-backends.md §2.3 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 2 | guest_device_id |
    /// | 2 | 2 | reserved |
    /// | 4 | 4 | bits 1:0 reserved, bit 2 is_non_tee_mem, 15:3 reserved, 31:16 range_id |
    /// | 8 | 4 | bit 0 write (0 read the config, 1 write it) |
    /// | 12 | 4 | reserved |
    public struct MMIOConfigRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 16
        /// `guest_device_id`: the guest-visible RID.
        public var guestDeviceID: UInt16
        /// `is_non_tee_mem` (bit 2 of the word at offset 4).
        public var isNonTEEMemory: Bool
        /// `range_id`: the RANGE_ID of the interface report.
        public var rangeID: UInt16
        /// `write`: 0 read the configuration, 1 write it.
        public var write: Bool
        /// Creates the value from its fields.
        public init(guestDeviceID: UInt16, rangeID: UInt16, write: Bool, isNonTEEMemory: Bool = false) {
            self.guestDeviceID = guestDeviceID
            self.rangeID = rangeID
            self.write = write
            self.isNonTEEMemory = isNonTEEMemory
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            guestDeviceID = try reader.u16()
            try reader.skip(2)
            let bits = try reader.u32()
            isNonTEEMemory = bits & 0x4 != 0
            rangeID = UInt16(truncatingIfNeeded: bits >> 16)
            write = try reader.u32() & 1 != 0
            try reader.skip(4)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u16(guestDeviceID)
            writer.u16(0)
            writer.u32((isNonTEEMemory ? 0x4 : 0) | UInt32(rangeID) << 16)
            writer.u32(write ? 1 : 0)
            writer.zeros(4)
            return writer.bytes
        }
    }

    /// MMIO_CONFIG_RSP, 16 bytes (arch-backends.md §2.3 [P]).
    ///
    /// | offset | size | field |
    /// |---|---|---|
    /// | 0 | 2 | guest_device_id |
    /// | 2 | 2 | status (``MMIOConfigStatus``) |
    /// | 4 | 4 | bit 0 msix_table, 1 msix_pba, 2 is_non_tee_mem, 3 is_mem_attr_updateable, 15:4 reserved, 31:16 range_id |
    /// | 8 | 4 | bit 0 write |
    /// | 12 | 4 | reserved |
    public struct MMIOConfigResponse: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 16
        /// `guest_device_id`: the guest-visible RID.
        public var guestDeviceID: UInt16
        /// `status` (the message's status table).
        public var status: UInt16
        /// Bits 3:0 of the attribute word: the report's RANGE_ATTRIBUTES bits 3:0.
        public var attributes: UInt16
        /// `range_id`: the RANGE_ID of the interface report.
        public var rangeID: UInt16
        /// `write`: 0 read the configuration, 1 write it.
        public var write: Bool
        /// Creates the value from its fields.
        public init(guestDeviceID: UInt16, status: UInt16, attributes: UInt16, rangeID: UInt16, write: Bool) {
            self.guestDeviceID = guestDeviceID
            self.status = status
            self.attributes = attributes & 0xF
            self.rangeID = rangeID
            self.write = write
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            guestDeviceID = try reader.u16()
            status = try reader.u16()
            let bits = try reader.u32()
            attributes = UInt16(bits & 0xF)
            rangeID = UInt16(truncatingIfNeeded: bits >> 16)
            write = try reader.u32() & 1 != 0
            try reader.skip(4)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u16(guestDeviceID)
            writer.u16(status)
            writer.u32(UInt32(attributes & 0xF) | UInt32(rangeID) << 16)
            writer.u32(write ? 1 : 0)
            writer.zeros(4)
            return writer.bytes
        }
    }

    /// MMIO config status (arch-backends.md §2.3 [P]).
    public enum MMIOConfigStatus: UInt16, Sendable {
        case success = 0, invalidTDI = 1, tdiUnbound = 2, notReported = 3, couldNotChange = 4
    }

    /// SDTE_WRITE_REQ, 80 bytes: tdi_id u64 @0, reserved[8] @8, the 64-byte secure DTE @16
    /// (arch-backends.md §2.3 [P]). The SDTE bit layout is not public (§5.8); the model reads
    /// only bit 0 of byte 0 as V, as in the AMD IOMMU device table entry, and keeps the rest
    /// opaque.
    public struct SDTEWriteRequest: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 80
        /// `tdi_id` (or the guest_device_id in its low 16 bits, profile `sevTDIAddressing`).
        public var tdiID: UInt64
        /// The 64-byte secure DTE.
        public var sdte: [UInt8]
        /// Creates the value from its fields.
        public init(tdiID: UInt64, sdte: [UInt8]) {
            self.tdiID = tdiID
            self.sdte = SEV.fit(sdte, 64)
        }
        /// An SDTE with V = 1 and the vTOM (bits 51:21 of `vtom`) in bytes 8..15 (model layout).
        public static func validSDTE(vtom: UInt64) -> [UInt8] {
            var writer = ByteWriter(capacity: 64)
            writer.u64(1)
            writer.u64(vtom & 0x000F_FFFF_FFE0_0000)
            writer.zeros(48)
            return writer.bytes
        }
        /// True when the V bit (bit 0 of byte 0) is set.
        public var valid: Bool { sdte.first.map { $0 & 1 != 0 } ?? false }
        /// True when every SDTE byte is zero (the disable form).
        public var isZero: Bool { sdte.allSatisfy { $0 == 0 } }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            tdiID = try reader.u64()
            try reader.skip(8)
            sdte = try reader.bytes(64)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(tdiID)
            writer.zeros(8)
            writer.bytes(SEV.fit(sdte, 64))
            return writer.bytes
        }
    }

    /// SDTE_WRITE_RSP, 16 bytes: tdi_id u64 @0, status u16 @8 (``SDTEStatus``), reserved[6] @10
    /// (arch-backends.md §2.3 [P]).
    public struct SDTEWriteResponse: FixedSizePayload {
        /// Encoded size in bytes.
        public static let size = 16
        /// `tdi_id` (or the guest_device_id in its low 16 bits, profile `sevTDIAddressing`).
        public var tdiID: UInt64
        /// `status` (the message's status table).
        public var status: UInt16
        /// Creates the value from its fields.
        public init(tdiID: UInt64, status: UInt16) {
            self.tdiID = tdiID
            self.status = status
        }
        /// Decodes exactly the encoded size; any other length throws ``WireError`` (never traps).
        public init(decoding bytes: [UInt8]) throws(WireError) {
            var reader = ByteReader(bytes)
            tdiID = try reader.u64()
            status = try reader.u16()
            try reader.skip(6)
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded() -> [UInt8] {
            var writer = ByteWriter(capacity: Self.size)
            writer.u64(tdiID)
            writer.u16(status)
            writer.zeros(6)
            return writer.bytes
        }
    }

    /// SDTE write status (arch-backends.md §2.3 [P]).
    public enum SDTEStatus: UInt16, Sendable {
        case success = 0, invalidTDI = 1, tdiNotBound = 2, reserved = 3
    }

    /// TDI_INFO bind status (arch-backends.md §2.5 [P]).
    public enum TDIBindStatus: UInt16, Sendable {
        case bound = 0, invalid = 1, unbound = 2
    }

    /// SET_TDI_STATE (op 5) payload: 1 byte (scope API, profile `byte`) or a u32 (EMU-SEV-3,
    /// profile `u32`). Value 1 = RUN; any other value = go back (TDI_UNBIND).
    public struct SetTDIStateRequest: Sendable, Equatable {
        /// The requested state: 1 = RUN, anything else = unbind.
        public var value: UInt32
        /// Creates the value from its fields.
        public init(value: UInt32) { self.value = value }
        /// Decodes exactly 1 byte (`.byte`) or 4 bytes (`.u32`).
        public init(decoding bytes: [UInt8], payload: FirmwareProfile.SEVSetStatePayload) throws(WireError) {
            var reader = ByteReader(bytes)
            switch payload {
            case .byte: value = UInt32(try reader.u8())
            case .u32: value = try reader.u32()
            }
            try reader.expectEnd()
        }
        /// The encoded bytes (layout above), little-endian.
        public func encoded(payload: FirmwareProfile.SEVSetStatePayload) -> [UInt8] {
            var writer = ByteWriter(capacity: 4)
            switch payload {
            case .byte: writer.u8(UInt8(truncatingIfNeeded: value))
            case .u32: writer.u32(value)
            }
            return writer.bytes
        }
    }

    /// GHCB RDX for an MMIO validate exit (arch-backends.md §2.3 [P]): GPA bits 51:12, order
    /// (log2 of the page count) bits 11:4, T (private) bit 3, range_id bits 2:0.
    public static func mmioRDX(gpa: UInt64, order: UInt8, isPrivate: Bool, rangeID: UInt8) -> UInt64 {
        (gpa & 0x000F_FFFF_FFFF_F000) | UInt64(order) << 4 | (isPrivate ? 1 << 3 : 0) | UInt64(rangeID & 7)
    }

    /// GHCB RDX for an SDTE exit: vTOM masked to bits 51:21, bit 0 = SDTE_VALIDATE.
    public static func sdteRDX(vtom: UInt64, validate: Bool) -> UInt64 {
        (vtom & 0x000F_FFFF_FFE0_0000) | (validate ? 1 : 0)
    }

    /// PSP status codes returned as fw_err, which is `tsm_code` for SEV (arch-backends.md §2.4 [P]).
    public enum PSPStatus {
        /// SUCCESS (0).
        public static let success: UInt64 = 0
        /// INVALID_PARAM (0x16).
        public static let invalidParam: UInt64 = 0x16
        /// INCORRECT_BUFFER_LENGTH (0x30).
        public static let incorrectBufferLength: UInt64 = 0x30
        /// EXPAND_BUFFER_LENGTH_REQUEST (0x31).
        public static let expandBufferLengthRequest: UInt64 = 0x31
        /// SPDM_REQUEST (0x32).
        public static let spdmRequest: UInt64 = 0x32
        /// SPDM_ERROR (0x33).
        public static let spdmError: UInt64 = 0x33
        /// ERR_IN_DEV_CONN (0x35).
        public static let errInDevConn: UInt64 = 0x35
        /// INVALID_DEV_CTX (0x36).
        public static let invalidDevCtx: UInt64 = 0x36
        /// INVALID_TDI_CTX (0x37).
        public static let invalidTDICtx: UInt64 = 0x37
        /// INVALID_TDI (0x38).
        public static let invalidTDI: UInt64 = 0x38
        /// RECLAIM_REQUIRED (0x39).
        public static let reclaimRequired: UInt64 = 0x39
        /// IN_USE (0x3A).
        public static let inUse: UInt64 = 0x3A
        /// INVALID_DEV_STATE (0x3B).
        public static let invalidDevState: UInt64 = 0x3B
        /// INVALID_TDI_STATE (0x3C).
        public static let invalidTDIState: UInt64 = 0x3C
        /// DEV_CERT_CHANGED (0x3D).
        public static let devCertChanged: UInt64 = 0x3D
        /// RESYNC_REQ (0x3E).
        public static let resyncReq: UInt64 = 0x3E
        /// RESPONSE_TOO_LARGE (0x3F).
        public static let responseTooLarge: UInt64 = 0x3F
    }

    /// PSP command names used as firmware-call names, with their codes (arch-backends.md §2.4 [P]).
    public enum PSPCommand {
        /// 0xD2
        public static let devCreate = "DEV_CREATE"
        /// 0xD4
        public static let devConnect = "DEV_CONNECT"
        /// 0xD5
        public static let devDisconnect = "DEV_DISCONNECT"
        /// 0xD3
        public static let devReclaim = "DEV_RECLAIM"
        /// 0xDA
        public static let tdiCreate = "TDI_CREATE"
        /// 0xDB
        public static let tdiReclaim = "TDI_RECLAIM"
        /// 0xDC
        public static let tdiBind = "TDI_BIND"
        /// 0xDD
        public static let tdiUnbind = "TDI_UNBIND"
        /// 0xDF
        public static let tdiStatus = "TDI_STATUS"
        /// 0xE0
        public static let guestRequest = "GUEST_REQUEST"
        /// 0xE1
        public static let asidFenceClear = "ASID_FENCE_CLEAR"
        /// Host IOMMU `tsm_enable` / disable for the vDevice (not a PSP command; injectable).
        public static let iommuTSMEnable = "IOMMU_TSM_ENABLE"
    }

    static func fit(_ bytes: [UInt8], _ count: Int) -> [UInt8] {
        bytes.count >= count ? Array(bytes.prefix(count)) : bytes + [UInt8](repeating: 0, count: count - bytes.count)
    }
}
