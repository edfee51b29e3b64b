import Foundation

/// What one run of the built `tsmctl` produced.
struct CLIResult: Sendable {
    /// Everything written to standard output, as UTF-8 text.
    let stdout: String
    /// Everything written to standard error, as UTF-8 text.
    let stderr: String
    /// The exit status (or the terminating signal number, negated).
    let status: Int32
}

/// Why `tsmctl` could not be run at all.
struct CLIRunnerError: Error, CustomStringConvertible {
    let description: String
}

/// Runs the built `tsmctl` executable, the way a user does, and captures its stdout, stderr and
/// exit status. Shared by every CLI test in this target.
///
/// The executable is found, in order: the `TSMCTL` environment variable (a path); next to the test
/// bundle (SwiftPM puts products and test bundles in the same build directory, `.build/debug/`,
/// also inside an `.xctest` bundle on macOS); `.build/debug/tsmctl` under the package root.
/// `swift test` builds `tsmctl` first because this target depends on it.
///
/// Output goes to temporary files rather than pipes, so large outputs cannot deadlock the run.
enum CLIRunner {
    /// Runs `tsmctl arguments…`, optionally feeding `stdin`, with `environment` added to the
    /// inherited environment and `currentDirectory` as working directory (default: inherited).
    static func run(_ arguments: [String], stdin: String? = nil, environment: [String: String] = [:],
                    currentDirectory: URL? = nil) throws -> CLIResult {
        let executable = try executableURL()
        let scratch = FileManager.default.temporaryDirectory
            .appendingPathComponent("tsmctl-test-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let outURL = scratch.appendingPathComponent("stdout")
        let errURL = scratch.appendingPathComponent("stderr")
        let inURL = scratch.appendingPathComponent("stdin")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: inURL.path, contents: Data((stdin ?? "").utf8))

        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let currentDirectory { process.currentDirectoryURL = currentDirectory }
        let outHandle = try FileHandle(forWritingTo: outURL)
        let errHandle = try FileHandle(forWritingTo: errURL)
        let inHandle = try FileHandle(forReadingFrom: inURL)
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = inHandle
        try process.run()
        process.waitUntilExit()
        try? outHandle.close()
        try? errHandle.close()
        try? inHandle.close()

        let status = process.terminationReason == .exit ? process.terminationStatus : -process.terminationStatus
        let out = (try? Data(contentsOf: outURL)) ?? Data()
        let err = (try? Data(contentsOf: errURL)) ?? Data()
        return CLIResult(stdout: String(decoding: out, as: UTF8.self),
                         stderr: String(decoding: err, as: UTF8.self), status: status)
    }

    /// The `tsmctl` executable this test run uses; throws ``CLIRunnerError`` naming the places
    /// searched if there is none.
    static func executableURL() throws -> URL {
        var candidates: [URL] = []
        if let path = ProcessInfo.processInfo.environment["TSMCTL"], !path.isEmpty {
            candidates.append(URL(fileURLWithPath: path))
        }
        var directory = URL(fileURLWithPath: CommandLine.arguments.first ?? "").deletingLastPathComponent()
        for _ in 0..<4 {
            candidates.append(directory.appendingPathComponent("tsmctl"))
            directory = directory.deletingLastPathComponent()
        }
        for bundle in Bundle.allBundles where bundle.bundlePath.hasSuffix(".xctest") {
            candidates.append(bundle.bundleURL.deletingLastPathComponent().appendingPathComponent("tsmctl"))
        }
        let packageRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(packageRoot.appendingPathComponent(".build/debug/tsmctl"))
        for candidate in candidates where FileManager.default.isExecutableFile(atPath: candidate.path) {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), !isDirectory.boolValue {
                return candidate
            }
        }
        throw CLIRunnerError(description: "tsmctl executable not found; searched: "
            + candidates.map(\.path).joined(separator: ", ") + " (set TSMCTL to its path)")
    }
}
