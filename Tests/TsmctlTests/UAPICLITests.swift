import Foundation
import Testing

/// `tsmctl uapi`, `tsmctl --help`, `tsmctl help uapi` and the bad-input messages (issue #2).
@Suite struct UAPICLITests {
    struct Report: Decodable {
        struct Field: Decodable {
            let name: String
            let offset: Int
            let size: Int
            let direction: String
            let signed: Bool
        }
        struct Struct: Decodable {
            let name: String
            let c_name: String
            let size: Int
            let alignment: Int
            let fields: [Field]
        }
        struct Command: Decodable {
            let name: String
            let nr: Int
            let request: Int
            let request_hex: String
            let `struct`: String?
            let minimum_size: Int?
        }
        struct Enumerator: Decodable {
            let name: String
            let value: Int
        }
        struct Op: Decodable {
            let name: String
            let value: Int
            let sev_only: Bool
        }
        struct MatrixRow: Decodable {
            let op: String
            let value: Int
            let allowed_tvm_arch: [String]
        }
        let profile: String
        let profiles: [String]
        let structs: [Struct]
        let commands: [Command]
        let tvm_arch: [Enumerator]
        let ops: [Op]
        let scopes: [Enumerator]
        let matrix: [MatrixRow]
    }

    static func report(_ arguments: [String]) throws -> Report {
        let result = try CLIRunner.run(arguments)
        #expect(result.status == 0, "stderr: \(result.stderr)")
        return try JSONDecoder().decode(Report.self, from: Data(result.stdout.utf8))
    }

    /// The "done when": revised iommu_vdevice_tsm_req is 48 bytes with these offsets, and
    /// TSM_REQ's request code is 0x3B96 (15254).
    @Test func defaultProfileShowsRevisedTSMReq() throws {
        let report = try Self.report(["uapi"])
        #expect(report.profile == "revised")
        #expect(report.profiles == ["revised", "v5", "rev-k"])
        let tsmReq = try #require(report.structs.first { $0.name == "iommu_vdevice_tsm_req" })
        #expect(tsmReq.size == 48)
        #expect(tsmReq.alignment == 8)
        #expect(tsmReq.fields.map(\.name) == ["size", "vdevice_id", "op", "tvm_arch", "req_len", "resp_len",
                                             "req_uptr", "resp_uptr", "tsm_code"])
        #expect(tsmReq.fields.map(\.offset) == [0, 4, 8, 12, 16, 20, 24, 32, 40])
        #expect(tsmReq.fields.map(\.size) == [4, 4, 4, 4, 4, 4, 8, 8, 8])
        #expect(tsmReq.fields.last?.direction == "out")
        #expect(report.structs.filter { $0.name == "iommu_vdevice_tsm_req" }.count == 1)
        let command = try #require(report.commands.first { $0.name == "IOMMU_VDEVICE_TSM_REQ" })
        #expect(command.request == 15254)
        #expect(command.request_hex == "0x3B96")
        #expect(command.nr == 0x96)
        #expect(command.minimum_size == 48)
        #expect(command.struct == "iommu_vdevice_tsm_req")
        let tsmOp = try #require(report.commands.first { $0.name == "IOMMU_VDEVICE_TSM_OP" })
        #expect(tsmOp.request == 0x3B95)
    }

    @Test func explicitRevisedEqualsDefault() throws {
        let implicit = try CLIRunner.run(["uapi"])
        let explicit = try CLIRunner.run(["uapi", "--profile", "revised"])
        #expect(implicit.stdout == explicit.stdout)
        #expect(!implicit.stdout.isEmpty)
    }

    @Test func enumerationsAndMatrix() throws {
        let report = try Self.report(["uapi"])
        #expect(report.tvm_arch.map(\.name) == ["cca", "sev", "tdx"])
        #expect(report.tvm_arch.map(\.value) == [1, 2, 3])
        #expect(report.ops.map(\.value) == [1, 2, 3, 4, 5, 6, 7])
        #expect(report.ops.first?.name == "TSM_REQ_READ_OBJECT")
        #expect(report.ops.filter(\.sev_only).map(\.name) == ["TSM_REQ_SEV_ENABLE_DMA", "TSM_REQ_SEV_DISABLE_DMA"])
        let validate = try #require(report.matrix.first { $0.op == "TSM_REQ_VALIDATE_MMIO" })
        #expect(validate.value == 4)
        #expect(validate.allowed_tvm_arch == ["cca", "sev", "tdx"])
        let enableDMA = try #require(report.matrix.first { $0.op == "TSM_REQ_SEV_ENABLE_DMA" })
        #expect(enableDMA.allowed_tvm_arch == ["sev"])
        #expect(report.scopes.isEmpty)
    }

    @Test func v5Profile() throws {
        let report = try Self.report(["uapi", "--profile", "v5"])
        let tsmReq = try #require(report.structs.first { $0.name == "iommu_vdevice_tsm_req" })
        #expect(tsmReq.size == 40)
        #expect(tsmReq.fields.map(\.name) == ["size", "vdevice_id", "scope", "req_len", "resp_len", "__reserved",
                                             "req_uptr", "resp_uptr"])
        #expect(tsmReq.fields.map(\.offset) == [0, 4, 8, 12, 16, 20, 24, 32])
        #expect(report.commands.first { $0.name == "IOMMU_VDEVICE_TSM_REQ" }?.minimum_size == 40)
        #expect(report.scopes.map(\.value) == [0, 1, 2, 3])
        #expect(report.ops.isEmpty)
        #expect(report.matrix.isEmpty)
    }

    @Test func revKProfile() throws {
        let report = try Self.report(["uapi", "--profile", "rev-k"])
        #expect(report.commands.first { $0.name == "IOMMU_VDEVICE_TSM_REQ" }?.request == 0x3B97)
        #expect(report.commands.first { $0.name == "IOMMU_VDEVICE_TSM_OP" }?.request == 0x3B96)
        #expect(report.commands.first { $0.name == "IOMMU_IOAS_NOIOMMU_GET_PA" }?.nr == 0x95)
        #expect(report.ops.map(\.name) == ["TSM_REQ_VALIDATE_MMIO", "TSM_REQ_SET_TDI_STATE",
                                           "TSM_REQ_SEV_ENABLE_DMA", "TSM_REQ_SEV_DISABLE_DMA"])
        #expect(report.matrix.first { $0.value == 3 }?.allowed_tvm_arch == ["sev"])
    }

    @Test func vfioBindIsListed() throws {
        let report = try Self.report(["uapi"])
        let bind = try #require(report.commands.first { $0.name == "VFIO_DEVICE_BIND_IOMMUFD" })
        #expect(bind.request == 0x3B76)
        #expect(bind.minimum_size == 16)
        let layout = try #require(report.structs.first { $0.name == "vfio_device_bind_iommufd" })
        #expect(layout.size == 24)
        #expect(layout.fields.first { $0.name == "iommufd" }?.signed == true)
    }

    // MARK: Help

    @Test func rootHelpListsUAPI() throws {
        let result = try CLIRunner.run(["--help"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: tsmctl <subcommand>"))
        #expect(result.stdout.contains("uapi"))
    }

    @Test func helpUAPIShowsProfiles() throws {
        let result = try CLIRunner.run(["help", "uapi"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("USAGE: tsmctl uapi [--profile <profile>]"))
        #expect(result.stdout.contains("revised, v5, rev-k"))
    }

    // MARK: Bad input: clear message naming the valid choices, non-zero exit

    @Test func unknownSubcommand() throws {
        let result = try CLIRunner.run(["frobnicate"])
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("unknown subcommand 'frobnicate'; valid subcommands: "))
        #expect(result.stderr.contains("uapi"))
    }

    @Test func helpForUnknownSubcommand() throws {
        let result = try CLIRunner.run(["help", "frobnicate"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("unknown subcommand 'frobnicate'"))
    }

    @Test func unknownFlag() throws {
        let result = try CLIRunner.run(["uapi", "--frobnicate"])
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("Unknown option '--frobnicate'"))
        #expect(result.stderr.contains("Usage: tsmctl uapi [--profile <profile>]"))
    }

    @Test func misspelledFlagGetsASuggestion() throws {
        let result = try CLIRunner.run(["uapi", "--profil", "v5"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("Did you mean '--profile'?"))
    }

    @Test func unknownProfile() throws {
        let result = try CLIRunner.run(["uapi", "--profile", "rev-x"])
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("'rev-x' is invalid for '--profile <profile>'"))
        #expect(result.stderr.contains("'revised', 'v5' or 'rev-k'"))
    }

    @Test func missingProfileValue() throws {
        let result = try CLIRunner.run(["uapi", "--profile"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("Missing value for '--profile <profile>'"))
        #expect(result.stderr.contains("revised, v5, rev-k"))
    }
}
