import Foundation
import Testing

/// `tsmctl decode` through the built executable (docs/decode.md). Vectors are the standards' and
/// the spec's: the spdm-emu sample interface report (tdisp-spdm.md §2.11), the revised
/// `struct iommu_vdevice_tsm_req` (kernel-uapi.md §4.1 (c)), the arch payload layouts of
/// arch-backends.md §1.2, §2.3, §3.2.
@Suite("tsmctl decode")
struct DecodeCommandTests {
    /// The valid kinds, in the order every error message lists them.
    static let validKinds = "auto, tdisp, spdm-vdm, interface-report, measurement-record, certificate-chain, "
        + "iommu_destroy, iommu_ioas_alloc, iommu_hwpt_alloc, iommu_viommu_alloc, iommu_vdevice_alloc, "
        + "iommu_vdevice_tsm_op, iommu_vdevice_tsm_req, iommu_ioas_noiommu_get_pa, vfio_device_bind_iommufd, "
        + "iommu_vdevice_tsm_req_v5, iommu_vdevice_tsm_req_v5_tsm_code, iommu_vdevice_tsm_req_revised, "
        + "cca:read_object:request, cca:regen_object:request, cca:object_info:request, cca:object_info:response, "
        + "cca:validate_mmio:request, cca:set_tdi_state:request, "
        + "sev:validate_mmio:request, sev:validate_mmio:response, sev:set_tdi_state:request, "
        + "sev:sev_enable_dma:request, sev:sev_enable_dma:response, sev:sev_disable_dma:request, "
        + "sev:sev_disable_dma:response, sev:tdi_info:request, sev:tdi_info:response, "
        + "tdx:read_object:request, tdx:regen_object:request, tdx:object_info:request, tdx:object_info:response, "
        + "tdx:validate_mmio:request, tdx:set_tdi_state:request, tdx:tdcm:buffer"

    /// The spdm-emu sample report, byte for byte as tdisp-spdm.md §2.11 prints it (100 bytes).
    static let sampleReportDump = """
        00: 03 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00
        10: 00 00 00 00 00 00 00 00 01 00 00 00 04 00 01 00
        20: 00 80 00 00 00 00 00 00 04 00 00 00 08 00 02 00
        30: 00 00 01 00 00 00 00 00 08 00 00 00 08 00 03 00
        40: 00 00 02 00 00 00 00 00 08 00 00 00 08 00 04 00
        50: 10 00 00 00 74 64 69 73 70 5f 64 65 76 5f 65 6d
        60: 75 00 00 00
        """

    /// The sample report as one hex string.
    static var sampleReportHex: String {
        sampleReportDump.split(separator: "\n").map { line in
            line.split(separator: " ").dropFirst().joined()
        }.joined()
    }

    /// A revised TSM_REQ (kernel-uapi.md §4.1 (c)): size 48, vdevice_id 2, op 4, tvm_arch 1 (CCA),
    /// req_len 24, resp_len 0, req_uptr 0x7f0000001000, resp_uptr 0, tsm_code 0.
    static let tsmReq = "30000000" + "02000000" + "04000000" + "01000000" + "18000000" + "00000000"
        + "00100000007f0000" + "0000000000000000" + "0000000000000000"

    // MARK: Helpers

    struct Field: Decodable, Equatable {
        let name: String
        let offset: Int
        let size: Int
        let value: String
        let meaning: String?
    }

    struct Message: Decodable {
        let kind: String
        let title: String
        let length: Int
        let fields: [Field]

        func field(_ name: String) throws -> Field {
            try #require(fields.first { $0.name == name }, "no field \(name) in \(fields.map(\.name))")
        }
    }

    func decodeJSON(_ arguments: [String], stdin: String? = nil) throws -> Message {
        let result = try CLIRunner.run(["decode", "--json"] + arguments, stdin: stdin)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stderr.isEmpty)
        return try JSONDecoder().decode(Message.self, from: Data(result.stdout.utf8))
    }

    func expectFailure(_ arguments: [String], stdin: String? = nil, message: String) throws {
        let result = try CLIRunner.run(["decode"] + arguments, stdin: stdin)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "tsmctl decode: " + message + "; valid kinds: " + Self.validKinds + "\n")
    }

    // MARK: Interface report (spdm-emu sample, §2.11)

    @Test("the spdm-emu sample report: every field at its offset, by --as and by auto")
    func sampleReport() throws {
        for kind in ["interface-report", "auto"] {
            let message = try decodeJSON([Self.sampleReportHex, "--as", kind])
            #expect(message.kind == "interface-report")
            #expect(message.length == 100)
            #expect(try message.field("INTERFACE_INFO") == Field(name: "INTERFACE_INFO", offset: 0, size: 2, value: "0x0003",
                                                                    meaning: "NO_FW_UPDATE | DMA_WITHOUT_PASID"))
            #expect(try message.field("MMIO_RANGE_COUNT").offset == 12)
            #expect(try message.field("MMIO_RANGE_COUNT").value == "0x00000004")
            #expect(try message.field("MMIO_RANGE[0].RANGE_ATTRIBUTES") == Field(name: "MMIO_RANGE[0].RANGE_ATTRIBUTES", offset: 28, size: 2,
                                                                                    value: "0x0004", meaning: "IS_NON_TEE_MEM"))
            #expect(try message.field("MMIO_RANGE[1].FIRST_PAGE") == Field(name: "MMIO_RANGE[1].FIRST_PAGE", offset: 32, size: 8,
                                                                              value: "0x0000000000008000", meaning: "address 0x8000000"))
            #expect(try message.field("MMIO_RANGE[1].NUMBER_OF_PAGES").value == "0x00000004")
            #expect(try message.field("MMIO_RANGE[1].RANGE_ATTRIBUTES").meaning == "IS_MEM_ATTR_UPDATABLE")
            #expect(try message.field("MMIO_RANGE[3].RANGE_ID") == Field(name: "MMIO_RANGE[3].RANGE_ID", offset: 78, size: 2, value: "0x0004", meaning: nil))
            #expect(try message.field("DEVICE_SPECIFIC_INFO_LEN").offset == 80)
            let info = try message.field("DEVICE_SPECIFIC_INFO")
            #expect(info.offset == 84 && info.size == 16)
            #expect(info.meaning == "\"tdisp_dev_emu\"")
            #expect(message.fields.count == 6 + 4 * 4 + 2)
        }
    }

    @Test("the report dump as the spec prints it, with offsets, from a file and from stdin")
    func sampleReportDumpFileAndStdin() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("decode-report-\(UUID().uuidString).hex")
        try Data((Self.sampleReportDump + "\n# the spdm-emu sample\n").utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }
        let fromFile = try decodeJSON([url.path, "--as", "interface-report"])
        #expect(fromFile.length == 100)
        let fromStdin = try decodeJSON(["-", "--as", "interface-report"], stdin: Self.sampleReportDump)
        #expect(fromStdin.fields == fromFile.fields)
    }

    @Test("human-readable output names each field with offset, size, value and meaning")
    func textOutput() throws {
        let result = try CLIRunner.run(["decode", Self.sampleReportHex])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "TDISP DEVICE_INTERFACE_REPORT (4 MMIO range(s), 100 bytes)")
        #expect(lines.contains { $0.hasPrefix("  0       2     INTERFACE_INFO") && $0.hasSuffix("0x0003  NO_FW_UPDATE | DMA_WITHOUT_PASID") })
        #expect(lines.contains { $0.contains("DEVICE_SPECIFIC_INFO ") && $0.hasSuffix("\"tdisp_dev_emu\"") })
    }

    // MARK: TDISP messages

    /// DEVICE_INTERFACE_REPORT response carrying the sample report's first portion (0x40 bytes,
    /// remainder 0x24), FUNCTION_ID 0xBEEF as the spdm-emu requester uses.
    static var reportPortion: String {
        "10" + "04" + "0000" + "efbe0000" + "0000000000000000" + "4000" + "2400" + String(sampleReportHex.prefix(0x40 * 2))
    }

    @Test("auto finds a TDISP response by its header and names the portion fields")
    func tdispResponseAuto() throws {
        let message = try decodeJSON([Self.reportPortion])
        #expect(message.kind == "tdisp")
        #expect(message.title == "TDISP response DEVICE_INTERFACE_REPORT (0x04)")
        #expect(try message.field("TDISPVersion").meaning == "TDISP 1.0")
        #expect(try message.field("INTERFACE_ID.FUNCTION_ID").value == "0x0000beef")
        #expect(try message.field("PORTION_LENGTH") == Field(name: "PORTION_LENGTH", offset: 16, size: 2, value: "0x0040",
                                                                meaning: "64 bytes in this response"))
        #expect(try message.field("REMAINDER_LENGTH").value == "0x0024")
        #expect(try message.field("REPORT_BYTES").size == 0x40)
    }

    @Test("LOCK_INTERFACE_REQUEST of the spdm-emu requester: flags 0x0007, offset 0xD0000000")
    func lockRequest() throws {
        let hex = "10" + "83" + "0000" + "efbe0000" + "0000000000000000" + "0700" + "00" + "00"
            + "000000d000000000" + "0000000000000000"
        let message = try decodeJSON([hex, "--as", "tdisp"])
        #expect(message.title == "TDISP request LOCK_INTERFACE_REQUEST (0x83)")
        #expect(try message.field("FLAGS") == Field(name: "FLAGS", offset: 16, size: 2, value: "0x0007",
                                                       meaning: "NO_FW_UPDATE | SYSTEM_CACHE_LINE_SIZE_128 | LOCK_MSIX"))
        #expect(try message.field("MMIO_REPORTING_OFFSET") == Field(name: "MMIO_REPORTING_OFFSET", offset: 20, size: 8,
                                                                       value: "0x00000000d0000000", meaning: nil))
        #expect(try message.field("BIND_P2P_ADDRESS_MASK").offset == 28)
    }

    @Test("TDISP_ERROR and DEVICE_INTERFACE_STATE name their enumerations")
    func tdispEnums() throws {
        let error = try decodeJSON(["10" + "7f" + "0000" + "efbe0000" + "0000000000000000" + "04000000" + "00000000"])
        #expect(try error.field("ERROR_CODE").meaning == "INVALID_INTERFACE_STATE")
        let state = try decodeJSON(["10" + "05" + "0000" + "efbe0000" + "0000000000000000" + "02"])
        #expect(try state.field("TDI_STATE").meaning == "RUN")
    }

    @Test("a TDISP message inside SPDM VENDOR_DEFINED_RESPONSE: SPDM fields, then the TDISP fields at their SPDM offsets")
    func spdmWrapped() throws {
        let tdisp = Self.reportPortion
        let length = tdisp.count / 2 + 1
        let lengthHex = String(format: "%02x%02x", length & 0xFF, length >> 8)
        let hex = "12" + "7e" + "00" + "00" + "0300" + "02" + "0100" + lengthHex + "01" + tdisp
        for kind in ["spdm-vdm", "auto"] {
            let message = try decodeJSON([hex, "--as", kind])
            #expect(message.kind == "spdm-vdm")
            #expect(message.title == "SPDM VENDOR_DEFINED_RESPONSE carrying TDISP DEVICE_INTERFACE_REPORT (0x04)")
            #expect(try message.field("StandardID").meaning == "PCI-SIG")
            #expect(try message.field("RespLength").value == String(format: "0x%04x", length))
            #expect(try message.field("ProtocolID").offset == 11)
            #expect(try message.field("TDISP.MessageType").offset == 13)
            #expect(try message.field("TDISP.PORTION_LENGTH").offset == 12 + 16)
        }
    }

    // MARK: uAPI structs (kernel-uapi.md §4.1)

    @Test("revised TSM_REQ: 48 bytes, fields at the offsets of §4.1 (c), op 4 is VALIDATE_MMIO")
    func tsmReqRevised() throws {
        let message = try decodeJSON([Self.tsmReq, "--as", "iommu_vdevice_tsm_req", "--profile", "revised"])
        #expect(message.length == 48)
        #expect(message.fields.map(\.name) == ["size", "vdevice_id", "op", "tvm_arch", "req_len", "resp_len",
                                               "req_uptr", "resp_uptr", "tsm_code"])
        #expect(message.fields.map(\.offset) == [0, 4, 8, 12, 16, 20, 24, 32, 40])
        #expect(message.fields.map(\.size) == [4, 4, 4, 4, 4, 4, 8, 8, 8])
        #expect(try message.field("size").meaning == "sizeof(struct iommu_vdevice_tsm_req) = 48")
        #expect(try message.field("op").meaning == "TSM_REQ_VALIDATE_MMIO (profile revised)")
        #expect(try message.field("tvm_arch").meaning == "IOMMU_VDEVICE_TSM_GUEST_TVM_ARCH_CCA")
        #expect(try message.field("req_uptr").value == "0x00007f0000001000")
        #expect(try message.field("tsm_code").meaning == "CCA: always 0")
    }

    @Test("rev-k numbers the same op 4 SEV_DISABLE_DMA (SEV only), and op 1 VALIDATE_MMIO")
    func tsmReqRevK() throws {
        let revK = try decodeJSON([Self.tsmReq, "--as", "iommu_vdevice_tsm_req", "--profile", "rev-k"])
        #expect(try revK.field("op").meaning == "TSM_REQ_SEV_DISABLE_DMA (profile rev-k; SEV only: EINVAL with this tvm_arch)")
        #expect(revK.title == "struct iommu_vdevice_tsm_req (iommu_vdevice_tsm_req_revised, profile rev-k, 48 bytes)")
        var opOne = Array(Self.tsmReq)
        opOne.replaceSubrange(16..<18, with: Array("01"))
        let revised = try decodeJSON([String(opOne), "--as", "iommu_vdevice_tsm_req"])
        #expect(try revised.field("op").meaning == "TSM_REQ_READ_OBJECT (profile revised)")
        let revKOne = try decodeJSON([String(opOne), "--as", "iommu_vdevice_tsm_req", "--profile", "rev-k"])
        #expect(try revKOne.field("op").meaning == "TSM_REQ_VALIDATE_MMIO (profile rev-k)")
        var opFive = Array(Self.tsmReq)
        opFive.replaceSubrange(16..<18, with: Array("05"))
        let revKFive = try decodeJSON([String(opFive), "--as", "iommu_vdevice_tsm_req", "--profile", "rev-k"])
        #expect(try revKFive.field("op").meaning == "not an op of profile rev-k (EINVAL); valid: 1 TSM_REQ_VALIDATE_MMIO, 2 TSM_REQ_SET_TDI_STATE, 3 TSM_REQ_SEV_ENABLE_DMA, 4 TSM_REQ_SEV_DISABLE_DMA")
    }

    @Test("v5 TSM_REQ: 40 bytes with scope and __reserved")
    func tsmReqV5() throws {
        let hex = "28000000" + "02000000" + "01000000" + "04000000" + "00000000" + "00000000"
            + "00100000007f0000" + "0000000000000000"
        let message = try decodeJSON([hex, "--as", "iommu_vdevice_tsm_req", "--profile", "v5"])
        #expect(message.fields.map(\.name) == ["size", "vdevice_id", "scope", "req_len", "resp_len", "__reserved", "req_uptr", "resp_uptr"])
        #expect(try message.field("scope").meaning == "IOMMU_VDEVICE_TSM_REQ_SCOPE_PCI_STATE_CHANGE")
        #expect(try message.field("__reserved").offset == 20)
    }

    @Test("TSM_OP and VFIO bind: enumerations and signed fields")
    func otherStructs() throws {
        let op = try decodeJSON(["10000000" + "01000000" + "00000000" + "03000000", "--as", "iommu_vdevice_tsm_op"])
        #expect(try op.field("type").meaning == "IOMMU_VDEVICE_TSM_BIND")
        #expect(try op.field("vdevice_id").offset == 12)
        let bind = try decodeJSON(["18000000" + "00000000" + "ffffffff" + "00000000" + "0000000000000000",
                                   "--as", "vfio_device_bind_iommufd"])
        #expect(try bind.field("iommufd").value == "-1")
    }

    // MARK: Architecture payloads

    /// A 96-byte SEV guest message header (arch-backends.md §2.3, EMU-SEV-2): msg_seqno, hdr_sz 96,
    /// msg_type, msg_version 2, msg_sz.
    static func sevHeader(sequence: UInt8, type: UInt8, size: Int) -> String {
        String(repeating: "00", count: 32) + String(format: "%02x", sequence) + String(repeating: "00", count: 7)
            + String(repeating: "00", count: 8) + "00" + "01" + "6000" + String(format: "%02x", type) + "02"
            + String(format: "%02x%02x", size & 0xFF, size >> 8) + "00000000" + "00" + String(repeating: "00", count: 35)
    }

    struct ArchCase: Sendable, CustomStringConvertible {
        let kind: String
        let hex: String
        let field: String
        let offset: Int
        let meaning: String?
        var description: String { kind }
    }

    static let archCases: [ArchCase] = [
        ArchCase(kind: "cca:read_object:request", hex: "03000000" + "00000000" + "0000000000000000",
                 field: "object_type", offset: 0, meaning: "interface report"),
        ArchCase(kind: "cca:regen_object:request", hex: "03000000" + "00000000" + "0000000000000000" + "00200000007f0000",
                 field: "nonce", offset: 16, meaning: "user address of the 32-byte nonce"),
        ArchCase(kind: "cca:object_info:request", hex: "01000000", field: "object_type", offset: 0, meaning: "certificate chain"),
        ArchCase(kind: "cca:object_info:response", hex: "64000000", field: "size", offset: 0, meaning: "100 bytes"),
        ArchCase(kind: "cca:validate_mmio:request", hex: "0000008000000000" + "0040008000000000" + "000000e000000000",
                 field: "gpa_top", offset: 8, meaning: "end (exclusive): 4 page(s)"),
        ArchCase(kind: "cca:set_tdi_state:request", hex: "02000000", field: "tdi_state", offset: 0, meaning: "RUN"),
        ArchCase(kind: "tdx:read_object:request", hex: "01000000" + "00000000" + "0000000000000000",
                 field: "object_type", offset: 0, meaning: "TDI report (DEVICE_INTERFACE_REPORT)"),
        ArchCase(kind: "tdx:regen_object:request", hex: "01000000" + "00000000" + "0000000000000000" + "00200000007f0000",
                 field: "object_type", offset: 0, meaning: "TDI report (DEVICE_INTERFACE_REPORT)"),
        ArchCase(kind: "tdx:object_info:request", hex: "02000000", field: "object_type", offset: 0, meaning: "device info"),
        ArchCase(kind: "tdx:object_info:response", hex: "1c000000", field: "size", offset: 0, meaning: "28 bytes"),
        ArchCase(kind: "tdx:validate_mmio:request", hex: "0010008000000000" + "0040008000000000" + "000000e000000000",
                 field: "gpa_base", offset: 0, meaning: "guest address, 4 KiB aligned"),
        ArchCase(kind: "tdx:set_tdi_state:request", hex: "01000000", field: "tdi_state", offset: 0, meaning: "LOCKED (refused: only RUN)"),
        ArchCase(kind: "tdx:tdcm:buffer", hex: "0400" + "01" + "00" + "00000000" + "01" + "00" + "0000" + "00000000" + "02000000" + "abcd",
                 field: "operation", offset: 0, meaning: "GET_TDI_REPORT"),
        ArchCase(kind: "sev:validate_mmio:request",
                 hex: sevHeader(sequence: 1, type: 21, size: 48) + "0100000000000000" + "0000000000000000" + "0000008000000000"
                    + "04000000" + "00000000" + "0100" + "0200" + String(repeating: "00", count: 12),
                 field: "flags", offset: 96 + 32, meaning: "validated"),
        ArchCase(kind: "sev:validate_mmio:response",
                 hex: sevHeader(sequence: 2, type: 22, size: 48) + "0100000000000000" + "0a00" + String(repeating: "00", count: 6)
                    + "0000008000000000" + "04000000" + "00000000" + "0000" + "0200" + String(repeating: "00", count: 12),
                 field: "status", offset: 96 + 8, meaning: "NOT_4K (legacy table: unknown)"),
        ArchCase(kind: "sev:sev_enable_dma:request",
                 hex: sevHeader(sequence: 3, type: 25, size: 80) + "0100000000000000" + "0000000000000000" + "01" + String(repeating: "00", count: 63),
                 field: "sdte", offset: 96 + 16, meaning: "V = 1 (valid)"),
        ArchCase(kind: "sev:sev_enable_dma:response",
                 hex: sevHeader(sequence: 4, type: 26, size: 16) + "0100000000000000" + "0200" + String(repeating: "00", count: 6),
                 field: "status", offset: 96 + 8, meaning: "TDI_NOT_BOUND"),
        ArchCase(kind: "sev:sev_disable_dma:request",
                 hex: sevHeader(sequence: 5, type: 0x84, size: 80) + "0100000000000000" + "0000000000000000" + String(repeating: "00", count: 64),
                 field: "msg_type", offset: 52, meaning: "SDTE_WRITE_REQ (v0x81 numbering)"),
        ArchCase(kind: "sev:sev_disable_dma:response",
                 hex: sevHeader(sequence: 6, type: 26, size: 16) + "0100000000000000" + "0000" + String(repeating: "00", count: 6),
                 field: "status", offset: 96 + 8, meaning: "SUCCESS"),
        ArchCase(kind: "sev:tdi_info:request", hex: sevHeader(sequence: 7, type: 19, size: 16) + "0100000000000000" + "0000000000000000",
                 field: "msg_type", offset: 52, meaning: "TDI_INFO_REQ (v19 numbering)"),
        ArchCase(kind: "sev:tdi_info:response",
                 hex: sevHeader(sequence: 8, type: 20, size: 192) + "0100000000000000" + "0000" + String(repeating: "00", count: 6)
                    + "03000000" + "05000000" + String(repeating: "00", count: 8 + 48 * 3) + "0100000000000000" + "0000000000000000",
                 field: "tdisp_lock_flags", offset: 96 + 20, meaning: "NO_FW_UPDATE | LOCK_MSIX"),
        ArchCase(kind: "sev:set_tdi_state:request", hex: "01", field: "state", offset: 0, meaning: "RUN"),
    ]

    @Test("every architecture payload kind decodes with its fields named", arguments: archCases)
    func archPayloads(_ testCase: ArchCase) throws {
        let message = try decodeJSON([testCase.hex, "--as", testCase.kind])
        #expect(message.kind == testCase.kind)
        #expect(message.length == testCase.hex.count / 2)
        let field = try message.field(testCase.field)
        #expect(field.offset == testCase.offset)
        #expect(field.meaning == testCase.meaning)
        // The fields tile the bytes: each starts where the one before ended, the last ends at the end.
        var next = 0
        for field in message.fields {
            #expect(field.offset == next, "\(field.name)")
            next = field.offset + field.size
        }
        #expect(next == message.length)
    }

    @Test("SEV MMIO_CONFIG_REQ is told from MMIO_VALIDATE_REQ by msg_type 23")
    func sevMMIOConfig() throws {
        let hex = Self.sevHeader(sequence: 1, type: 23, size: 16) + "0800" + "0000" + "04000300" + "01000000" + "00000000"
        let message = try decodeJSON([hex, "--as", "sev:validate_mmio:request"])
        #expect(message.title == "AMD SEV-TIO guest message: 96-byte header + MMIO_CONFIG_REQ (16 bytes)")
        #expect(try message.field("flags").meaning == "is_non_tee_mem 1, range_id 3")
        #expect(try message.field("write").meaning == "write the config")
    }

    // MARK: Evidence objects

    /// A DMTF measurement record (DSP0274 measurement block format): block 1, a SHA-384 digest of
    /// mutable firmware (type 0x01, 48 bytes); block 4, the raw version string (type 0x86).
    static let measurementRecord = "01" + "01" + "3300" + "01" + "3000" + String(repeating: "ab", count: 48)
        + "04" + "01" + "1300" + "86" + "1000" + "54534d4b69742d454d5520312e302e30"

    @Test("a measurement record: each block's DMTF fields, digest and raw version named")
    func measurementRecordBlocks() throws {
        for kind in ["measurement-record", "auto"] {
            let message = try decodeJSON([Self.measurementRecord, "--as", kind])
            #expect(message.kind == "measurement-record")
            #expect(message.title == "DMTF measurement record (2 block(s), 78 bytes)")
            #expect(try message.field("block[0].DMTFSpecMeasurementValueType").meaning == "mutable firmware, digest")
            #expect(try message.field("block[0].DMTFSpecMeasurementValue").meaning == "SHA-384 digest")
            #expect(try message.field("block[1].Index").offset == 55)
            #expect(try message.field("block[1].DMTFSpecMeasurementValueType").meaning == "version, raw bit stream")
            #expect(try message.field("block[1].DMTFSpecMeasurementValue") == Field(
                name: "block[1].DMTFSpecMeasurementValue", offset: 62, size: 16,
                value: "54534d4b69742d454d5520312e302e30", meaning: "\"TSMKit-EMU 1.0.0\""))
        }
    }

    @Test("a measurement record whose MeasurementSize is not 3 + value size")
    func measurementRecordBad() throws {
        try expectFailure(["01" + "01" + "3400" + "01" + "3000" + String(repeating: "ab", count: 48), "--as", "measurement-record"],
                          message: "not a valid measurement-record: measurement block at offset 0: MeasurementSize 52 is not 3 + DMTFSpecMeasurementValueSize 48")
    }

    /// An SPDM certificate chain (tdisp-spdm.md §4.5): Length 735, Reserved 0, the SHA-384 RootHash
    /// of the root, a self-signed P-256 root "CN=TSMKit Decode Root" (387 bytes) and a device
    /// certificate "CN=TSMKit Decode Device" (296 bytes) it issued. Made once with OpenSSL.
    static let certificateChain =
        "df020000790ac4323938dd5132a852988d034e75704099fda92a47ce20439c87ded63b6821c35dbdc9e390009212abc4f0cd" +
        "350e3082017f30820124a003020102020101300a06082a8648ce3d040302301d311b301906035504030c1254534d4b697420" +
        "4465636f646520526f6f743020170d3236313132393231303535395a180f32313236313130353231303535395a301d311b30" +
        "1906035504030c1254534d4b6974204465636f646520526f6f743059301306072a8648ce3d020106082a8648ce3d03010703" +
        "4200047e793ce96272c44028299597f7427b49c6b50a40bc18674356d1c76974f1b7910c399c898970489f2e508850ef6e85" +
        "28a878caeb3e2943f058897b3e2cd9e8e9a3533051301d0603551d0e04160414c0afe8b543e1e0477ee87793afe1b6086a1e" +
        "11e5301f0603551d23041830168014c0afe8b543e1e0477ee87793afe1b6086a1e11e5300f0603551d130101ff0405300301" +
        "01ff300a06082a8648ce3d0403020349003046022100e972e455c702682b6df8730b00337e6c89c46123a61125d7f2400475" +
        "734c413e022100b3b7ce9b866c7f40bc0a8f33a8457a84e69d18f1aec1196ac09f19cae83e7e8e308201243081cc02010230" +
        "0a06082a8648ce3d040302301d311b301906035504030c1254534d4b6974204465636f646520526f6f743020170d32363131" +
        "32393231303630305a180f32313236313130353231303630305a301f311d301b06035504030c1454534d4b6974204465636f" +
        "6465204465766963653059301306072a8648ce3d020106082a8648ce3d030107034200045269b9a039dc60ec6256b087d376" +
        "460c5fb03b5b7e3fd20397e37d22883e9fbfb86f110756992b6b5115ebec0fc4c29d189403eff58d21dbfc7164eb82cf54e7" +
        "300a06082a8648ce3d040302034700304402205b40dbe44b1612a7ada02d1b09e3b9ec345662c50688ec4127a29473667f0c" +
        "3802204f60153704ce4144220fcb34286d792f1a3e79452e3ef8e4bb6a7fb4f3ca4dde"

    @Test("an SPDM certificate chain: header, RootHash and each certificate by subject and role")
    func certificateChainFields() throws {
        for kind in ["certificate-chain", "auto"] {
            let message = try decodeJSON([Self.certificateChain, "--as", kind])
            #expect(message.kind == "certificate-chain")
            #expect(message.title == "SPDM certificate chain (2 certificate(s), SHA-384 RootHash, 735 bytes)")
            #expect(try message.field("Length") == Field(name: "Length", offset: 0, size: 2, value: "0x02df", meaning: "735 bytes"))
            #expect(try message.field("RootHash").size == 48)
            #expect(try message.field("certificate[0]") == Field(name: "certificate[0]", offset: 52, size: 387, value: "CN=TSMKit Decode Root",
                                                                    meaning: "root, issued by CN=TSMKit Decode Root"))
            #expect(try message.field("certificate[1]") == Field(name: "certificate[1]", offset: 439, size: 296, value: "CN=TSMKit Decode Device",
                                                                    meaning: "leaf, issued by CN=TSMKit Decode Root"))
        }
    }

    @Test("a certificate chain whose RootHash is not the root's digest is refused")
    func certificateChainBadRootHash() throws {
        var hex = Array(Self.certificateChain)
        hex.replaceSubrange(8..<10, with: hex[8] == "0" ? Array("1") + [hex[9]] : Array("0") + [hex[9]])
        try expectFailure([String(hex), "--as", "certificate-chain"],
                          message: "not a valid certificate-chain: SPDM certificate chain: RootHash is not the SHA-384 digest of the first certificate")
    }

    // MARK: Traces

    @Test("a trace of JSON Lines: each line decoded as its kind and profile, JSON per line")
    func trace() throws {
        let lines = [
            #"{"layer":"uapi","kind":"iommu_vdevice_tsm_req","profile":"rev-k","hex":"\#(Self.tsmReq)"}"#,
            "",
            #"{"layer":"tdisp","kind":"auto","hex":"\#(Self.reportPortion)"}"#,
            #"{"layer":"firmware","kind":"cca:set_tdi_state:request","hex":"02000000","step":"ignored"}"#,
        ]
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("decode-trace-\(UUID().uuidString).jsonl")
        try Data(lines.joined(separator: "\n").utf8).write(to: url)
        defer { try? FileManager.default.removeItem(at: url) }

        struct Output: Decodable {
            let line: Int
            let layer: String?
            let decoded: Message
        }
        let result = try CLIRunner.run(["decode", url.path, "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let outputs = try result.stdout.split(separator: "\n").map {
            try JSONDecoder().decode(Output.self, from: Data($0.utf8))
        }
        #expect(outputs.map(\.line) == [1, 3, 4])
        #expect(outputs.map(\.layer) == ["uapi", "tdisp", "firmware"])
        #expect(try outputs[0].decoded.field("op").meaning == "TSM_REQ_SEV_DISABLE_DMA (profile rev-k; SEV only: EINVAL with this tvm_arch)")
        #expect(outputs[1].decoded.kind == "tdisp")
        #expect(try outputs[2].decoded.field("tdi_state").meaning == "RUN")

        let text = try CLIRunner.run(["decode", "-"], stdin: lines[3])
        #expect(text.stdout.hasPrefix("line 1 [firmware]: Arm CCA SET_TDI_STATE request (4 bytes)\n"))
    }

    // MARK: Robustness

    static let allKinds: [String] = validKinds.components(separatedBy: ", ")

    @Test("every kind on short, patterned and truncated bytes: exit 0 or 2 with one line, never a crash",
          arguments: allKinds)
    func neverCrashes(_ kind: String) throws {
        var state: UInt64 = 0x5EED_0000_0000_0001 &+ UInt64(kind.utf8.count)
        func randomHex(_ count: Int) -> String {
            var out = ""
            for _ in 0..<count {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                out += String(format: "%02x", UInt8(truncatingIfNeeded: state >> 56))
            }
            return out
        }
        let inputs = ["00", randomHex(16), randomHex(97), String(Self.sampleReportHex.dropLast(2)),
                      String(Self.tsmReq.dropLast(2)), "10" + "84" + "0000" + "efbe0000" + "0000000000000000" + "ffff"]
        for input in inputs {
            let result = try CLIRunner.run(["decode", input, "--as", kind])
            #expect(result.status == 0 || result.status == 2, "\(kind) \(input): status \(result.status)")
            if result.status == 2 {
                #expect(result.stderr.hasPrefix("tsmctl decode: "))
                #expect(result.stderr.filter { $0 == "\n" }.count == 1)
            }
        }
    }

    // MARK: Bad input: one line, exit 2, the valid kinds

    @Test("bad hex in an argument names the character")
    func badHexArgument() throws {
        try expectFailure(["10zz", "--as", "tdisp"], message: "bad hex in argument at character 2")
    }

    @Test("bad hex in a file names the line")
    func badHexFile() throws {
        try expectFailure(["-"], stdin: "00: 03 00\n10: 0g 00\n", message: "bad hex in stdin line 2 at character 5")
    }

    @Test("an odd number of hex digits")
    func oddHex() throws {
        try expectFailure(["abc"], message: "bad hex in argument at character 3")
    }

    @Test("a path that does not exist is named as such, not as bad hex")
    func missingFile() throws {
        try expectFailure(["no/such/report.hex", "--as", "interface-report"],
                          message: "cannot read no/such/report.hex: no such file, and not hex")
    }

    @Test("no bytes at all")
    func empty() throws {
        try expectFailure(["-"], stdin: "# nothing\n", message: "no bytes in stdin")
    }

    @Test("an unknown --as kind")
    func unknownKind() throws {
        try expectFailure(["00", "--as", "tdisp-message"], message: "unknown kind 'tdisp-message'")
    }

    @Test("an unknown --profile")
    func unknownProfile() throws {
        try expectFailure([Self.tsmReq, "--as", "iommu_vdevice_tsm_req", "--profile", "v6"],
                          message: "unknown uAPI profile 'v6'; valid profiles: revised, v5, rev-k")
    }

    @Test("a revised TSM_REQ decoded under v5 has the wrong length")
    func wrongLengthStruct() throws {
        try expectFailure([Self.tsmReq, "--as", "iommu_vdevice_tsm_req", "--profile", "v5"],
                          message: "not a valid iommu_vdevice_tsm_req: struct iommu_vdevice_tsm_req_v5 (profile v5) is 40 bytes, got 48")
    }

    @Test("a short VALIDATE_MMIO payload")
    func wrongLengthArch() throws {
        try expectFailure(["0000008000000000" + "0040008000000000", "--as", "cca:validate_mmio:request"],
                          message: "not a valid cca:validate_mmio:request: VALIDATE_MMIO request is 24 bytes: truncated: need 8 byte(s) at offset 16, 0 left")
    }

    @Test("a SEV guest message whose msg_sz is not its body")
    func sevBadSize() throws {
        try expectFailure([Self.sevHeader(sequence: 1, type: 21, size: 48) + "00", "--as", "sev:validate_mmio:request"],
                          message: "not a valid sev:validate_mmio:request: SEV guest message (96-byte header + msg_sz): invalid msg_sz 0x30")
    }

    @Test("a TDISP message with trailing bytes")
    func tdispTrailing() throws {
        try expectFailure(["10" + "05" + "0000" + "efbe0000" + "0000000000000000" + "0200", "--as", "tdisp"],
                          message: "not a valid tdisp: TDISP DEVICE_INTERFACE_STATE (0x05): 1 unexpected trailing byte(s) at offset 17")
    }

    @Test("auto on bytes no kind accepts")
    func undetected() throws {
        try expectFailure(["0102"], message: "2 byte(s) match no kind tried by auto (tdisp, spdm-vdm, interface-report, certificate-chain, measurement-record); name one with --as")
    }

    @Test("a trace line that is not JSON, and one without hex")
    func badTraceLines() throws {
        try expectFailure(["-"], stdin: "{\"kind\":\"tdisp\",\"hex\":\"10\"\n",
                          message: "stdin line 1: not a JSON object with string fields kind and hex")
        try expectFailure(["-"], stdin: "{\"kind\":\"tdisp\"}\n", message: "stdin line 1: no \"hex\" field")
        try expectFailure(["-"], stdin: "{\"kind\":\"cca:validate_mmio:request\",\"hex\":\"00\"}\n",
                          message: "stdin line 1: not a valid cca:validate_mmio:request: VALIDATE_MMIO request is 24 bytes: truncated: need 8 byte(s) at offset 0, 1 left")
    }
}
