import ArgumentParser
import KernelScript
import SystemPackage

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `tsmctl script FILE`: run a JSON Lines step script against a fresh simulated kernel
/// (docs/script-format.md).
///
/// Output: one JSON line per step on standard output. Exit status: 0 when every step is `ok`,
/// 1 when any step is a `mismatch`, 2 for a malformed script (the message names the line) or a
/// step that could not be carried out.
struct ScriptCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "script",
        abstract: "Run a JSON Lines script of ioctl and set-up steps against a fresh simulated kernel.",
        discussion: """
            Each line is one step, e.g.
              {"op":"open_iommufd","save":"fd"}
              {"op":"ioctl","cmd":"IOMMU_IOAS_ALLOC","save":"ioas","expect":0}
            Every step prints one JSON line with its rc, errno, output fields and ok/mismatch.
            The format is documented in docs/script-format.md.
            """)

    @Argument(help: "The script file, or - for standard input.")
    var file: String

    @Flag(name: .shortAndLong, help: "Print only the steps that are not ok, and a summary line.")
    var quiet = false

    func run() throws {
        let text: String
        let baseDirectory: String?
        if file == "-" {
            var lines: [String] = []
            while let line = readLine(strippingNewline: false) { lines.append(line) }
            text = lines.joined()
            baseDirectory = nil
        } else {
            guard let contents = Self.readFile(file) else {
                throw ValidationError("cannot read \(file)")
            }
            text = contents
            baseDirectory = Self.directory(of: file)
        }

        var mismatches = 0
        var errors = 0
        var steps = 0
        do {
            try ScriptEngine.run(text, host: SimulatedKernelHost(), baseDirectory: baseDirectory) { result in
                steps += 1
                switch result.verdict {
                case .ok: break
                case .mismatch: mismatches += 1
                case .error: errors += 1
                }
                if !quiet || result.verdict != .ok { print(result.jsonLine) }
            }
        } catch {
            Self.printError("tsmctl: \(error)")
            throw ExitCode(2)
        }
        if quiet { print("{\"steps\":\(steps),\"mismatches\":\(mismatches),\"errors\":\(errors)}") }
        if errors > 0 {
            Self.printError("tsmctl: the script stopped at a step that could not run")
            throw ExitCode(2)
        }
        if mismatches > 0 { throw ExitCode(1) }
    }

    static func readFile(_ path: String) -> String? { readTextFile(path, limit: 64 << 20) }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func printError(_ message: String) {
        _ = try? FileDescriptor.standardError.writeAll(Array((message + "\n").utf8))
    }
}
