import ArgumentParser
import Foundation
import UAPI

/// `tsmctl uapi [--profile NAME]`: prints the uAPI of one profile as JSON: every struct's size,
/// alignment and fields (name, offset, size, direction, signedness), every command's nr, request
/// code and minimum size, the op and tvm_arch enumerations and the allowed (op, tvm_arch) matrix.
struct UAPICommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uapi",
        abstract: "Print the iommufd vDevice TSM uAPI layout of a profile as JSON.",
        discussion: """
            Sizes and offsets are in bytes; request codes are _IO(';', nr) as on x86-64 and arm64.
            Profiles: \(UAPIProfile.all.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")).
            """)

    @Option(name: .long, help: "The uAPI profile: \(ProfileArgument.allValueStrings.joined(separator: ", ")).")
    var profile: ProfileArgument = ProfileArgument(UAPIProfile.default)

    func run() throws {
        let report = UAPIReport(profile.profile)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(report)
        print(String(decoding: data, as: UTF8.self))
    }
}

/// A `--profile NAME` value: one of ``UAPIProfile/all`` by name. Any other name is rejected by
/// the argument parser with a message naming the valid profiles. Other subcommands taking a
/// profile use this type too.
struct ProfileArgument: ExpressibleByArgument, Sendable {
    let profile: UAPIProfile

    init(_ profile: UAPIProfile) { self.profile = profile }

    init?(argument: String) {
        guard let profile = try? UAPIProfile.named(argument) else { return nil }
        self.profile = profile
    }

    var defaultValueDescription: String { profile.name }

    static var allValueStrings: [String] { UAPIProfile.all.map(\.name) }
}

/// The JSON document of `tsmctl uapi`. Keys are snake_case; numbers are decimal, with hex text
/// beside request codes.
struct UAPIReport: Encodable {
    struct Field: Encodable {
        let name: String
        let offset: Int
        let size: Int
        let type: String
        let direction: String
        let role: String
        let signed: Bool
    }

    struct Struct: Encodable {
        let name: String
        let c_name: String
        let size: Int
        let alignment: Int
        let fields: [Field]
    }

    struct Command: Encodable {
        let name: String
        let nr: Int
        let nr_hex: String
        let request: UInt32
        let request_hex: String
        let `struct`: String?
        let minimum_size: Int?
    }

    struct Enumerator: Encodable {
        let name: String
        let value: UInt32
    }

    struct Op: Encodable {
        let name: String
        let value: UInt32
        let sev_only: Bool
    }

    struct MatrixRow: Encodable {
        let op: String
        let value: UInt32
        let allowed_tvm_arch: [String]
    }

    let profile: String
    let summary: String
    let profiles: [String]
    let ioctl_type: Int
    let tsm_req_layout: String
    let last_command_nr: Int
    let mainline_conflict_since: String?
    let structs: [Struct]
    let commands: [Command]
    let tvm_arch: [Enumerator]
    let ops: [Op]
    let scopes: [Enumerator]
    let tsm_op_types: [Enumerator]
    let matrix: [MatrixRow]

    init(_ profile: UAPIProfile) {
        self.profile = profile.name
        summary = profile.summary
        profiles = UAPIProfile.all.map(\.name)
        ioctl_type = Int(IoctlCode.iommufdType)
        tsm_req_layout = profile.tsmReqLayout.rawValue
        last_command_nr = Int(profile.lastCommandNr)
        mainline_conflict_since = profile.mainlineConflictSince.map { "\($0.major).\($0.minor)" }

        let allCommands = profile.commands + [CommandSpec.vfioDeviceBindIOMMUFD]
        var layouts: [StructLayout] = []
        for command in allCommands {
            if let layout = command.layout, !layouts.contains(layout) { layouts.append(layout) }
        }
        structs = layouts.map { layout in
            Struct(name: layout.name, c_name: layout.cName, size: layout.size, alignment: layout.alignment,
                   fields: layout.fields.map {
                       Field(name: $0.name, offset: $0.offset, size: $0.size, type: $0.type.rawValue,
                             direction: $0.direction.rawValue, role: $0.role.rawValue, signed: $0.isSigned)
                   })
        }
        commands = allCommands.map {
            Command(name: $0.name, nr: Int($0.nr), nr_hex: UAPIReport.hex($0.nr), request: $0.request,
                    request_hex: UAPIReport.hex($0.request), struct: $0.layout?.name, minimum_size: $0.minimumSize)
        }
        tvm_arch = profile.tsmReqLayout.hasOpAndArch
            ? TVMArch.allCases.map { Enumerator(name: $0.name, value: $0.rawValue) } : []
        ops = profile.validOps.map {
            Op(name: $0.op.kernelName, value: $0.rawValue, sev_only: profile.sevOnlyOps.contains($0.op))
        }
        scopes = profile.tsmReqLayout.hasScope
            ? TSMReqScope.allCases.map { Enumerator(name: $0.kernelName, value: $0.rawValue) } : []
        tsm_op_types = VDeviceTSMOpType.allCases.map { Enumerator(name: $0.kernelName, value: $0.rawValue) }
        matrix = profile.validOps.map { entry in
            MatrixRow(op: entry.op.kernelName, value: entry.rawValue,
                      allowed_tvm_arch: TVMArch.allCases
                          .filter { profile.guestRequestVerdict(op: entry.rawValue, tvmArch: $0.rawValue).isAllowed }
                          .map(\.name))
        }
    }

    static func hex<T: BinaryInteger>(_ value: T) -> String { "0x" + String(value, radix: 16, uppercase: true) }
}

// MARK: - Unknown subcommands name the valid ones (issue #2, "Bad input")

extension TSMCtl {
    /// The process entry point: ArgumentParser's own, except that an unknown subcommand gets a
    /// message naming the valid subcommands (ArgumentParser only says "Unexpected argument").
    /// Exit status 64 (EX_USAGE), as ArgumentParser uses for every other usage error.
    ///
    /// Lives here (not in TSMCtl.swift) so that registering subcommands stays a one-line edit.
    static func main() async {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let names = configuration.subcommands.map { $0._commandName }
        var candidate = arguments.first
        if candidate == "help", arguments.count > 1 { candidate = arguments[1] }
        if let candidate, !candidate.hasPrefix("-"), candidate != "help", !names.contains(candidate) {
            var message = "Error: unknown subcommand '\(candidate)'; valid subcommands: \(names.joined(separator: ", "))\n"
            message += "Usage: tsmctl <subcommand>\n  See 'tsmctl --help' for more information.\n"
            FileHandle.standardError.write(Data(message.utf8))
            Foundation.exit(64)
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
